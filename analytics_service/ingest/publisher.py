"""Telling every cache that documents were written, once they are searchable.

An ingest that does not ask for `?refresh` answers before its documents are searchable
(the indices refresh every second: index_templates/*.json), and an order's documents are
in three indices (orders, order-items, customers) that refresh independently. Bumping the
data versions at once would let an answer computed in that gap (some of the documents
seen, others not) be cached, and the live stream pushed, as if it were complete. So the
stores written are gathered (GATHER_SECONDS, so that a burst shares one refresh), the
families' aliases are refreshed (one `_refresh`, which returns once every copy of every
shard can see every document written before it), and only then are the data versions
published: in Elasticsearch for every process (es/store_versions.py) and to this
process's cache (data_versions.py). Until then cached answers are those from before the
write, and one computed in the gap (a cache miss) goes stale at that bump.

A write after a quiet spell is published GATHER_SECONDS and a refresh after its answer;
while ingest flows, refreshes start MIN_INTERVAL_SECONDS apart, so at most about one
`_refresh` a second per process on top of the indices' own. A write with
`?refresh=wait_for` (or `true`) is searchable when it answers, so it is published at once.

A round that fails (Elasticsearch unreachable, a shard not refreshed, the versions not
stored) keeps its stores pending and is tried again; a refresh refused for good (a 4xx
other than 429: the service's Elasticsearch user lacks the `maintenance` privilege, say) is logged and the
versions are published anyway, so freshness never stops. `settle()` (a command about to
exit) says so when it could not publish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from ..es.store_versions import StoredDataVersions

log = logging.getLogger(__name__)

GATHER_SECONDS = 0.05
MIN_INTERVAL_SECONDS = 1.0


class WritePublisher:
    def __init__(self, es: AsyncElasticsearch, prefix: str, refresh_target: str) -> None:
        self.es = es
        self.refresh_target = refresh_target  # the families' aliases, comma-separated
        self.stored = StoredDataVersions(es, prefix)
        # This process's data versions (data_versions.py), told after the stored ones.
        self.on_published: Callable[[set[str]], Awaitable[None]] | None = None
        self._pending: set[str] = set()
        self._loop: asyncio.Task[None] | None = None
        self._failing = False  # the last round failed (said once per streak)
        self._refreshed_at = -MIN_INTERVAL_SECONDS  # monotonic time the last round started

    async def written(self, stores: Iterable[str], searchable: bool = False) -> None:
        """New documents for `stores`: published now when `searchable` (written with refresh),
        otherwise after the next gathered refresh."""
        stores = set(stores)
        if not stores:
            return
        if searchable:
            if not await self._publish(stores):
                self._pending |= stores
                self._start()
            return
        self._pending |= stores
        self._start()

    @property
    def pending(self) -> bool:
        """Some writes are not published yet."""
        return bool(self._pending)

    async def settle(self) -> None:
        """Refresh and publish what is pending now (a command about to exit, a shutdown); log a
        warning when that fails, since no later round will come."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()  # a round it was in puts its stores back (below)
            await asyncio.gather(loop, return_exceptions=True)
        self._failing = False
        await self._round()
        if self._pending:
            log.warning(
                "data versions of %s not published: other API processes may serve answers cached "
                "before this write until their CACHE_TTL_SECONDS",
                ", ".join(sorted(self._pending)),
            )

    def _start(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.ensure_future(self._publish_gathered())

    async def _publish_gathered(self) -> None:
        while self._pending:
            since = time.monotonic() - self._refreshed_at
            await asyncio.sleep(max(GATHER_SECONDS, MIN_INTERVAL_SECONDS - since))
            await self._round()

    async def _round(self) -> None:
        """One refresh, then the publication of the stores pending before it; on failure the
        stores stay pending (said once per streak of failures)."""
        # Taken before the refresh: stores written after this point wait for the next round.
        stores, self._pending = self._pending, set()
        if not stores:
            return
        self._refreshed_at = time.monotonic()
        try:
            publishable, problem = await self._refresh()
            if publishable and not await self._publish(stores):
                publishable, problem = False, "the data versions were not stored"
        except BaseException as exc:  # cancelled (settle, shutdown), or a bug: the next round has them
            self._pending |= stores
            if not isinstance(exc, Exception):
                raise
            if not self._failing:
                log.exception("publishing data versions failed; tried again every second")
            self._failing = True
            return
        if not publishable:
            self._pending |= stores
        if problem is not None:
            self._fail(problem)
        else:
            self._failing = False

    async def _refresh(self) -> tuple[bool, str | None]:
        """(whether the stores may be published now, what went wrong): a refusal that trying
        again cannot change (a 4xx other than 429) is published anyway."""
        try:
            answer = await self.es.indices.refresh(
                index=self.refresh_target, allow_no_indices=True, ignore_unavailable=True
            )
        except ApiError as exc:
            for_good = 400 <= exc.meta.status < 500 and exc.meta.status != 429
            return for_good, f"indices not refreshed ({exc}){'; versions published unrefreshed' if for_good else ''}"
        except TransportError as exc:
            return False, f"indices not refreshed ({exc})"
        failed = (answer.body.get("_shards") or {}).get("failed", 0)
        return (False, f"{failed} shards not refreshed") if failed else (True, None)

    def _fail(self, problem: str) -> None:
        if not self._failing:
            log.warning("%s (said once until it works again)", problem)
        self._failing = True

    async def _publish(self, stores: set[str]) -> bool:
        """Publish to every process and this one; False when the stored versions were not written
        (this process's are bumped either way)."""
        stored = await self.stored.publish(stores)
        if self.on_published is not None:
            await self.on_published(stores)
        return stored
