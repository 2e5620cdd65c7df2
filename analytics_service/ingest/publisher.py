"""Telling every cache that documents were written, once they are searchable.

An ingest that does not ask for `?refresh` answers before its documents are searchable
(the indices refresh every second: index_templates/*.json), and an order's documents are
in three indices (orders, order-items, customers) that refresh independently. Bumping the
data versions at once would let an answer computed in that gap (some of the documents
seen, others not) be cached, and the live stream pushed, as if it were complete. So the
stores written are gathered (GATHER_SECONDS, so that a burst shares one refresh), this
prefix's indices are refreshed (one `_refresh`, which returns once every copy of every
shard can see every document written before it), and only then are the data versions
published: in Elasticsearch for every process (es/store_versions.py) and to this
process's cache (data_versions.py). Until then answers are the consistent ones from
before the write.

A write after a quiet spell is published within about a tenth of a second; while ingest
flows, refreshes are MIN_INTERVAL_SECONDS apart, so at most one `_refresh` a second per
process on top of the indices' own. A write with `?refresh=wait_for` (or `true`) is searchable when it
answers, so it is published at once. A refresh that fails (Elasticsearch unreachable)
keeps its stores pending and is tried again a second later.
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
        self.refresh_target = refresh_target  # every index of the prefix (IndexNames.all_pattern)
        self.stored = StoredDataVersions(es, prefix)
        # This process's data versions (data_versions.py), told after the stored ones.
        self.on_published: Callable[[set[str]], Awaitable[None]] | None = None
        self._pending: set[str] = set()
        self._loop: asyncio.Task[None] | None = None
        self._failing = False
        self._refreshed_at = -MIN_INTERVAL_SECONDS  # monotonic time the last refresh started

    async def written(self, stores: Iterable[str], searchable: bool = False) -> None:
        """New documents for `stores`: published now when `searchable` (written with refresh),
        otherwise after the next gathered refresh."""
        stores = set(stores)
        if not stores:
            return
        if searchable:
            await self._publish(stores)
            return
        self._pending |= stores
        if self._loop is None or self._loop.done():
            self._loop = asyncio.ensure_future(self._publish_gathered())

    @property
    def pending(self) -> bool:
        """Some writes are not published yet."""
        return bool(self._pending)

    async def settle(self) -> None:
        """Refresh and publish what is pending now (a command about to exit, a shutdown)."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()  # a round it was in puts its stores back (below)
            await asyncio.gather(loop, return_exceptions=True)
        await self._refresh_and_publish()

    async def _publish_gathered(self) -> None:
        while self._pending:
            since = time.monotonic() - self._refreshed_at
            await asyncio.sleep(max(GATHER_SECONDS, MIN_INTERVAL_SECONDS - since))
            try:
                await self._refresh_and_publish()
            except Exception:  # a background task: say it here, or nobody would
                log.exception("publishing data versions failed")

    async def _refresh_and_publish(self) -> None:
        # Taken before the refresh: stores written after this point wait for the next one.
        stores, self._pending = self._pending, set()
        if not stores:
            return
        self._refreshed_at = time.monotonic()
        try:
            await self.es.indices.refresh(index=self.refresh_target, allow_no_indices=True, ignore_unavailable=True)
        except (ApiError, TransportError) as exc:
            self._pending |= stores
            if not self._failing:
                log.warning("indices not refreshed (%s); their data versions are published once they are", exc)
            self._failing = True
            return
        except BaseException:  # cancelled (settle, shutdown): the next round refreshes for them
            self._pending |= stores
            raise
        self._failing = False
        try:
            await self._publish(stores)
        except BaseException:  # cancelled (settle, shutdown): published again by the next round
            self._pending |= stores
            raise

    async def _publish(self, stores: set[str]) -> None:
        await self.stored.publish(stores)
        if self.on_published is not None:
            await self.on_published(stores)
