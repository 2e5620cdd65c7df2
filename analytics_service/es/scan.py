"""Every document matching a query, page by page, from one point in time (docs/reports.md
"Exports"; docs/reliability.md "Upgrading" for the index migration copy).

A point in time is opened on an alias (or several indices), read with `search_after`
over a sort that ends with a tiebreaker (`with_tiebreaker`), its keep_alive renewed by
every page, and closed at the end or on error by the caller (`close`, safe from a
cancelled task).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from elasticsearch import AsyncElasticsearch, NotFoundError

log = logging.getLogger(__name__)

PAGE_SIZE = 2000  # documents per search_after page, unless the caller says otherwise
KEEP_ALIVE = "2m"  # how long the point in time lives between two pages

Hits = list[dict[str, Any]]


def with_tiebreaker(fields: Iterable[str]) -> list[dict[str, Any]]:
    """An ascending sort on `fields`, then `_shard_doc`: a total order within a point in time."""
    return [*({f: {"order": "asc"}} for f in fields), {"_shard_doc": {"order": "asc"}}]


def _sources(hits: Hits) -> list[dict[str, Any]]:
    return [hit.get("_source", {}) for hit in hits]


@dataclass
class PitScan:
    """Every document of `index` matching `query`, page by page, from one point in time.

    `open`, then `page(None)` for the first page, `pages(first)` for it and the rest (as
    `_source`s) or `hit_pages(first)` (as hits), and `close` in a `finally`. Hits carry
    `_source` (limited to `source`; all of it when None) and `sort`, and `_id` and
    `_version` as well with `version`. No `query`: every document. `index` may name
    several indices, comma-separated; with `ignore_unavailable` off, a missing one fails
    the `open`.
    """

    es: AsyncElasticsearch
    index: str
    query: dict[str, Any] | None
    sort: Sequence[dict[str, Any] | str]
    source: list[str] | None
    page_size: int = PAGE_SIZE
    keep_alive: str = KEEP_ALIVE
    pit_id: str | None = None
    version: bool = False
    ignore_unavailable: bool = True

    async def open(self) -> None:
        # ignore_unavailable: an alias that does not exist yet (no data) is an empty scan;
        # off, it is not sent (Elasticsearch's default: a missing index fails).
        response = await self.es.open_point_in_time(
            index=self.index, keep_alive=self.keep_alive, ignore_unavailable=self.ignore_unavailable or None
        )
        self.pit_id = response["id"]

    async def page(self, after: list[Any] | None) -> Hits:
        """One page of hits (`_source` and `sort`, `_id` and `_version` with `version`)
        after the sort values `after`."""
        extra = ["hits.hits._id", "hits.hits._version"] if self.version else []
        response = await self.es.search(
            pit={"id": self.pit_id, "keep_alive": self.keep_alive},
            size=self.page_size,
            query=self.query,
            sort=self.sort,
            source_includes=self.source,
            version=self.version or None,
            track_total_hits=False,
            search_after=after,
            filter_path=["pit_id", *extra, "hits.hits._source", "hits.hits.sort"],
        )
        self.pit_id = response.get("pit_id", self.pit_id)
        return response.get("hits", {}).get("hits", [])

    def pages(self, first: Hits) -> AsyncGenerator[list[dict[str, Any]], None]:
        """`first` and every page after it as lists of `_source`; the next page is fetched
        while the caller works on the current one."""
        return self._pages(first, _sources)

    def hit_pages(self, first: Hits) -> AsyncGenerator[Hits, None]:
        """`first` and every page after it as lists of hits, as `pages` does."""
        return self._pages(first, list)

    async def _pages(self, first: Hits, select: Callable[[Hits], list[dict[str, Any]]]) -> AsyncGenerator[Hits, None]:
        hits = first
        while hits:
            ahead = asyncio.create_task(self.page(hits[-1]["sort"])) if len(hits) >= self.page_size else None
            await asyncio.sleep(0)  # let the next request go out before this page is worked on
            try:
                yield select(hits)
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                raise
            hits = await ahead if ahead is not None else []

    async def close(self) -> None:
        """Close the point in time, even from a cancelled task (client gone)."""
        if self.pit_id is None:
            return
        pit_id, self.pit_id = self.pit_id, None
        with anyio.CancelScope(shield=True):
            try:
                await self.es.close_point_in_time(id=pit_id)
            except NotFoundError:
                pass  # already expired
            except Exception as exc:  # it expires after keep_alive anyway
                log.warning("could not close point in time: %s", exc)
