"""Per-store data versions kept in Elasticsearch, so every process sees every other's writes.

Whoever writes documents (the API's ingest, `import-csv`, `seed`, another API process)
overwrites one small document per store it touched, and one for all stores (`*`), in the
index `<prefix>-data-versions`; retention, which deletes data of every store, overwrites a
third kind (`#deleted`) that is read with every version. Elasticsearch counts every overwrite in the document's
`_version`, so a reader gets a number that changes whenever any process wrote to the store:
one real-time GET by id (no refresh needed; reused for a quarter of a second), which the
response cache adds to its own counter (data_versions.py). Without Redis this is what makes an API process
see a command-line import at once; with Redis it covers the writers that do not talk to it.

A write is published once its documents are searchable (ingest/publisher.py).

A failure to publish is logged and costs only freshness (answers cached before it may be
served until their TTL), never the write itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError, TransportError

log = logging.getLogger(__name__)

ALL_STORES = "*"
DELETIONS = "#deleted"  # overwritten when data of every store goes (retention): read with every version
MAPPING = {
    "dynamic": "strict",
    "properties": {"store_id": {"type": "keyword"}, "written_at": {"type": "date"}},
}
INDEX_SETTINGS = {"number_of_shards": 1, "auto_expand_replicas": "0-all", "refresh_interval": "1s"}


class StoredDataVersions:
    READ_EVERY_SECONDS = 0.25

    def __init__(self, es: AsyncElasticsearch, prefix: str) -> None:
        self.es = es
        self.index = f"{prefix}-data-versions"
        self._created = False
        self._read: dict[str, tuple[float, str]] = {}  # doc id -> (monotonic time the read started, token)

    async def publish(self, stores: Iterable[str]) -> bool:
        """New searchable documents for `stores`: their versions (and all stores') go up. False
        when Elasticsearch did not take them (logged)."""
        stores = set(stores)
        return await self._overwrite(stores) if stores else True

    async def version(self, store_id: str | None) -> str:
        """The store's data version (None: all stores) and the deletions' (`3.0`); `0.0` before
        any write. A token: compare for equality only.

        A reading is reused for READ_EVERY_SECONDS, so a burst of cached reads costs one
        request: another process's write is seen within that time (this process's own at
        once: it forgets the readings of the stores it publishes). Of two readings in flight
        the later-started one is kept."""
        doc_id = store_id or ALL_STORES
        started = time.monotonic()
        seen = self._read.get(doc_id)
        if seen is not None and started - seen[0] < self.READ_EVERY_SECONDS:
            return seen[1]
        try:
            found = await self.es.mget(index=self.index, ids=[doc_id, DELETIONS], source=False, realtime=True)
            token = ".".join(str(doc["_version"]) if doc.get("found") else "0" for doc in found["docs"])
        except NotFoundError:  # no writer has published yet (the index is created on the first write)
            token = "0.0"
        latest = self._read.get(doc_id)
        if latest is None or latest[0] <= started:
            self._read[doc_id] = (started, token)
        return token

    async def deleted(self) -> None:
        """Data of every store was deleted (retention dropped whole indices): every answer cached
        before is stale, whatever its store."""
        await self._overwrite({DELETIONS})

    async def _overwrite(self, stores: set[str]) -> bool:
        if DELETIONS in stores:
            self._read.clear()  # every reading holds the deletions' version
        for store in (*stores, ALL_STORES):
            self._read.pop(store, None)
        now = datetime.now(UTC).isoformat()
        operations: list[dict[str, Any]] = []
        for store in sorted({*stores, ALL_STORES}):
            operations += [{"index": {"_index": self.index, "_id": store}}, {"store_id": store, "written_at": now}]
        try:
            await self._ensure_index()
            response = await self.es.bulk(operations=operations, filter_path="errors,items.*.error")
            if response.get("errors"):
                log.warning("data versions not published for every store: %s", response.get("items"))
                return False
        except (ApiError, TransportError) as exc:
            log.warning("data versions not published (%s); other processes may serve cached answers", exc)
            return False
        return True

    async def _ensure_index(self) -> None:
        if self._created:
            return
        try:
            await self.es.indices.create(index=self.index, mappings=MAPPING, settings=INDEX_SETTINGS)
        except ApiError as exc:
            if exc.meta.status != 400 or "resource_already_exists" not in str(exc.body):
                raise
        self._created = True
