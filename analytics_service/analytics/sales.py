"""Sales: dashboard KPIs, revenue trends, top-selling products, revenue and orders (the
breakdowns by product, category and place are in analytics/breakdowns.py).

Order-level numbers come from the orders index (one document per order, amounts
precomputed at ingest); product numbers from the order-items index. A sale is an
order with status paid, processing, shipped, delivered or refunded (`is_sale`).
Every Elasticsearch body a query here sends is built in this module, in its query
object's `requests()` and `*_request` methods, from the pieces of analytics/shared.py.
Definitions: docs/metrics.md "Orders and money".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from ..es.indices import ORDER_ITEMS, ORDERS
from . import customer_docs
from .comparison import comparison, comparison_period, previous_comparison, previous_period
from .fields import (
    AnalyticsResponse,
    Aov,
    BucketKey,
    ComparisonPeriod,
    GrossRevenue,
    LineRevenue,
    NetRevenue,
    OrderDiscounts,
    PeriodOut,
    ProductOrders,
    Refunds,
    ResponsePart,
    RevenueSums,
    SaleCount,
    SoldProduct,
    TotalsComparison,
    Units,
)
from .params import CommonParams, Period
from .requests import PARTITION_VALUES, Composite, Partitioned, Search
from .runner import AnalyticsQuery, QueryContext, all_or_none
from .shared import (
    CUSTOMER,
    SALE,
    TERMS_CHUNK,
    agg_value,
    aggregations,
    bucket_series,
    chunks,
    distinct,
    doc_count,
    money,
    money_sums,
    names_by_key,
    only,
    order_sums,
    order_sums_request,
    ranked,
    ratio,
    sales_query,
    sold_product_names_request,
    total_hits,
    values,
)

# -- dashboard ------------------------------------------------------------------------


class Kpis(ResponsePart):
    gross_revenue: GrossRevenue
    net_revenue: NetRevenue
    orders: SaleCount
    aov: Aov
    units: Units
    customers: int
    """distinct customers with a sale in the period"""
    new_customers: int
    """customers whose first sale ever is in the period"""
    gross_profit: float
    """net_revenue - cogs"""


class ProductItem(SoldProduct):
    gross_revenue: LineRevenue
    units: Units
    orders: ProductOrders


class TopSellingResponse(AnalyticsResponse):
    by: str
    """ranking measure: revenue or units"""
    items: list[ProductItem]
    """top `limit` products by the measure, descending, ties by key"""


class DashboardPoint(ResponsePart):
    key: BucketKey
    gross_revenue: GrossRevenue
    orders: SaleCount


class DashboardResponse(AnalyticsResponse):
    kpis: Kpis
    """KPIs over the period's sales"""
    series: list[DashboardPoint]
    """every bucket of the period, zeros when it has no sales"""
    top_products: list[ProductItem]
    """top `limit` products by line revenue, ties by key"""
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


def product_sums_request(params: CommonParams) -> Partitioned:
    """Line revenue and units of every product sold in the period, ranked in Python.

    Exact on any number of shards: a `terms` ordered by a sum returns each shard's own top
    `shard_size`, so a product near the cut can be missed on several shards; every product's
    sums (2,000 on the benchmark store, one request) cannot. More products than PARTITION_SIZE
    are read again in partitions (`QueryContext.partitioned`).
    """
    return Partitioned(
        ORDER_ITEMS,
        sales_query(params),
        "product_id",
        {"gross_revenue": {"sum": {"field": "line_revenue"}}, "units": {"sum": {"field": "quantity"}}},
    )


def orders_per_product_request(params: CommonParams, product_ids: list[str]) -> Search:
    """Distinct sales per product, exactly: on the orders index `items.product_id` is
    multi-valued and a terms bucket counts each order document once."""
    return Search(
        ORDERS,
        {
            "query": sales_query(params),
            "aggs": {
                "orders": {
                    "terms": {"field": "items.product_id", "include": product_ids, "size": max(len(product_ids), 1)}
                }
            },
        },
    )


async def top_product_items(ctx: QueryContext, params: CommonParams, by: str) -> list[ProductItem]:
    """The top `limit` products by line revenue or units (ties by id), then their names and
    distinct sales (`sold_product_names_request`, `orders_per_product_request`, concurrently)."""
    # One partition: a period rarely sells more than PARTITION_SIZE products; if it does, the
    # read starts again in twice the partitions until none is left over.
    products = await ctx.partitioned(product_sums_request(params), PARTITION_VALUES)
    measure = "gross_revenue" if by == "revenue" else "units"
    top = ranked(products, lambda b: agg_value(b, measure), limit=params.limit, key=lambda b: str(b["key"]))
    if not top:
        return []
    keys = [str(b["key"]) for b in top]
    a = await ctx.fetch(
        {"names": sold_product_names_request(params, keys), "orders": orders_per_product_request(params, keys)}
    )
    names = names_by_key(a["names"])
    orders = {b["key"]: b["doc_count"] for b in aggregations(a["orders"])["orders"]["buckets"]}
    return [
        ProductItem(
            key=key,
            name=names.get(key),
            gross_revenue=money(agg_value(b, "gross_revenue")),
            units=int(agg_value(b, "units")),
            orders=orders.get(key, 0),
        )
        for key, b in zip(keys, top, strict=True)
    ]


# The order sums the KPIs read.
KPI_SUMS = ("gross_revenue", "order_discounts", "net_revenue", "units", "cogs")


@dataclass(frozen=True)
class Dashboard(AnalyticsQuery[DashboardResponse]):
    """KPIs, the revenue and orders series and the top products of the period.

    The KPIs of the comparison period (with `compare`) need the same requests over that
    period; new customers need a look-up of the period's customers in the earlier history
    (`earlier_customers_request`, a chunk of ids at a time).
    """

    params: CommonParams
    name: ClassVar = "dashboard"

    def sales_request(self, period: Period, *, series: bool) -> Search:
        return order_sums_request(
            self.params, period, order_sums(*KPI_SUMS), order_sums("gross_revenue") if series else None
        )

    def customers_request(self, period: Period, *, from_orders: bool) -> Search | Composite:
        """The period's customers: counted over the customer documents (with new customers), or,
        `from_orders` (a channel filter, documents not built yet), every customer id of its sales."""
        if not from_orders:
            return customer_docs.customer_counts_request(self.params, period)
        return distinct(ORDERS, sales_query(self.params, period), CUSTOMER)

    def earlier_customers_request(self, period: Period, customers: list[str]) -> Composite:
        """Which of `customers` had a sale before the period (so are not new in it), when the
        customers come from the orders.

        Only the period's customers are looked up in the history, so the cost follows the
        period's customers rather than the store's whole history (measured on 1,000,000
        orders: 16 requests and ~0.6 s instead of 70 and ~6.3 s).
        """
        earlier = {"range": {"created_at": {"lt": period.start_utc}}}
        query = {"bool": {"filter": [SALE, earlier, {"terms": {CUSTOMER: customers}}, *self.params.filters(None)]}}
        return distinct(ORDERS, query, CUSTOMER)

    def requests(self, *, from_orders: bool = False) -> dict[str, Search | Composite]:
        """Sums, series, customers and top products of the period (and sums and customers of the
        comparison period); customers `from_orders` as `customers_request` says."""
        p = self.params
        previous = previous_period(p)
        from_orders = from_orders or not customer_docs.usable(p)
        return only(
            {
                "sales": self.sales_request(p.period, series=True),
                "customers": self.customers_request(p.period, from_orders=from_orders),
                "previous_sales": previous and self.sales_request(previous, series=False),
                "previous_customers": previous and self.customers_request(previous, from_orders=from_orders),
            }
        )

    async def customer_counts(self, ctx: QueryContext, period: Period, answer: Any) -> tuple[int, int]:
        """(customers, new customers): from the documents' counts, or from the customer ids and
        their look-up in the history before the period."""
        if isinstance(answer, dict):
            return customer_docs.customer_counts(answer)
        customers = values(answer)
        earlier = await ctx.fetch(
            {
                str(i): self.earlier_customers_request(period, list(chunk))
                for i, chunk in enumerate(chunks(customers, TERMS_CHUNK))
            }
        )
        return len(customers), len(customers) - sum(len(found) for found in earlier.values())

    async def kpis(self, ctx: QueryContext, period: Period, sales: dict[str, Any], customers_answer: Any) -> Kpis:
        customers, new_customers = await self.customer_counts(ctx, period, customers_answer)
        aggs = aggregations(sales)
        t = {name: agg_value(aggs, name) for name in KPI_SUMS}
        orders = total_hits(sales)
        return Kpis(
            gross_revenue=money(t["gross_revenue"]),
            net_revenue=money(t["net_revenue"]),
            orders=orders,
            aov=money((t["gross_revenue"] - t["order_discounts"]) / orders) if orders else None,
            units=int(t["units"]),
            customers=customers,
            new_customers=new_customers,
            gross_profit=money(t["net_revenue"] - t["cogs"]),
        )

    async def previous_kpis(self, ctx: QueryContext, answers: dict[str, Any]) -> Kpis | None:
        """The comparison period's KPIs (None without `compare`)."""
        previous = previous_period(self.params)
        if previous is None:
            return None
        return await self.kpis(ctx, previous, answers["previous_sales"], answers["previous_customers"])

    async def run(self, ctx: QueryContext) -> DashboardResponse:
        p = self.params
        requests = self.requests(from_orders=not await ctx.customer_documents_ready())
        a, top = await all_or_none(ctx.fetch(requests), top_product_items(ctx, p, "revenue"))
        current, before = await asyncio.gather(
            self.kpis(ctx, p.period, a["sales"], a["customers"]), self.previous_kpis(ctx, a)
        )
        series = bucket_series(
            p.period,
            aggregations(a["sales"]),
            lambda key, b: DashboardPoint(
                key=key, gross_revenue=money(agg_value(b, "gross_revenue")), orders=int(b["doc_count"])
            ),
        )
        return DashboardResponse(
            period=PeriodOut.of(p.period),
            kpis=current,
            series=series,
            top_products=top,
            comparison=comparison(current, before, has_data=bool(before and before.orders)),
            comparison_period=comparison_period(p),
        )


# -- revenue trends ---------------------------------------------------------------------


class TrendPoint(ResponsePart):
    key: BucketKey
    gross_revenue: GrossRevenue
    net_revenue: NetRevenue
    orders: SaleCount
    aov: Aov
    units: Units


class TrendTotals(ResponsePart):
    gross_revenue: GrossRevenue
    net_revenue: NetRevenue
    order_discounts: OrderDiscounts
    refunds: Refunds
    orders: SaleCount
    aov: Aov
    units: Units


class RevenueTrendsResponse(AnalyticsResponse):
    series: list[TrendPoint]
    """every bucket of the period, zeros (aov null) when it has no sales"""
    totals: TrendTotals
    """over the whole period"""


TREND_SUMS = ("gross_revenue", "order_discounts", "refunds", "net_revenue", "units")


@dataclass(frozen=True)
class RevenueTrends(AnalyticsQuery[RevenueTrendsResponse]):
    params: CommonParams
    name: ClassVar = "revenue/trends"

    def requests(self) -> dict[str, Search | Composite]:
        sums = order_sums(*TREND_SUMS)
        return {"sales": order_sums_request(self.params, self.params.period, sums, sums)}

    @staticmethod
    def point_values(b: dict[str, Any]) -> dict[str, Any]:
        orders = int(b["doc_count"])
        gross, disc = agg_value(b, "gross_revenue"), agg_value(b, "order_discounts")
        return {
            "gross_revenue": money(gross),
            "net_revenue": money(agg_value(b, "net_revenue")),
            "orders": orders,
            "aov": money((gross - disc) / orders) if orders else None,
            "units": int(agg_value(b, "units")),
        }

    async def run(self, ctx: QueryContext) -> RevenueTrendsResponse:
        r = (await ctx.fetch(self.requests()))["sales"]
        aggs = aggregations(r)
        period = self.params.period
        series = bucket_series(period, aggs, lambda key, b: TrendPoint(key=key, **self.point_values(b)))
        totals = TrendTotals(
            **self.point_values({**aggs, "doc_count": total_hits(r)}),
            **money_sums(aggs, ("order_discounts", "refunds")),
        )
        return RevenueTrendsResponse(period=PeriodOut.of(period), series=series, totals=totals)


# -- top products ---------------------------------------------------------------------


@dataclass(frozen=True)
class TopSelling(AnalyticsQuery[TopSellingResponse]):
    params: CommonParams
    by: str = "revenue"
    name: ClassVar = "products/top-selling"

    def requests(self) -> dict[str, Partitioned]:
        """Every product's sums (`top_product_items` sends it, then the top ones' follow-ups)."""
        return {"products": product_sums_request(self.params)}

    async def run(self, ctx: QueryContext) -> TopSellingResponse:
        return TopSellingResponse(
            period=PeriodOut.of(self.params.period),
            by=self.by,
            items=await top_product_items(ctx, self.params, self.by),
        )


# -- sales/revenue and sales/orders ---------------------------------------------------


class SalesRevenueTotals(RevenueSums):
    pass


class SalesRevenuePoint(SalesRevenueTotals):
    key: BucketKey


class SalesRevenueResponse(AnalyticsResponse):
    totals: SalesRevenueTotals
    """over the whole period"""
    series: list[SalesRevenuePoint]
    """every bucket of the period, zeros when it has no sales"""
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


@dataclass(frozen=True)
class SalesRevenue(AnalyticsQuery[SalesRevenueResponse]):
    params: CommonParams
    name: ClassVar = "sales/revenue"
    FIELDS: ClassVar = tuple(RevenueSums.model_fields)

    def requests(self) -> dict[str, Search | Composite]:
        p, sums = self.params, order_sums(*self.FIELDS)
        previous = previous_period(p)
        return only(
            {
                "sales": order_sums_request(p, p.period, sums, sums),
                "previous_sales": previous and order_sums_request(p, previous, sums),
            }
        )

    def _totals(self, aggs: dict[str, Any]) -> SalesRevenueTotals:
        return SalesRevenueTotals(**money_sums(aggs, self.FIELDS))

    async def run(self, ctx: QueryContext) -> SalesRevenueResponse:
        p = self.params
        a = await ctx.fetch(self.requests())
        aggs = aggregations(a["sales"])
        totals = self._totals(aggs)
        return SalesRevenueResponse(
            period=PeriodOut.of(p.period),
            totals=totals,
            series=bucket_series(
                p.period, aggs, lambda key, b: SalesRevenuePoint(key=key, **self._totals(b).model_dump())
            ),
            comparison=previous_comparison(
                totals, a.get("previous_sales"), lambda r: self._totals(aggregations(r)), total_hits
            ),
            comparison_period=comparison_period(p),
        )


class StatusCount(ResponsePart):
    key: str
    """order status"""
    count: int
    """orders placed in the period whose current status is `key`"""


class OrdersPoint(ResponsePart):
    key: BucketKey
    orders: int
    """sales in the bucket"""
    placed: int
    """orders placed in the bucket, any status"""
    cancelled: int
    """orders placed in the bucket whose current status is cancelled"""


class SalesOrdersResponse(AnalyticsResponse):
    orders: int
    """number of sales"""
    placed: int
    """orders placed in the period, any status"""
    by_status: list[StatusCount]
    """every order placed in the period, by current status"""
    cancellation_rate: float | None
    """cancelled / all orders placed in the period"""
    refunded_order_rate: float | None
    """sales with a refund / sales"""
    series: list[OrdersPoint]
    """every bucket of the period, zeros when empty"""
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


class OrderCounts(ResponsePart):
    # What sales/orders compares (with `compare`).
    orders: int
    placed: int
    cancellation_rate: float | None
    refunded_order_rate: float | None


# Orders placed (every status), sales, cancelled orders and refunded sales of a period.
ORDER_COUNTS: dict[str, Any] = {
    "sales": {"filter": SALE},
    "cancelled": {"filter": {"term": {"status": "cancelled"}}},
    "refunded_sales": {"filter": {"bool": {"filter": [SALE, {"term": {"has_refund": True}}]}}},
}


@dataclass(frozen=True)
class SalesOrders(AnalyticsQuery[SalesOrdersResponse]):
    params: CommonParams
    name: ClassVar = "sales/orders"

    def requests(self) -> dict[str, Search | Composite]:
        """Counts by status and per bucket; with `compare`, the comparison period's counts."""
        p = self.params
        previous = previous_period(p)
        per_bucket = {k: ORDER_COUNTS[k] for k in ("sales", "cancelled")}
        return only(
            {
                "orders": Search(
                    ORDERS,
                    {
                        "query": {"bool": {"filter": p.filters("created_at")}},
                        "aggs": {
                            **ORDER_COUNTS,
                            "by_status": {
                                "terms": {
                                    "field": "status",
                                    "size": 20,
                                    "order": [{"_count": "desc"}, {"_key": "asc"}],
                                }
                            },
                            "series": {**p.period.date_histogram("created_at"), "aggs": per_bucket},
                        },
                    },
                ),
                "previous_orders": previous
                and Search(
                    ORDERS,
                    {"query": {"bool": {"filter": p.filters("created_at", period=previous)}}, "aggs": ORDER_COUNTS},
                ),
            }
        )

    @staticmethod
    def counts(response: dict[str, Any]) -> OrderCounts:
        aggs, placed = aggregations(response), total_hits(response)
        sales = doc_count(aggs, "sales")
        return OrderCounts(
            orders=sales,
            placed=placed,
            cancellation_rate=ratio(doc_count(aggs, "cancelled"), placed),
            refunded_order_rate=ratio(doc_count(aggs, "refunded_sales"), sales),
        )

    async def run(self, ctx: QueryContext) -> SalesOrdersResponse:
        a = await ctx.fetch(self.requests())
        r = a["orders"]
        aggs = aggregations(r)
        current = self.counts(r)
        series = bucket_series(
            self.params.period,
            aggs,
            lambda key, b: OrdersPoint(
                key=key, orders=doc_count(b, "sales"), placed=b["doc_count"], cancelled=doc_count(b, "cancelled")
            ),
        )
        return SalesOrdersResponse(
            period=PeriodOut.of(self.params.period),
            **current.model_dump(),
            by_status=[StatusCount(key=b["key"], count=b["doc_count"]) for b in aggs["by_status"]["buckets"]],
            series=series,
            comparison=previous_comparison(current, a.get("previous_orders"), self.counts, total_hits),
            comparison_period=comparison_period(self.params),
        )


# -- rolling AOV ------------------------------------------------------------------------


class AovPoint(ResponsePart):
    key: BucketKey
    aov: Aov
    """(gross_revenue - order_discounts) / orders of the sales in the window ending with this bucket"""
    orders: int
    """sales created in the window"""
    gross_revenue: float
    """gross revenue of the window's sales"""
    order_discounts: float
    """order discounts of the window's sales"""
    window_start: str
    """the window's start (local ISO 8601 datetime; `window` days before its end)"""
    window_end: str
    """the window's end, exclusive: the end of the bucket (or of the period, for a last bucket cut by it)"""


class RollingAovResponse(AnalyticsResponse):
    window_days: int
    """the trailing window, in local days"""
    series: list[AovPoint]
    """every bucket of the period"""


ROLLING_INTERVALS = ("day", "week", "month")
MAX_WINDOW_DAYS = 365


@dataclass(frozen=True)
class RollingAov(AnalyticsQuery[RollingAovResponse]):
    """AOV over the trailing `window_days` at the end of every bucket (docs/metrics.md
    "Rolling AOV"): one `date_range` aggregation with a range per bucket, so windows that
    overlap are each summed exactly, whatever the DST changes inside them."""

    params: CommonParams
    window_days: int = 30
    name: ClassVar = "sales/aov"

    def windows(self) -> list[tuple[str, datetime, datetime]]:
        """(bucket key, window start, window end) per bucket: the window ends where the bucket
        does and starts `window_days` local days earlier, at the same local time."""
        self.params.period.check_bucket_count()
        out = []
        for key, _, end in self.params.period.bucket_spans():
            start = datetime.combine(end.date() - timedelta(days=self.window_days), end.timetz())
            out.append((key, start, end))
        return out

    def requests(self) -> dict[str, Search | Composite]:
        p, windows = self.params, self.windows()
        first, last = windows[0][1], windows[-1][2]
        span = {"range": {"created_at": {"gte": _utc(first), "lt": _utc(last)}}}
        ranges = [{"key": key, "from": _utc(start), "to": _utc(end)} for key, start, end in windows]
        return {
            "windows": Search(
                ORDERS,
                {
                    "query": {"bool": {"filter": [SALE, span, *p.filters(None)]}},
                    "aggs": {
                        "windows": {
                            "date_range": {"field": "created_at", "ranges": ranges},
                            "aggs": order_sums("gross_revenue", "order_discounts"),
                        }
                    },
                },
            )
        }

    async def run(self, ctx: QueryContext) -> RollingAovResponse:
        windows = self.windows()
        answer = (await ctx.fetch(self.requests()))["windows"]
        by_key = {b["key"]: b for b in aggregations(answer)["windows"]["buckets"]}
        series = []
        for key, start, end in windows:
            b = by_key.get(key, {"doc_count": 0})
            orders, gross, discounts = (
                int(b["doc_count"]),
                agg_value(b, "gross_revenue"),
                agg_value(b, "order_discounts"),
            )
            series.append(
                AovPoint(
                    key=key,
                    aov=money((gross - discounts) / orders) if orders else None,
                    orders=orders,
                    gross_revenue=money(gross),
                    order_discounts=money(discounts),
                    window_start=start.isoformat(),
                    window_end=end.isoformat(),
                )
            )
        return RollingAovResponse(period=PeriodOut.of(self.params.period), window_days=self.window_days, series=series)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
