"""Analytics response cache: Redis when REDIS_URL is set, in-process otherwise.

Keys are the normalised request (endpoint + resolved parameters) and the caller's
store scope, plus that scope's data version. Every ingest that writes documents
bumps the version of each store it touched and the all-stores version, so a cached
answer is never served after new data for its store arrived: it is simply no longer
looked up. Entries also expire after CACHE_TTL_SECONDS.

When Redis fails, analytics are computed uncached (and a warning is logged) rather
than failing; versions bumped while Redis was down are lost, so answers cached before
the outage may be served until their TTL ends. Redis calls go through the circuit
breaker of `redis_client`: a hung Redis costs one short timeout, then it is bypassed
(no wait at all) until a probe after the cool-down succeeds.

The in-process backend is per process: with several API processes (or imports run
by the CLI while the API serves), use Redis so that versions are shared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from .redis_client import CircuitBreaker, RedisUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class Backend(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: int) -> None: ...
    async def incr(self, key: str) -> int: ...
    async def get_int(self, key: str) -> int: ...


class MemoryBackend:
    """A bounded LRU with expiry; versions are plain counters."""

    def __init__(self, max_entries: int = 2048) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._counters: dict[str, int] = {}

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self._entries[key] = (time.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def incr(self, key: str) -> int:
        self._counters[key] = self._counters.get(key, 0) + 1
        return self._counters[key]

    async def get_int(self, key: str) -> int:
        return self._counters.get(key, 0)


class RedisBackend:
    """Redis commands, each through `breaker` (shared with the report queue) when given."""

    def __init__(self, redis: Any, breaker: CircuitBreaker | None = None) -> None:
        self.redis = redis
        self.breaker = breaker

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await (self.breaker.call(fn) if self.breaker is not None else fn())

    async def get(self, key: str) -> bytes | None:
        return await self._call(lambda: self.redis.get(key))

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        await self._call(lambda: self.redis.set(key, value, ex=ttl))

    async def incr(self, key: str) -> int:
        return int(await self._call(lambda: self.redis.incr(key)))

    async def get_int(self, key: str) -> int:
        value = await self._call(lambda: self.redis.get(key))
        return int(value) if value is not None else 0


class ResponseCache:
    def __init__(self, backend: Backend, namespace: str, ttl: int = 300) -> None:
        self.backend = backend
        self.namespace = namespace
        self.ttl = ttl

    def _version_key(self, store_id: str | None) -> str:
        return f"{self.namespace}:version:" + ("*" if store_id is None else f"store:{store_id}")

    async def bump(self, stores: Iterable[str]) -> None:
        """New data for these stores: answers cached for them (and for all stores) go stale."""
        try:
            for store in set(stores):
                await self.backend.incr(self._version_key(store))
            await self.backend.incr(self._version_key(None))
        except Exception as exc:  # the write succeeded; only the cache is behind
            _warn("cache version bump failed", exc)

    async def key(self, endpoint: str, params: dict[str, Any], store_id: str | None) -> str | None:
        """The cache key, or None when the cache cannot be used right now."""
        try:
            version = await self.backend.get_int(self._version_key(store_id))
        except Exception as exc:
            _warn("cache unavailable, answering uncached", exc)
            return None
        normalised = json.dumps({"e": endpoint, "p": params, "s": store_id, "v": version}, sort_keys=True, default=str)
        return f"{self.namespace}:response:" + hashlib.sha256(normalised.encode()).hexdigest()

    async def get(self, key: str) -> bytes | None:
        try:
            return await self.backend.get(key)
        except Exception as exc:
            _warn("cache read failed", exc)
            return None

    async def set(self, key: str, value: bytes) -> None:
        try:
            await self.backend.set(key, value, self.ttl)
        except Exception as exc:
            _warn("cache write failed", exc)


def _warn(what: str, exc: Exception) -> None:
    # While the breaker is open every call fails the same way: the breaker logged it once.
    log.log(logging.DEBUG if isinstance(exc, RedisUnavailable) else logging.WARNING, "%s: %s", what, exc)
