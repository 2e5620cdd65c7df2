"""Analytics response cache: Redis when REDIS_URL is set, in-process otherwise.

Keys are the normalised request (endpoint + resolved parameters) and the caller's
store scope. Every ingest that writes documents bumps the data version of each store
it touched and the all-stores version; an entry records the version its answer was
computed at, and `as_of`, when. An entry of the current version is fresh. An entry of
an older version (new data arrived since) is served, marked stale, only while it is
younger than CACHE_MAX_STALENESS_SECONDS, and a fresh answer is then computed in the
background, once per key at a time (one process at a time with Redis); with 0 (or
older entries) the answer is computed before responding, and concurrent requests for
one key in a process wait for that one computation. Entries expire after
CACHE_TTL_SECONDS.

When Redis fails, analytics are computed uncached (and a warning is logged) rather
than failing; versions bumped while Redis was down are lost, so answers cached before
the outage may be served until their TTL ends. Redis calls go through the circuit
breaker of `redis_client`: a hung Redis costs one short timeout, then it is bypassed
(no wait at all) until a probe after the cool-down succeeds.

The in-process backend is per process; what other processes write (an import run by
the CLI, a second API process) reaches it through the data versions every writer
publishes in Elasticsearch (es/store_versions.py), which are part of every version
read. Redis shares the cached answers themselves between processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .redis_client import CircuitBreaker, RedisUnavailable

if TYPE_CHECKING:
    from .es.store_versions import StoredDataVersions

log = logging.getLogger(__name__)

T = TypeVar("T")


class Backend(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: int) -> None: ...
    async def incr(self, key: str) -> int: ...
    async def get_int(self, key: str) -> int: ...
    async def claim(self, key: str, ttl: int) -> bool: ...
    async def release(self, key: str) -> None: ...


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

    async def claim(self, key: str, ttl: int) -> bool:
        """One process: the in-flight table of ResponseCache already serialises refreshes."""
        return True

    async def release(self, key: str) -> None:
        return None


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

    async def claim(self, key: str, ttl: int) -> bool:
        """True for the one caller (of every process) that sets `key` first; it expires after `ttl`."""
        return bool(await self._call(lambda: self.redis.set(key, b"1", nx=True, ex=ttl)))

    async def release(self, key: str) -> None:
        await self._call(lambda: self.redis.delete(key))


@dataclass(frozen=True)
class Entry:
    """A cached answer: the data version (a token without spaces) and the time (epoch s) it was computed at."""

    version: str
    as_of: float
    payload: bytes

    def encode(self) -> bytes:
        return f"{self.version} {self.as_of!r}\n".encode() + self.payload

    @classmethod
    def decode(cls, raw: bytes) -> Entry | None:
        head, sep, payload = raw.partition(b"\n")
        try:
            version, as_of = head.split()
            return cls(version.decode(), float(as_of), payload) if sep else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Lookup:
    """Where an answer is cached, the current data version of its store scope, and what is stored."""

    key: str
    version: str
    entry: Entry | None

    def servable(self, max_staleness: float, now: float) -> bool:
        """Fresh, or stale but younger than `max_staleness` seconds."""
        e = self.entry
        return e is not None and (not self.stale or (max_staleness > 0 and now - e.as_of <= max_staleness))

    @property
    def stale(self) -> bool:
        return self.entry is not None and self.entry.version != self.version


class ResponseCache:
    # A background refresh that takes longer than this may be started again by another process.
    REFRESH_CLAIM_SECONDS = 120

    def __init__(
        self, backend: Backend, namespace: str, ttl: int = 300, stored_versions: StoredDataVersions | None = None
    ) -> None:
        self.backend = backend
        self.namespace = namespace
        self.ttl = ttl
        # The versions every writing process publishes in Elasticsearch (es/store_versions.py), read
        # beside the backend's counter: a command-line import makes answers stale without Redis too.
        self.stored_versions = stored_versions
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    async def _current(self, store_id: str | None) -> str:
        """The data version: the backend's counter and, with them, the stored versions, side by
        side (`5`, `5.4.0`): a token that changes whenever any part does (equality only)."""
        counter = await self.backend.get_int(self._version_key(store_id))
        if self.stored_versions is None:
            return str(counter)
        return f"{counter}.{await self.stored_versions.version(store_id)}"

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

    async def version(self, store_id: str | None) -> str | None:
        """The data version of a store (None: every store); None when the cache cannot be read."""
        try:
            return await self._current(store_id)
        except Exception as exc:
            _warn("cache version unavailable", exc)
            return None

    def key(self, endpoint: str, params: dict[str, Any], store_id: str | None) -> str:
        normalised = json.dumps({"e": endpoint, "p": params, "s": store_id}, sort_keys=True, default=str)
        return f"{self.namespace}:response:" + hashlib.sha256(normalised.encode()).hexdigest()

    async def lookup(self, endpoint: str, params: dict[str, Any], store_id: str | None) -> Lookup | None:
        """The key, the current data version and the stored entry; None when the cache cannot be used now."""
        key = self.key(endpoint, params, store_id)
        try:
            version = await self._current(store_id)
            raw = await self.backend.get(key)
        except Exception as exc:
            _warn("cache unavailable, answering uncached", exc)
            return None
        return Lookup(key, version, Entry.decode(raw) if raw is not None else None)

    async def store(self, key: str, entry: Entry) -> None:
        try:
            await self.backend.set(key, entry.encode(), self.ttl)
        except Exception as exc:
            _warn("cache write failed", exc)

    async def once(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        """`compute()`, shared by every caller in this process that asks for `key` meanwhile."""
        task = self._inflight.get(key) or self._track(key, compute())
        return await asyncio.shield(task)

    def refresh_in_background(self, key: str, compute: Callable[[], Awaitable[Any]]) -> None:
        """Start `compute()` unless this process is already computing `key`, and only in the
        process that claims the refresh first (Redis); its failure is logged, not raised."""
        if key in self._inflight:
            return

        async def refresh() -> None:
            claim = f"{key}:refreshing"
            try:
                if not await self.backend.claim(claim, self.REFRESH_CLAIM_SECONDS):
                    return
            except Exception as exc:
                _warn("cache refresh skipped", exc)
                return
            try:
                await compute()
            except Exception as exc:
                log.warning("background refresh of a cached answer failed: %s", exc)
            finally:
                try:
                    await self.backend.release(claim)
                except Exception as exc:
                    _warn("cache refresh claim not released", exc)

        self._track(key, refresh())

    def _track(self, key: str, work: Awaitable[T]) -> asyncio.Task[T]:
        """Run `work` as the one in-flight computation of `key` in this process, until it ends."""
        task = asyncio.ensure_future(work)
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return task


def _warn(what: str, exc: Exception) -> None:
    # While the breaker is open every call fails the same way: the breaker logged it once.
    log.log(logging.DEBUG if isinstance(exc, RedisUnavailable) else logging.WARNING, "%s: %s", what, exc)
