"""Site search (products/search): searches, zero-result searches and queries, and the
searchers who purchased, from the search and purchase records of the activity index.

Activity indices are monthly with one shard each, so the per-query and per-actor lists
are read by paged composite aggregations (exact at any size) and ranked in Python.
Activity records carry no sales channel. Every Elasticsearch body a query here sends is
built in this module, in its query object's `requests()` and `*_request` methods, from
the pieces of analytics/shared.py. Definitions: docs/metrics.md "Products and inventory".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from ..es.indices import ACTIVITY
from .fields import AnalyticsResponse, PeriodOut, ResponsePart
from .params import CommonParams
from .requests import Composite, Search, terms_source
from .runner import AnalyticsQuery, QueryContext
from .shared import activity_query, activity_types, aggregations, doc_count, ranked, ratio, total_hits


class QueryCount(ResponsePart):
    key: str
    """normalised query (trimmed, lower case, single spaces)"""
    count: int
    """searches with the query (in zero_result_queries: those with results_count = 0)"""


class SiteSearchResponse(AnalyticsResponse):
    searches: int
    """search activities in the period"""
    zero_result_searches: int
    """searches with results_count = 0"""
    zero_result_rate: float | None
    """zero_result_searches / searches"""
    unique_queries: int
    """distinct normalised queries"""
    searchers: int
    """distinct actors with a search in the period"""
    searchers_who_purchased: int
    """searchers with a purchase activity in the period"""
    search_conversion: float | None
    """searchers_who_purchased / searchers"""
    top_queries: list[QueryCount]
    """by count desc, key asc"""
    zero_result_queries: list[QueryCount]
    """queries by their zero-result searches, desc, key asc"""


@dataclass(frozen=True)
class SiteSearch(AnalyticsQuery[SiteSearchResponse]):
    """Search activity: counts, queries, and the searchers who purchased."""

    params: CommonParams
    name: ClassVar = "products/search"
    ZERO: ClassVar[dict[str, Any]] = {"zero": {"filter": {"term": {"results_count": 0}}}}

    def query(self) -> dict[str, Any]:
        return activity_query(self.params, activity_types("search"))

    def queries_request(self) -> Composite:
        return Composite(ACTIVITY, self.query(), [terms_source("query", "search_query_normalized")], self.ZERO)

    def actors_request(self) -> Composite:
        """One bucket per actor with a search or a purchase; the rest of the bucket are purchases."""
        return Composite(
            ACTIVITY,
            activity_query(self.params, activity_types("search", "purchase")),
            [terms_source("actor", "actor_id")],
            {"searched": {"filter": {"term": {"activity_type": "search"}}}},
        )

    def requests(self) -> dict[str, Search | Composite]:
        """The search and zero-result counts; the queries and the actors (streamed by `run`)."""
        return {
            "searches": Search(ACTIVITY, {"query": self.query(), "aggs": self.ZERO}),
            "queries": self.queries_request(),
            "actors": self.actors_request(),
        }

    @staticmethod
    async def queries(buckets: AsyncIterator[dict[str, Any]]) -> tuple[list[QueryCount], list[QueryCount]]:
        """Every query with its searches, and those with zero-result searches with their count."""
        counts: list[QueryCount] = []
        zeros: list[QueryCount] = []
        async for b in buckets:
            counts.append(QueryCount(key=b["key"]["query"], count=b["doc_count"]))
            if b["zero"]["doc_count"]:
                zeros.append(QueryCount(key=b["key"]["query"], count=b["zero"]["doc_count"]))
        return counts, zeros

    @staticmethod
    async def searchers(buckets: AsyncIterator[dict[str, Any]]) -> tuple[int, int]:
        """Actors who searched, and those of them with a purchase."""
        searchers = converted = 0
        async for b in buckets:
            searched = b["searched"]["doc_count"]
            if searched:
                searchers += 1
                converted += b["doc_count"] > searched
        return searchers, converted

    async def run(self, ctx: QueryContext) -> SiteSearchResponse:
        p = self.params
        requests = self.requests()
        queries, actors = requests.pop("queries"), requests.pop("actors")
        assert isinstance(queries, Composite) and isinstance(actors, Composite)
        (counts, zeros), (searchers, converted), a = await asyncio.gather(
            self.queries(ctx.stream(queries)), self.searchers(ctx.stream(actors)), ctx.fetch(requests)
        )
        r = a["searches"]
        searches = total_hits(r)
        zero = doc_count(aggregations(r), "zero")
        return SiteSearchResponse(
            period=PeriodOut.of(p.period),
            searches=searches,
            zero_result_searches=zero,
            zero_result_rate=ratio(zero, searches),
            unique_queries=len(counts),
            searchers=searchers,
            searchers_who_purchased=converted,
            search_conversion=ratio(converted, searchers),
            top_queries=ranked(counts, lambda q: q.count, limit=p.limit),
            zero_result_queries=ranked(zeros, lambda q: q.count, limit=p.limit),
        )
