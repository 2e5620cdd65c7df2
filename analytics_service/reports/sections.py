"""The report sections shared by several report types: tables (and their charts) built from
one analytics response each, the API's values unchanged (docs/reports.md, "Report types")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..analytics import breakdowns, financial, lifecycle, sales, users
from ..analytics.params import CommonParams, Period
from .labels import DASHBOARD_KPIS, TREND_MEASURES, bar, col, columns, growth_columns, key_col, line, series_key, table
from .model import NO_DATA, Chart, Column, Table
from .periods import compare_label, last_day

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# A product's sales in the period, as the product tables show them (after the product id).
PRODUCT_SALES_COLUMNS = ("name", "units", "gross_revenue", "orders", "avg_price", "gross_profit", "margin")


def revenue_trend_table(
    p: CommonParams, trends: sales.RevenueTrendsResponse, name: str = "revenue_trend", title: str = "Revenue trend"
) -> tuple[Table, Chart]:
    t = table(name, title, columns(series_key(p), *TREND_MEASURES), trends.series)
    return t, line(name, title, "gross_revenue", "net_revenue")


def top_products_table(items: Sequence[sales.ProductItem], by: str = "revenue") -> tuple[Table, Chart]:
    measure = "gross_revenue" if by == "revenue" else "units"
    title = "Top products by revenue" if by == "revenue" else "Top products by units"
    name = "top_products" if by == "revenue" else "top_products_by_units"
    t = table(name, title, columns(key_col("Product id"), "name", "gross_revenue", "units", "orders"), items)
    return t, bar(name, title, measure, category="name")


def product_sales_table(p: CommonParams, r: breakdowns.SalesProductsResponse) -> tuple[Table, Chart]:
    names = (*PRODUCT_SALES_COLUMNS, "share", *growth_columns(p))
    t = table("top_products", "Top products by revenue", columns(key_col("Product id"), *names), r.items)
    return t, bar("top_products", "Top products by revenue", "gross_revenue", category="name")


def categories_table(p: CommonParams, r: breakdowns.SalesCategoriesResponse) -> tuple[Table, Chart]:
    t = table(
        "categories",
        "Revenue by category",
        columns(key_col("Category"), "gross_revenue", "units", "orders", "share", *growth_columns(p)),
        r.items,
    )
    return t, bar("categories", "Revenue by category", "gross_revenue")


def geographic_table(p: CommonParams, r: breakdowns.SalesGeographicResponse) -> Table:
    return table(
        "geographic",
        f"Revenue by {r.level}",
        columns(key_col(r.level.capitalize()), "gross_revenue", "orders", "customers", "share", *growth_columns(p)),
        r.items,
    )


def status_table(r: sales.SalesOrdersResponse) -> Table:
    return table(
        "orders_by_status",
        "Orders placed by current status",
        columns(key_col("Status", "label"), col("count", "Orders")),
        r.by_status,
    )


def segments_table(name: str, title: str, r: lifecycle.SegmentsResponse, sheet: str | None = None) -> Table:
    if r.type in ("rfm", "new_returning"):
        cols = columns(key_col("Segment", "label"), "customers", "share", "orders", "monetary")
    else:
        label = {"device": "Device", "source": "Source", "country": "Country"}[r.type]
        cols = columns(key_col(label, "text" if r.type == "country" else "label"), "actors", "share")
    return table(name, title, cols, r.segments, sheet=sheet)


def retention_table(name: str, r: lifecycle.RetentionResponse) -> Table:
    """Cohorts as rows, retention per later week or month as columns (empty where not reached yet)."""
    unit = "Week" if r.granularity == "week" else "Month"
    width = max((len(c.retention) for c in r.cohorts), default=0)
    cols = [
        key_col("Cohort", "date", name="cohort"),
        col("size"),
        *(Column(f"{unit.lower()}_{k}", f"{unit} {k}", "rate") for k in range(width)),
    ]
    rows = [[c.cohort, c.size, *c.retention, *([None] * (width - len(c.retention)))] for c in r.cohorts]
    basis = "customers by first sale" if r.basis == "orders" else "actors by first activity"
    return Table(name=name, title=f"{unit}ly retention ({basis})", columns=cols, rows=rows, sheet=f"{unit}ly retention")


def funnel_table(r: lifecycle.ConversionResponse) -> tuple[Table, Chart]:
    t = table(
        "funnel",
        "Conversion funnel",
        columns(key_col("Step", "label", name="step"), "actors", "conversion", "step_conversion"),
        r.steps,
    )
    return t, bar("funnel", "Conversion funnel", "actors", category="step")


def comparison_table(
    periods: Sequence[tuple[str, Period, Mapping[str, Any]]],
    changes: Sequence[Mapping[str, Any]],
) -> Table:
    """The dashboard KPIs as rows: their value in this period, then for each compared period
    (`periods[1:]`, with their `comparison` in `changes`) its value and the change.

    A compared period without data shows its values as they are (0) and no change.
    """
    (label, period, values), compared = periods[0], periods[1:]
    cols = [key_col("Metric", name="metric"), Column("current", _period_header(label, period), "measure")]
    for (name, before, _), _c in zip(compared, changes):
        cols += [Column(f"{_slug(name)}", _period_header(name, before), "measure")]
        cols += [Column(f"{_slug(name)}_change", "Change", "change")]
    rows = []
    for n in DASHBOARD_KPIS:
        row: list[Any] = [col(n).label, values[n]]
        for (_, _, before_values), c in zip(compared, changes):
            change = c.get(f"{n}_change_pp", c.get(f"{n}_growth_pct")) if c.get("has_data") else NO_DATA
            row += [before_values[n], change]
        rows.append(row)
    return Table(
        "period_comparison",
        "Comparison with earlier periods",
        cols,
        rows,
        row_measures=list(DASHBOARD_KPIS),
        sheet="Period comparison",
    )


def _period_header(label: str, period: Period) -> str:
    return f"{label} ({period.start.date().isoformat()} – {last_day(period).isoformat()})"


def _slug(label: str) -> str:
    return label.lower().replace(" ", "_")


def profit_and_loss(
    revenue: financial.FinancialRevenueResponse, profit: financial.FinancialProfitResponse, compare: str
) -> Table:
    """Gross revenue down to net profit, then what was billed on top, with the comparison's values."""
    lines: list[tuple[str, str, financial.FinancialRevenueResponse | financial.FinancialProfitResponse]] = [
        ("Gross revenue", "gross_revenue", revenue),
        ("Order discounts", "order_discounts", revenue),
        ("Refunds", "refunds", revenue),
        ("Net revenue", "net_revenue", revenue),
        ("Cost of goods", "cogs", profit),
        ("Gross profit", "gross_profit", profit),
        ("Expenses", "expenses", profit),
        ("Net profit", "net_profit", profit),
        ("Shipping charged", "shipping", revenue),
        ("Tax collected", "tax", revenue),
        ("Total billed", "total_billed", revenue),
    ]
    rows = []
    for label, name, source in lines:
        compared = source.comparison or {}
        rows.append([label, getattr(source.totals, name), compared.get(name), compared.get(f"{name}_growth_pct")])
    previous = compare_label(compare).capitalize() or "Previous"
    cols = [
        key_col("Line", name="line"),
        Column("amount", "Amount", "money"),
        Column("previous", previous, "money"),
        Column("growth_pct", "Change %", "change"),
    ]
    return Table("profit_and_loss", "Profit and loss", cols, rows, row_measures=[name for _, name, _ in lines])


def payments_table(r: financial.FinancialPaymentsResponse) -> Table:
    return table(
        "payments_by_method",
        "Sales by payment method",
        columns(
            key_col("Payment method", "label"),
            "orders",
            "gross_revenue",
            "share",
            "payments_succeeded",
            "payments_failed",
            "success_rate",
        ),
        r.by_method,
    )


def category_profit_table(r: financial.FinancialProfitResponse) -> Table:
    return table(
        "profit_by_category",
        "Line profit by category (before order discounts and refunds)",
        columns(key_col("Category"), "gross_revenue", "cogs", "gross_profit", "margin", "share"),
        r.by_category,
        sheet="Profit by category",
    )


def expenses_table(r: financial.FinancialExpensesResponse) -> Table:
    return table(
        "expenses_by_category",
        "Expenses by category",
        columns(key_col("Expense category", "label"), "amount", col("count", "Records"), "share"),
        r.by_category,
    )


def monthly_table(
    p: CommonParams, trends: sales.RevenueTrendsResponse, profit: financial.FinancialProfitResponse
) -> Table:
    """Month by month: revenue/trends and financial/profit series (interval=month) side by side."""
    by_key = {point.key: point for point in profit.series}
    cols = columns(
        series_key(p, "month"),
        "gross_revenue",
        "net_revenue",
        "orders",
        "aov",
        "gross_profit",
        "expenses",
        "net_profit",
        "net_margin",
    )
    rows = []
    for point in trends.series:
        merged = {**by_key[point.key].model_dump(), **point.model_dump()}
        rows.append([merged[c.name] for c in cols])
    return Table("monthly", "Month by month", cols, rows)


def heatmap_table(r: users.BehaviorResponse) -> Table:
    """The weekday x hour heatmap as 7 rows of 24 local hours."""
    grid = {(c.weekday, c.hour): c.count for c in r.heatmap}
    cols = [key_col("Weekday", name="weekday"), *(Column(f"h{h:02d}", f"{h:02d}", "count") for h in range(24))]
    rows = [[WEEKDAYS[d], *(grid.get((d, h), 0) for h in range(24))] for d in range(7)]
    return Table(
        "activity_heatmap", "Activity by local weekday and hour", cols, rows, sheet="Activity by weekday and hour"
    )
