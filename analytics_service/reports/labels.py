"""The vocabulary of reports: each measure's label and kind, columns, KPIs, charts and notes.

A measure keeps the API's field name (docs/reports.md, "Formats": the API's field names
are the CSV headers); its label and kind (money, count, rate, ...) tell renderers how to
show it. Machine values (event types, expense categories, payment methods, ...) have human
labels too (`value_label`). The notes define, in the report itself, every measure it shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ..analytics.comparison import up_is_good
from ..analytics.params import CommonParams
from .model import Chart, Column, Kpi, Table, ValueKind
from .periods import compare_label, period_label

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
    "spend": ("Spend", "money"),
    "cac": ("Customer acquisition cost", "money"),
    "unattributed_revenue": ("Revenue without a campaign", "money"),
    # counts
    "orders": ("Orders", "count"),
    "unattributed_orders": ("Orders without a campaign", "count"),
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
    "conversion_rate": ("Conversion (orders / sessions)", "rate"),
    "roas": ("Return on ad spend (x)", "number"),
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


# Human labels of the machine values reports show (anything else: `value_label`'s rule).
VALUE_LABELS: dict[str, str] = {
    # payment methods
    "card": "Card",
    "paypal": "PayPal",
    "pix": "Pix",
    "boleto": "Boleto",
    "gift_card": "Gift card",
    "bank_transfer": "Bank transfer",
    "apple_pay": "Apple Pay",
    "google_pay": "Google Pay",
    "cod": "Cash on delivery",
    # channels and sources
    "web": "Web",
    "mobile_app": "Mobile app",
    "marketplace": "Marketplace",
    "google_ads": "Google Ads",
    "meta_ads": "Meta Ads",
    "tiktok_ads": "TikTok Ads",
    "email": "Email",
    "seo": "Organic search",
    "direct": "Direct",
    "tiktok": "TikTok",
    "cpc": "CPC",
    "cpm": "CPM",
    "(none)": "(none)",
    "unknown": "Unknown",
    # RFM and lifecycle segments
    "at_risk": "At risk",
    "cant_lose": "Can't lose",
    "new_customers": "New customers",
    "need_attention": "Need attention",
    "about_to_sleep": "About to sleep",
    "potential_loyalists": "Potential loyalists",
    "loyal_customers": "Loyal customers",
    "new": "New",
    "returning": "Returning",
}


def value_label(value: str) -> str:
    """The human label of a machine value: `VALUE_LABELS`, else words from its parts
    ("product_view" -> "Product view", "payment_fees" -> "Payment fees"); text with spaces or
    capitals is already a label and stays as it is."""
    if value in VALUE_LABELS:
        return VALUE_LABELS[value]
    if not value or " " in value or value != value.lower() or not any(c.isalpha() for c in value):
        return value
    words = value.replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize()


def col(name: str, label: str | None = None, kind: ValueKind | None = None) -> Column:
    """A column of a measure (label and kind from MEASURES); `<m>_previous`, `<m>_growth_pct`
    and `<m>_change_pp` are the comparison columns of measure m."""
    if name.endswith("_growth_pct"):
        base = MEASURES[name.removesuffix("_growth_pct")][0]
        return Column(name, label or f"{base}, change %", kind or "pct")
    if name.endswith("_change_pp"):
        base = MEASURES[name.removesuffix("_change_pp")][0]
        return Column(name, label or f"{base}, change (pp)", kind or "pp")
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
    return () if p.compare == "none" else ("gross_revenue_previous", "gross_revenue_growth_pct", "share_change_pp")


def _value(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name)


def table(name: str, title: str, cols: Sequence[Column], items: Iterable[Any], sheet: str | None = None) -> Table:
    """A table whose rows are the items' values of the columns, as the API returns them."""
    rows = [[_value(i, c.name) for c in cols] for i in items]
    return Table(name=name, title=title, columns=list(cols), rows=rows, sheet=sheet)


def kpis(
    values: BaseModel | Mapping[str, Any],
    names: Iterable[str],
    comparison: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Kpi]:
    """KPIs from a response's values, with the previous value and change figures of
    `comparison` (the endpoints' `{<name>: previous, <name>_growth_pct, <name>_change_pp,
    has_data, up_is_good}`) when there is one."""
    data = values.model_dump() if isinstance(values, BaseModel) else values
    compared = comparison or {}
    directions = compared.get("up_is_good") or {}
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
                change_pp=compared.get(f"{name}_change_pp"),
                has_data=bool(compared.get("has_data", True)),
                up_is_good=directions.get(name, up_is_good(name)),
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

# The definitions a report states in its notes, so that it reads on its own.
NOTE_MONEY = (
    "Money is in {currency}, the store's base currency (amounts in other currencies are converted at "
    "ingest with the record's exchange rate). Periods are whole local days in the report's time zone; a "
    "period's end is the last day shown."
)
NOTE_SALES = (
    "Sales are orders that are paid, processing, shipped, delivered or refunded (cancelled, pending and "
    "failed orders are not). Gross revenue = sum over the sales' lines of quantity x unit price - line "
    "discount. Net revenue = gross revenue - order discounts - refunds. Average order value = (gross "
    "revenue - order discounts) / orders. Units = quantities sold."
)
NOTE_PROFIT = (
    "Cost of goods = quantity x unit cost over the sale lines with a known cost. Gross profit = net "
    "revenue - cost of goods; net profit = gross profit - the expenses dated in the period. Gross and net "
    "margin = gross and net profit / net revenue."
)
NOTE_CUSTOMERS = (
    "Customers are distinct customers with a sale in the period; new customers made their first sale "
    "ever in it. RFM scores each customer 1-5 on recency, frequency and order value within the period."
)
NOTE_ACTIVITY = (
    "Actors are signed-in users, else anonymous visitors. Daily, weekly and monthly active users are the "
    "mean number of distinct actors per day, week and month; stickiness = daily / monthly active users. "
    "A session's bounce is a session with a single activity record. Activity carries no sales channel."
)
NOTE_FUNNEL = (
    "The funnel counts actors who did each step and every step before it in the period, in any order; "
    "conversion is from the first step, step conversion from the step before."
)
NOTE_PRODUCTS = (
    "Product revenue is the line revenue of the product's sale lines; margin = (line revenue - line cost) "
    "/ line revenue over lines with a known cost; view to purchase = viewers who bought / viewers."
)
NOTE_INVENTORY = (
    "Stock, reorder point and stock value (stock x unit cost) are the latest catalog records, now; units, "
    "revenue and cost of goods are the period's sales. Days of cover = stock / units sold per day; low "
    "stock: stock at or below the reorder point; slow mover: in stock and no unit sold; ABC class: A = the "
    "products making the first 80 % of gross revenue, B the next 15 %, C the rest."
)
NOTE_CAMPAIGNS = (
    "Attribution is last touch: a sale belongs to the campaign of its utm.campaign, the last campaign the "
    "customer came through before buying (its channel: utm source / medium). Spend = the expenses booked "
    "with that campaign and dated in the period. Return on ad spend = gross revenue / spend; customer "
    "acquisition cost = spend / new customers, where a new customer is one whose first sale ever is one of "
    "the campaign's sales in the period; conversion = orders / sessions that arrived with the campaign. "
    "Sales without a campaign are listed as unattributed. The sales channel filter, when given, applies to "
    "the sales only."
)
NOTE_CHANGE = (
    "Change % = (current - previous) / |previous| x 100, so a minus sign always means lower: a loss "
    "that grows is a negative change. Rates, margins and shares change in percentage points (pp). "
    "Green means good news and red bad news for that figure (a rise in refunds, costs or cancellations "
    "is red). 'No data' means the compared period holds no record; a dash means there is nothing to "
    "compare (previous value 0)."
)


def money_note(currency: str) -> str:
    return NOTE_MONEY.format(currency=currency)


def comparison_note(p: CommonParams) -> list[str]:
    """Which period the changes compare with (a whole month with the previous whole month, ...),
    and how a change reads."""
    if p.compare == "none":
        return []
    previous = p.period.previous(p.compare)
    unit = p.period.calendar_unit()
    rule = (
        f" (the {'ISO week' if unit == 'week' else unit} before)"
        if unit and p.compare == "previous_period"
        else f" (the same {'ISO week' if unit == 'week' else unit} a year earlier)"
        if unit
        else ""
    )
    return [f"Changes compare with the {compare_label(p.compare)}, {period_label(previous)}{rule}.", NOTE_CHANGE]
