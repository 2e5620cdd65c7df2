"""Sales: dashboard KPIs, revenue trends, top-selling products, revenue and orders,
and the breakdowns by product, category and place.

Order-level numbers come from the orders index (one document per order, amounts
precomputed at ingest); product numbers from the order-items index. A sale is an
order with status paid, processing, shipped, delivered or refunded (`is_sale`).
Definitions: METRICS.md "Orders and money" and docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..es.indices import ORDER_ITEMS, ORDERS, IndexFamily
from .params import CommonParams, Period, growth_pct
from .runner import AnalyticsResponse, BucketKey, PeriodOut, QueryContext, agg_value, money, ratio

T = TypeVar("T", bound=BaseModel)

SALE = {"term": {"is_sale": True}}

# Sums over sale orders that most endpoints share: name -> field in the orders index.
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

def order_sum_aggs() -> dict[str, Any]:
    return {name: {"sum": {"field": field}} for name, field in ORDER_SUMS.items()}


def sales_query(params: CommonParams, period: Period | None = None) -> dict[str, Any]:
    return {"bool": {"filter": [SALE, *params.filters("created_at", period=period)]}}


# Field meanings shared by the sales, products and financial models (docs/metrics.md
# "Orders and money"): totals are over the period's sales, series items over their bucket's.
GrossRevenue = Annotated[float, Field(
    description="sum of line revenue (quantity * unit_price - line discount) over the sale lines")]
OrderDiscounts = Annotated[float, Field(description="sum of the sales' order-level discount_amount")]
Refunds = Annotated[float, Field(
    description="sum of the sales' refunded_amount (a refunded order without one: its order value)")]
NetRevenue = Annotated[float, Field(description="gross_revenue - order_discounts - refunds")]
SaleCount = Annotated[int, Field(description="number of sales (orders paid, processing, shipped, delivered, refunded)")]
Aov = Annotated[float | None, Field(description="(gross_revenue - order_discounts) / orders; null without sales")]
Units = Annotated[int, Field(description="units sold: sum of quantity over the sale lines")]
Cogs = Annotated[float, Field(description="sum of quantity * unit_cost over the sale lines with a known cost")]
LinesWithoutCost = Annotated[int, Field(description="sale lines without a unit_cost (left out of cogs and profit)")]


class Kpis(BaseModel):
    gross_revenue: GrossRevenue
    net_revenue: NetRevenue
    orders: SaleCount
    aov: Aov
    units: Units
    customers: int = Field(description="distinct customers with a sale in the period")
    new_customers: int = Field(description="customers whose first sale ever is in the period")
    gross_profit: float = Field(description="net_revenue - cogs")


def _totals(aggs: dict[str, Any], orders: int) -> dict[str, float]:
    t = {name: agg_value(aggs, name) for name in ORDER_SUMS}
    t["orders"] = orders
    return t


# Ids per `terms` filter; Elasticsearch's default limit (index.max_terms_count) is 65,536.
TERMS_CHUNK = 10_000


async def distinct_values(ctx: QueryContext, family, query: dict[str, Any], field: str) -> list[str]:
    """Every distinct value of `field` among the matching documents, paged exactly."""
    return [b["key"]["v"] async for b in ctx.composite(family, query, [{"v": {"terms": {"field": field}}}])]


async def new_customer_count(ctx: QueryContext, params: CommonParams, period: Period, customers: list[str]) -> int:
    """How many of the period's customers had no sale before it (their first sale ever is in it).

    Only the period's customers are looked up in the history, a chunk of ids at a time,
    so the cost follows the period's customers rather than the store's whole history
    (measured on 1,000,000 orders: 16 requests and ~0.6 s instead of 70 and ~6.3 s).
    """
    earlier = {"range": {"created_at": {"lt": period.start_utc}}}
    returning = 0
    for i in range(0, len(customers), TERMS_CHUNK):
        chunk = {"terms": {"customer.customer_id": customers[i:i + TERMS_CHUNK]}}
        query = {"bool": {"filter": [SALE, earlier, chunk, *params.filters(None)]}}
        returning += len(await distinct_values(ctx, ORDERS, query, "customer.customer_id"))
    return len(customers) - returning


async def kpis(ctx: QueryContext, params: CommonParams, period: Period) -> Kpis:
    query = sales_query(params, period)
    response = await ctx.search(ORDERS, {"query": query, "aggs": order_sum_aggs()})
    orders = int(response["hits"]["total"]["value"])
    t = _totals(response.get("aggregations", {}), orders)
    customers = await distinct_values(ctx, ORDERS, query, "customer.customer_id")
    return Kpis(
        gross_revenue=money(t["gross_revenue"]),
        net_revenue=money(t["net_revenue"]),
        orders=orders,
        aov=money((t["gross_revenue"] - t["order_discounts"]) / orders) if orders else None,
        units=int(t["units"]),
        customers=len(customers),
        new_customers=await new_customer_count(ctx, params, period, customers),
        gross_profit=money(t["net_revenue"] - t["cogs"]),
    )


def comparison(current: BaseModel, previous: BaseModel) -> dict[str, Any]:
    """{<kpi>: previous value, <kpi>_growth_pct: growth} for every numeric KPI."""
    out: dict[str, Any] = {}
    for name, value in current.model_dump().items():
        if isinstance(value, (int, float)) or value is None:
            prev = getattr(previous, name)
            out[name] = prev
            out[f"{name}_growth_pct"] = growth_pct(value, prev)
    return out


# -- revenue trends ---------------------------------------------------------------------


class TrendPoint(BaseModel):
    key: BucketKey
    gross_revenue: GrossRevenue
    net_revenue: NetRevenue
    orders: SaleCount
    aov: Aov
    units: Units


class TrendTotals(BaseModel):
    gross_revenue: GrossRevenue
    net_revenue: NetRevenue
    order_discounts: OrderDiscounts
    refunds: Refunds
    orders: SaleCount
    aov: Aov
    units: Units


class RevenueTrendsResponse(AnalyticsResponse):
    series: list[TrendPoint] = Field(description="every bucket of the period, zeros (aov null) when it has no sales")
    totals: TrendTotals = Field(description="over the whole period")
    model_config = {"json_schema_extra": {"example": {
        "period": {"start": "2026-11-01T00:00:00-03:00", "end": "2026-11-03T00:00:00-03:00",
                   "tz": "America/Sao_Paulo", "interval": "day"},
        "cached": False,
        "series": [{"key": "2026-11-01", "gross_revenue": 1520.4, "net_revenue": 1402.1, "orders": 12,
                    "aov": 121.3, "units": 31},
                   {"key": "2026-11-02", "gross_revenue": 0.0, "net_revenue": 0.0, "orders": 0, "aov": None,
                    "units": 0}],
        "totals": {"gross_revenue": 1520.4, "net_revenue": 1402.1, "order_discounts": 64.8, "refunds": 53.5,
                   "orders": 12, "aov": 121.3, "units": 31}}}}


def _series_points(params: CommonParams, buckets: list[dict[str, Any]]) -> list[TrendPoint]:
    by_key = {params.period.key_of(b["key"]): b for b in buckets}
    points = []
    for key in params.period.keys():
        b = by_key.get(key, {"doc_count": 0})
        orders = int(b["doc_count"])
        gross, disc = agg_value(b, "gross_revenue"), agg_value(b, "order_discounts")
        points.append(TrendPoint(key=key, gross_revenue=money(gross), net_revenue=money(agg_value(b, "net_revenue")),
                                 orders=orders, aov=money((gross - disc) / orders) if orders else None,
                                 units=int(agg_value(b, "units"))))
    return points


@dataclass(frozen=True)
class RevenueTrends:
    params: CommonParams
    response_model: ClassVar = RevenueTrendsResponse

    def body(self) -> dict[str, Any]:
        sums = {k: order_sum_aggs()[k] for k in ("gross_revenue", "order_discounts", "refunds", "net_revenue", "units")}
        return {"query": sales_query(self.params), "aggs": {
            **sums, "series": {**self.params.period.date_histogram("created_at"), "aggs": sums}}}

    async def run(self, ctx: QueryContext) -> RevenueTrendsResponse:
        r = await ctx.search(ORDERS, self.body())
        aggs = r.get("aggregations", {})
        orders = int(r["hits"]["total"]["value"])
        gross, disc = agg_value(aggs, "gross_revenue"), agg_value(aggs, "order_discounts")
        totals = TrendTotals(gross_revenue=money(gross), net_revenue=money(agg_value(aggs, "net_revenue")),
                             order_discounts=money(disc), refunds=money(agg_value(aggs, "refunds")), orders=orders,
                             aov=money((gross - disc) / orders) if orders else None, units=int(agg_value(aggs, "units")))
        return RevenueTrendsResponse(period=PeriodOut.of(self.params.period),
                                     series=_series_points(self.params, aggs.get("series", {}).get("buckets", [])),
                                     totals=totals)


# -- top products ---------------------------------------------------------------------


class ProductItem(BaseModel):
    key: str = Field(description="product_id")
    name: str | None = Field(description="the name on the product's latest sale line in the period")
    gross_revenue: float = Field(description="sum of line revenue")
    units: Units
    orders: int = Field(description="distinct sales containing the product")


class TopSellingResponse(AnalyticsResponse):
    by: str = Field(description="ranking measure: revenue or units")
    items: list[ProductItem] = Field(description="top `limit` products by the measure, descending, ties by key")
    model_config = ConfigDict(json_schema_extra={"example": {
        "period": {"start": "2026-10-22T00:00:00+00:00", "end": "2026-11-21T00:00:00+00:00", "tz": "UTC",
                   "interval": "day"},
        "cached": False, "by": "revenue",
        "items": [{"key": "p-0007", "name": "Voltix Earbuds Pro", "gross_revenue": 3212.59, "units": 41, "orders": 37},
                  {"key": "p-0012", "name": "Aero Desk Lamp", "gross_revenue": 2210.0, "units": 68, "orders": 61}]}})


def top_products_body(params: CommonParams, by: str, size: int) -> dict[str, Any]:
    """Products over sale lines in the period, ranked by the measure, ties by id.

    The order-items index has one shard, so a terms aggregation is exact here.
    """
    measure = "gross_revenue" if by == "revenue" else "units"
    return {"query": sales_query(params), "aggs": {"products": {
        "terms": {"field": "product_id", "size": size, "shard_size": max(size * 5, 1000),
                  "order": [{measure: "desc"}, {"_key": "asc"}]},
        "aggs": {
            "gross_revenue": {"sum": {"field": "line_revenue"}},
            "units": {"sum": {"field": "quantity"}},
            "latest": {"top_hits": {"size": 1, "sort": [{"created_at": "desc"}], "_source": ["name"]}},
        }}}}


def orders_per_product_body(params: CommonParams, product_ids: list[str]) -> dict[str, Any]:
    """Distinct sales per product, exactly: on the orders index `items.product_id` is
    multi-valued and a terms bucket counts each order document once."""
    return {"query": sales_query(params), "aggs": {"orders": {"terms": {
        "field": "items.product_id", "include": product_ids, "size": max(len(product_ids), 1)}}}}


async def top_products(ctx: QueryContext, params: CommonParams, by: str) -> list[ProductItem]:
    ranked = await ctx.search(ORDER_ITEMS, top_products_body(params, by, params.limit))
    buckets = ranked.get("aggregations", {}).get("products", {}).get("buckets", [])
    orders: dict[str, int] = {}
    if buckets:
        counted = await ctx.search(ORDERS, orders_per_product_body(params, [b["key"] for b in buckets]))
        orders = {b["key"]: b["doc_count"] for b in counted["aggregations"]["orders"]["buckets"]}
    items = []
    for b in buckets:
        hits = b["latest"]["hits"]["hits"]
        items.append(ProductItem(key=b["key"], name=hits[0]["_source"].get("name") if hits else None,
                                 gross_revenue=money(agg_value(b, "gross_revenue")), units=int(agg_value(b, "units")),
                                 orders=orders.get(b["key"], 0)))
    return items


@dataclass(frozen=True)
class TopSelling:
    params: CommonParams
    by: str = "revenue"
    response_model: ClassVar = TopSellingResponse

    async def run(self, ctx: QueryContext) -> TopSellingResponse:
        return TopSellingResponse(period=PeriodOut.of(self.params.period), by=self.by,
                                  items=await top_products(ctx, self.params, self.by))


# -- dashboard ------------------------------------------------------------------------


class DashboardPoint(BaseModel):
    key: BucketKey
    gross_revenue: GrossRevenue
    orders: SaleCount


class DashboardResponse(AnalyticsResponse):
    kpis: Kpis = Field(description="KPIs over the period's sales")
    series: list[DashboardPoint] = Field(description="every bucket of the period, zeros when it has no sales")
    top_products: list[ProductItem] = Field(description="top `limit` products by line revenue, ties by key")
    comparison: dict[str, float | int | None] | None = Field(
        None, description="with compare: the previous period's value of every KPI and `<kpi>_growth_pct`")
    model_config = {"json_schema_extra": {"example": {
        "period": {"start": "2026-10-22T00:00:00+00:00", "end": "2026-11-21T00:00:00+00:00", "tz": "UTC",
                   "interval": "day"},
        "cached": False,
        "kpis": {"gross_revenue": 48210.5, "net_revenue": 45102.7, "orders": 412, "aov": 112.4, "units": 1031,
                 "customers": 350, "new_customers": 141, "gross_profit": 19870.2},
        "series": [{"key": "2026-10-22", "gross_revenue": 1480.0, "orders": 13}],
        "top_products": [{"key": "p-1", "name": "Mug", "gross_revenue": 2210.0, "units": 180, "orders": 96}],
        "comparison": {"gross_revenue": 40100.0, "gross_revenue_growth_pct": 20.22}}}}


@dataclass(frozen=True)
class Dashboard:
    params: CommonParams
    response_model: ClassVar = DashboardResponse

    async def run(self, ctx: QueryContext) -> DashboardResponse:
        p = self.params
        current = await kpis(ctx, p, p.period)
        trend = await RevenueTrends(p).run(ctx)
        top = await TopSelling(p).run(ctx)
        compared = None
        if p.compare != "none":
            compared = comparison(current, await kpis(ctx, p, p.period.previous(p.compare)))
        return DashboardResponse(
            period=PeriodOut.of(p.period), kpis=current,
            series=[DashboardPoint(key=s.key, gross_revenue=s.gross_revenue, orders=s.orders) for s in trend.series],
            top_products=top.items, comparison=compared)


# -- sales/revenue and sales/orders ---------------------------------------------------


class RevenueTotals(BaseModel):
    gross_revenue: GrossRevenue
    order_discounts: OrderDiscounts
    refunds: Refunds
    net_revenue: NetRevenue


class RevenuePoint(RevenueTotals):
    key: BucketKey


# `comparison` of the endpoints whose `compare` compares every total (see `comparison`).
TotalsComparison = Annotated[dict[str, float | int | None] | None, Field(
    description="with compare: each total in the comparison period and `<name>_growth_pct` (null when that is 0)")]


class SalesRevenueResponse(AnalyticsResponse):
    totals: RevenueTotals = Field(description="over the whole period")
    series: list[RevenuePoint] = Field(description="every bucket of the period, zeros when it has no sales")
    comparison: TotalsComparison = None
    model_config = ConfigDict(json_schema_extra={"example": {
        "period": {"start": "2026-11-01T00:00:00+00:00", "end": "2026-11-03T00:00:00+00:00", "tz": "UTC",
                   "interval": "day"},
        "cached": False,
        "totals": {"gross_revenue": 3180.5, "order_discounts": 120.0, "refunds": 85.5, "net_revenue": 2975.0},
        "series": [{"gross_revenue": 1700.0, "order_discounts": 70.0, "refunds": 85.5, "net_revenue": 1544.5,
                    "key": "2026-11-01"},
                   {"gross_revenue": 1480.5, "order_discounts": 50.0, "refunds": 0.0, "net_revenue": 1430.5,
                    "key": "2026-11-02"}],
        "comparison": {"gross_revenue": 2900.0, "gross_revenue_growth_pct": 9.67, "order_discounts": 100.0,
                       "order_discounts_growth_pct": 20.0, "refunds": 0.0, "refunds_growth_pct": None,
                       "net_revenue": 2800.0, "net_revenue_growth_pct": 6.25}}})


@dataclass(frozen=True)
class SalesRevenue:
    params: CommonParams
    response_model: ClassVar = SalesRevenueResponse
    FIELDS: ClassVar = ("gross_revenue", "order_discounts", "refunds", "net_revenue")

    def body(self, period: Period) -> dict[str, Any]:
        sums = {k: order_sum_aggs()[k] for k in self.FIELDS}
        return {"query": sales_query(self.params, period),
                "aggs": {**sums, "series": {**period.date_histogram("created_at"), "aggs": sums}}}

    def _totals(self, aggs: dict[str, Any]) -> RevenueTotals:
        return RevenueTotals(**{k: money(agg_value(aggs, k)) for k in self.FIELDS})

    async def run(self, ctx: QueryContext) -> SalesRevenueResponse:
        p = self.params
        aggs = (await ctx.search(ORDERS, self.body(p.period))).get("aggregations", {})
        by_key = {p.period.key_of(b["key"]): b for b in aggs.get("series", {}).get("buckets", [])}
        series = [RevenuePoint(key=k, **self._totals(by_key.get(k, {})).model_dump()) for k in p.period.keys()]
        totals = self._totals(aggs)
        compared = None
        if p.compare != "none":
            prev = p.period.previous(p.compare)
            compared = comparison(totals, self._totals((await ctx.search(ORDERS, self.body(prev))).get("aggregations", {})))
        return SalesRevenueResponse(period=PeriodOut.of(p.period), totals=totals, series=series,
                                    comparison=compared)


class StatusCount(BaseModel):
    key: str = Field(description="order status")
    count: int = Field(description="orders placed in the period whose current status is `key`")


class OrdersPoint(BaseModel):
    key: BucketKey
    orders: int = Field(description="sales in the bucket")
    placed: int = Field(description="orders placed in the bucket, any status")
    cancelled: int = Field(description="orders placed in the bucket whose current status is cancelled")


class SalesOrdersResponse(AnalyticsResponse):
    orders: int = Field(description="number of sales")
    placed: int = Field(description="orders placed in the period, any status")
    by_status: list[StatusCount] = Field(description="every order placed in the period, by current status")
    cancellation_rate: float | None = Field(description="cancelled / all orders placed in the period")
    refunded_order_rate: float | None = Field(description="sales with a refund / sales")
    series: list[OrdersPoint] = Field(description="every bucket of the period, zeros when empty")
    model_config = ConfigDict(json_schema_extra={"example": {
        "period": {"start": "2026-11-01T00:00:00+00:00", "end": "2026-11-03T00:00:00+00:00", "tz": "UTC",
                   "interval": "day"},
        "cached": False, "orders": 26, "placed": 30,
        "by_status": [{"key": "delivered", "count": 14}, {"key": "shipped", "count": 6},
                      {"key": "cancelled", "count": 3}, {"key": "paid", "count": 3}, {"key": "refunded", "count": 2},
                      {"key": "pending", "count": 1}, {"key": "processing", "count": 1}],
        "cancellation_rate": 0.1, "refunded_order_rate": 0.1154,
        "series": [{"key": "2026-11-01", "orders": 15, "placed": 17, "cancelled": 2},
                   {"key": "2026-11-02", "orders": 11, "placed": 13, "cancelled": 1}]}})


@dataclass(frozen=True)
class SalesOrders:
    params: CommonParams
    response_model: ClassVar = SalesOrdersResponse

    def body(self) -> dict[str, Any]:
        counts = {"sales": {"filter": SALE}, "cancelled": {"filter": {"term": {"status": "cancelled"}}}}
        return {"query": {"bool": {"filter": self.params.filters("created_at")}}, "aggs": {
            **counts,
            "refunded_sales": {"filter": {"bool": {"filter": [SALE, {"term": {"has_refund": True}}]}}},
            "by_status": {"terms": {"field": "status", "size": 20, "order": [{"_count": "desc"}, {"_key": "asc"}]}},
            "series": {**self.params.period.date_histogram("created_at"), "aggs": counts},
        }}

    async def run(self, ctx: QueryContext) -> SalesOrdersResponse:
        r = await ctx.search(ORDERS, self.body())
        aggs = r.get("aggregations", {})
        placed = int(r["hits"]["total"]["value"])
        sales = int(aggs["sales"]["doc_count"])
        by_key = {self.params.period.key_of(b["key"]): b for b in aggs["series"]["buckets"]}
        series = []
        for key in self.params.period.keys():
            b = by_key.get(key)
            series.append(OrdersPoint(key=key, orders=b["sales"]["doc_count"] if b else 0,
                                      placed=b["doc_count"] if b else 0,
                                      cancelled=b["cancelled"]["doc_count"] if b else 0))
        return SalesOrdersResponse(
            period=PeriodOut.of(self.params.period), orders=sales, placed=placed,
            by_status=[StatusCount(key=b["key"], count=b["doc_count"]) for b in aggs["by_status"]["buckets"]],
            cancellation_rate=ratio(aggs["cancelled"]["doc_count"], placed),
            refunded_order_rate=ratio(aggs["refunded_sales"]["doc_count"], sales),
            series=series)


# -- breakdowns: sales/products, sales/categories, sales/geographic --------------------
#
# Every key is read by paging a composite aggregation (ctx.composite), so totals, shares
# and `total_*` counts are over every key, never a truncated top list. Distinct counts
# are exact by construction, never `cardinality` (see `orders_containing`).

NONE_KEY = "(none)"


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
        return cls(revenue=agg_value(bucket, "gross_revenue"), units=int(agg_value(bucket, "units")),
                   cogs=agg_value(bucket, "cogs"), lines=int(bucket["doc_count"]),
                   costed_lines=int(costed["doc_count"]), costed_revenue=agg_value(costed, "revenue"))

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


async def keyed_buckets(ctx: QueryContext, family: IndexFamily, query: dict[str, Any], field: str,
                        aggs: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every value of `field` with its sub-aggregations, documents without one under "(none)"."""
    out: dict[str, dict[str, Any]] = {}
    async for b in ctx.composite(family, query, [{"k": {"terms": {"field": field, "missing_bucket": True}}}], aggs):
        out[NONE_KEY if b["key"]["k"] is None else str(b["key"]["k"])] = b
    return out


async def orders_containing(ctx: QueryContext, query: dict[str, Any], line_field: str) -> dict[str, int]:
    """Distinct sales holding at least one line with each value of `line_field` (exact).

    In the orders index `items.<field>` is multi-valued and a terms bucket counts a
    document once however many of its lines carry the value, so a bucket's doc_count is
    the number of distinct orders. Orders with a line lacking the value ("(none)") are
    counted on the order-items index by paging their order ids.
    """
    counts = {key: int(b["doc_count"]) for key, b in
              (await keyed_buckets(ctx, ORDERS, query, f"items.{line_field}")).items() if key != NONE_KEY}
    lacking = {"bool": {"filter": query["bool"]["filter"], "must_not": [{"exists": {"field": line_field}}]}}
    n = 0
    async for _ in ctx.composite(ORDER_ITEMS, lacking, [{"o": {"terms": {"field": "order_id"}}}]):
        n += 1
    if n:
        counts[NONE_KEY] = n
    return counts


async def previous_revenue(ctx: QueryContext, params: CommonParams, family: IndexFamily, field: str,
                           revenue_field: str) -> dict[str, float] | None:
    """Revenue per key in the comparison period (None without `compare`)."""
    if params.compare == "none":
        return None
    previous = params.period.previous(params.compare)
    buckets = await keyed_buckets(ctx, family, sales_query(params, previous), field,
                                  {"r": {"sum": {"field": revenue_field}}})
    return {key: agg_value(b, "r") for key, b in buckets.items()}


RevenuePrevious = Annotated[float | None, Field(
    description="with compare: the key's gross revenue in the comparison period (0 when it had none)")]
RevenueGrowth = Annotated[float | None, Field(
    description="with compare: growth of gross revenue in %, null when the previous value is 0")]
RevenueComparison = Annotated[dict[str, float | None] | None, Field(
    description="with compare: {gross_revenue: the comparison period's, gross_revenue_growth_pct}")]


def compared(current: float, previous: dict[str, float] | None, key: str) -> dict[str, Any]:
    """An item's `gross_revenue_previous` / `gross_revenue_growth_pct` (nothing without `compare`)."""
    if previous is None:
        return {}
    before = money(previous.get(key, 0.0))
    return {"gross_revenue_previous": before, "gross_revenue_growth_pct": growth_pct(money(current), before)}


def total_comparison(total: float, previous: dict[str, float] | None) -> dict[str, float | None] | None:
    """The response's `comparison` as on the dashboard: {gross_revenue: previous, gross_revenue_growth_pct}."""
    if previous is None:
        return None
    before = money(sum(previous.values()))
    return {"gross_revenue": before, "gross_revenue_growth_pct": growth_pct(money(total), before)}


def ranked(items: list[T], measure: dict[str, float | None], limit: int | None) -> list[T]:
    """Items by their unrounded measure (`measure[key]`) descending, nulls last, ties by key.

    Compared at 1e-6, so equal amounts tie (and go by key) however the floating-point sums
    were ordered, and amounts that only differ beyond the cents are still told apart.
    """
    def order(item: T) -> tuple[bool, float, str]:
        value = measure[item.key]  # type: ignore[attr-defined]
        return value is None, -round(value or 0.0, 6), item.key  # type: ignore[attr-defined]

    items = sorted(items, key=order)
    return items if limit is None else items[:limit]


# -- sales/products


class ProductRow(BaseModel):
    key: str = Field(description="product_id")
    name: str | None = Field(description="the name on the product's latest sale line in the period")
    units: Units
    gross_revenue: float = Field(description="sum of line revenue")
    orders: int = Field(description="distinct sales containing the product")
    avg_price: float = Field(description="gross_revenue / units")
    cogs: Cogs
    lines_without_cost: int = Field(description="sale lines of the product without a unit cost")
    gross_profit: float | None = Field(description="line revenue - line cogs over the lines with a known cost; "
                                                   "null when no line has a cost")
    margin: float | None = Field(description="gross_profit / line revenue of the lines with a known cost")
    share: float | None = Field(description="gross_revenue / gross revenue of every product in the period")
    gross_revenue_previous: RevenuePrevious = None
    gross_revenue_growth_pct: RevenueGrowth = None


class ProductTotals(BaseModel):
    gross_revenue: float = Field(description="line revenue of every sale line in the period")
    units: Units
    cogs: Cogs
    lines_without_cost: LinesWithoutCost
    gross_profit: float = Field(description="line revenue - line cogs over every line with a known cost")


class SalesProductsResponse(AnalyticsResponse):
    sort: str = Field(description="ranking measure: revenue, units, orders or gross_profit")
    total_products: int = Field(description="products with sales in the period (all of them, not only the items)")
    totals: ProductTotals = Field(description="over every product, not only the items")
    items: list[ProductRow] = Field(description="top `limit` products by the measure, ties by key")
    comparison: RevenueComparison = None
    model_config = {"json_schema_extra": {"example": {
        "period": {"start": "2026-10-01T00:00:00+00:00", "end": "2026-11-01T00:00:00+00:00", "tz": "UTC",
                   "interval": "day"},
        "cached": False, "sort": "revenue", "total_products": 118,
        "totals": {"gross_revenue": 48210.5, "units": 1031, "cogs": 26010.2, "lines_without_cost": 4,
                   "gross_profit": 21890.1},
        "items": [{"key": "p-1", "name": "Mug", "units": 180, "gross_revenue": 2210.0, "orders": 96,
                   "avg_price": 12.28, "cogs": 990.0, "lines_without_cost": 0, "gross_profit": 1220.0,
                   "margin": 0.552, "share": 0.0458, "gross_revenue_previous": 1900.0,
                   "gross_revenue_growth_pct": 16.32}],
        "comparison": {"gross_revenue": 40100.0, "gross_revenue_growth_pct": 20.22}}}}


@dataclass(frozen=True)
class SalesProducts:
    """Per product over the period's sale lines; every product is read, the top `limit` returned."""

    params: CommonParams
    sort: str = "revenue"
    response_model: ClassVar = SalesProductsResponse

    def names_body(self, keys: list[str]) -> dict[str, Any]:
        """The name on each product's latest sale line (only for the products returned)."""
        return {"query": sales_query(self.params), "aggs": {"products": {
            "terms": {"field": "product_id", "include": keys, "size": max(len(keys), 1)},
            "aggs": {"latest": {"top_hits": {"size": 1, "_source": ["name"], "sort": [
                {"created_at": "desc"}, {"order_id": "desc"}, {"line": "desc"}]}}}}}}

    async def _names(self, ctx: QueryContext, keys: list[str]) -> dict[str, str | None]:
        if not keys:
            return {}
        r = await ctx.search(ORDER_ITEMS, self.names_body(keys))
        names = {}
        for b in r.get("aggregations", {}).get("products", {}).get("buckets", []):
            hits = b["latest"]["hits"]["hits"]
            names[b["key"]] = hits[0]["_source"].get("name") if hits else None
        return names

    async def run(self, ctx: QueryContext) -> SalesProductsResponse:
        p = self.params
        query = sales_query(p)
        lines = await keyed_buckets(ctx, ORDER_ITEMS, query, "product_id", line_sum_aggs())
        orders = await orders_containing(ctx, query, "product_id")
        previous = await previous_revenue(ctx, p, ORDER_ITEMS, "product_id", "line_revenue")
        sums = {key: LineSums.of(b) for key, b in lines.items()}
        total = sum(t.revenue for t in sums.values())
        rows, measure = [], {}
        for key, t in sums.items():
            n = orders.get(key, 0)
            measure[key] = {"revenue": t.revenue, "units": t.units, "orders": n, "gross_profit": t.profit}[self.sort]
            rows.append(ProductRow(
                key=key, name=None, units=t.units, gross_revenue=money(t.revenue), orders=n,
                avg_price=money(t.revenue / t.units) if t.units else 0.0, cogs=money(t.cogs),
                lines_without_cost=t.lines_without_cost,
                gross_profit=None if t.profit is None else money(t.profit),
                margin=None if t.profit is None else ratio(t.profit, t.costed_revenue),
                share=ratio(t.revenue, total), **compared(t.revenue, previous, key)))
        items = ranked(rows, measure, p.limit)
        names = await self._names(ctx, [i.key for i in items])
        for item in items:
            item.name = names.get(item.key)
        whole = LineSums.total(sums.values())
        totals = ProductTotals(gross_revenue=money(whole.revenue), units=whole.units, cogs=money(whole.cogs),
                               lines_without_cost=whole.lines_without_cost, gross_profit=money(whole.profit))
        return SalesProductsResponse(period=PeriodOut.of(p.period), sort=self.sort,
                                     total_products=len(lines), totals=totals, items=items,
                                     comparison=total_comparison(total, previous))


# -- sales/categories


class CategoryRow(BaseModel):
    key: str = Field(description='category or subcategory; lines without one under "(none)"')
    gross_revenue: float = Field(description="sum of line revenue")
    units: Units
    orders: int = Field(description="distinct sales with at least one line in it")
    share: float | None = Field(description="gross_revenue / line revenue of every sale line in the period")
    gross_revenue_previous: RevenuePrevious = None
    gross_revenue_growth_pct: RevenueGrowth = None


class CategoryTotals(BaseModel):
    gross_revenue: float = Field(description="line revenue of every sale line in the period")
    units: Units
    orders: int = Field(description="sales in the period")


class SalesCategoriesResponse(AnalyticsResponse):
    level: str = Field(description="category or subcategory")
    total_keys: int = Field(description="distinct keys with sales in the period (all of them, not only the items)")
    totals: CategoryTotals = Field(description="over every key, not only the items")
    items: list[CategoryRow] = Field(description="every key (or the top `limit` when given) by gross_revenue")
    comparison: RevenueComparison = None
    model_config = {"json_schema_extra": {"example": {
        "period": {"start": "2026-10-01T00:00:00+00:00", "end": "2026-11-01T00:00:00+00:00", "tz": "UTC",
                   "interval": "day"},
        "cached": False, "level": "category", "total_keys": 2,
        "totals": {"gross_revenue": 48210.5, "units": 1031, "orders": 412},
        "items": [{"key": "Electronics", "gross_revenue": 30110.0, "units": 402, "orders": 250, "share": 0.6246,
                   "gross_revenue_previous": None, "gross_revenue_growth_pct": None},
                  {"key": "(none)", "gross_revenue": 18100.5, "units": 629, "orders": 201, "share": 0.3754,
                   "gross_revenue_previous": None, "gross_revenue_growth_pct": None}],
        "comparison": None}}}


@dataclass(frozen=True)
class SalesCategories:
    """Line revenue by category or subcategory (a line dimension)."""

    params: CommonParams
    level: str = "category"
    limit: int | None = None  # None: every key
    response_model: ClassVar = SalesCategoriesResponse

    async def run(self, ctx: QueryContext) -> SalesCategoriesResponse:
        p = self.params
        query = sales_query(p)
        lines = await keyed_buckets(ctx, ORDER_ITEMS, query, self.level, line_sum_aggs())
        orders = await orders_containing(ctx, query, self.level)
        sales = int((await ctx.search(ORDERS, {"query": query}))["hits"]["total"]["value"])
        previous = await previous_revenue(ctx, p, ORDER_ITEMS, self.level, "line_revenue")
        sums = {key: LineSums.of(b) for key, b in lines.items()}
        revenue = {key: t.revenue for key, t in sums.items()}
        total = sum(revenue.values())
        rows = [CategoryRow(key=key, gross_revenue=money(t.revenue), units=t.units, orders=orders.get(key, 0),
                            share=ratio(t.revenue, total), **compared(t.revenue, previous, key))
                for key, t in sums.items()]
        totals = CategoryTotals(gross_revenue=money(total), orders=sales, units=sum(t.units for t in sums.values()))
        return SalesCategoriesResponse(period=PeriodOut.of(p.period), level=self.level,
                                       total_keys=len(lines), totals=totals,
                                       items=ranked(rows, revenue, self.limit),
                                       comparison=total_comparison(total, previous))


# -- sales/geographic


class GeoRow(BaseModel):
    key: str = Field(description='the customer\'s country, region, state or city on the order; "(none)" when missing')
    gross_revenue: float = Field(description="sum of the orders' gross revenue")
    orders: int = Field(description="sales")
    customers: int = Field(description="distinct customers among these sales")
    share: float | None = Field(description="gross_revenue / gross revenue of every sale in the period")
    gross_revenue_previous: RevenuePrevious = None
    gross_revenue_growth_pct: RevenueGrowth = None


class GeoTotals(BaseModel):
    gross_revenue: GrossRevenue
    orders: SaleCount
    customers: int = Field(description="distinct customers with a sale in the period")


class SalesGeographicResponse(AnalyticsResponse):
    level: str = Field(description="country, region, state or city")
    total_keys: int = Field(description="distinct keys with sales in the period (all of them, not only the items)")
    totals: GeoTotals = Field(description="over every key, not only the items")
    items: list[GeoRow] = Field(description="every key (or the top `limit` when given) by gross_revenue")
    comparison: RevenueComparison = None
    model_config = {"json_schema_extra": {"example": {
        "period": {"start": "2026-10-01T00:00:00+00:00", "end": "2026-11-01T00:00:00+00:00", "tz": "UTC",
                   "interval": "day"},
        "cached": False, "level": "country", "total_keys": 2,
        "totals": {"gross_revenue": 48210.5, "orders": 412, "customers": 350},
        "items": [{"key": "US", "gross_revenue": 40110.0, "orders": 340, "customers": 290, "share": 0.832,
                   "gross_revenue_previous": 35000.0, "gross_revenue_growth_pct": 14.6},
                  {"key": "CA", "gross_revenue": 8100.5, "orders": 72, "customers": 60, "share": 0.168,
                   "gross_revenue_previous": 0.0, "gross_revenue_growth_pct": None}],
        "comparison": {"gross_revenue": 35000.0, "gross_revenue_growth_pct": 37.74}}}}


@dataclass(frozen=True)
class SalesGeographic:
    """Order gross revenue by the customer's place on the order (an order dimension).

    One paged pass over (place, customer) pairs gives revenue, orders and distinct
    customers per place exactly, and the distinct customers of the whole period.
    """

    params: CommonParams
    level: str = "country"
    limit: int | None = None  # None: every key
    response_model: ClassVar = SalesGeographicResponse

    @property
    def field(self) -> str:
        return f"customer.{self.level}"

    def sources(self) -> list[dict[str, Any]]:
        return [{"place": {"terms": {"field": self.field, "missing_bucket": True}}},
                {"customer": {"terms": {"field": "customer.customer_id"}}}]

    async def run(self, ctx: QueryContext) -> SalesGeographicResponse:
        p = self.params
        acc: dict[str, dict[str, float]] = {}
        everyone: set[str] = set()
        async for b in ctx.composite(ORDERS, sales_query(p), self.sources(),
                                     {"gross_revenue": {"sum": {"field": "gross_revenue"}}}):
            key = NONE_KEY if b["key"]["place"] is None else str(b["key"]["place"])
            row = acc.setdefault(key, {"gross_revenue": 0.0, "orders": 0, "customers": 0})
            row["gross_revenue"] += agg_value(b, "gross_revenue")
            row["orders"] += b["doc_count"]
            row["customers"] += 1
            everyone.add(b["key"]["customer"])
        previous = await previous_revenue(ctx, p, ORDERS, self.field, "gross_revenue")
        revenue = {key: r["gross_revenue"] for key, r in acc.items()}
        total = sum(revenue.values())
        rows = [GeoRow(key=key, gross_revenue=money(revenue[key]), orders=int(r["orders"]),
                       customers=int(r["customers"]), share=ratio(revenue[key], total),
                       **compared(revenue[key], previous, key))
                for key, r in acc.items()]
        totals = GeoTotals(gross_revenue=money(total), orders=int(sum(r["orders"] for r in acc.values())),
                           customers=len(everyone))
        return SalesGeographicResponse(period=PeriodOut.of(p.period), level=self.level,
                                       total_keys=len(acc), totals=totals,
                                       items=ranked(rows, revenue, self.limit),
                                       comparison=total_comparison(total, previous))
