"""Full-text search over orders, events, activity and products of the caller's store.

The user's text goes into a `simple_query_string` (never `query_string`): it has no
field syntax and never fails on bad syntax, it searches an explicit allow-list of fields
per index, and its operators are restricted by `flags`. The store filter is a separate
`filter` clause next to it, so nothing the user types can reach another store's documents.
The one request `IndexSearch` sends is built in its `search_request`.
Definitions: docs/metrics.md "Full-text search".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from elasticsearch import BadRequestError
from pydantic import Field

from ..es.indices import ACTIVITY, EVENTS, ORDERS, PRODUCTS, IndexFamily
from .fields import AnalyticsResponse, PeriodOut, ResponsePart
from .params import CommonParams, invalid
from .requests import Composite, Search
from .runner import AnalyticsQuery, QueryContext

SearchIndex = Literal["orders", "events", "activity", "products"]
MAX_QUERY_LENGTH = 500
MAX_SIZE = 100
MAX_WINDOW = 10_000  # from + size: Elasticsearch's index.max_result_window
# Operators a user may use: + | - "phrase" (precedence) prefix* escapes and fuzzy~N (at most
# 2 edits, Lucene's cap, expanded to few terms). Proximity (~N after a phrase) is off.
FLAGS = "AND|OR|NOT|PHRASE|PRECEDENCE|PREFIX|ESCAPE|WHITESPACE|FUZZY"


@dataclass(frozen=True)
class Target:
    """A searchable index: its family, the record's own id, its time field, its fields."""

    family: IndexFamily
    id_field: str
    time_field: str | None  # the common period filters this field; None: no time filter
    fields: tuple[str, ...]  # the allow-list, with boosts
    channel_field: str | None = None

    @property
    def field_names(self) -> list[str]:
        return [f.split("^")[0] for f in self.fields]


TARGETS: dict[str, Target] = {
    "orders": Target(
        ORDERS,
        "order_id",
        "created_at",
        (
            "order_id^4",
            "customer.customer_id^3",
            "customer.email^3",
            "customer.name^2",
            "customer.city",
            "items.name",
            "items.sku^2",
            "items.product_id^2",
            "coupon_code^2",
        ),
        channel_field="channel",
    ),
    "events": Target(
        EVENTS,
        "event_id",
        "timestamp",
        (
            "event_id^4",
            "order_id^3",
            "event_type^2",
            "user_id^2",
            "anonymous_id^2",
            "session_id",
            "product_id",
            "category",
            "payment_method",
        ),
    ),
    "activity": Target(
        ACTIVITY,
        "activity_id",
        "timestamp",
        (
            "activity_id^4",
            "search_query^2",
            "review_text",
            "page_url",
            "activity_type",
            "product_id",
            "order_id",
            "category",
            "user_id",
            "anonymous_id",
            "session_id",
        ),
    ),
    # The catalog is the current state of each product: no time filter.
    "products": Target(
        PRODUCTS, "product_id", None, ("product_id^4", "sku^4", "name^3", "brand^2", "category", "subcategory")
    ),
}


SearchedIndex = Annotated[str, Field(description="the searched index: orders, events, activity or products")]


class SearchHit(ResponsePart):
    index: SearchedIndex
    id: str
    """the record's own id (order_id, event_id, activity_id or product_id)"""
    score: float | None
    """relevance score"""
    source: dict[str, Any]
    """the stored document"""
    highlight: dict[str, list[str]]
    """matching fragments per field, matches in <em>"""


class IndexSearchResponse(AnalyticsResponse):
    query: str
    """the query as searched"""
    index: SearchedIndex
    time_field: str | None
    """the field the period filters (null: none, for products)"""
    total: int
    """number of matching documents (exact)"""
    hits: list[SearchHit]
    """by score desc, then newest, then id"""


def validated_query(query: str, size: int, offset: int) -> str:
    """The query, trimmed; 422 naming the parameter when something is out of bounds."""
    text = query.strip()
    if not text:
        raise invalid("query", "must not be empty")
    if len(text) > MAX_QUERY_LENGTH:
        raise invalid("query", f"at most {MAX_QUERY_LENGTH} characters")
    if not 1 <= size <= MAX_SIZE:
        raise invalid("size", f"must be between 1 and {MAX_SIZE}")
    if offset < 0:
        raise invalid("from", "must be >= 0")
    if offset + size > MAX_WINDOW:
        raise invalid("from", f"from + size must be at most {MAX_WINDOW}; narrow the query or the period")
    return text


@dataclass(frozen=True)
class IndexSearch(AnalyticsQuery[IndexSearchResponse]):
    """One page of hits of `query` in one index (`query` as checked by `validated_query`)."""

    params: CommonParams
    query: str
    index: str = "orders"
    size: int = 10
    offset: int = 0
    name: ClassVar = "search"

    @property
    def target(self) -> Target:
        return TARGETS[self.index]

    def search_request(self) -> Search:
        t = self.target
        sort: list[dict[str, Any]] = [{"_score": "desc"}]
        if t.time_field:
            sort.append({t.time_field: {"order": "desc", "unmapped_type": "date"}})
        sort.append({t.id_field: {"order": "asc", "unmapped_type": "keyword"}})
        return Search(
            t.family,
            {
                "query": {
                    "bool": {
                        "must": [
                            {
                                "simple_query_string": {
                                    "query": self.query,
                                    "fields": list(t.fields),
                                    "default_operator": "and",
                                    "lenient": True,
                                    "flags": FLAGS,
                                    "fuzzy_max_expansions": 20,
                                    "fuzzy_prefix_length": 1,
                                }
                            }
                        ],
                        # Outside the user's query: the store (the key's own, or store_id) and the period.
                        "filter": self.params.filters(t.time_field, channel_field=t.channel_field),
                    }
                },
                "from": self.offset,
                "size": self.size,
                "track_total_hits": True,
                "sort": sort,
                "highlight": {
                    "fields": {f: {} for f in t.field_names},
                    "require_field_match": True,
                    "number_of_fragments": 3,
                    "fragment_size": 150,
                    "max_analyzed_offset": 100_000,
                },
            },
        )

    def requests(self) -> dict[str, Search | Composite]:
        return {"hits": self.search_request()}

    async def run(self, ctx: QueryContext) -> IndexSearchResponse:
        try:
            r = (await ctx.fetch(self.requests()))["hits"]
        except BadRequestError as exc:  # e.g. a query expanding to too many clauses
            raise invalid("query", f"Elasticsearch could not run this query ({exc.message})") from None
        hits = [
            SearchHit(
                index=self.index,
                id=str(h["_source"].get(self.target.id_field, h["_id"])),
                score=h.get("_score"),
                source=h["_source"],
                highlight=h.get("highlight", {}),
            )
            for h in r["hits"]["hits"]
        ]
        return IndexSearchResponse(
            period=PeriodOut.of(self.params.period),
            query=self.query,
            index=self.index,
            time_field=self.target.time_field,
            total=int(r["hits"]["total"]["value"]),
            hits=hits,
        )
