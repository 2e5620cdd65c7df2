"""Per-store data versions: what the response cache and the live stream watch for new data.

A write bumps the version of each store it touched, and the all-stores version, once its
documents are searchable (ingest/publisher.py), so an answer computed from a part of them
is never taken for the new data's. The live stream (analytics/live.py) recomputes its
figures when the version it last saw changes.

With a response cache the versions are the cache's (shared by every process through
Redis when REDIS_URL is set); without one (CACHE_TTL_SECONDS=0) they are counted in this
process. Either way the versions every writing process publishes in Elasticsearch
(es/store_versions.py) are read beside it, so writes by other processes count as well.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from .cache import ResponseCache
from .es.store_versions import StoredDataVersions

log = logging.getLogger(__name__)


class DataVersions:
    def __init__(self, cache: ResponseCache | None, stored: StoredDataVersions | None = None) -> None:
        self.cache = cache
        self.stored = stored  # what every process publishes (es/store_versions.py); the cache adds it itself
        self._local: Counter[str | None] = Counter()

    async def bump(self, stores: Iterable[str]) -> None:
        """New searchable documents for `stores`."""
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
