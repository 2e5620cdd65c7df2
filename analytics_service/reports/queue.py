"""Report job queues: Redis lists when REDIS_URL is set, an asyncio queue in-process otherwise.

A queue only delivers report ids. Whether a delivered id is run is decided by the reports
table (`ReportsRepo.claim`, atomic), so an id delivered twice is still run once at a time.

Redis layout (every key under `<INDEX_PREFIX>:reports:`):
- `queue`: the list of ids waiting (LPUSH in, BLMOVE out, so first in, first out);
- `processing:<worker_id>`: the ids a worker has taken and not yet acknowledged;
- `workers`: the set of worker ids that ever took a job, and `alive:<worker_id>`, a key
  each worker keeps alive (TTL = the lease) while it runs.
A worker that dies leaves its ids in its processing list and lets its `alive` key lapse.
The reaper (`requeue_stale`, run by every worker) puts back on the queue the ids the table
says are due again (pending, or processing with an expired lease) that no live worker holds
and that are not already queued; the lists of dead workers are then dropped.

Every Redis call goes through the process's circuit breaker (`redis_client`): with Redis
hung or down an enqueue fails at once and the row waits for a reaper, as above.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from ..redis_client import CircuitBreaker

T = TypeVar("T")

# Put `id` at the head of the queue unless it is queued or held by a live worker.
# KEYS[1] = queue, KEYS[2..] = processing lists of live workers; ARGV[1] = id.
_REQUEUE_IF_ABSENT = """
if redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
for i = 2, #KEYS do
  if redis.call('LPOS', KEYS[i], ARGV[1]) then return 0 end
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
"""


class JobQueue(Protocol):
    async def enqueue(self, report_id: str) -> None:
        """Add a job at the tail."""

    async def reserve(self, worker_id: str, timeout: float) -> str | None:
        """The next report id, held for `worker_id` until `ack`; None after `timeout` seconds."""

    async def ack(self, report_id: str, worker_id: str) -> None:
        """The worker is done with the id (whatever the outcome)."""

    async def heartbeat(self, worker_id: str, ttl: float) -> None:
        """The worker is alive for `ttl` more seconds."""

    async def requeue_stale(self, due: Iterable[str]) -> int:
        """Put back the `due` ids (the table says they should run) that nobody holds; how many."""

    async def close(self) -> None: ...


class MemoryJobQueue:
    """One process: the API's own in-process worker. Ids held by a worker are remembered so
    the reaper does not queue them again while they run."""

    def __init__(self) -> None:
        self._ids: deque[str] = deque()
        self._ready = asyncio.Condition()
        self._held: dict[str, str] = {}  # report_id -> worker_id

    async def enqueue(self, report_id: str) -> None:
        async with self._ready:
            self._ids.append(report_id)
            self._ready.notify()

    async def reserve(self, worker_id: str, timeout: float) -> str | None:
        async with self._ready:
            try:
                await asyncio.wait_for(self._ready.wait_for(lambda: bool(self._ids)), timeout)
            except TimeoutError:
                return None
            report_id = self._ids.popleft()
            self._held[report_id] = worker_id
            return report_id

    async def ack(self, report_id: str, worker_id: str) -> None:
        if self._held.get(report_id) == worker_id:
            del self._held[report_id]

    async def heartbeat(self, worker_id: str, ttl: float) -> None:
        return None  # in-process: a dead worker is a dead process, and its memory with it

    async def requeue_stale(self, due: Iterable[str]) -> int:
        added = 0
        for report_id in due:
            if report_id not in self._held and report_id not in self._ids:
                await self.enqueue(report_id)
                added += 1
        return added

    def __len__(self) -> int:
        return len(self._ids)

    async def close(self) -> None:
        return None


class RedisJobQueue:
    """The reliable-queue pattern on Redis lists (see the module docstring)."""

    def __init__(self, redis: Any, namespace: str, breaker: CircuitBreaker | None = None) -> None:
        self.redis = redis
        self.breaker = breaker
        self.prefix = f"{namespace}:reports"
        self.queue_key = f"{self.prefix}:queue"
        self.workers_key = f"{self.prefix}:workers"
        self._requeue = redis.register_script(_REQUEUE_IF_ABSENT)

    def processing_key(self, worker_id: str) -> str:
        return f"{self.prefix}:processing:{worker_id}"

    def alive_key(self, worker_id: str) -> str:
        return f"{self.prefix}:alive:{worker_id}"

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await (self.breaker.call(fn) if self.breaker is not None else fn())

    async def enqueue(self, report_id: str) -> None:
        await self._call(lambda: self.redis.lpush(self.queue_key, report_id))

    async def reserve(self, worker_id: str, timeout: float) -> str | None:
        await self._call(lambda: self.redis.sadd(self.workers_key, worker_id))
        # BLMOVE takes whole or fractional seconds; 0 would block forever.
        raw = await self._call(
            lambda: self.redis.blmove(
                self.queue_key, self.processing_key(worker_id), max(timeout, 0.01), "RIGHT", "LEFT"
            )
        )
        return _text(raw) if raw is not None else None

    async def ack(self, report_id: str, worker_id: str) -> None:
        await self._call(lambda: self.redis.lrem(self.processing_key(worker_id), 1, report_id))

    async def heartbeat(self, worker_id: str, ttl: float) -> None:
        async def beat() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.sadd(self.workers_key, worker_id)
                pipe.set(self.alive_key(worker_id), "1", px=max(int(ttl * 1000), 1))
                await pipe.execute()

        await self._call(beat)

    async def live_workers(self) -> tuple[list[str], list[str]]:
        """(live, dead) worker ids, by their `alive` keys."""
        workers = sorted(_text(w) for w in await self._call(lambda: self.redis.smembers(self.workers_key)))
        if not workers:
            return [], []
        alive = await self._call(lambda: self.redis.mget([self.alive_key(w) for w in workers]))
        live = [w for w, flag in zip(workers, alive, strict=True) if flag is not None]
        dead = [w for w, flag in zip(workers, alive, strict=True) if flag is None]
        return live, dead

    async def requeue_stale(self, due: Iterable[str]) -> int:
        live, dead = await self.live_workers()
        keys = [self.queue_key, *(self.processing_key(w) for w in live)]
        added = 0
        for report_id in due:

            async def requeue(rid: str = report_id) -> Any:
                return await self._requeue(keys=keys, args=[rid])

            added += int(await self._call(requeue))
        # A dead worker's list has served its purpose: the table decided above what runs again.
        for worker_id in dead:

            async def drop(worker_id: str = worker_id) -> None:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.delete(self.processing_key(worker_id))
                    pipe.srem(self.workers_key, worker_id)
                    await pipe.execute()

            await self._call(drop)
        return added

    async def queued(self) -> list[str]:
        """Waiting ids, next first (for tests and operators)."""
        return [_text(x) for x in reversed(await self.redis.lrange(self.queue_key, 0, -1))]

    async def close(self) -> None:
        return None  # the Redis client belongs to whoever made it


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
