"""Sales: dashboard KPIs, revenue trends, top-selling products, revenue and orders.

Order-level numbers come from the orders index (one document per order, amounts
precomputed at ingest); product numbers from the order-items index. A sale is an
order with status paid, processing, shipped, delivered or refunded (`is_sale`).
Definitions: METRICS.md "Orders and money" and docs/metrics.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from ..es.indices import ORDER_ITEMS, ORDERS
from .params import CommonParams, Period, growth_pct
from .runner import AnalyticsResponse, PeriodOut, QueryContext, agg_value, money, ratio

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
CARDINALITY_PRECISION = 40000


def order_sum_aggs() -> dict[str, Any]:
    return {name: {"sum": {"field": field}} for name, field in ORDER_SUMS.items()}


def sales_query(params: CommonParams, period: Period | None = None) -> dict[str, Any]:
    return {"bool": {"filter": [SALE, *params.filters("created_at", period=period)]}}


class Kpis(BaseModel):
    gross_revenue: float = Field(description="sum of line revenue (quantity * unit_price - line discount) of sales")
    net_revenue: float = Field(description="gross_revenue - order_discounts - refunds")
    orders: int = Field(description="number of sales")
    aov: float | None = Field(description="(gross_revenue - order_discounts) / orders")
    units: int = Field(description="sum of quantity")
    customers: int = Field(description="distinct customers with a sale in the period")
    new_customers: int = Field(description="customers whose first sale ever is in the period")
    gross_profit: float = Field(description="net_revenue - cogs")


def _totals(aggs: dict[str, Any], orders: int) -> dict[str, float]:
    t = {name: agg_value(aggs, name) for name in ORDER_SUMS}
    t["orders"] = orders
    return t


async def count_distinct(ctx: QueryContext, family, query: dict[str, Any], field: str) -> int:
    """Exact distinct count: `cardinality` is exact well below its precision threshold;
    above it, the values are counted by paging a composite aggregation."""
    response = await ctx.search(family, {"query": query, "aggs": {"n": {"cardinality": {
        "field": field, "precision_threshold": CARDINALITY_PRECISION}}}})
    estimate = int(agg_value(response.get("aggregations", {}), "n"))
    if estimate < CARDINALITY_PRECISION // 2:
        return estimate
    count = 0
    async for _ in ctx.composite(family, query, [{"v": {"terms": {"field": field}}}]):
        count += 1
    return count


async def new_customer_count(ctx: QueryContext, params: CommonParams, period: Period) -> int:
    """Customers whose first sale ever falls in the period: every customer's first sale
    (up to the period's end) by a paged composite aggregation, counted in Python."""
    filters = [SALE, {"range": {"created_at": {"lt": period.end_utc}}}, *params.filters(None)]
    start_ms = period.start.timestamp() * 1000
    count = 0
    async for bucket in ctx.composite(ORDERS, {"bool": {"filter": filters}},
                                      [{"c": {"terms": {"field": "customer.customer_id"}}}],
                                      {"first": {"min": {"field": "created_at"}}}):
        if bucket["first"]["value"] is not None and bucket["first"]["value"] >= start_ms:
            count += 1
    return count


async def kpis(ctx: QueryContext, params: CommonParams, period: Period) -> Kpis:
    query = sales_query(params, period)
    response = await ctx.search(ORDERS, {"query": query, "aggs": order_sum_aggs()})
    orders = int(response["hits"]["total"]["value"])
    t = _totals(response.get("aggregations", {}), orders)
    customers = await count_distinct(ctx, ORDERS, query, "customer.customer_id")
    return Kpis(
        gross_revenue=money(t["gross_revenue"]),
        net_revenue=money(t["net_revenue"]),
        orders=orders,
        aov=money((t["gross_revenue"] - t["order_discounts"]) / orders) if orders else None,
        units=int(t["units"]),
        customers=customers,
        new_customers=await new_customer_count(ctx, params, period),
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
    key: str = Field(description="local bucket start: YYYY-MM-DD, or ISO datetime with offset for hours")
    gross_revenue: float
    net_revenue: float
    orders: int
    aov: float | None
    units: int


class TrendTotals(BaseModel):
    gross_revenue: float
    net_revenue: float
    order_discounts: float
    refunds: float
    orders: int
    aov: float | None
    units: int


class RevenueTrendsResponse(AnalyticsResponse):
    series: list[TrendPoint]
    totals: TrendTotals
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
        return RevenueTrendsResponse(period=PeriodOut(**self.params.period.describe()),
                                     series=_series_points(self.params, aggs.get("series", {}).get("buckets", [])),
                                     totals=totals)


# -- top products ---------------------------------------------------------------------


class ProductItem(BaseModel):
    key: str = Field(description="product_id")
    name: str | None
    gross_revenue: float = Field(description="sum of line revenue")
    units: int
    orders: int = Field(description="distinct sales containing the product")


class TopSellingResponse(AnalyticsResponse):
    by: str = Field(description="ranking measure: revenue or units")
    items: list[ProductItem]


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
            "orders": {"cardinality": {"field": "order_id", "precision_threshold": CARDINALITY_PRECISION}},
            "latest": {"top_hits": {"size": 1, "sort": [{"created_at": "desc"}], "_source": ["name"]}},
        }}}}


def product_items(response: dict[str, Any]) -> list[ProductItem]:
    items = []
    for b in response.get("aggregations", {}).get("products", {}).get("buckets", []):
        hits = b["latest"]["hits"]["hits"]
        items.append(ProductItem(key=b["key"], name=hits[0]["_source"].get("name") if hits else None,
                                 gross_revenue=money(agg_value(b, "gross_revenue")), units=int(agg_value(b, "units")),
                                 orders=int(agg_value(b, "orders"))))
    return items


@dataclass(frozen=True)
class TopSelling:
    params: CommonParams
    by: str = "revenue"
    response_model: ClassVar = TopSellingResponse

    def body(self) -> dict[str, Any]:
        return top_products_body(self.params, self.by, self.params.limit)

    async def run(self, ctx: QueryContext) -> TopSellingResponse:
        r = await ctx.search(ORDER_ITEMS, self.body())
        return TopSellingResponse(period=PeriodOut(**self.params.period.describe()), by=self.by,
                                  items=product_items(r))


# -- dashboard ------------------------------------------------------------------------


class DashboardPoint(BaseModel):
    key: str
    gross_revenue: float
    orders: int


class DashboardResponse(AnalyticsResponse):
    kpis: Kpis
    series: list[DashboardPoint]
    top_products: list[ProductItem]
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
            period=PeriodOut(**p.period.describe()), kpis=current,
            series=[DashboardPoint(key=s.key, gross_revenue=s.gross_revenue, orders=s.orders) for s in trend.series],
            top_products=top.items, comparison=compared)


# -- sales/revenue and sales/orders ---------------------------------------------------


class RevenueTotals(BaseModel):
    gross_revenue: float
    order_discounts: float
    refunds: float
    net_revenue: float


class RevenuePoint(RevenueTotals):
    key: str


class SalesRevenueResponse(AnalyticsResponse):
    totals: RevenueTotals
    series: list[RevenuePoint]
    comparison: dict[str, float | int | None] | None = None


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
        return SalesRevenueResponse(period=PeriodOut(**p.period.describe()), totals=totals, series=series,
                                    comparison=compared)


class StatusCount(BaseModel):
    key: str = Field(description="order status")
    count: int


class OrdersPoint(BaseModel):
    key: str
    orders: int = Field(description="sales in the bucket")
    placed: int = Field(description="orders placed in the bucket, any status")
    cancelled: int


class SalesOrdersResponse(AnalyticsResponse):
    orders: int = Field(description="number of sales")
    placed: int = Field(description="orders placed in the period, any status")
    by_status: list[StatusCount] = Field(description="every order placed in the period, by current status")
    cancellation_rate: float | None = Field(description="cancelled / all orders placed in the period")
    refunded_order_rate: float | None = Field(description="sales with a refund / sales")
    series: list[OrdersPoint]


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
            period=PeriodOut(**self.params.period.describe()), orders=sales, placed=placed,
            by_status=[StatusCount(key=b["key"], count=b["doc_count"]) for b in aggs["by_status"]["buckets"]],
            cancellation_rate=ratio(aggs["cancelled"]["doc_count"], placed),
            refunded_order_rate=ratio(aggs["refunded_sales"]["doc_count"], sales),
            series=series)
