"""Sales: dashboard KPIs, revenue trends, top-selling products, revenue and orders,
and the breakdowns by product, category and place.

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
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from ..es.indices import ORDER_ITEMS, ORDERS
from .fields import (
    AnalyticsResponse,
    Aov,
    BucketKey,
    Cogs,
    GrossRevenue,
    LinesWithoutCost,
    NetRevenue,
    OrderDiscounts,
    PeriodOut,
    Refunds,
    RevenueComparison,
    RevenueGrowth,
    RevenuePrevious,
    SaleCount,
    TotalsComparison,
    Units,
)
from .params import CommonParams, Period
from .requests import Composite, Search, terms_source
from .runner import AnalyticsQuery, QueryContext
from .shared import (
    NONE_KEY,
    SALE,
    LineSums,
    agg_value,
    by_key,
    chunks,
    compared,
    comparison,
    distinct,
    keyed,
    line_sum_aggs,
    money,
    only,
    order_sums,
    orders_containing,
    orders_lacking_line_value,
    orders_with_line_value,
    previous_sums,
    ranked,
    ratio,
    sales_query,
    sums_by_key,
    total_comparison,
    values,
)

CUSTOMER = "customer.customer_id"
# Ids per `terms` filter; Elasticsearch's default limit (index.max_terms_count) is 65,536.
TERMS_CHUNK = 10_000


# -- dashboard ------------------------------------------------------------------------


class Kpis(BaseModel):
    gross_revenue: GrossRevenue
    net_revenue: NetRevenue
    orders: SaleCount
    aov: Aov
    units: Units
    customers: int = Field(description="distinct customers with a sale in the period")
    new_customers: int = Field(description="customers whose first sale ever is in the period")
    gross_profit: float = Field(description="net_revenue - cogs")


class ProductItem(BaseModel):
    key: str = Field(description="product_id")
    name: str | None = Field(description="the name on the product's latest sale line in the period")
    gross_revenue: float = Field(description="sum of line revenue")
    units: Units
    orders: int = Field(description="distinct sales containing the product")


class TopSellingResponse(AnalyticsResponse):
    by: str = Field(description="ranking measure: revenue or units")
    items: list[ProductItem] = Field(description="top `limit` products by the measure, descending, ties by key")


class DashboardPoint(BaseModel):
    key: BucketKey
    gross_revenue: GrossRevenue
    orders: SaleCount


class DashboardResponse(AnalyticsResponse):
    kpis: Kpis = Field(description="KPIs over the period's sales")
    series: list[DashboardPoint] = Field(description="every bucket of the period, zeros when it has no sales")
    top_products: list[ProductItem] = Field(description="top `limit` products by line revenue, ties by key")
    comparison: dict[str, float | int | None] | None = Field(
        None, description="with compare: the previous period's value of every KPI and `<kpi>_growth_pct`"
    )


def top_products_body(params: CommonParams, by: str, size: int) -> dict[str, Any]:
    """Products over sale lines in the period, ranked by the measure, ties by id.

    The order-items index has one shard, so a terms aggregation is exact here.
    """
    measure = "gross_revenue" if by == "revenue" else "units"
    return {
        "query": sales_query(params),
        "aggs": {
            "products": {
                "terms": {
                    "field": "product_id",
                    "size": size,
                    "shard_size": max(size * 5, 1000),
                    "order": [{measure: "desc"}, {"_key": "asc"}],
                },
                "aggs": {
                    "gross_revenue": {"sum": {"field": "line_revenue"}},
                    "units": {"sum": {"field": "quantity"}},
                    "latest": {"top_hits": {"size": 1, "sort": [{"created_at": "desc"}], "_source": ["name"]}},
                },
            }
        },
    }


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


async def top_product_items(
    ctx: QueryContext, params: CommonParams, ranked_products: dict[str, Any]
) -> list[ProductItem]:
    """The ranked products' items, with their distinct sales (one more request when any)."""
    buckets = ranked_products.get("aggregations", {}).get("products", {}).get("buckets", [])
    orders: dict[str, int] = {}
    if buckets:
        counted = await ctx.send(orders_per_product_request(params, [b["key"] for b in buckets]))
        orders = {b["key"]: b["doc_count"] for b in counted["aggregations"]["orders"]["buckets"]}
    items = []
    for b in buckets:
        hits = b["latest"]["hits"]["hits"]
        items.append(
            ProductItem(
                key=b["key"],
                name=hits[0]["_source"].get("name") if hits else None,
                gross_revenue=money(agg_value(b, "gross_revenue")),
                units=int(agg_value(b, "units")),
                orders=orders.get(b["key"], 0),
            )
        )
    return items


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
    response_model: ClassVar = DashboardResponse

    def sales_request(self, period: Period, *, series: bool) -> Search:
        aggs: dict[str, Any] = order_sums(*KPI_SUMS)
        if series:
            aggs["series"] = {**period.date_histogram("created_at"), "aggs": order_sums("gross_revenue")}
        return Search(ORDERS, {"query": sales_query(self.params, period), "aggs": aggs})

    def customers_request(self, period: Period) -> Composite:
        return distinct(ORDERS, sales_query(self.params, period), CUSTOMER)

    def earlier_customers_request(self, period: Period, customers: list[str]) -> Composite:
        """Which of `customers` had a sale before the period (so are not new in it).

        Only the period's customers are looked up in the history, so the cost follows the
        period's customers rather than the store's whole history (measured on 1,000,000
        orders: 16 requests and ~0.6 s instead of 70 and ~6.3 s).
        """
        earlier = {"range": {"created_at": {"lt": period.start_utc}}}
        query = {"bool": {"filter": [SALE, earlier, {"terms": {CUSTOMER: customers}}, *self.params.filters(None)]}}
        return distinct(ORDERS, query, CUSTOMER)

    def requests(self) -> dict[str, Search | Composite]:
        p = self.params
        previous = p.period.previous(p.compare) if p.compare != "none" else None
        return only(
            {
                "sales": self.sales_request(p.period, series=True),
                "customers": self.customers_request(p.period),
                "top_products": Search(ORDER_ITEMS, top_products_body(p, "revenue", p.limit)),
                "previous_sales": previous and self.sales_request(previous, series=False),
                "previous_customers": previous and self.customers_request(previous),
            }
        )

    async def kpis(self, ctx: QueryContext, period: Period, sales: dict[str, Any], customer_buckets: list[Any]) -> Kpis:
        customers = values(customer_buckets)
        earlier = await ctx.fetch(
            {
                str(i): self.earlier_customers_request(period, list(chunk))
                for i, chunk in enumerate(chunks(customers, TERMS_CHUNK))
            }
        )
        returning = sum(len(found) for found in earlier.values())
        aggs = sales.get("aggregations", {})
        t = {name: agg_value(aggs, name) for name in KPI_SUMS}
        orders = int(sales["hits"]["total"]["value"])
        return Kpis(
            gross_revenue=money(t["gross_revenue"]),
            net_revenue=money(t["net_revenue"]),
            orders=orders,
            aov=money((t["gross_revenue"] - t["order_discounts"]) / orders) if orders else None,
            units=int(t["units"]),
            customers=len(customers),
            new_customers=len(customers) - returning,
            gross_profit=money(t["net_revenue"] - t["cogs"]),
        )

    async def previous_kpis(self, ctx: QueryContext, answers: dict[str, Any]) -> Kpis | None:
        """The comparison period's KPIs (None without `compare`)."""
        if "previous_sales" not in answers:
            return None
        previous = self.params.period.previous(self.params.compare)
        return await self.kpis(ctx, previous, answers["previous_sales"], answers["previous_customers"])

    async def run(self, ctx: QueryContext) -> DashboardResponse:
        p = self.params
        a = await ctx.fetch(self.requests())
        current, top, before = await asyncio.gather(
            self.kpis(ctx, p.period, a["sales"], a["customers"]),
            top_product_items(ctx, p, a["top_products"]),
            self.previous_kpis(ctx, a),
        )
        compared_kpis = comparison(current, before) if before is not None else None
        series_buckets = a["sales"].get("aggregations", {}).get("series", {}).get("buckets", [])
        by_bucket = {p.period.key_of(b["key"]): b for b in series_buckets}
        series = [
            DashboardPoint(
                key=key,
                gross_revenue=money(agg_value(by_bucket.get(key, {}), "gross_revenue")),
                orders=int(by_bucket.get(key, {}).get("doc_count", 0)),
            )
            for key in p.period.bucket_keys()
        ]
        return DashboardResponse(
            period=PeriodOut.of(p.period), kpis=current, series=series, top_products=top, comparison=compared_kpis
        )


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


TREND_SUMS = ("gross_revenue", "order_discounts", "refunds", "net_revenue", "units")


@dataclass(frozen=True)
class RevenueTrends(AnalyticsQuery[RevenueTrendsResponse]):
    params: CommonParams
    name: ClassVar = "revenue/trends"
    response_model: ClassVar = RevenueTrendsResponse

    def requests(self) -> dict[str, Search | Composite]:
        sums = order_sums(*TREND_SUMS)
        return {
            "sales": Search(
                ORDERS,
                {
                    "query": sales_query(self.params),
                    "aggs": {**sums, "series": {**self.params.period.date_histogram("created_at"), "aggs": sums}},
                },
            )
        }

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
        aggs = r.get("aggregations", {})
        period = self.params.period
        by_bucket = {period.key_of(b["key"]): b for b in aggs.get("series", {}).get("buckets", [])}
        series = [
            TrendPoint(key=key, **self.point_values(by_bucket.get(key, {"doc_count": 0})))
            for key in period.bucket_keys()
        ]
        totals = TrendTotals(
            **self.point_values({**aggs, "doc_count": r["hits"]["total"]["value"]}),
            order_discounts=money(agg_value(aggs, "order_discounts")),
            refunds=money(agg_value(aggs, "refunds")),
        )
        return RevenueTrendsResponse(period=PeriodOut.of(period), series=series, totals=totals)


# -- top products ---------------------------------------------------------------------


@dataclass(frozen=True)
class TopSelling(AnalyticsQuery[TopSellingResponse]):
    params: CommonParams
    by: str = "revenue"
    name: ClassVar = "products/top-selling"
    response_model: ClassVar = TopSellingResponse

    def requests(self) -> dict[str, Search | Composite]:
        """The ranked products; their distinct sales follow (`orders_per_product_request`)."""
        return {"top_products": Search(ORDER_ITEMS, top_products_body(self.params, self.by, self.params.limit))}

    async def run(self, ctx: QueryContext) -> TopSellingResponse:
        ranked_products = (await ctx.fetch(self.requests()))["top_products"]
        return TopSellingResponse(
            period=PeriodOut.of(self.params.period),
            by=self.by,
            items=await top_product_items(ctx, self.params, ranked_products),
        )


# -- sales/revenue and sales/orders ---------------------------------------------------


class SalesRevenueTotals(BaseModel):
    gross_revenue: GrossRevenue
    order_discounts: OrderDiscounts
    refunds: Refunds
    net_revenue: NetRevenue


class SalesRevenuePoint(SalesRevenueTotals):
    key: BucketKey


class SalesRevenueResponse(AnalyticsResponse):
    totals: SalesRevenueTotals = Field(description="over the whole period")
    series: list[SalesRevenuePoint] = Field(description="every bucket of the period, zeros when it has no sales")
    comparison: TotalsComparison = None


@dataclass(frozen=True)
class SalesRevenue(AnalyticsQuery[SalesRevenueResponse]):
    params: CommonParams
    name: ClassVar = "sales/revenue"
    response_model: ClassVar = SalesRevenueResponse
    FIELDS: ClassVar = ("gross_revenue", "order_discounts", "refunds", "net_revenue")

    def requests(self) -> dict[str, Search | Composite]:
        p, sums = self.params, order_sums(*self.FIELDS)
        previous = p.period.previous(p.compare) if p.compare != "none" else None
        return only(
            {
                "sales": Search(
                    ORDERS,
                    {
                        "query": sales_query(p),
                        "aggs": {**sums, "series": {**p.period.date_histogram("created_at"), "aggs": sums}},
                    },
                ),
                "previous_sales": previous and Search(ORDERS, {"query": sales_query(p, previous), "aggs": sums}),
            }
        )

    def _totals(self, aggs: dict[str, Any]) -> SalesRevenueTotals:
        return SalesRevenueTotals(**{k: money(agg_value(aggs, k)) for k in self.FIELDS})

    async def run(self, ctx: QueryContext) -> SalesRevenueResponse:
        p = self.params
        a = await ctx.fetch(self.requests())
        aggs = a["sales"].get("aggregations", {})
        by_bucket = {p.period.key_of(b["key"]): b for b in aggs.get("series", {}).get("buckets", [])}
        series = [
            SalesRevenuePoint(key=k, **self._totals(by_bucket.get(k, {})).model_dump()) for k in p.period.bucket_keys()
        ]
        totals = self._totals(aggs)
        compared_totals = None
        if "previous_sales" in a:
            compared_totals = comparison(totals, self._totals(a["previous_sales"].get("aggregations", {})))
        return SalesRevenueResponse(
            period=PeriodOut.of(p.period), totals=totals, series=series, comparison=compared_totals
        )


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


@dataclass(frozen=True)
class SalesOrders(AnalyticsQuery[SalesOrdersResponse]):
    params: CommonParams
    name: ClassVar = "sales/orders"
    response_model: ClassVar = SalesOrdersResponse

    def requests(self) -> dict[str, Search | Composite]:
        counts = {"sales": {"filter": SALE}, "cancelled": {"filter": {"term": {"status": "cancelled"}}}}
        return {
            "orders": Search(
                ORDERS,
                {
                    "query": {"bool": {"filter": self.params.filters("created_at")}},
                    "aggs": {
                        **counts,
                        "refunded_sales": {"filter": {"bool": {"filter": [SALE, {"term": {"has_refund": True}}]}}},
                        "by_status": {
                            "terms": {"field": "status", "size": 20, "order": [{"_count": "desc"}, {"_key": "asc"}]}
                        },
                        "series": {**self.params.period.date_histogram("created_at"), "aggs": counts},
                    },
                },
            )
        }

    async def run(self, ctx: QueryContext) -> SalesOrdersResponse:
        r = (await ctx.fetch(self.requests()))["orders"]
        aggs = r.get("aggregations", {})
        placed = int(r["hits"]["total"]["value"])
        sales = int(aggs["sales"]["doc_count"])
        by_bucket = {self.params.period.key_of(b["key"]): b for b in aggs["series"]["buckets"]}
        series = []
        for key in self.params.period.bucket_keys():
            b = by_bucket.get(key)
            series.append(
                OrdersPoint(
                    key=key,
                    orders=b["sales"]["doc_count"] if b else 0,
                    placed=b["doc_count"] if b else 0,
                    cancelled=b["cancelled"]["doc_count"] if b else 0,
                )
            )
        return SalesOrdersResponse(
            period=PeriodOut.of(self.params.period),
            orders=sales,
            placed=placed,
            by_status=[StatusCount(key=b["key"], count=b["doc_count"]) for b in aggs["by_status"]["buckets"]],
            cancellation_rate=ratio(aggs["cancelled"]["doc_count"], placed),
            refunded_order_rate=ratio(aggs["refunded_sales"]["doc_count"], sales),
            series=series,
        )


# -- breakdowns: sales/products, sales/categories, sales/geographic --------------------
#
# Every key is read by paging a composite aggregation, so totals, shares and `total_*`
# counts are over every key, never a truncated top list. Distinct counts are exact by
# construction, never `cardinality` (see shared.orders_with_line_value).


def line_breakdown_requests(params: CommonParams, field: str) -> dict[str, Search | Composite]:
    """Line sums per value of a line field, the distinct sales per value, and (with compare)
    the comparison period's line revenue per value."""
    query = sales_query(params)
    return only(
        {
            "lines": keyed(ORDER_ITEMS, query, field, line_sum_aggs()),
            "orders": orders_with_line_value(query, field),
            "orders_lacking": orders_lacking_line_value(query, field),
            "previous": previous_sums(params, ORDER_ITEMS, field, "line_revenue"),
        }
    )


class ProductRow(BaseModel):
    key: str = Field(description="product_id")
    name: str | None = Field(description="the name on the product's latest sale line in the period")
    units: Units
    gross_revenue: float = Field(description="sum of line revenue")
    orders: int = Field(description="distinct sales containing the product")
    avg_price: float = Field(description="gross_revenue / units")
    cogs: Cogs
    lines_without_cost: int = Field(description="sale lines of the product without a unit cost")
    gross_profit: float | None = Field(
        description="line revenue - line cogs over the lines with a known cost; null when no line has a cost"
    )
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


@dataclass(frozen=True)
class SalesProducts(AnalyticsQuery[SalesProductsResponse]):
    """Per product over the period's sale lines; every product is read, the top `limit` returned."""

    params: CommonParams
    sort: str = "revenue"
    name: ClassVar = "sales/products"
    response_model: ClassVar = SalesProductsResponse

    def requests(self) -> dict[str, Search | Composite]:
        """The breakdown; the names of the returned products follow (`names_request`)."""
        return line_breakdown_requests(self.params, "product_id")

    def names_request(self, keys: list[str]) -> Search:
        """The name on each product's latest sale line (only for the products returned)."""
        return Search(
            ORDER_ITEMS,
            {
                "query": sales_query(self.params),
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

    async def _names(self, ctx: QueryContext, keys: list[str]) -> dict[str, str | None]:
        if not keys:
            return {}
        r = await ctx.send(self.names_request(keys))
        names = {}
        for b in r.get("aggregations", {}).get("products", {}).get("buckets", []):
            hits = b["latest"]["hits"]["hits"]
            names[b["key"]] = hits[0]["_source"].get("name") if hits else None
        return names

    async def run(self, ctx: QueryContext) -> SalesProductsResponse:
        p = self.params
        a = await ctx.fetch(self.requests())
        orders = orders_containing(a["orders"], a["orders_lacking"])
        previous = sums_by_key(a.get("previous"))
        sums = {key: LineSums.of(b) for key, b in by_key(a["lines"]).items()}
        total = sum(t.revenue for t in sums.values())
        rows, measure = [], {}
        for key, t in sums.items():
            n = orders.get(key, 0)
            measure[key] = {"revenue": t.revenue, "units": t.units, "orders": n, "gross_profit": t.profit}[self.sort]
            rows.append(
                ProductRow(
                    key=key,
                    name=None,
                    units=t.units,
                    gross_revenue=money(t.revenue),
                    orders=n,
                    avg_price=money(t.revenue / t.units) if t.units else 0.0,
                    cogs=money(t.cogs),
                    lines_without_cost=t.lines_without_cost,
                    gross_profit=None if t.profit is None else money(t.profit),
                    margin=None if t.profit is None else ratio(t.profit, t.costed_revenue),
                    share=ratio(t.revenue, total),
                    **compared(t.revenue, previous, key),
                )
            )
        items = ranked(rows, lambda row: measure[row.key], limit=p.limit)
        names = await self._names(ctx, [i.key for i in items])
        for item in items:
            item.name = names.get(item.key)
        whole = LineSums.total(sums.values())
        totals = ProductTotals(
            gross_revenue=money(whole.revenue),
            units=whole.units,
            cogs=money(whole.cogs),
            lines_without_cost=whole.lines_without_cost,
            gross_profit=money(whole.profit),
        )
        return SalesProductsResponse(
            period=PeriodOut.of(p.period),
            sort=self.sort,
            total_products=len(sums),
            totals=totals,
            items=items,
            comparison=total_comparison(total, previous),
        )


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


@dataclass(frozen=True)
class SalesCategories(AnalyticsQuery[SalesCategoriesResponse]):
    """Line revenue by category or subcategory (a line dimension)."""

    params: CommonParams
    level: str = "category"
    limit: int | None = None  # None: every key
    name: ClassVar = "sales/categories"
    response_model: ClassVar = SalesCategoriesResponse

    def requests(self) -> dict[str, Search | Composite]:
        return {
            **line_breakdown_requests(self.params, self.level),
            "sales": Search(ORDERS, {"query": sales_query(self.params)}),
        }

    async def run(self, ctx: QueryContext) -> SalesCategoriesResponse:
        p = self.params
        a = await ctx.fetch(self.requests())
        orders = orders_containing(a["orders"], a["orders_lacking"])
        previous = sums_by_key(a.get("previous"))
        sums = {key: LineSums.of(b) for key, b in by_key(a["lines"]).items()}
        revenue = {key: t.revenue for key, t in sums.items()}
        total = sum(revenue.values())
        rows = [
            CategoryRow(
                key=key,
                gross_revenue=money(t.revenue),
                units=t.units,
                orders=orders.get(key, 0),
                share=ratio(t.revenue, total),
                **compared(t.revenue, previous, key),
            )
            for key, t in sums.items()
        ]
        totals = CategoryTotals(
            gross_revenue=money(total),
            orders=int(a["sales"]["hits"]["total"]["value"]),
            units=sum(t.units for t in sums.values()),
        )
        return SalesCategoriesResponse(
            period=PeriodOut.of(p.period),
            level=self.level,
            total_keys=len(sums),
            totals=totals,
            items=ranked(rows, lambda row: revenue[row.key], limit=self.limit),
            comparison=total_comparison(total, previous),
        )


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


@dataclass(frozen=True)
class SalesGeographic(AnalyticsQuery[SalesGeographicResponse]):
    """Order gross revenue by the customer's place on the order (an order dimension).

    One paged pass over (place, customer) pairs gives revenue, orders and distinct
    customers per place exactly, and the distinct customers of the whole period; it is
    read as it streams (there may be a pair for every customer).
    """

    params: CommonParams
    level: str = "country"
    limit: int | None = None  # None: every key
    name: ClassVar = "sales/geographic"
    response_model: ClassVar = SalesGeographicResponse

    @property
    def field(self) -> str:
        return f"customer.{self.level}"

    def requests(self) -> dict[str, Search | Composite]:
        return only(
            {
                "pairs": Composite(
                    ORDERS,
                    sales_query(self.params),
                    [terms_source("place", self.field, missing=True), terms_source("customer", CUSTOMER)],
                    order_sums("gross_revenue"),
                ),
                "previous": previous_sums(self.params, ORDERS, self.field, "gross_revenue"),
            }
        )

    @staticmethod
    async def places(pairs: Any) -> tuple[dict[str, dict[str, float]], int]:
        """Revenue, orders and customers per place, and the distinct customers of all places."""
        acc: dict[str, dict[str, float]] = {}
        everyone: set[str] = set()
        async for b in pairs:
            key = NONE_KEY if b["key"]["place"] is None else str(b["key"]["place"])
            row = acc.setdefault(key, {"gross_revenue": 0.0, "orders": 0, "customers": 0})
            row["gross_revenue"] += agg_value(b, "gross_revenue")
            row["orders"] += b["doc_count"]
            row["customers"] += 1
            everyone.add(b["key"]["customer"])
        return acc, len(everyone)

    async def run(self, ctx: QueryContext) -> SalesGeographicResponse:
        p = self.params
        requests = self.requests()
        pairs = requests.pop("pairs")
        assert isinstance(pairs, Composite)
        (acc, customers), a = await asyncio.gather(self.places(ctx.stream(pairs)), ctx.fetch(requests))
        previous = sums_by_key(a.get("previous"))
        revenue = {key: r["gross_revenue"] for key, r in acc.items()}
        total = sum(revenue.values())
        rows = [
            GeoRow(
                key=key,
                gross_revenue=money(revenue[key]),
                orders=int(r["orders"]),
                customers=int(r["customers"]),
                share=ratio(revenue[key], total),
                **compared(revenue[key], previous, key),
            )
            for key, r in acc.items()
        ]
        totals = GeoTotals(
            gross_revenue=money(total), orders=int(sum(r["orders"] for r in acc.values())), customers=customers
        )
        return SalesGeographicResponse(
            period=PeriodOut.of(p.period),
            level=self.level,
            total_keys=len(acc),
            totals=totals,
            items=ranked(rows, lambda row: revenue[row.key], limit=self.limit),
            comparison=total_comparison(total, previous),
        )
