"""What every analytics area uses: numbers, filters, sums, keyed buckets, distinct paging and
ranking. Definitions: docs/metrics.md.

Functions that build requests return `Search` / `Composite` values (analytics/requests.py)
for a query object to send; functions that read answers take the buckets back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, overload

from ..es.indices import ORDER_ITEMS, ORDERS, IndexFamily
from .params import CommonParams, Period
from .requests import Composite, Search, terms_source

T = TypeVar("T")

# The key of documents without a value for the field a breakdown is keyed by.
NONE_KEY = "(none)"
# The customer of an order (orders index) or of a sale line (order-items index).
CUSTOMER = "customer.customer_id"


# -- numbers ---------------------------------------------------------------------------------


def money(value: float | None) -> float:
    """Money is a number rounded to 2 decimals (docs/metrics.md "Orders and money")."""
    return round(float(value or 0.0), 2)


def ratio(part: float | None, whole: float | None) -> float | None:
    """A fraction 0..1 (None when the whole is 0), rounded to 4 decimals."""
    if not whole:
        return None
    return round(float(part or 0.0) / float(whole), 4)


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def agg_value(aggs: dict[str, Any], name: str) -> float:
    """A metric aggregation's value, 0 when the aggregation is absent or empty."""
    value = aggs.get(name, {}).get("value")
    return float(value) if value is not None else 0.0


def doc_count(aggs: dict[str, Any], name: str) -> int:
    """A filter aggregation's document count, 0 when the aggregation is absent."""
    return int(aggs.get(name, {}).get("doc_count", 0))


# -- reading a search's answer ---------------------------------------------------------------


def aggregations(response: dict[str, Any]) -> dict[str, Any]:
    """The aggregations of a `Search` answer (empty when it has none)."""
    aggs: dict[str, Any] = response.get("aggregations", {})
    return aggs


def total_hits(response: dict[str, Any]) -> int:
    """The exact number of matching documents (`Search` tracks total hits)."""
    return int(response["hits"]["total"]["value"])


def latest_name(bucket: dict[str, Any]) -> str | None:
    """The `name` of a bucket's `latest` top hit (None without a hit or a name)."""
    hits = bucket["latest"]["hits"]["hits"]
    name: str | None = hits[0]["_source"].get("name") if hits else None
    return name


def bucket_series(period: Period, aggs: dict[str, Any], point: Callable[[str, dict[str, Any]], T]) -> list[T]:
    """`point(key, bucket)` for every bucket key of `period` in order, from the `series`
    date_histogram of `aggs` (`Period.date_histogram`); a key without a bucket gets an empty
    one ({"doc_count": 0}: every sum and count of it reads as 0)."""
    buckets = {period.key_of(b["key"]): b for b in aggs.get("series", {}).get("buckets", [])}
    return [point(key, buckets.get(key, {"doc_count": 0})) for key in period.bucket_keys()]


# -- filters ---------------------------------------------------------------------------------

# A sale: an order paid, processing, shipped, delivered or refunded (set at ingest).
SALE = {"term": {"is_sale": True}}


def sales_query(params: CommonParams, period: Period | None = None) -> dict[str, Any]:
    """Sales of the requested store and channel created in the period (default: the request's)."""
    return {"bool": {"filter": [SALE, *params.filters("created_at", period=period)]}}


def activity_query(params: CommonParams, *filters: dict[str, Any], period: Period | None = None) -> dict[str, Any]:
    """Activity of the requested store with `timestamp` in the period, and `filters`.
    Activity records carry no sales channel, so `channel` is not applied here."""
    return {"bool": {"filter": [*params.filters("timestamp", channel_field=None, period=period), *filters]}}


def activity_types(*types: str) -> dict[str, Any]:
    return {"terms": {"activity_type": list(types)}}


def sold_product_names_request(params: CommonParams, keys: list[str]) -> Search:
    """The name on each of `keys`' latest sale line in the period (for the products a top list
    returns, read by `names_by_key`)."""
    return Search(
        ORDER_ITEMS,
        {
            "query": sales_query(params),
            "aggs": {
                "products": {
                    "terms": {"field": "product_id", "include": keys, "size": max(len(keys), 1)},
                    "aggs": {
                        "latest": {
                            "top_hits": {
                                "size": 1,
                                "_source": ["name"],
                                "sort": [{"created_at": "desc"}, {"order_id": "desc"}, {"line": "desc"}],
                            }
                        }
                    },
                }
            },
        },
    )


def names_by_key(response: dict[str, Any]) -> dict[str, str | None]:
    """The names of a `sold_product_names_request` answer, by product id."""
    return {b["key"]: latest_name(b) for b in aggregations(response).get("products", {}).get("buckets", [])}


# -- sums --------------------------------------------------------------------------------------

# Sums over sale orders (orders index): name -> field.
ORDER_SUMS = {
    "gross_revenue": "gross_revenue",
    "order_discounts": "discount_amount",
    "refunds": "refunded_amount",
    "net_revenue": "net_revenue",
    "units": "units",
    "cogs": "cogs",
    "shipping": "shipping_amount",
    "tax": "tax_amount",
    "lines_without_cost": "lines_without_cost",
}


def sum_aggs(fields: Mapping[str, str]) -> dict[str, Any]:
    """Sum aggregations: name -> field."""
    return {name: {"sum": {"field": field}} for name, field in fields.items()}


def order_sums(*names: str) -> dict[str, Any]:
    """Sum aggregations over the orders index, named as in ORDER_SUMS (all of them by default)."""
    return sum_aggs({name: ORDER_SUMS[name] for name in names or ORDER_SUMS})


def order_sums_request(
    params: CommonParams, period: Period, totals: dict[str, Any], per_bucket: dict[str, Any] | None = None
) -> Search:
    """The aggregations `totals` over the sales of `period` and, with `per_bucket`, those per
    bucket of it (its `series`, read by `bucket_series`)."""
    aggs = dict(totals)
    if per_bucket is not None:
        aggs["series"] = {**period.date_histogram("created_at"), "aggs": per_bucket}
    return Search(ORDERS, {"query": sales_query(params, period), "aggs": aggs})


def money_sums(aggs: dict[str, Any], names: Iterable[str]) -> dict[str, float]:
    """The sums `names` of `aggs`, as money."""
    return {name: money(agg_value(aggs, name)) for name in names}


def line_sum_aggs() -> dict[str, Any]:
    """Sums over order lines (order-items index): revenue, units and cost.

    `line_cogs` is absent on lines without a unit cost, so `cogs` sums the costed lines
    only; `costed` holds their revenue, the base of a product's profit and margin.
    """
    return {
        "gross_revenue": {"sum": {"field": "line_revenue"}},
        "units": {"sum": {"field": "quantity"}},
        "cogs": {"sum": {"field": "line_cogs"}},
        "costed": {"filter": {"term": {"has_cost": True}}, "aggs": {"revenue": {"sum": {"field": "line_revenue"}}}},
    }


@dataclass(frozen=True)
class LineSums:
    """A bucket of `line_sum_aggs()`, read."""

    revenue: float
    units: int
    cogs: float
    lines: int
    costed_lines: int
    costed_revenue: float

    @classmethod
    def of(cls, bucket: dict[str, Any]) -> LineSums:
        costed = bucket["costed"]
        return cls(
            revenue=agg_value(bucket, "gross_revenue"),
            units=int(agg_value(bucket, "units")),
            cogs=agg_value(bucket, "cogs"),
            lines=int(bucket["doc_count"]),
            costed_lines=int(costed["doc_count"]),
            costed_revenue=agg_value(costed, "revenue"),
        )

    @classmethod
    def total(cls, parts: Iterable[LineSums]) -> LineSums:
        parts = list(parts)
        fields = ("revenue", "units", "cogs", "lines", "costed_lines", "costed_revenue")
        return cls(*(sum(getattr(t, f) for t in parts) for f in fields))

    @property
    def lines_without_cost(self) -> int:
        return self.lines - self.costed_lines

    @property
    def profit(self) -> float | None:
        """Line revenue - line cogs over the lines with a known cost (None without any)."""
        return self.costed_revenue - self.cogs if self.costed_lines else None

    @property
    def margin(self) -> float | None:
        """`profit` / line revenue of the lines with a known cost (None without any)."""
        profit = self.profit
        return None if profit is None else ratio(profit, self.costed_revenue)

    def product_numbers(self) -> dict[str, Any]:
        """A product's sales numbers as sales/products and products/performance show them
        (docs/metrics.md "Breakdowns"): units, gross revenue, cogs, lines without a cost, and
        gross profit and margin over the lines with one."""
        return {
            "units": self.units,
            "gross_revenue": money(self.revenue),
            "cogs": money(self.cogs),
            "lines_without_cost": self.lines_without_cost,
            "gross_profit": rounded(self.profit, 2),
            "margin": self.margin,
        }


NO_SALES = LineSums(revenue=0.0, units=0, cogs=0.0, lines=0, costed_lines=0, costed_revenue=0.0)


# -- keyed buckets and distinct values (exact, by composite paging) -----------------------------


def keyed(family: IndexFamily, query: dict[str, Any], field: str, aggs: dict[str, Any] | None = None) -> Composite:
    """Every value of `field` among the matching documents, with `aggs` per value; documents
    without one form a null key (read by `by_key` as "(none)")."""
    return Composite(family, query, [terms_source("k", field, missing=True)], aggs)


def by_key(buckets: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The buckets of a `keyed` request by their key, the null key as "(none)"."""
    return {NONE_KEY if b["key"]["k"] is None else str(b["key"]["k"]): b for b in buckets}


def distinct(family: IndexFamily, query: dict[str, Any], field: str) -> Composite:
    """Every distinct value of `field` among the matching documents (read by `values`)."""
    return Composite(family, query, [terms_source("v", field)])


def values(buckets: Iterable[dict[str, Any]]) -> list[Any]:
    return [b["key"]["v"] for b in buckets]


def orders_with_line_value(query: dict[str, Any], line_field: str) -> Composite:
    """Distinct sales per value of a line field: on the orders index `items.<field>` is
    multi-valued and a terms bucket counts an order once however many of its lines carry
    the value, so each bucket's doc_count is a number of distinct orders."""
    return keyed(ORDERS, query, f"items.{line_field}")


def orders_lacking_line_value(query: dict[str, Any], line_field: str) -> Composite:
    """The distinct orders holding a line without a value for `line_field` (their "(none)" key),
    counted on the order-items index by paging their order ids."""
    lacking = {"bool": {"filter": query["bool"]["filter"], "must_not": [{"exists": {"field": line_field}}]}}
    return Composite(ORDER_ITEMS, lacking, [terms_source("o", "order_id")])


def orders_containing(with_value: list[dict[str, Any]], lacking_value: list[dict[str, Any]]) -> dict[str, int]:
    """Distinct sales holding at least one line with each value (exact), from the answers of
    `orders_with_line_value` and `orders_lacking_line_value`."""
    counts = {key: int(b["doc_count"]) for key, b in by_key(with_value).items() if key != NONE_KEY}
    if lacking_value:
        counts[NONE_KEY] = len(lacking_value)
    return counts


# -- ranking ------------------------------------------------------------------------------------


class Keyed(Protocol):
    @property
    def key(self) -> str: ...


K = TypeVar("K", bound=Keyed)


@overload
def ranked(
    rows: Iterable[K], measure: Callable[[K], float | None], *, limit: int | None = None, descending: bool = True
) -> list[K]: ...


@overload
def ranked(
    rows: Iterable[T],
    measure: Callable[[T], float | None],
    *,
    limit: int | None = None,
    descending: bool = True,
    key: Callable[[T], str],
) -> list[T]: ...


def ranked(
    rows: Iterable[Any],
    measure: Callable[[Any], float | None],
    *,
    limit: int | None = None,
    descending: bool = True,
    key: Callable[[Any], str] | None = None,
) -> list[Any]:
    """Rows by measure (descending unless told), rows without a value last, ties by key ascending
    (the row's `key`, or `key(row)`).

    Values are compared at 1e-6, so equal amounts tie (and go by key) however their
    floating-point sums were ordered, while amounts that differ beyond the cents stay apart.
    """
    key_of = key or (lambda row: row.key)

    def order(row: Any) -> tuple[bool, float, str]:
        value = measure(row)
        if value is None:
            return True, 0.0, key_of(row)
        value = round(value, 6)
        return False, -value if descending else value, key_of(row)

    out = sorted(rows, key=order)
    return out if limit is None else out[:limit]


def sums_by_key(buckets: Iterable[dict[str, Any]] | None, name: str = "r") -> dict[str, float] | None:
    if buckets is None:
        return None
    return {k: agg_value(b, name) for k, b in by_key(buckets).items()}


def only(requests: dict[str, Any]) -> dict[str, Any]:
    """`requests` without the entries that are None (e.g. comparison requests without `compare`)."""
    return {name: r for name, r in requests.items() if r is not None}


# Ids per `terms` filter; Elasticsearch's default limit (index.max_terms_count) is 65,536.
TERMS_CHUNK = 10_000


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
