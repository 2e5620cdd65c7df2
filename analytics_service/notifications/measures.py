"""The measures an alert rule can watch: each one is a number an analytics endpoint already
returns, read from that endpoint's own query object over the rule's window (so an alert's
value is the API's number for the same period, store and channel; docs/alerts.md lists them).

A measure answers `{subject: value}`: the subject "" is the whole store (or the one category or
product a filter names); per-product measures (stock, days of cover) answer one value per
product. A value is None when the API gives none (a rate without a denominator): such a value
neither fires nor resolves an incident.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..analytics.breakdowns import SalesCategories, SalesProducts
from ..analytics.financial import FinancialPayments, FinancialRevenue
from ..analytics.lifecycle import Conversion
from ..analytics.params import CommonParams
from ..analytics.products import ProductInventory
from ..analytics.runner import QueryContext
from ..analytics.sales import Dashboard
from ..analytics.site_search import SiteSearch

Kind = Literal["money", "count", "rate", "number"]
Values = dict[str, float | None]
# Every catalog product / category at once (the endpoints' `limit` is for people).
ALL = 1_000_000


@dataclass(frozen=True)
class Filters:
    """A rule's filters beyond the store: the sales channel, one category, some products."""

    channel: str | None = None
    category: str | None = None
    product_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, given: Mapping[str, Any]) -> Filters:
        return cls(
            channel=given.get("channel"),
            category=given.get("category"),
            product_ids=tuple(given.get("product_ids") or ()),
        )


Reader = Callable[[QueryContext, CommonParams, Filters], Awaitable[Values]]


@dataclass(frozen=True)
class Measure:
    name: str
    label: str
    kind: Kind
    up_is_good: bool
    source: str  # the endpoint and field whose number it is (docs/alerts.md)
    read: Reader
    per_product: bool = False
    category_filter: bool = False  # also for one category or some products (line measures)


def _whole(value: Any) -> Values:
    return {"": None if value is None else float(value)}


async def _financial(ctx: QueryContext, p: CommonParams) -> Any:
    return await ctx.answer(FinancialRevenue(p))


async def _lines(ctx: QueryContext, p: CommonParams, f: Filters, field: str) -> Values:
    """Line revenue, units or orders of one category (sales/categories) or of the products named
    (sales/products, summed; orders: those of each product, summed)."""
    wide = replace(p, limit=ALL)
    if f.category is not None:
        categories = await ctx.answer(SalesCategories(wide))
        row = next((i for i in categories.items if i.key == f.category), None)
        return _whole(getattr(row, field) if row is not None else 0)
    products = await ctx.answer(SalesProducts(wide))
    rows = [i for i in products.items if i.key in set(f.product_ids)]
    return _whole(sum(getattr(r, field) for r in rows))


def _order_or_line(order_field: str, line_field: str) -> Reader:
    async def read(ctx: QueryContext, p: CommonParams, f: Filters) -> Values:
        if f.category is not None or f.product_ids:
            return await _lines(ctx, p, f, line_field)
        return _whole(getattr((await _financial(ctx, p)).totals, order_field))

    return read


def _financial_field(field: str) -> Reader:
    async def read(ctx: QueryContext, p: CommonParams, f: Filters) -> Values:
        return _whole(getattr((await _financial(ctx, p)).totals, field))

    return read


def _dashboard_kpi(field: str) -> Reader:
    async def read(ctx: QueryContext, p: CommonParams, f: Filters) -> Values:
        if field == "units" and (f.category is not None or f.product_ids):
            return await _lines(ctx, p, f, "units")
        return _whole(getattr((await ctx.answer(Dashboard(p))).kpis, field))

    return read


def _payments(section: str, field: str) -> Reader:
    async def read(ctx: QueryContext, p: CommonParams, f: Filters) -> Values:
        return _whole(getattr(getattr(await ctx.answer(FinancialPayments(p)), section), field))

    return read


async def _conversion(ctx: QueryContext, p: CommonParams, f: Filters) -> Values:
    steps = (await ctx.answer(Conversion(p))).steps
    return _whole(steps[-1].conversion if steps else None)


def _search(field: str) -> Reader:
    async def read(ctx: QueryContext, p: CommonParams, f: Filters) -> Values:
        return _whole(getattr(await ctx.answer(SiteSearch(p)), field))

    return read


def _inventory(field: str) -> Reader:
    async def read(ctx: QueryContext, p: CommonParams, f: Filters) -> Values:
        items = (await ctx.answer(ProductInventory(replace(p, limit=ALL), sort="key"))).items
        wanted = set(f.product_ids)
        return {
            i.key: None if getattr(i, field) is None else float(getattr(i, field))
            for i in items
            if i.in_catalog and i.active is not False and (not wanted or i.key in wanted)
        }

    return read


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            "orders",
            "Orders",
            "count",
            True,
            "financial/revenue totals.orders (sales/categories or sales/products orders with a category or product "
            "filter)",
            _order_or_line("orders", "orders"),
            category_filter=True,
        ),
        Measure(
            "gross_revenue",
            "Gross revenue",
            "money",
            True,
            "financial/revenue totals.gross_revenue (line revenue of sales/categories or sales/products with a "
            "category or product filter)",
            _order_or_line("gross_revenue", "gross_revenue"),
            category_filter=True,
        ),
        Measure(
            "net_revenue",
            "Net revenue",
            "money",
            True,
            "financial/revenue totals.net_revenue",
            _financial_field("net_revenue"),
        ),
        Measure(
            "refunds",
            "Refunds",
            "money",
            False,
            "financial/revenue totals.refunds (refunded value of the window's sales)",
            _financial_field("refunds"),
        ),
        Measure("aov", "Average order value", "money", True, "dashboard kpis.aov", _dashboard_kpi("aov")),
        Measure(
            "units",
            "Units sold",
            "count",
            True,
            "dashboard kpis.units (line units with a category or product filter)",
            _dashboard_kpi("units"),
            category_filter=True,
        ),
        Measure(
            "new_customers",
            "New customers",
            "count",
            True,
            "dashboard kpis.new_customers",
            _dashboard_kpi("new_customers"),
        ),
        Measure(
            "conversion",
            "Conversion (view to purchase)",
            "rate",
            True,
            "users/conversion: the last step's conversion",
            _conversion,
        ),
        Measure(
            "payment_success_rate",
            "Payment success rate",
            "rate",
            True,
            "financial/payments payments.success_rate",
            _payments("payments", "success_rate"),
        ),
        Measure(
            "payment_failures",
            "Failed payments",
            "count",
            False,
            "financial/payments payments.failed",
            _payments("payments", "failed"),
        ),
        Measure(
            "refunds_issued",
            "Refunds issued",
            "count",
            False,
            "financial/payments refunds.count",
            _payments("refunds", "count"),
        ),
        Measure("searches", "Searches", "count", True, "products/search searches", _search("searches")),
        Measure(
            "zero_result_search_rate",
            "Zero-result search rate",
            "rate",
            False,
            "products/search zero_result_rate",
            _search("zero_result_rate"),
        ),
        Measure(
            "stock",
            "Stock",
            "count",
            True,
            "products/inventory items[].stock, per product",
            _inventory("stock"),
            per_product=True,
        ),
        Measure(
            "days_of_cover",
            "Days of cover",
            "number",
            True,
            "products/inventory items[].days_of_cover, per product (stock / average daily units over the window)",
            _inventory("days_of_cover"),
            per_product=True,
        ),
    )
}


async def measure_values(ctx: QueryContext, measure: Measure, params: CommonParams, filters: Filters) -> Values:
    """The measure's value(s) for `params` (the window, store and channel)."""
    return await measure.read(ctx, replace(params, channel=filters.channel), filters)
