"""Per-store data versions: what the response cache and the live stream watch for new data.

An ingest that wrote documents for a store bumps its version twice: at once, so that
cached answers go stale, and again when the documents have become searchable (the indices
refresh every second: index_templates/*.json), so that an answer computed in between,
which could not see them yet, goes stale as well instead of being served as fresh. A
write with `?refresh=wait_for` (or `true`) answers once its documents are searchable, so
it bumps once. The
live stream (analytics/live.py) recomputes its figures when the version it last saw
changes.

With a response cache the versions are the cache's (shared by every process through
Redis when REDIS_URL is set); without one (CACHE_TTL_SECONDS=0) they are counted in this
process. Either way the versions every writing process publishes in Elasticsearch
(es/store_versions.py) are read beside it, so writes by other processes count as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable

from .cache import ResponseCache
from .es.store_versions import SEARCHABLE_AFTER_SECONDS, StoredDataVersions

log = logging.getLogger(__name__)


class DataVersions:
    def __init__(self, cache: ResponseCache | None, stored: StoredDataVersions | None = None) -> None:
        self.cache = cache
        self.stored = stored  # what every process publishes (es/store_versions.py); the cache adds it itself
        self._local: Counter[str | None] = Counter()
        self._pending: set[asyncio.Task[None]] = set()

    async def written(self, stores: set[str], searchable: bool = False) -> None:
        """New documents for `stores`: bump now, and again once they are searchable (unless
        they are already: written with refresh=true or wait_for)."""
        await self._bump(stores)
        if searchable:
            return
        task = asyncio.ensure_future(self._bump_when_searchable(set(stores)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _bump_when_searchable(self, stores: set[str]) -> None:
        await asyncio.sleep(SEARCHABLE_AFTER_SECONDS)
        try:
            await self._bump(stores)
        except Exception:  # a background task: say it here, or nobody would
            log.exception("second data-version bump failed")

    async def _bump(self, stores: Iterable[str]) -> None:
        stores = set(stores)
        for store in stores:
            self._local[store] += 1
        self._local[None] += 1
        if self.cache is not None:
            await self.cache.bump(stores)

    async def current(self, store_id: str | None) -> str:
        """The data version of a store (None: every store). Compare two readings for equality only."""
        if self.cache is not None:
            shared = await self.cache.version(store_id)
            if shared is not None:
                return shared
        local = str(self._local[store_id])
        if self.stored is not None:
            try:
                return f"{local}.{await self.stored.version(store_id)}"
            except Exception as exc:  # Elasticsearch down: the stream's next snapshot fails on its own
                log.debug("stored data version unavailable: %s", exc)
        return local

    def close(self) -> None:
        """Cancel the pending second bumps (at shutdown: this process serves no answer after it)."""
        for task in list(self._pending):
            task.cancel()
        self._pending.clear()
