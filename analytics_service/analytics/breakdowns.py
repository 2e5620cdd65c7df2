"""Breakdowns of the period's sales: per product (sales/products), per category or
subcategory (sales/categories), per place of the customer (sales/geographic).

Every key is read by paging a composite aggregation, so totals, shares and `total_*`
counts are over every key, never a truncated top list. Distinct counts are exact by
construction, never `cardinality` (see shared.orders_with_line_value). Line numbers
come from the order-items index, order numbers from the orders index. Every
Elasticsearch body a query here sends is built in this module, in its query object's
`requests()` and `*_request` methods and `line_breakdown_requests`, from the pieces of
analytics/shared.py. Definitions: docs/metrics.md "Orders and money".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from ..es.indices import ORDER_ITEMS, ORDERS
from . import customer_docs
from .comparison import comparison_period, key_comparison, previous_sums, revenue_comparison
from .fields import (
    AnalyticsResponse,
    Cogs,
    ComparisonPeriod,
    GrossRevenue,
    LineRevenue,
    LineRevenueTotal,
    LinesWithoutCost,
    PeriodOut,
    ProductOrders,
    ResponsePart,
    RevenueComparison,
    RevenueGrowth,
    RevenuePrevious,
    SaleCount,
    ShareChange,
    SoldProduct,
    Units,
)
from .params import CommonParams
from .requests import Composite, Search, terms_source
from .runner import AnalyticsQuery, QueryContext
from .shared import (
    CUSTOMER,
    NONE_KEY,
    K,
    LineSums,
    agg_value,
    by_key,
    keyed,
    line_sum_aggs,
    money,
    names_by_key,
    only,
    order_sums,
    orders_containing,
    orders_lacking_line_value,
    orders_with_line_value,
    ranked,
    ratio,
    sales_query,
    sold_product_names_request,
    sums_by_key,
    total_hits,
)

# -- reading a breakdown ------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRevenue:
    """Gross revenue per key over every key of a breakdown and, with `compare`, the comparison
    period's per key: what each row's share and comparison, and the response's, are taken of."""

    revenue: dict[str, float]
    previous: dict[str, float] | None
    total: float

    @classmethod
    def of(cls, revenue: dict[str, float], previous: Iterable[dict[str, Any]] | None) -> KeyRevenue:
        """From the revenue per key and the buckets of the `previous_sums` request (None without compare)."""
        return cls(revenue, sums_by_key(previous), sum(revenue.values()))

    def row(self, key: str) -> dict[str, Any]:
        """A row's `share` and, with compare, its `gross_revenue_previous`, `gross_revenue_growth_pct`
        and `share_change_pp`."""
        share = ratio(self.revenue[key], self.total)
        return {"share": share, **key_comparison(key, self.revenue[key], share, self.previous)}

    def top(self, rows: Iterable[K], limit: int | None) -> list[K]:
        """The rows by gross revenue (every row when `limit` is None), ties by key."""
        return ranked(rows, lambda row: self.revenue[row.key], limit=limit)

    def comparison(self) -> dict[str, Any] | None:
        return revenue_comparison(self.total, self.previous)


def line_breakdown_requests(params: CommonParams, field: str) -> dict[str, Search | Composite]:
    """Line sums per value of a line field, the distinct sales per value, and (with compare)
    the comparison period's line revenue per value (read by `LineBreakdown.of`)."""
    query = sales_query(params)
    return only(
        {
            "lines": keyed(ORDER_ITEMS, query, field, line_sum_aggs()),
            "orders": orders_with_line_value(query, field),
            "orders_lacking": orders_lacking_line_value(query, field),
            "previous": previous_sums(params, ORDER_ITEMS, field, "line_revenue"),
        }
    )


@dataclass(frozen=True)
class LineBreakdown:
    """The answers of `line_breakdown_requests`, read: line sums and distinct sales per key."""

    sums: dict[str, LineSums]
    orders: dict[str, int]
    revenue: KeyRevenue

    @classmethod
    def of(cls, answers: dict[str, Any]) -> LineBreakdown:
        sums = {key: LineSums.of(b) for key, b in by_key(answers["lines"]).items()}
        return cls(
            sums,
            orders_containing(answers["orders"], answers["orders_lacking"]),
            KeyRevenue.of({key: t.revenue for key, t in sums.items()}, answers.get("previous")),
        )


# -- sales/products -------------------------------------------------------------------------


class ProductRow(SoldProduct):
    units: Units
    gross_revenue: LineRevenue
    orders: ProductOrders
    avg_price: float
    """gross_revenue / units"""
    cogs: Cogs
    lines_without_cost: int
    """sale lines of the product without a unit cost"""
    gross_profit: float | None
    """line revenue - line cogs over the lines with a known cost; null when no line has a cost"""
    margin: float | None
    """gross_profit / line revenue of the lines with a known cost"""
    share: float | None
    """gross_revenue / gross revenue of every product in the period"""
    gross_revenue_previous: RevenuePrevious = None
    gross_revenue_growth_pct: RevenueGrowth = None
    share_change_pp: ShareChange = None


class ProductTotals(ResponsePart):
    gross_revenue: LineRevenueTotal
    units: Units
    cogs: Cogs
    lines_without_cost: LinesWithoutCost
    gross_profit: float
    """line revenue - line cogs over every line with a known cost"""


class SalesProductsResponse(AnalyticsResponse):
    sort: str
    """ranking measure: revenue, units, orders or gross_profit"""
    total_products: int
    """products with sales in the period (all of them, not only the items)"""
    totals: ProductTotals
    """over every product, not only the items"""
    items: list[ProductRow]
    """top `limit` products by the measure, ties by key"""
    comparison: RevenueComparison = None
    comparison_period: ComparisonPeriod = None


@dataclass(frozen=True)
class SalesProducts(AnalyticsQuery[SalesProductsResponse]):
    """Per product over the period's sale lines; every product is read, the top `limit` returned."""

    params: CommonParams
    sort: str = "revenue"
    name: ClassVar = "sales/products"

    def requests(self) -> dict[str, Search | Composite]:
        """The breakdown; the names of the returned products follow (`sold_product_names_request`)."""
        return line_breakdown_requests(self.params, "product_id")

    async def _names(self, ctx: QueryContext, keys: list[str]) -> dict[str, str | None]:
        return names_by_key(await ctx.send(sold_product_names_request(self.params, keys))) if keys else {}

    async def run(self, ctx: QueryContext) -> SalesProductsResponse:
        p = self.params
        b = LineBreakdown.of(await ctx.fetch(self.requests()))
        rows, measure = [], {}
        for key, t in b.sums.items():
            n = b.orders.get(key, 0)
            measure[key] = {"revenue": t.revenue, "units": t.units, "orders": n, "gross_profit": t.profit}[self.sort]
            rows.append(
                ProductRow(
                    key=key,
                    name=None,
                    orders=n,
                    avg_price=money(t.revenue / t.units) if t.units else 0.0,
                    **t.product_numbers(),
                    **b.revenue.row(key),
                )
            )
        items = ranked(rows, lambda row: measure[row.key], limit=p.limit)
        names = await self._names(ctx, [i.key for i in items])
        for item in items:
            item.name = names.get(item.key)
        whole = LineSums.total(b.sums.values())
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
            total_products=len(b.sums),
            totals=totals,
            items=items,
            comparison=b.revenue.comparison(),
            comparison_period=comparison_period(self.params),
        )


# -- sales/categories -----------------------------------------------------------------------


class CategoryRow(ResponsePart):
    key: str
    '''category or subcategory; lines without one under "(none)"'''
    gross_revenue: LineRevenue
    units: Units
    orders: int
    """distinct sales with at least one line in it"""
    share: float | None
    """gross_revenue / line revenue of every sale line in the period"""
    gross_revenue_previous: RevenuePrevious = None
    gross_revenue_growth_pct: RevenueGrowth = None
    share_change_pp: ShareChange = None


class CategoryTotals(ResponsePart):
    gross_revenue: LineRevenueTotal
    units: Units
    orders: int
    """sales in the period"""


TotalsT = TypeVar("TotalsT", bound=BaseModel)
RowT = TypeVar("RowT", bound=BaseModel)


class ByLevel(ResponsePart, Generic[TotalsT, RowT]):
    """The fields of the answer of a breakdown by `level` (sales/categories, sales/geographic),
    after the period's; each answer declares what its `level` can be."""

    level: str
    total_keys: int
    """distinct keys with sales in the period (all of them, not only the items)"""
    totals: TotalsT
    """over every key, not only the items"""
    items: list[RowT]
    """every key (or the top `limit` when given) by gross_revenue"""
    comparison: RevenueComparison = None
    comparison_period: ComparisonPeriod = None


class SalesCategoriesResponse(ByLevel[CategoryTotals, CategoryRow], AnalyticsResponse):
    level: str
    """category or subcategory"""


@dataclass(frozen=True)
class SalesCategories(AnalyticsQuery[SalesCategoriesResponse]):
    """Line revenue by category or subcategory (a line dimension)."""

    params: CommonParams
    level: str = "category"
    limit: int | None = None  # None: every key
    name: ClassVar = "sales/categories"

    def requests(self) -> dict[str, Search | Composite]:
        return {
            **line_breakdown_requests(self.params, self.level),
            "sales": Search(ORDERS, {"query": sales_query(self.params)}),
        }

    async def run(self, ctx: QueryContext) -> SalesCategoriesResponse:
        a = await ctx.fetch(self.requests())
        b = LineBreakdown.of(a)
        rows = [
            CategoryRow(
                key=key,
                gross_revenue=money(t.revenue),
                units=t.units,
                orders=b.orders.get(key, 0),
                **b.revenue.row(key),
            )
            for key, t in b.sums.items()
        ]
        totals = CategoryTotals(
            gross_revenue=money(b.revenue.total),
            orders=total_hits(a["sales"]),
            units=sum(t.units for t in b.sums.values()),
        )
        return SalesCategoriesResponse(
            period=PeriodOut.of(self.params.period),
            level=self.level,
            total_keys=len(b.sums),
            totals=totals,
            items=b.revenue.top(rows, self.limit),
            comparison=b.revenue.comparison(),
            comparison_period=comparison_period(self.params),
        )


# -- sales/geographic -----------------------------------------------------------------------


class GeoRow(ResponsePart):
    key: str
    """the customer's country, region, state or city on the order; "(none)" when missing"""
    gross_revenue: float
    """sum of the orders' gross revenue"""
    orders: int
    """sales"""
    customers: int
    """distinct customers among these sales"""
    share: float | None
    """gross_revenue / gross revenue of every sale in the period"""
    gross_revenue_previous: RevenuePrevious = None
    gross_revenue_growth_pct: RevenueGrowth = None
    share_change_pp: ShareChange = None


class GeoTotals(ResponsePart):
    gross_revenue: GrossRevenue
    orders: SaleCount
    customers: int
    """distinct customers with a sale in the period"""


class SalesGeographicResponse(ByLevel[GeoTotals, GeoRow], AnalyticsResponse):
    level: str
    """country, region, state or city"""


@dataclass(frozen=True)
class SalesGeographic(AnalyticsQuery[SalesGeographicResponse]):
    """Order gross revenue by the customer's place on the order (an order dimension).

    Revenue and orders per place come from the sales, distinct customers per place (and of
    the period) from the customer documents' sales (customer_docs). Without them, one paged
    pass over the (place, customer) pairs gives all of it exactly, read as it streams (there
    may be a pair for every customer).
    """

    params: CommonParams
    level: str = "country"
    limit: int | None = None  # None: every key
    name: ClassVar = "sales/geographic"

    @property
    def field(self) -> str:
        return f"customer.{self.level}"

    def requests(self, *, from_orders: bool = False) -> dict[str, Search | Composite]:
        """Revenue and orders per place, and its customers counted over the customer documents;
        or, `from_orders` (a channel filter, documents not built yet, more places than a request
        holds), one paged pass over the (place, customer) pairs of the sales, read as it streams."""
        if from_orders or not customer_docs.usable(self.params):
            return only({"pairs": self.pairs_request(), "previous": self.previous_request()})
        return only(
            {
                "places": Composite(
                    ORDERS,
                    sales_query(self.params),
                    [terms_source("place", self.field, missing=True)],
                    order_sums("gross_revenue"),
                ),
                "customers": customer_docs.place_customers_request(self.params, self.level),
                "previous": self.previous_request(),
            }
        )

    def pairs_request(self) -> Composite:
        return Composite(
            ORDERS,
            sales_query(self.params),
            [terms_source("place", self.field, missing=True), terms_source("customer", CUSTOMER)],
            order_sums("gross_revenue"),
        )

    def previous_request(self) -> Search | Composite | None:
        return previous_sums(self.params, ORDERS, self.field, "gross_revenue")

    @staticmethod
    def place_of(bucket: dict[str, Any]) -> str:
        """The place of a composite bucket: its key, or NONE_KEY for orders without one."""
        place = bucket["key"]["place"]
        return NONE_KEY if place is None else str(place)

    @staticmethod
    async def places(pairs: Any) -> tuple[dict[str, dict[str, float]], int]:
        """Revenue, orders and customers per place, and the distinct customers of all places."""
        acc: dict[str, dict[str, float]] = {}
        everyone: set[str] = set()
        async for b in pairs:
            key = SalesGeographic.place_of(b)
            row = acc.setdefault(key, {"gross_revenue": 0.0, "orders": 0, "customers": 0})
            row["gross_revenue"] += agg_value(b, "gross_revenue")
            row["orders"] += b["doc_count"]
            row["customers"] += 1
            everyone.add(b["key"]["customer"])
        return acc, len(everyone)

    async def counted_places(self, ctx: QueryContext) -> tuple[dict[str, dict[str, float]], int, Any] | None:
        """The places from the customer documents, or None when they cannot answer."""
        if not customer_docs.usable(self.params) or not await ctx.customer_documents_ready():
            return None
        a = await ctx.fetch(self.requests())
        counted = customer_docs.place_customers(a["customers"])
        if counted is None:
            return None
        customers, total = counted
        acc = {
            self.place_of(b): {
                "gross_revenue": agg_value(b, "gross_revenue"),
                "orders": b["doc_count"],
                "customers": customers.get(self.place_of(b), 0),
            }
            for b in a["places"]
        }
        return acc, total, a.get("previous")

    async def run(self, ctx: QueryContext) -> SalesGeographicResponse:
        counted = await self.counted_places(ctx)
        if counted is not None:
            acc, customers, previous = counted
        else:
            (acc, customers), a = await ctx.stream_and_fetch(self.requests(from_orders=True), "pairs", self.places)
            previous = a.get("previous")
        revenue = KeyRevenue.of({key: r["gross_revenue"] for key, r in acc.items()}, previous)
        rows = [
            GeoRow(
                key=key,
                gross_revenue=money(revenue.revenue[key]),
                orders=int(r["orders"]),
                customers=int(r["customers"]),
                **revenue.row(key),
            )
            for key, r in acc.items()
        ]
        totals = GeoTotals(
            gross_revenue=money(revenue.total), orders=int(sum(r["orders"] for r in acc.values())), customers=customers
        )
        return SalesGeographicResponse(
            period=PeriodOut.of(self.params.period),
            level=self.level,
            total_keys=len(acc),
            totals=totals,
            items=revenue.top(rows, self.limit),
            comparison=revenue.comparison(),
            comparison_period=comparison_period(self.params),
        )
