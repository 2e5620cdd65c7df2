"""Report builders: one per report type, the analytics answers arranged as a `ReportData`.

Every number in a report comes from an analytics query object (analytics/*.py), built
with the arguments its route builds it with and run through `ctx.answer` (the routes'
response cache included), so a report's numbers are the API's numbers for the same
parameters (docs/reports.md). Builders only pick, label and arrange what the queries
return; they never compute a measure of their own (definitions: docs/metrics.md).
Parameters and options: parameters.py; shared tables: sections.py; labels: labels.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ..analytics import breakdowns, financial, lifecycle, marketing, products, sales, users
from ..analytics.params import CommonParams
from ..analytics.runner import QueryContext
from .labels import (
    DASHBOARD_KPIS,
    NOTE_ACTIVITY,
    NOTE_CAMPAIGNS,
    NOTE_CUSTOMERS,
    NOTE_FUNNEL,
    NOTE_INVENTORY,
    NOTE_PRODUCTS,
    NOTE_PROFIT,
    NOTE_SALES,
    bar,
    col,
    columns,
    comparison_note,
    key_col,
    kpis,
    line,
    money_note,
    series_key,
    table,
    value_label,
)
from .model import NO_DATA, REPORT_TYPES, Chart, Kpi, ReportData, Table
from .parameters import (
    MAX_ROWS,
    PARAMETERS,
    CustomerBehaviorParameters,
    DailySalesParameters,
    InventoryParameters,
    MarketingCampaignParameters,
    MonthlyBusinessReviewParameters,
    ProductPerformanceParameters,
    QuarterlyExecutiveSummaryParameters,
    ReportParameters,
    WeeklyPerformanceParameters,
    chosen_options,
)
from .periods import period_label
from .sections import (
    PRODUCT_SALES_COLUMNS,
    categories_table,
    category_profit_table,
    comparison_table,
    expenses_table,
    funnel_table,
    geographic_table,
    heatmap_table,
    monthly_table,
    payments_table,
    product_sales_table,
    profit_and_loss,
    retention_table,
    revenue_trend_table,
    segments_table,
    status_table,
    top_products_table,
)

P = TypeVar("P", bound=ReportParameters)


@dataclass
class Sections:
    """What a builder produces; build_report wraps it in a ReportData."""

    kpis: list[Kpi] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, table: Table, *charts: Chart) -> None:
        self.tables.append(table)
        self.charts.extend(charts)


@dataclass(frozen=True)
class ReportType(Generic[P]):
    """A report type: its title, its parameters (the common ones and its options) and its builder."""

    title: str
    parameters: type[P]
    build: Callable[[QueryContext, CommonParams, P, Sections], Awaitable[None]]

    @property
    def options(self) -> tuple[str, ...]:
        """The names of the type's options."""
        return self.parameters.option_names()


def with_limit(p: CommonParams, limit: int) -> CommonParams:
    return replace(p, limit=limit)


def with_interval(p: CommonParams, interval: str) -> CommonParams:
    return p.with_period(replace(p.period, interval=interval))


def with_compare(p: CommonParams, compare: str) -> CommonParams:
    return replace(p, compare=compare)


SalesOverview = tuple[
    sales.DashboardResponse, sales.RevenueTrendsResponse, sales.TopSellingResponse, sales.SalesOrdersResponse
]


def sales_overview(ctx: QueryContext, p: CommonParams) -> asyncio.Future[SalesOverview]:
    """The dashboard, revenue trend, top sellers and orders the sales reports start from (all at once)."""
    return asyncio.gather(
        ctx.answer(sales.Dashboard(p)),
        ctx.answer(sales.RevenueTrends(p)),
        ctx.answer(sales.TopSelling(p)),
        ctx.answer(sales.SalesOrders(p)),
    )


BusinessOverview = tuple[
    tuple[sales.DashboardResponse, list[Table]],
    sales.RevenueTrendsResponse,
    breakdowns.SalesCategoriesResponse,
    breakdowns.SalesProductsResponse,
]
# The profit KPIs the business reviews show after the dashboard's.
PROFIT_KPIS = ("gross_margin", "expenses", "net_profit", "net_margin")


def business_overview(ctx: QueryContext, p: CommonParams) -> asyncio.Future[BusinessOverview]:
    """The period comparison, revenue trend, categories and products the monthly and quarterly
    reviews start from (all at once)."""
    return asyncio.gather(
        period_comparison(ctx, p),
        ctx.answer(sales.RevenueTrends(p)),
        ctx.answer(breakdowns.SalesCategories(p)),
        ctx.answer(breakdowns.SalesProducts(p)),
    )


async def period_comparison(ctx: QueryContext, p: CommonParams) -> tuple[sales.DashboardResponse, list[Table]]:
    """The dashboard with the report's `compare`, plus a table of the KPIs in this period, the
    previous period and the same period last year with the changes (the dashboard with
    compare=previous_period and previous_year; a compared period without data reads "no data")."""
    previous_period, previous_year = await asyncio.gather(
        ctx.answer(sales.Dashboard(with_compare(p, "previous_period"))),
        ctx.answer(sales.Dashboard(with_compare(p, "previous_year"))),
    )
    main = {"previous_period": previous_period, "previous_year": previous_year}.get(p.compare)
    if main is None:
        main = await ctx.answer(sales.Dashboard(p))
    before, year_ago = p.period.previous("previous_period"), p.period.previous("previous_year")

    def compared(response: sales.DashboardResponse) -> dict[str, Any]:
        c = response.comparison or {}
        return {n: c[n] if c.get("has_data") else NO_DATA for n in DASHBOARD_KPIS}

    periods = [
        ("This period", p.period, main.kpis.model_dump()),
        ("Previous period", before, compared(previous_period)),
        ("Same period last year", year_ago, compared(previous_year)),
    ]
    changes = [previous_period.comparison or {}, previous_year.comparison or {}]
    return main, [comparison_table(periods, changes)]


async def build_daily_sales(ctx: QueryContext, p: CommonParams, o: DailySalesParameters, out: Sections) -> None:
    dashboard, trends, top, orders = await sales_overview(ctx, p)
    out.kpis = [
        *kpis(dashboard.kpis, DASHBOARD_KPIS, dashboard.comparison),
        *kpis(orders, ("placed", "cancellation_rate", "refunded_order_rate")),
    ]
    out.add(*revenue_trend_table(p, trends, title=f"Revenue by {p.period.interval}"))
    out.add(*top_products_table(top.items))
    out.add(status_table(orders))
    out.notes = [NOTE_SALES, *comparison_note(p)]


async def build_weekly_performance(
    ctx: QueryContext, p: CommonParams, o: WeeklyPerformanceParameters, out: Sections
) -> None:
    # Every query at once; grouped, as asyncio.gather is typed for up to six awaitables.
    (dashboard, trends, top, orders), (categories, geo, customers) = await asyncio.gather(
        sales_overview(ctx, p),
        asyncio.gather(
            ctx.answer(breakdowns.SalesCategories(p)),
            ctx.answer(breakdowns.SalesGeographic(p, o.geo_level)),
            ctx.answer(lifecycle.NewReturning(p)),
        ),
    )
    out.kpis = [
        *kpis(dashboard.kpis, DASHBOARD_KPIS, dashboard.comparison),
        *kpis(orders, ("cancellation_rate",)),
        *kpis(customers, ("repeat_purchase_rate",)),
    ]
    out.add(*revenue_trend_table(p, trends, "daily_revenue", f"Revenue by {p.period.interval}"))
    out.add(*top_products_table(top.items))
    out.add(*categories_table(p, categories))
    out.add(geographic_table(p, geo))
    out.add(segments_table("new_vs_returning", "New and returning customers", customers))
    out.notes = [NOTE_SALES, NOTE_CUSTOMERS, *comparison_note(p)]


async def build_monthly_business_review(
    ctx: QueryContext, p: CommonParams, o: MonthlyBusinessReviewParameters, out: Sections
) -> None:
    (
        ((dashboard, comparison), trends, categories, products_),
        (geo, orders, funnel),
        (revenue, profit, expenses, payments),
    ) = await asyncio.gather(
        business_overview(ctx, p),
        asyncio.gather(
            ctx.answer(breakdowns.SalesGeographic(p, o.geo_level)),
            ctx.answer(sales.SalesOrders(p)),
            ctx.answer(lifecycle.Conversion(p)),
        ),
        asyncio.gather(
            ctx.answer(financial.FinancialRevenue(p)),
            ctx.answer(financial.FinancialProfit(p)),
            ctx.answer(financial.FinancialExpenses(p)),
            ctx.answer(financial.FinancialPayments(p)),
        ),
    )
    out.kpis = [
        *kpis(dashboard.kpis, DASHBOARD_KPIS, dashboard.comparison),
        *kpis(profit.totals, PROFIT_KPIS, profit.comparison),
        *kpis(orders, ("cancellation_rate",)),
        *kpis(payments.totals, ("success_rate",), payments.comparison),
    ]
    for t in comparison:
        out.add(t)
    out.add(profit_and_loss(revenue, profit, p.compare))
    out.add(*revenue_trend_table(p, trends, "daily_revenue", f"Revenue by {p.period.interval}"))
    out.add(*categories_table(p, categories))
    out.add(category_profit_table(profit))
    out.add(geographic_table(p, geo))
    out.add(*product_sales_table(p, products_))
    out.add(expenses_table(expenses))
    out.add(payments_table(payments))
    out.add(*funnel_table(funnel))
    out.notes = [NOTE_SALES, NOTE_PROFIT, NOTE_FUNNEL, *comparison_note(p)]


async def build_quarterly_executive_summary(
    ctx: QueryContext, p: CommonParams, o: QuarterlyExecutiveSummaryParameters, out: Sections
) -> None:
    monthly = with_interval(p, "month")
    (
        ((dashboard, comparison), trends, categories, products_),
        (month_trends, month_profit, profit, retention, rfm),
    ) = await asyncio.gather(
        business_overview(ctx, p),
        asyncio.gather(
            ctx.answer(sales.RevenueTrends(monthly)),
            ctx.answer(financial.FinancialProfit(monthly)),
            ctx.answer(financial.FinancialProfit(p)),
            ctx.answer(lifecycle.Retention(p, "orders", "month")),
            ctx.answer(lifecycle.RfmSegments(p)),
        ),
    )
    out.kpis = [
        *kpis(dashboard.kpis, DASHBOARD_KPIS, dashboard.comparison),
        *kpis(profit.totals, PROFIT_KPIS, profit.comparison),
    ]
    for t in comparison:
        out.add(t)
    out.add(monthly_table(p, month_trends, month_profit))
    out.add(*revenue_trend_table(p, trends, "revenue_trend", f"Revenue by {p.period.interval}"))
    out.add(*categories_table(p, categories))
    out.add(*product_sales_table(p, products_))
    out.add(retention_table("retention", retention))
    out.add(
        segments_table("rfm_segments", "Customers by RFM segment", rfm),
        bar("rfm_segments", "Customers by RFM segment", "customers"),
    )
    out.notes = [NOTE_SALES, NOTE_PROFIT, NOTE_CUSTOMERS, *comparison_note(p)]


async def build_product_performance(
    ctx: QueryContext, p: CommonParams, o: ProductPerformanceParameters, out: Sections
) -> None:
    performance, top, totals, categories, reviews = await asyncio.gather(
        ctx.answer(products.ProductPerformance(with_limit(p, o.rows), o.sort)),
        ctx.answer(sales.TopSelling(p, "units")),
        ctx.answer(breakdowns.SalesProducts(p)),
        ctx.answer(breakdowns.SalesCategories(p)),
        ctx.answer(products.ProductReviews(p, o.min_reviews)),
    )
    out.kpis = [
        *kpis(performance, ("products",), labels={"products": "Products with sales or views"}),
        *kpis(totals, ("total_products",)),
        *kpis(totals.totals, ("gross_revenue", "units", "cogs", "gross_profit")),
        *kpis({"reviews": reviews.count, "average_rating": reviews.average_rating}, ("reviews", "average_rating")),
    ]
    out.add(
        table(
            "performance",
            f"Product performance (by {value_label(o.sort).lower()})",
            columns(
                key_col("Product id"), *PRODUCT_SALES_COLUMNS, "views", "viewers", "add_to_carts", "view_to_purchase"
            ),
            performance.items,
            sheet="Product performance",
        )
    )
    out.add(*top_products_table(top.items, by="units"))
    out.add(*categories_table(p, categories))
    out.add(
        table(
            "rating_distribution",
            "Reviews by rating",
            columns(col("rating"), col("count", "Reviews")),
            reviews.distribution,
        ),
        bar("rating_distribution", "Reviews by rating", "count", category="rating"),
    )
    out.add(
        table(
            "top_rated",
            f"Best-rated products (at least {reviews.min_reviews} reviews)",
            columns(key_col("Product id"), "name", col("count", "Reviews"), "average_rating"),
            reviews.products,
            sheet="Best-rated products",
        )
    )
    out.notes = [NOTE_PRODUCTS, *comparison_note(p)]


async def build_customer_behavior(
    ctx: QueryContext, p: CommonParams, o: CustomerBehaviorParameters, out: Sections
) -> None:
    activity = users.check_activity_params(p)  # as the users routes: activity has no sales channel
    (engagement, behavior, funnel), (rfm, new_returning, device, source, retention) = await asyncio.gather(
        asyncio.gather(
            ctx.answer(users.Engagement(activity)),
            ctx.answer(users.Behavior(activity)),
            ctx.answer(lifecycle.Conversion(p, lifecycle.parse_steps(o.steps))),
        ),
        asyncio.gather(
            ctx.answer(lifecycle.RfmSegments(p)),
            ctx.answer(lifecycle.NewReturning(p)),
            ctx.answer(lifecycle.ActorSegments(p, "device")),
            ctx.answer(lifecycle.ActorSegments(p, "source")),
            ctx.answer(lifecycle.Retention(p, o.retention_basis, o.cohorts(p))),
        ),
    )
    last = funnel.steps[-1]
    out.kpis = [
        *kpis(
            engagement,
            (
                "active_users",
                "dau",
                "wau",
                "mau",
                "stickiness",
                "sessions",
                "avg_session_seconds",
                "bounce_rate",
                "events_per_session",
            ),
            engagement.comparison,
        ),
        Kpi(
            "funnel_conversion",
            f"Funnel conversion ({value_label(funnel.steps[0].step).lower()} to {value_label(last.step).lower()})",
            last.conversion,
            "rate",
        ),
        *kpis(new_returning, ("repeat_purchase_rate",)),
        *kpis({"customers": new_returning.total}, ("customers",)),
    ]
    out.add(
        table(
            "engagement_trend",
            "Active users and sessions",
            columns(series_key(p), "active_users", "sessions", "events"),
            engagement.series,
        ),
        line("engagement_trend", "Active users and sessions", "active_users", "sessions"),
    )
    out.add(*funnel_table(funnel))
    out.add(
        segments_table("rfm_segments", "Customers by RFM segment", rfm),
        bar("rfm_segments", "Customers by RFM segment", "customers"),
    )
    out.add(segments_table("new_vs_returning", "New and returning customers", new_returning))
    out.add(
        segments_table("device_segments", "Actors by device (first activity in the period)", device, "Actors by device")
    )
    out.add(
        segments_table(
            "source_segments", "Actors by UTM source (first activity in the period)", source, "Actors by source"
        )
    )
    out.add(retention_table("retention", retention))
    out.add(
        table(
            "activity_by_type",
            "Activity by type",
            columns(key_col("Activity type", "label"), "count", "share"),
            behavior.events_by_type,
        )
    )
    out.add(table("top_pages", "Top pages", columns(key_col("Page"), "views", "share"), behavior.top_pages))
    out.add(heatmap_table(behavior))
    out.notes = [NOTE_ACTIVITY, NOTE_CUSTOMERS, *comparison_note(p)]


INVENTORY_COLUMNS = (
    "name",
    "stock",
    "reorder_point",
    "days_of_cover",
    "low_stock",
    "abc_class",
    "stock_value",
    "turnover",
    "units",
    "gross_revenue",
)


async def build_inventory(ctx: QueryContext, p: CommonParams, o: InventoryParameters, out: Sections) -> None:
    rows = with_limit(p, o.rows)
    everything = with_limit(p, MAX_ROWS)
    main, low, by_value, top_value = await asyncio.gather(
        ctx.answer(products.ProductInventory(rows, o.sort)),
        ctx.answer(products.ProductInventory(rows, "days_of_cover", low_stock=True)),
        ctx.answer(products.ProductInventory(everything, "stock_value")),
        ctx.answer(products.ProductInventory(p, "stock_value")),
    )
    s = main.summary
    out.kpis = kpis(
        {**s.model_dump(), "low_stock_products": s.low_stock},
        (
            "products",
            "low_stock_products",
            "out_of_stock",
            "slow_movers",
            "stock_value",
            "units",
            "gross_revenue",
            "cogs",
        ),
    )
    product = key_col("Product id")
    out.add(table("inventory", f"Inventory (by {o.sort})", columns(product, *INVENTORY_COLUMNS), main.items))
    out.add(
        table(
            "abc_classes",
            "Products by ABC class",
            columns(key_col("Class"), col("products")),
            [{"key": c, "products": getattr(s.abc, c)} for c in "ABC"],
        ),
        bar("abc_classes", "Products by ABC class", "products"),
    )
    out.add(
        table(
            "low_stock",
            "Low stock (stock at or under the reorder point), by days of cover",
            columns(product, *(c for c in INVENTORY_COLUMNS if c != "low_stock")),
            low.items,
            sheet="Low stock",
        )
    )
    slow = [i for i in by_value.items if i.slow_mover][: o.rows]
    out.add(
        table(
            "slow_movers",
            "Slow movers (stock, no sales in the period), by stock value",
            columns(product, "name", "stock", "stock_value", "reorder_point", "abc_class"),
            slow,
            sheet="Slow movers",
        )
    )
    out.add(
        table("top_stock_value", "Top products by stock value", columns(product, *INVENTORY_COLUMNS), top_value.items),
        bar("top_stock_value", "Top products by stock value", "stock_value", category="name"),
    )
    out.notes = [NOTE_INVENTORY]


async def build_marketing_campaign(
    ctx: QueryContext, p: CommonParams, o: MarketingCampaignParameters, out: Sections
) -> None:
    r = await ctx.answer(marketing.MarketingCampaigns(p))
    t = r.totals
    out.kpis = [
        *kpis(t, ("spend", "gross_revenue", "orders", "new_customers", "roas", "cac", "conversion_rate")),
        *kpis(
            {"unattributed_orders": r.unattributed.orders, "unattributed_revenue": r.unattributed.gross_revenue},
            ("unattributed_orders", "unattributed_revenue"),
        ),
    ]
    out.add(
        table(
            "campaigns",
            "Campaigns by gross revenue",
            columns(
                key_col("Campaign", name="campaign"),
                key_col("Channel", "label", name="channel"),
                "spend",
                "orders",
                "gross_revenue",
                "new_customers",
                "sessions",
                "conversion_rate",
                "roas",
                "cac",
            ),
            r.items,
        ),
        bar("campaigns", "Gross revenue and spend by campaign", "gross_revenue", "spend", category="campaign"),
    )
    sources = [{"campaign": i.campaign, **u.model_dump()} for i in r.items for u in i.utm]
    out.add(
        table(
            "campaign_sources",
            "Attributed sales by campaign, source and medium",
            columns(
                key_col("Campaign", name="campaign"),
                key_col("Source", "label", name="source"),
                key_col("Medium", "label", name="medium"),
                "orders",
                "gross_revenue",
            ),
            sources,
            sheet="Sales by source and medium",
        )
    )
    out.notes = [NOTE_CAMPAIGNS]


REPORTS: dict[str, ReportType[Any]] = {
    "daily_sales": ReportType("Daily sales", DailySalesParameters, build_daily_sales),
    "weekly_performance": ReportType("Weekly performance", WeeklyPerformanceParameters, build_weekly_performance),
    "monthly_business_review": ReportType(
        "Monthly business review", MonthlyBusinessReviewParameters, build_monthly_business_review
    ),
    "quarterly_executive_summary": ReportType(
        "Quarterly executive summary", QuarterlyExecutiveSummaryParameters, build_quarterly_executive_summary
    ),
    "product_performance": ReportType("Product performance", ProductPerformanceParameters, build_product_performance),
    "customer_behavior": ReportType("Customer behaviour", CustomerBehaviorParameters, build_customer_behavior),
    "inventory": ReportType("Inventory", InventoryParameters, build_inventory),
    "marketing_campaign": ReportType("Marketing campaigns", MarketingCampaignParameters, build_marketing_campaign),
}
assert set(REPORTS) == set(REPORT_TYPES) and all(spec.parameters is PARAMETERS[t] for t, spec in REPORTS.items())


async def build_report(
    report_type: str, params: CommonParams, ctx: QueryContext, options: Mapping[str, Any] | None = None
) -> ReportData:
    """The report of `report_type` for `params` (from `report_params`); missing options take
    their defaults."""
    spec = REPORTS[report_type]
    out = Sections()
    await spec.build(ctx, params, chosen_options(spec.parameters, report_type, options or {}), out)
    currency = ctx.settings.base_currency
    return ReportData(
        report_type=report_type,
        title=f"{spec.title} — {period_label(params.period)}",
        store_id=params.store_id,
        period=params.period.describe(),
        generated_at=datetime.now(UTC),
        kpis=out.kpis,
        tables=out.tables,
        charts=out.charts,
        notes=[money_note(currency), *out.notes],
        currency=currency,
    )
