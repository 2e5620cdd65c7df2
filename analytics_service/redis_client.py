"""Redis for the response cache and the report queue: short timeouts and a circuit breaker.

A Redis that hangs (SIGSTOP, a saturated host) or is gone must not slow every request:
- every command waits at most REDIS_TIMEOUT_SECONDS to connect and to read, and
  redis-py's own retries are off (its defaults retry for seconds);
- the first connection failure or timeout opens the breaker: for REDIS_COOLDOWN_SECONDS
  every call fails at once with `RedisUnavailable` (the cache answers uncached, an
  enqueue is left to the reaper, the health check says `unavailable`);
- after the cool-down one call is let through as a probe: success closes the breaker,
  failure keeps it open for another cool-down.
So a hung Redis costs one timeout to the calls in flight when it hangs, then one per
cool-down (the probe), and nothing in between.

The breaker is written here rather than taken from a library: it needs a single probe
when half-open and a cheap synchronous state for the health check; `circuitbreaker`
lets every call through when half-open and keeps a process-wide registry, and
`pybreaker`'s async support is Tornado's, not asyncio's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# What says "Redis is not answering" (a ResponseError, e.g. a wrong type, does not).
CONNECTIVITY_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    asyncio.TimeoutError,
)


class RedisUnavailable(RedisConnectionError):
    """The breaker is open: Redis failed recently and is not tried until the cool-down ends."""


class CircuitBreaker:
    """Closed -> (a failure) -> open for `cooldown` s -> one probe -> closed, or open again."""

    def __init__(
        self,
        name: str,
        cooldown: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        failures: tuple[type[BaseException], ...] = CONNECTIVITY_ERRORS,
    ) -> None:
        self.name = name
        self.cooldown = cooldown
        self.clock = clock
        self.failures = failures
        self._open_until: float | None = None  # None: closed
        self._probing = False

    @property
    def is_open(self) -> bool:
        """True while calls are refused (open, cool-down running, or a probe in flight)."""
        return self._open_until is not None and (self._probing or self.clock() < self._open_until)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """`await fn()` unless the breaker is open (then `RedisUnavailable` at once)."""
        probe = False
        if self._open_until is not None:
            if self.is_open:
                raise RedisUnavailable(f"{self.name} is bypassed after a failure; retried after the cool-down")
            self._probing = probe = True
        try:
            result = await fn()
        except self.failures as exc:
            self._trip(exc)
            raise
        finally:
            if probe:
                self._probing = False
        if self._open_until is not None:
            log.info("%s answers again: circuit closed", self.name)
            self._open_until = None
        return result

    def _trip(self, exc: BaseException) -> None:
        if self._open_until is None:
            log.warning("%s failed (%s: %s): bypassed for %.1fs", self.name, type(exc).__name__, exc, self.cooldown)
        self._open_until = self.clock() + self.cooldown


def make_redis(settings: Settings, *, read_timeout: float | None = None) -> Any:
    """An asyncio Redis client for REDIS_URL with short timeouts and no client-side retries.

    `read_timeout` (default REDIS_TIMEOUT_SECONDS) must exceed the longest blocking
    command the client sends (the worker's BLMOVE waits up to REPORT_POLL_SECONDS).
    """
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    assert settings.redis_url, "REDIS_URL is not set"
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=read_timeout if read_timeout is not None else settings.redis_timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )


def make_breaker(settings: Settings) -> CircuitBreaker:
    return CircuitBreaker("Redis", settings.redis_cooldown_seconds)
