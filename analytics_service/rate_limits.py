"""Rate limits per API key and route class (ingest, read, reports), with the `limits` library.

The limits come from RATE_LIMIT_INGEST, RATE_LIMIT_READ and RATE_LIMIT_REPORTS (`600/minute`,
or several such as `20/second;600/minute`; empty: none). A request counts against the class
of the scope its route needs (an admin key calling a read route counts as read); admin-only
routes (the audit trail, /metrics) and signed download links are not limited.

Windows are moving windows (exact: at most N requests in any interval of the period). With
REDIS_URL they live in Redis, so every API process shares them; otherwise in this process.
When Redis does not answer, the limits are counted in this process until it does (logged
once per outage by the circuit breaker), rather than refusing or waving every request through.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .config import Settings
from .redis_client import CircuitBreaker

log = logging.getLogger(__name__)

ROUTE_CLASSES = ("ingest", "read", "reports")


def configured_limits(settings: Settings) -> dict[str, str]:
    """The limit of each route class as set (RATE_LIMIT_*; empty: none)."""
    return {
        "ingest": settings.rate_limit_ingest,
        "read": settings.rate_limit_read,
        "reports": settings.rate_limit_reports,
    }


@dataclass(frozen=True)
class Refusal:
    """Over a limit: which one, and when a request would be let through again."""

    route_class: str
    limit: str
    retry_after: int  # whole seconds, at least 1
    reset_at: float  # Unix time


class RateLimiter:
    def __init__(self, limits: dict[str, list[RateLimitItem]], *, redis_url: str | None, settings: Settings) -> None:
        self.limits = limits
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self.shared: MovingWindowRateLimiter | None = None
        self.breaker: CircuitBreaker | None = None
        if redis_url and limits:
            client_options: dict[str, Any] = {
                "socket_timeout": settings.redis_timeout_seconds,
                "socket_connect_timeout": settings.redis_timeout_seconds,
                "retry": Retry(NoBackoff(), 0),  # as redis_client.make_redis: no client-side retries
            }
            storage = RedisStorage(
                limits_uri(redis_url),
                implementation="redispy",
                key_prefix=f"{settings.index_prefix}:ratelimit",
                **client_options,
            )
            self.shared = MovingWindowRateLimiter(storage)

    @classmethod
    def for_settings(cls, settings: Settings, breaker: CircuitBreaker | None = None) -> RateLimiter:
        limiter = cls(
            {name: parse_many(text) for name, text in configured_limits(settings).items() if text},
            redis_url=settings.redis_url,
            settings=settings,
        )
        limiter.breaker = breaker
        return limiter

    async def hit(self, route_class: str, key_id: str) -> Refusal | None:
        """Count one request of `key_id` in `route_class`; a Refusal when it is over a limit."""
        for item in self.limits.get(route_class, ()):
            limiter = self.shared or self.local
            try:
                allowed = await self._call(limiter, partial(limiter.hit, item, route_class, key_id))
            except Exception as exc:  # Redis does not answer (the breaker logs it): count in this process
                log.debug("shared rate limit unavailable (%s); counting in this process", exc)
                limiter = self.local
                allowed = await limiter.hit(item, route_class, key_id)
            if not allowed:
                stats = await self._call(limiter, partial(limiter.get_window_stats, item, route_class, key_id))
                reset_at = float(stats.reset_time)
                return Refusal(route_class, str(item), max(1, math.ceil(reset_at - time.time())), reset_at)
        return None

    async def _call(self, limiter: MovingWindowRateLimiter, fn: Callable[[], Awaitable[Any]]) -> Any:
        if limiter is self.shared and self.breaker is not None:
            return await self.breaker.call(fn)
        return await fn()


def limits_uri(redis_url: str) -> str:
    """REDIS_URL as the `limits` library names it: `async+redis://...`, `async+rediss://...`, and
    `async+redis+unix:///path` for a Unix socket (a bare `unix://` would select its valkey client)."""
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url
