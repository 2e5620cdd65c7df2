"""The vocabulary of reports: each measure's label and kind, columns, KPIs, charts and notes.

A measure keeps the API's field name (docs/reports.md, "Formats": the API's field names
are the headers); its label and kind (money, count, rate, ...) tell renderers how to show
it. The notes are one-line definitions; docs/metrics.md has them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ..analytics.params import CommonParams
from .model import Chart, Column, Kpi, Table, ValueKind
from .periods import compare_label, period_label

METRICS_DOC = "docs/metrics.md"

# Every measure a report shows: its label and how renderers format it.
MEASURES: dict[str, tuple[str, ValueKind]] = {
    # money
    "gross_revenue": ("Gross revenue", "money"),
    "net_revenue": ("Net revenue", "money"),
    "aov": ("Average order value", "money"),
    "gross_profit": ("Gross profit", "money"),
    "order_discounts": ("Order discounts", "money"),
    "refunds": ("Refunds", "money"),
    "shipping": ("Shipping charged", "money"),
    "tax": ("Tax collected", "money"),
    "total_billed": ("Total billed", "money"),
    "cogs": ("Cost of goods", "money"),
    "expenses": ("Expenses", "money"),
    "net_profit": ("Net profit", "money"),
    "avg_price": ("Average price", "money"),
    "monetary": ("Order value", "money"),
    "stock_value": ("Stock value", "money"),
    "amount": ("Amount", "money"),
    # counts
    "orders": ("Orders", "count"),
    "units": ("Units", "count"),
    "customers": ("Customers", "count"),
    "new_customers": ("New customers", "count"),
    "placed": ("Orders placed", "count"),
    "count": ("Count", "count"),
    "views": ("Views", "count"),
    "viewers": ("Viewers", "count"),
    "add_to_carts": ("Add-to-carts", "count"),
    "viewers_who_bought": ("Viewers who bought", "count"),
    "actors": ("Actors", "count"),
    "size": ("Cohort size", "count"),
    "active_users": ("Active users", "count"),
    "sessions": ("Sessions", "count"),
    "events": ("Activity records", "count"),
    "stock": ("Stock", "count"),
    "reorder_point": ("Reorder point", "count"),
    "payments_succeeded": ("Payments succeeded", "count"),
    "payments_failed": ("Payments failed", "count"),
    "products": ("Products", "count"),
    "low_stock_products": ("Low-stock products", "count"),
    "out_of_stock": ("Out of stock", "count"),
    "slow_movers": ("Slow movers", "count"),
    "reviews": ("Reviews", "count"),
    "lines_without_cost": ("Lines without cost", "count"),
    "total_products": ("Products sold", "count"),
    "rating": ("Rating", "count"),
    # rates (fractions 0..1)
    "share": ("Share", "rate"),
    "margin": ("Margin", "rate"),
    "gross_margin": ("Gross margin", "rate"),
    "net_margin": ("Net margin", "rate"),
    "success_rate": ("Payment success rate", "rate"),
    "conversion": ("Conversion from first step", "rate"),
    "step_conversion": ("Conversion from previous step", "rate"),
    "cancellation_rate": ("Cancellation rate", "rate"),
    "refunded_order_rate": ("Refunded order rate", "rate"),
    "repeat_purchase_rate": ("Repeat purchase rate", "rate"),
    "stickiness": ("Stickiness (DAU/MAU)", "rate"),
    "bounce_rate": ("Bounce rate", "rate"),
    "view_to_purchase": ("View to purchase", "rate"),
    "chargeback_rate": ("Chargeback rate", "rate"),
    # other numbers
    "dau": ("Daily active users (mean)", "number"),
    "wau": ("Weekly active users (mean)", "number"),
    "mau": ("Monthly active users (mean)", "number"),
    "avg_session_seconds": ("Average session (s)", "number"),
    "events_per_session": ("Activity per session", "number"),
    "days_of_cover": ("Days of cover", "number"),
    "turnover": ("Stock turnover", "number"),
    "avg_daily_units": ("Units per day", "number"),
    "average_rating": ("Average rating", "number"),
    # flags and classes (shown as the API gives them)
    "low_stock": ("Low stock", "text"),
    "abc_class": ("ABC class", "text"),
    "name": ("Name", "text"),
}


def col(name: str, label: str | None = None, kind: ValueKind | None = None) -> Column:
    """A column of a measure (label and kind from MEASURES); `<m>_previous` and `<m>_growth_pct`
    are the comparison columns of measure m."""
    if name.endswith("_growth_pct"):
        base = MEASURES[name.removesuffix("_growth_pct")][0]
        return Column(name, label or f"{base} growth %", kind or "pct")
    if name.endswith("_previous"):
        base, base_kind = MEASURES[name.removesuffix("_previous")]
        return Column(name, label or f"{base}, previous", kind or base_kind)
    default_label, default_kind = MEASURES.get(name, (name.replace("_", " ").capitalize(), "number"))
    return Column(name, label or default_label, kind or default_kind)


def key_col(label: str, kind: ValueKind = "text", name: str = "key") -> Column:
    return Column(name, label, kind)


def series_key(p: CommonParams, interval: str | None = None) -> Column:
    """Series keys: a date for day and longer buckets, an ISO datetime with offset (text) for hours."""
    interval = interval or p.period.interval
    label = {"hour": "Hour", "day": "Date", "week": "Week", "month": "Month", "quarter": "Quarter", "year": "Year"}[
        interval
    ]
    return Column("key", label, "text" if interval == "hour" else "date")


def columns(first: Column, *rest: str | Column) -> list[Column]:
    """A key column, then measures by name (or ready-made columns)."""
    return [first, *(c if isinstance(c, Column) else col(c) for c in rest)]


def growth_columns(p: CommonParams) -> tuple[str, ...]:
    """The per-item comparison columns of the breakdowns (present with compare only)."""
    return () if p.compare == "none" else ("gross_revenue_previous", "gross_revenue_growth_pct")


def _value(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name)


def table(name: str, title: str, cols: Sequence[Column], items: Iterable[Any]) -> Table:
    """A table whose rows are the items' values of the columns, as the API returns them."""
    return Table(name=name, title=title, columns=list(cols), rows=[[_value(i, c.name) for c in cols] for i in items])


def kpis(
    values: BaseModel | Mapping[str, Any],
    names: Iterable[str],
    comparison: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Kpi]:
    """KPIs from a response's values, with the previous value and growth of `comparison`
    (the endpoints' `{<name>: previous, <name>_growth_pct: growth}`) when there is one."""
    data = values.model_dump() if isinstance(values, BaseModel) else values
    compared = comparison or {}
    out = []
    for name in names:
        column = col(name, (labels or {}).get(name))
        out.append(
            Kpi(
                name=name,
                label=column.label,
                value=data[name],
                kind=column.kind,
                previous=compared.get(name),
                growth_pct=compared.get(f"{name}_growth_pct"),
            )
        )
    return out


def line(table_name: str, title: str, *values: str, category: str = "key") -> Chart:
    return Chart(kind="line", title=title, table=table_name, category=category, values=values)


def bar(table_name: str, title: str, *values: str, category: str = "key") -> Chart:
    return Chart(kind="bar", title=title, table=table_name, category=category, values=values)


DASHBOARD_KPIS = (
    "gross_revenue",
    "net_revenue",
    "orders",
    "aov",
    "units",
    "customers",
    "new_customers",
    "gross_profit",
)
TREND_MEASURES = ("gross_revenue", "net_revenue", "orders", "aov", "units")

# One-line definitions (docs/metrics.md has them all).
NOTE_SALES = (
    "Sales are orders paid, processing, shipped, delivered or refunded. Gross revenue = sum of line revenue "
    "(quantity x unit price - line discount); net revenue = gross revenue - order discounts - refunds; "
    f"AOV = (gross revenue - order discounts) / orders. Definitions: {METRICS_DOC}."
)
NOTE_PROFIT = (
    "Cost of goods = quantity x unit cost over lines with a known cost; gross profit = net revenue - cost "
    "of goods; net profit = gross profit - expenses dated in the period; margins are profit / net revenue. "
    f"See {METRICS_DOC} (Financial)."
)
NOTE_CUSTOMERS = (
    "Customers are distinct customer ids with a sale in the period; new customers made their first sale "
    "ever in it. RFM scores customers 1-5 by recency, frequency and order value in the period. "
    f"See {METRICS_DOC} (Customers)."
)
NOTE_ACTIVITY = (
    "Actors are users (user_id, else anonymous_id); DAU/WAU/MAU are mean distinct actors per day, week "
    "and month; the funnel counts actors who did each step and every step before it in the period. "
    f"Activity carries no sales channel. See {METRICS_DOC} (Activity)."
)
NOTE_FUNNEL = (
    "The funnel counts actors (user_id, else anonymous_id) who did each step and every step before it in "
    f"the period, in any order. See {METRICS_DOC} (Activity)."
)
NOTE_PRODUCTS = (
    "Product revenue is line revenue of the product's sale lines; margin = (line revenue - line cost) / "
    "line revenue over lines with a known cost; view to purchase = viewers who bought / viewers. "
    f"See {METRICS_DOC} (Products and inventory)."
)
NOTE_INVENTORY = (
    "Stock, reorder point and stock value (stock x cost) are the latest catalog records, now; units, "
    "revenue and cost of goods are the period's sales. Days of cover = stock / units per day; low stock: "
    "stock <= reorder point; slow mover: stock > 0 and no units sold; ABC: A = products making the first "
    f"80 % of gross revenue, B the next 15 %, C the rest. See {METRICS_DOC} (Products and inventory)."
)


def comparison_note(p: CommonParams) -> list[str]:
    if p.compare == "none":
        return []
    previous = p.period.previous(p.compare)
    return [
        (
            f"Growth compares with the {compare_label(p.compare)}, {period_label(previous)}: "
            "growth % = (current - previous) / previous x 100, empty when previous is 0."
        )
    ]
