"""Report builders: the analytics endpoints' answers, arranged as a `ReportData`.

Every number in a report comes from the query object an analytics route runs, built
with the same parameters and run the same way (`ctx.answer`, with the route's endpoint
name and cache extras; see `Endpoints`), so a report's numbers are the API's numbers
for the same parameters. Builders only pick, label and arrange what the queries return;
they never compute a measure of their own.

`report_params` validates a request's `parameters` (the common analytics parameters
plus each type's options) and fills in each type's natural period: yesterday, the
last full week (Monday), month or quarter in `tz`, or the last 30 whole days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel

from ..analytics import financial, lifecycle, products, sales, users
from ..analytics.params import MAX_LIMIT, CommonParams, Period, parse_common
from ..analytics.runner import QueryContext
from ..auth import Principal
from ..errors import ApiError
from .model import REPORT_TYPES, Chart, Column, Kpi, ReportData, Table, ValueKind

METRICS_DOC = "docs/metrics.md"
COMMON_KEYS = ("start", "end", "tz", "interval", "store_id", "channel", "compare", "limit")
# Full per-product listings (product_performance, inventory): up to this many rows.
DEFAULT_ROWS, MAX_ROWS = 1000, 100_000
# Customer-behaviour cohorts are weekly up to this many days, monthly beyond.
WEEKLY_COHORTS_MAX_DAYS = 92
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# -- errors -------------------------------------------------------------------------------


def param_error(key: str, message: str) -> ApiError:
    """A 422 naming `parameters.<key>` (the request body's field)."""
    return ApiError(422, f"parameters.{key}: {message}", details=[{"field": f"parameters.{key}", "message": message}])


def _as_parameter_error(error: ApiError) -> ApiError:
    """parse_common's `query.<x>` 422 as `parameters.<x>`; other errors (403 store) unchanged."""
    if error.status != 422:
        return error
    for detail in error.details:
        if isinstance(detail, dict) and str(detail.get("field", "")).startswith("query."):
            key = detail["field"].removeprefix("query.")
            return param_error(key, str(detail.get("message", error.message)))
    return error


# -- options ------------------------------------------------------------------------------

Parser = Callable[[str, Any], Any]


def _choice(*allowed: str) -> Parser:
    def parse(key: str, value: Any) -> str:
        if value not in allowed:
            raise param_error(key, f"must be one of {', '.join(allowed)}")
        return value
    return parse


def _integer(low: int, high: int) -> Parser:
    def parse(key: str, value: Any) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise param_error(key, f"must be an integer between {low} and {high}")
        return value
    return parse


def _steps(key: str, value: Any) -> str:
    """Funnel steps as `a,b,c` (or a list): validated by the conversion route's own parser."""
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise param_error(key, "a comma-separated list (or a JSON list) of activity types")
    try:
        return ",".join(lifecycle.parse_steps(value))
    except ApiError as exc:
        raise _as_parameter_error(exc) from None


@dataclass(frozen=True)
class Option:
    parse: Parser
    default: Any  # a value, or a function of the CommonParams
    help: str

    def default_for(self, params: CommonParams) -> Any:
        return self.default(params) if callable(self.default) else self.default


def _cohort_granularity(params: CommonParams) -> str:
    return "week" if params.period.days <= WEEKLY_COHORTS_MAX_DAYS else "month"


ROWS = Option(_integer(1, MAX_ROWS), DEFAULT_ROWS, "products listed in the full per-product tables")
GEO_LEVEL = Option(_choice("country", "region", "state", "city"), "country", "level of the geographic breakdown")


# -- the report types ----------------------------------------------------------------------


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


Builder = Callable[["Endpoints", CommonParams, dict[str, Any], Sections], Awaitable[None]]


@dataclass(frozen=True)
class ReportType:
    title: str
    natural: str  # yesterday | last_week | last_month | last_quarter | last_30_days
    interval: str
    compare: str
    options: Mapping[str, Option]
    build: Builder
    activity_only: bool = False  # numbers from activity records, which carry no sales channel


# -- periods ------------------------------------------------------------------------------


def _month_start(d: date, months_back: int = 0) -> date:
    total = d.year * 12 + d.month - 1 - months_back
    return date(total // 12, total % 12 + 1, 1)


def natural_dates(natural: str, today: date) -> tuple[date, date] | None:
    """[start, end) local dates of a natural period before `today`; None: parse_common's default
    (the 30 whole days before today)."""
    if natural == "yesterday":
        return today - timedelta(days=1), today
    if natural == "last_week":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday
    if natural == "last_month":
        first = _month_start(today)
        return _month_start(today, 1), first
    if natural == "last_quarter":
        quarter = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return _month_start(quarter, 3), quarter
    return None


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def period_label(period: Period) -> str:
    """A human name for a period: "Tuesday 3 November 2026", "October 2026", "Q3 2026",
    "week of 26 October 2026", else "5 Oct 2026 – 3 Nov 2026" (the last day included)."""
    start, end = period.start, period.end
    if start.time() != time(0) or end.time() != time(0):
        return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({period.tz.key})"
    first, stop = start.date(), end.date()
    if stop - first == timedelta(days=1):
        return f"{first:%A} {first.day} {first:%B %Y}"
    if first.day == 1 and stop == _month_start(first, -1):
        return f"{first:%B %Y}"
    if first.day == 1 and first.month % 3 == 1 and stop == _month_start(first, -3):
        return f"Q{(first.month - 1) // 3 + 1} {first.year}"
    if first.day == 1 and first.month == 1 and stop == date(first.year + 1, 1, 1):
        return str(first.year)
    if first.weekday() == 0 and stop - first == timedelta(days=7):
        return f"week of {first.day} {first:%B %Y}"
    return f"{_day(first)} – {_day(last_day(period))}"


def last_day(period: Period) -> date:
    """The period's last local day (its end is exclusive)."""
    end = period.end
    return end.date() - timedelta(days=1) if end.time() == time(0) else end.date()


def compare_label(compare: str) -> str:
    return {"previous_period": "previous period", "previous_year": "same period last year"}.get(compare, "")


# -- parameters ----------------------------------------------------------------------------


def _text(parameters: Mapping[str, Any], key: str) -> str | None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, str):
        raise param_error(key, "must be a string")
    return value


def _limit(parameters: Mapping[str, Any]) -> int | None:
    value = parameters.get("limit")
    return None if value is None else _integer(1, MAX_LIMIT)("limit", value)


def _parse(parameters: Mapping[str, Any], principal: Principal, spec: ReportType, default_tz: str,
           now: datetime | None, start: str | None, end: str | None) -> CommonParams:
    try:
        return parse_common(
            start=start, end=end, tz=_text(parameters, "tz"), interval=_text(parameters, "interval"),
            store_id=_text(parameters, "store_id"), channel=_text(parameters, "channel"),
            compare=_text(parameters, "compare") or spec.compare, limit=_limit(parameters), principal=principal,
            default_tz=default_tz, default_interval=spec.interval, now=now)
    except ApiError as exc:
        raise _as_parameter_error(exc) from None


def _check_report(spec: ReportType, params: CommonParams) -> None:
    """What only shows when a query runs, checked up front: the series' bucket count, and a
    channel on a report built from activity records."""
    try:
        params.period.date_histogram("created_at")  # raises when there would be too many buckets
        if spec.activity_only:
            users.check_activity_params(params)
    except ApiError as exc:
        raise _as_parameter_error(exc) from None


def options_for(report_type: str, params: CommonParams, given: Mapping[str, Any]) -> dict[str, Any]:
    """The type's options: each given one validated, the others at their default."""
    spec = REPORTS[report_type]
    return {name: option.parse(name, given[name]) if given.get(name) is not None else option.default_for(params)
            for name, option in spec.options.items()}


def report_params(parameters: Mapping[str, Any] | None, principal: Principal, *, report_type: str,
                  default_tz: str = "UTC", now: datetime | None = None) -> tuple[CommonParams, dict[str, Any]]:
    """A report request's `parameters` -> (CommonParams, the type's options).

    The common analytics parameters (start, end, tz, interval, store_id, channel, compare,
    limit) mean what they mean on the endpoints; without start and end the period is the
    type's natural one. Unknown keys and bad values are a 422 naming `parameters.<key>`;
    a key bound to a store asking for another one is a 403.
    """
    if report_type not in REPORTS:
        raise ApiError(422, f"report_type: must be one of {', '.join(REPORT_TYPES)}",
                       details=[{"field": "report_type", "message": f"must be one of {', '.join(REPORT_TYPES)}"}])
    spec = REPORTS[report_type]
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise ApiError(422, "parameters: must be an object", details=[{"field": "parameters",
                                                                      "message": "must be an object"}])
    for key in parameters:
        if key not in COMMON_KEYS and key not in spec.options:
            known = ", ".join((*COMMON_KEYS, *spec.options))
            raise param_error(key, f"unknown parameter for {report_type}; known: {known}")
    now = (now or datetime.now(UTC))
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    start, end = _text(parameters, "start"), _text(parameters, "end")
    params = _parse(parameters, principal, spec, default_tz, now, start, end)
    if start is None and end is None:
        dates = natural_dates(spec.natural, now.astimezone(params.period.tz).date())
        if dates is not None:
            params = _parse(parameters, principal, spec, default_tz, now, dates[0].isoformat(), dates[1].isoformat())
    _check_report(spec, params)
    return params, options_for(report_type, params, parameters)


def resolved_parameters(params: CommonParams, options: Mapping[str, Any]) -> dict[str, Any]:
    """Explicit parameters (period resolved to instants) that `report_params` turns back into
    the same CommonParams whenever it runs: what a queued job should keep, so "yesterday"
    means the day before the request, not before the worker picks it up."""
    out: dict[str, Any] = {
        "start": params.period.start.isoformat(), "end": params.period.end.isoformat(), "tz": params.period.tz.key,
        "interval": params.period.interval, "compare": params.compare, "limit": params.limit}
    if params.store_id is not None:
        out["store_id"] = params.store_id
    if params.channel is not None:
        out["channel"] = params.channel
    return {**out, **options}


# -- running the endpoints' queries ----------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    """The analytics routes' query objects, run as the routes run them: same query object,
    same endpoint name and cache extras for `ctx.answer` (analytics/routers/*.py)."""

    ctx: QueryContext

    # sales routes
    async def dashboard(self, p: CommonParams) -> sales.DashboardResponse:
        return await self.ctx.answer("dashboard", sales.Dashboard(p))

    async def revenue_trends(self, p: CommonParams) -> sales.RevenueTrendsResponse:
        return await self.ctx.answer("revenue/trends", sales.RevenueTrends(p))

    async def top_selling(self, p: CommonParams, by: str = "revenue") -> sales.TopSellingResponse:
        return await self.ctx.answer("products/top-selling", sales.TopSelling(p, by), {"by": by})

    async def sales_orders(self, p: CommonParams) -> sales.SalesOrdersResponse:
        return await self.ctx.answer("sales/orders", sales.SalesOrders(p))

    async def sales_products(self, p: CommonParams, sort: str = "revenue") -> sales.SalesProductsResponse:
        return await self.ctx.answer("sales/products", sales.SalesProducts(p, sort), {"sort": sort})

    async def sales_categories(self, p: CommonParams, level: str = "category",
                               top: int | None = None) -> sales.SalesCategoriesResponse:
        return await self.ctx.answer("sales/categories", sales.SalesCategories(p, level, top),
                                     {"level": level, "top": top})

    async def sales_geographic(self, p: CommonParams, level: str = "country",
                               top: int | None = None) -> sales.SalesGeographicResponse:
        return await self.ctx.answer("sales/geographic", sales.SalesGeographic(p, level, top),
                                     {"level": level, "top": top})

    # financial routes
    async def financial_revenue(self, p: CommonParams) -> financial.FinancialRevenueResponse:
        return await self.ctx.answer("financial/revenue", financial.FinancialRevenue(p))

    async def financial_profit(self, p: CommonParams) -> financial.FinancialProfitResponse:
        return await self.ctx.answer("financial/profit", financial.FinancialProfit(p))

    async def financial_expenses(self, p: CommonParams) -> financial.FinancialExpensesResponse:
        return await self.ctx.answer("financial/expenses", financial.FinancialExpenses(p))

    async def financial_payments(self, p: CommonParams) -> financial.FinancialPaymentsResponse:
        return await self.ctx.answer("financial/payments", financial.FinancialPayments(p))

    # lifecycle routes
    async def retention(self, p: CommonParams, basis: str = "orders",
                        granularity: str = "month") -> lifecycle.RetentionResponse:
        return await self.ctx.answer("users/retention", lifecycle.Retention(p, basis, granularity),  # type: ignore[arg-type]
                                     {"basis": basis, "granularity": granularity})

    async def conversion(self, p: CommonParams, steps: str | None = None) -> lifecycle.ConversionResponse:
        parsed = lifecycle.parse_steps(steps)
        return await self.ctx.answer("users/conversion", lifecycle.Conversion(p, parsed), {"steps": ",".join(parsed)})

    async def segments(self, p: CommonParams, type: str = "rfm") -> lifecycle.SegmentsResponse:
        query: lifecycle.RfmSegments | lifecycle.NewReturning | lifecycle.ActorSegments
        if type == "rfm":
            query = lifecycle.RfmSegments(p)
        elif type == "new_returning":
            query = lifecycle.NewReturning(p)
        else:
            query = lifecycle.ActorSegments(p, type)  # type: ignore[arg-type]
        return await self.ctx.answer("users/segments", query, {"type": type, "include_customers": False,
                                                               "segment": None, "page": 1, "page_size": 100})

    # users routes (activity only: no channel)
    async def engagement(self, p: CommonParams) -> users.EngagementResponse:
        return await self.ctx.answer("users/engagement", users.Engagement(users.check_activity_params(p)))

    async def behavior(self, p: CommonParams) -> users.BehaviorResponse:
        return await self.ctx.answer("users/behavior", users.Behavior(users.check_activity_params(p)))

    # products routes
    async def performance(self, p: CommonParams, sort: str = "revenue") -> products.ProductPerformanceResponse:
        return await self.ctx.answer("products/performance", products.ProductPerformance(p, sort),  # type: ignore[arg-type]
                                     {"sort": sort})

    async def inventory(self, p: CommonParams, sort: str = "revenue", low_stock: bool | None = None,
                        abc_class: str | None = None) -> products.InventoryResponse:
        query = products.ProductInventory(p, sort, low_stock, abc_class)  # type: ignore[arg-type]
        return await self.ctx.answer("products/inventory", query,
                                     {"sort": sort, "low_stock": low_stock, "abc_class": abc_class})

    async def reviews(self, p: CommonParams, min_reviews: int = 3) -> products.ReviewsResponse:
        return await self.ctx.answer("products/reviews", products.ProductReviews(p, min_reviews),
                                     {"min_reviews": min_reviews})


# -- labels, columns, KPIs ----------------------------------------------------------------

# Every measure a report shows: its label and how renderers format it.
MEASURES: dict[str, tuple[str, ValueKind]] = {
    # money
    "gross_revenue": ("Gross revenue", "money"), "net_revenue": ("Net revenue", "money"),
    "aov": ("Average order value", "money"), "gross_profit": ("Gross profit", "money"),
    "order_discounts": ("Order discounts", "money"), "refunds": ("Refunds", "money"),
    "shipping": ("Shipping charged", "money"), "tax": ("Tax collected", "money"),
    "total_billed": ("Total billed", "money"), "cogs": ("Cost of goods", "money"),
    "expenses": ("Expenses", "money"), "net_profit": ("Net profit", "money"), "avg_price": ("Average price", "money"),
    "monetary": ("Order value", "money"), "stock_value": ("Stock value", "money"), "amount": ("Amount", "money"),
    # counts
    "orders": ("Orders", "count"), "units": ("Units", "count"), "customers": ("Customers", "count"),
    "new_customers": ("New customers", "count"), "placed": ("Orders placed", "count"),
    "count": ("Count", "count"), "views": ("Views", "count"), "viewers": ("Viewers", "count"),
    "add_to_carts": ("Add-to-carts", "count"), "viewers_who_bought": ("Viewers who bought", "count"),
    "actors": ("Actors", "count"), "size": ("Cohort size", "count"), "active_users": ("Active users", "count"),
    "sessions": ("Sessions", "count"), "events": ("Activity records", "count"),
    "stock": ("Stock", "count"), "reorder_point": ("Reorder point", "count"),
    "payments_succeeded": ("Payments succeeded", "count"), "payments_failed": ("Payments failed", "count"),
    "products": ("Products", "count"), "low_stock_products": ("Low-stock products", "count"),
    "out_of_stock": ("Out of stock", "count"), "slow_movers": ("Slow movers", "count"),
    "reviews": ("Reviews", "count"), "lines_without_cost": ("Lines without cost", "count"),
    "total_products": ("Products sold", "count"), "rating": ("Rating", "count"),
    # rates (fractions 0..1)
    "share": ("Share", "rate"), "margin": ("Margin", "rate"), "gross_margin": ("Gross margin", "rate"),
    "net_margin": ("Net margin", "rate"), "success_rate": ("Payment success rate", "rate"),
    "conversion": ("Conversion from first step", "rate"), "step_conversion": ("Conversion from previous step", "rate"),
    "cancellation_rate": ("Cancellation rate", "rate"), "refunded_order_rate": ("Refunded order rate", "rate"),
    "repeat_purchase_rate": ("Repeat purchase rate", "rate"), "stickiness": ("Stickiness (DAU/MAU)", "rate"),
    "bounce_rate": ("Bounce rate", "rate"), "view_to_purchase": ("View to purchase", "rate"),
    "chargeback_rate": ("Chargeback rate", "rate"),
    # other numbers
    "dau": ("Daily active users (mean)", "number"), "wau": ("Weekly active users (mean)", "number"),
    "mau": ("Monthly active users (mean)", "number"), "avg_session_seconds": ("Average session (s)", "number"),
    "events_per_session": ("Activity per session", "number"), "days_of_cover": ("Days of cover", "number"),
    "turnover": ("Stock turnover", "number"), "avg_daily_units": ("Units per day", "number"),
    "average_rating": ("Average rating", "number"),
    # flags and classes (shown as the API gives them)
    "low_stock": ("Low stock", "text"), "abc_class": ("ABC class", "text"), "name": ("Name", "text"),
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
    label = {"hour": "Hour", "day": "Date", "week": "Week", "month": "Month", "quarter": "Quarter",
             "year": "Year"}[interval]
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


def kpis(values: BaseModel | Mapping[str, Any], names: Iterable[str],
         comparison: Mapping[str, Any] | None = None, labels: Mapping[str, str] | None = None) -> list[Kpi]:
    """KPIs from a response's values, with the previous value and growth of `comparison`
    (the endpoints' `{<name>: previous, <name>_growth_pct: growth}`) when there is one."""
    data = values.model_dump() if isinstance(values, BaseModel) else values
    compared = comparison or {}
    out = []
    for name in names:
        column = col(name, (labels or {}).get(name))
        out.append(Kpi(name=name, label=column.label, value=data[name], kind=column.kind,
                       previous=compared.get(name), growth_pct=compared.get(f"{name}_growth_pct")))
    return out


def line(table_name: str, title: str, *values: str, category: str = "key") -> Chart:
    return Chart(kind="line", title=title, table=table_name, category=category, values=values)


def bar(table_name: str, title: str, *values: str, category: str = "key") -> Chart:
    return Chart(kind="bar", title=title, table=table_name, category=category, values=values)


DASHBOARD_KPIS = ("gross_revenue", "net_revenue", "orders", "aov", "units", "customers", "new_customers", "gross_profit")
TREND_MEASURES = ("gross_revenue", "net_revenue", "orders", "aov", "units")

# One-line definitions (docs/metrics.md has them all).
NOTE_SALES = ("Sales are orders paid, processing, shipped, delivered or refunded. Gross revenue = sum of line revenue "
              "(quantity x unit price - line discount); net revenue = gross revenue - order discounts - refunds; "
              f"AOV = (gross revenue - order discounts) / orders. Definitions: {METRICS_DOC}.")
NOTE_PROFIT = ("Cost of goods = quantity x unit cost over lines with a known cost; gross profit = net revenue - cost "
               "of goods; net profit = gross profit - expenses dated in the period; margins are profit / net revenue. "
               f"See {METRICS_DOC} (Financial).")
NOTE_CUSTOMERS = ("Customers are distinct customer ids with a sale in the period; new customers made their first sale "
                  "ever in it. RFM scores customers 1-5 by recency, frequency and order value in the period. "
                  f"See {METRICS_DOC} (Customers).")
NOTE_ACTIVITY = ("Actors are users (user_id, else anonymous_id); DAU/WAU/MAU are mean distinct actors per day, week "
                 "and month; the funnel counts actors who did each step and every step before it in the period. "
                 f"Activity carries no sales channel. See {METRICS_DOC} (Activity).")
NOTE_FUNNEL = ("The funnel counts actors (user_id, else anonymous_id) who did each step and every step before it in "
               f"the period, in any order. See {METRICS_DOC} (Activity).")
NOTE_PRODUCTS = ("Product revenue is line revenue of the product's sale lines; margin = (line revenue - line cost) / "
                 "line revenue over lines with a known cost; view to purchase = viewers who bought / viewers. "
                 f"See {METRICS_DOC} (Products and inventory).")
NOTE_INVENTORY = ("Stock, reorder point and stock value (stock x cost) are the latest catalog records, now; units, "
                  "revenue and cost of goods are the period's sales. Days of cover = stock / units per day; low stock: "
                  "stock <= reorder point; slow mover: stock > 0 and no units sold; ABC: A = products making the first "
                  f"80 % of gross revenue, B the next 15 %, C the rest. See {METRICS_DOC} (Products and inventory).")


def comparison_note(p: CommonParams) -> list[str]:
    if p.compare == "none":
        return []
    previous = p.period.previous(p.compare)
    return [(f"Growth compares with the {compare_label(p.compare)}, {period_label(previous)}: "
             "growth % = (current - previous) / previous x 100, empty when previous is 0.")]


def with_limit(p: CommonParams, limit: int) -> CommonParams:
    return replace(p, limit=limit)


def with_interval(p: CommonParams, interval: str) -> CommonParams:
    return p.with_period(replace(p.period, interval=interval))


def with_compare(p: CommonParams, compare: str) -> CommonParams:
    return replace(p, compare=compare)


# -- shared sections -------------------------------------------------------------------------


def revenue_trend_table(p: CommonParams, trends: sales.RevenueTrendsResponse, name: str = "revenue_trend",
                        title: str = "Revenue trend") -> tuple[Table, Chart]:
    t = table(name, title, columns(series_key(p), *TREND_MEASURES), trends.series)
    return t, line(name, title, "gross_revenue", "net_revenue")


def top_products_table(items: Sequence[sales.ProductItem], by: str = "revenue") -> tuple[Table, Chart]:
    measure = "gross_revenue" if by == "revenue" else "units"
    title = "Top products by revenue" if by == "revenue" else "Top products by units"
    name = "top_products" if by == "revenue" else "top_products_by_units"
    t = table(name, title, columns(key_col("Product id"), "name", "gross_revenue", "units", "orders"), items)
    return t, bar(name, title, measure, category="name")


def product_sales_table(p: CommonParams, r: sales.SalesProductsResponse) -> tuple[Table, Chart]:
    names = ("name", "units", "gross_revenue", "orders", "avg_price", "gross_profit", "margin", "share",
             *growth_columns(p))
    t = table("top_products", "Top products by revenue", columns(key_col("Product id"), *names), r.items)
    return t, bar("top_products", "Top products by revenue", "gross_revenue", category="name")


def categories_table(p: CommonParams, r: sales.SalesCategoriesResponse) -> tuple[Table, Chart]:
    t = table("categories", "Revenue by category",
              columns(key_col("Category"), "gross_revenue", "units", "orders", "share", *growth_columns(p)), r.items)
    return t, bar("categories", "Revenue by category", "gross_revenue")


def geographic_table(p: CommonParams, r: sales.SalesGeographicResponse) -> Table:
    return table("geographic", f"Revenue by {r.level}",
                 columns(key_col(r.level.capitalize()), "gross_revenue", "orders", "customers", "share",
                         *growth_columns(p)), r.items)


def status_table(r: sales.SalesOrdersResponse) -> Table:
    return table("orders_by_status", "Orders placed by current status",
                 columns(key_col("Status"), col("count", "Orders")), r.by_status)


def segments_table(name: str, title: str, r: lifecycle.SegmentsResponse) -> Table:
    if r.type in ("rfm", "new_returning"):
        cols = columns(key_col("Segment"), "customers", "share", "orders", "monetary")
    else:
        cols = columns(key_col({"device": "Device", "source": "Source", "country": "Country"}[r.type]),
                       "actors", "share")
    return table(name, title, cols, r.segments)


def retention_table(name: str, r: lifecycle.RetentionResponse) -> Table:
    """Cohorts as rows, retention per later week or month as columns (empty where not reached yet)."""
    unit = "Week" if r.granularity == "week" else "Month"
    width = max((len(c.retention) for c in r.cohorts), default=0)
    cols = [key_col("Cohort", "date", name="cohort"), col("size"),
            *(Column(f"{unit.lower()}_{k}", f"{unit} {k}", "rate") for k in range(width))]
    rows = [[c.cohort, c.size, *c.retention, *([None] * (width - len(c.retention)))] for c in r.cohorts]
    basis = "customers by first sale" if r.basis == "orders" else "actors by first activity"
    return Table(name=name, title=f"{unit}ly retention ({basis})", columns=cols, rows=rows)


def funnel_table(r: lifecycle.ConversionResponse) -> tuple[Table, Chart]:
    t = table("funnel", "Conversion funnel",
              columns(key_col("Step", name="step"), "actors", "conversion", "step_conversion"), r.steps)
    return t, bar("funnel", "Conversion funnel", "actors", category="step")


def comparison_tables(periods: Sequence[tuple[str, Period, Mapping[str, Any]]],
                      growth: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Table]:
    """The dashboard KPIs of each period side by side, and the growth against each comparison."""
    period_cols = [key_col("Period", name="label"), Column("start", "From", "date"), Column("end", "To", "date"),
                   *(col(n) for n in DASHBOARD_KPIS)]
    rows = [[label, period.start.date().isoformat(), last_day(period).isoformat(),
             *(values[n] for n in DASHBOARD_KPIS)] for label, period, values in periods]
    growth_cols = [key_col("Compared with", name="label"), *(col(f"{n}_growth_pct") for n in DASHBOARD_KPIS)]
    growth_rows = [[label, *(c.get(f"{n}_growth_pct") for n in DASHBOARD_KPIS)] for label, c in growth]
    return [Table("period_comparison", "KPIs by period", period_cols, rows),
            Table("growth", "Growth %", growth_cols, growth_rows)]


async def period_comparison(api: Endpoints, p: CommonParams) -> tuple[sales.DashboardResponse, list[Table]]:
    """The dashboard with the report's `compare`, plus a KPI table of this period, the previous
    period and the same period last year (dashboard with compare=previous_period and previous_year)."""
    runs = {c: api.dashboard(with_compare(p, c)) for c in ("previous_period", "previous_year")}
    previous_period, previous_year = await asyncio.gather(*runs.values())
    main = {"previous_period": previous_period, "previous_year": previous_year}.get(p.compare)
    if main is None:
        main = await api.dashboard(p)
    before, year_ago = p.period.previous("previous_period"), p.period.previous("previous_year")
    periods = [
        ("This period", p.period, main.kpis.model_dump()),
        ("Previous period", before, {n: previous_period.comparison[n] for n in DASHBOARD_KPIS}),  # type: ignore[index]
        ("Same period last year", year_ago, {n: previous_year.comparison[n] for n in DASHBOARD_KPIS}),  # type: ignore[index]
    ]
    growth = [(f"Previous period ({period_label(before)})", previous_period.comparison or {}),
              (f"Same period last year ({period_label(year_ago)})", previous_year.comparison or {})]
    return main, comparison_tables(periods, growth)


def profit_and_loss(revenue: financial.FinancialRevenueResponse, profit: financial.FinancialProfitResponse,
                    compare: str) -> Table:
    """Gross revenue down to net profit, then what was billed on top, with the comparison's values."""
    lines = [("Gross revenue", "gross_revenue", revenue), ("Order discounts", "order_discounts", revenue),
             ("Refunds", "refunds", revenue), ("Net revenue", "net_revenue", revenue),
             ("Cost of goods", "cogs", profit), ("Gross profit", "gross_profit", profit),
             ("Expenses", "expenses", profit), ("Net profit", "net_profit", profit),
             ("Shipping charged", "shipping", revenue), ("Tax collected", "tax", revenue),
             ("Total billed", "total_billed", revenue)]
    rows = []
    for label, name, source in lines:
        compared = source.comparison or {}
        rows.append([label, getattr(source.totals, name), compared.get(name), compared.get(f"{name}_growth_pct")])
    previous = compare_label(compare).capitalize() or "Previous"
    cols = [key_col("Line", name="line"), Column("amount", "Amount", "money"), Column("previous", previous, "money"),
            Column("growth_pct", "Growth %", "pct")]
    return Table("profit_and_loss", "Profit and loss", cols, rows)


def payments_table(r: financial.FinancialPaymentsResponse) -> Table:
    return table("payments_by_method", "Sales by payment method",
                 columns(key_col("Payment method"), "orders", "gross_revenue", "share", "payments_succeeded",
                         "payments_failed", "success_rate"), r.by_method)


def category_profit_table(r: financial.FinancialProfitResponse) -> Table:
    return table("profit_by_category", "Line profit by category (before order discounts and refunds)",
                 columns(key_col("Category"), "gross_revenue", "cogs", "gross_profit", "margin", "share"),
                 r.by_category)


def expenses_table(r: financial.FinancialExpensesResponse) -> Table:
    return table("expenses_by_category", "Expenses by category",
                 columns(key_col("Expense category"), "amount", col("count", "Records"), "share"), r.by_category)


def monthly_table(p: CommonParams, trends: sales.RevenueTrendsResponse,
                  profit: financial.FinancialProfitResponse) -> Table:
    """Month by month: revenue/trends and financial/profit series (interval=month) side by side."""
    by_key = {point.key: point for point in profit.series}
    cols = columns(series_key(p, "month"), "gross_revenue", "net_revenue", "orders", "aov", "gross_profit",
                   "expenses", "net_profit", "net_margin")
    rows = []
    for point in trends.series:
        merged = {**by_key[point.key].model_dump(), **point.model_dump()}
        rows.append([merged[c.name] for c in cols])
    return Table("monthly", "Month by month", cols, rows)


# -- builders ---------------------------------------------------------------------------------


async def build_daily_sales(api: Endpoints, p: CommonParams, o: dict[str, Any], out: Sections) -> None:
    dashboard, trends, top, orders = await asyncio.gather(
        api.dashboard(p), api.revenue_trends(p), api.top_selling(p), api.sales_orders(p))
    out.kpis = [*kpis(dashboard.kpis, DASHBOARD_KPIS, dashboard.comparison),
                *kpis(orders, ("placed", "cancellation_rate", "refunded_order_rate"))]
    out.add(*revenue_trend_table(p, trends, title=f"Revenue by {p.period.interval}"))
    out.add(*top_products_table(top.items))
    out.add(status_table(orders))
    out.notes = [NOTE_SALES, *comparison_note(p)]


async def build_weekly_performance(api: Endpoints, p: CommonParams, o: dict[str, Any], out: Sections) -> None:
    dashboard, trends, top, orders, categories, geo, customers = await asyncio.gather(
        api.dashboard(p), api.revenue_trends(p), api.top_selling(p), api.sales_orders(p), api.sales_categories(p),
        api.sales_geographic(p, o["geo_level"]), api.segments(p, "new_returning"))
    out.kpis = [*kpis(dashboard.kpis, DASHBOARD_KPIS, dashboard.comparison),
                *kpis(orders, ("cancellation_rate",)), *kpis(customers, ("repeat_purchase_rate",))]
    out.add(*revenue_trend_table(p, trends, "daily_revenue", f"Revenue by {p.period.interval}"))
    out.add(*top_products_table(top.items))
    out.add(*categories_table(p, categories))
    out.add(geographic_table(p, geo))
    out.add(segments_table("new_vs_returning", "New and returning customers", customers))
    out.notes = [NOTE_SALES, NOTE_CUSTOMERS, *comparison_note(p)]


async def build_monthly_business_review(api: Endpoints, p: CommonParams, o: dict[str, Any], out: Sections) -> None:
    (dashboard, comparison), trends, products_, categories, geo, revenue, profit, expenses, payments, orders, funnel = (
        await asyncio.gather(
            period_comparison(api, p), api.revenue_trends(p), api.sales_products(p),
            api.sales_categories(p), api.sales_geographic(p, o["geo_level"]), api.financial_revenue(p),
            api.financial_profit(p), api.financial_expenses(p), api.financial_payments(p), api.sales_orders(p),
            api.conversion(p)))
    out.kpis = [*kpis(dashboard.kpis, DASHBOARD_KPIS, dashboard.comparison),
                *kpis(profit.totals, ("gross_margin", "expenses", "net_profit", "net_margin"), profit.comparison),
                *kpis(orders, ("cancellation_rate",)),
                *kpis(payments.totals, ("success_rate",), payments.comparison)]
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


async def build_quarterly_executive_summary(api: Endpoints, p: CommonParams, o: dict[str, Any],
                                            out: Sections) -> None:
    monthly = with_interval(p, "month")
    (dashboard, comparison), trends, month_trends, month_profit, profit, categories, products_, retention, rfm = (
        await asyncio.gather(
            period_comparison(api, p), api.revenue_trends(p), api.revenue_trends(monthly),
            api.financial_profit(monthly), api.financial_profit(p), api.sales_categories(p), api.sales_products(p),
            api.retention(p, "orders", "month"), api.segments(p, "rfm")))
    out.kpis = [*kpis(dashboard.kpis, DASHBOARD_KPIS, dashboard.comparison),
                *kpis(profit.totals, ("gross_margin", "expenses", "net_profit", "net_margin"), profit.comparison)]
    for t in comparison:
        out.add(t)
    out.add(monthly_table(p, month_trends, month_profit))
    out.add(*revenue_trend_table(p, trends, "revenue_trend", f"Revenue by {p.period.interval}"))
    out.add(*categories_table(p, categories))
    out.add(*product_sales_table(p, products_))
    out.add(retention_table("retention", retention))
    out.add(segments_table("rfm_segments", "Customers by RFM segment", rfm),
            bar("rfm_segments", "Customers by RFM segment", "customers"))
    out.notes = [NOTE_SALES, NOTE_PROFIT, NOTE_CUSTOMERS, *comparison_note(p)]


async def build_product_performance(api: Endpoints, p: CommonParams, o: dict[str, Any], out: Sections) -> None:
    performance, top, totals, categories, reviews = await asyncio.gather(
        api.performance(with_limit(p, o["rows"]), o["sort"]), api.top_selling(p, "units"), api.sales_products(p),
        api.sales_categories(p), api.reviews(p, o["min_reviews"]))
    out.kpis = [*kpis(performance, ("products",), labels={"products": "Products with sales or views"}),
                *kpis(totals, ("total_products",)),
                *kpis(totals.totals, ("gross_revenue", "units", "cogs", "gross_profit")),
                *kpis({"reviews": reviews.count, "average_rating": reviews.average_rating},
                      ("reviews", "average_rating"))]
    out.add(table("performance", f"Product performance (by {o['sort']})",
                  columns(key_col("Product id"), "name", "units", "gross_revenue", "orders", "avg_price",
                          "gross_profit", "margin", "views", "viewers", "add_to_carts", "view_to_purchase"),
                  performance.items))
    out.add(*top_products_table(top.items, by="units"))
    out.add(*categories_table(p, categories))
    out.add(table("rating_distribution", "Reviews by rating", columns(col("rating"), col("count", "Reviews")),
                  reviews.distribution), bar("rating_distribution", "Reviews by rating", "count", category="rating"))
    out.add(table("top_rated", f"Best-rated products (at least {reviews.min_reviews} reviews)",
                  columns(key_col("Product id"), "name", col("count", "Reviews"), "average_rating"),
                  reviews.products))
    out.notes = [NOTE_PRODUCTS, *comparison_note(p)]


def heatmap_table(r: users.BehaviorResponse) -> Table:
    """The weekday x hour heatmap as 7 rows of 24 local hours."""
    grid = {(c.weekday, c.hour): c.count for c in r.heatmap}
    cols = [key_col("Weekday", name="weekday"), *(Column(f"h{h:02d}", f"{h:02d}", "count") for h in range(24))]
    rows = [[WEEKDAYS[d], *(grid.get((d, h), 0) for h in range(24))] for d in range(7)]
    return Table("activity_heatmap", "Activity by local weekday and hour", cols, rows)


async def build_customer_behavior(api: Endpoints, p: CommonParams, o: dict[str, Any], out: Sections) -> None:
    engagement, behavior, funnel, rfm, new_returning, device, source, retention = await asyncio.gather(
        api.engagement(p), api.behavior(p), api.conversion(p, o["steps"]), api.segments(p, "rfm"),
        api.segments(p, "new_returning"), api.segments(p, "device"), api.segments(p, "source"),
        api.retention(p, o["retention_basis"], o["granularity"]))
    last = funnel.steps[-1]
    out.kpis = [*kpis(engagement, ("active_users", "dau", "wau", "mau", "stickiness", "sessions",
                                   "avg_session_seconds", "bounce_rate", "events_per_session"), engagement.comparison),
                Kpi("funnel_conversion", f"Funnel conversion ({funnel.steps[0].step} to {last.step})",
                    last.conversion, "rate"),
                *kpis(new_returning, ("repeat_purchase_rate",)),
                *kpis({"customers": new_returning.total}, ("customers",))]
    out.add(table("engagement_trend", "Active users and sessions",
                  columns(series_key(p), "active_users", "sessions", "events"), engagement.series),
            line("engagement_trend", "Active users and sessions", "active_users", "sessions"))
    out.add(*funnel_table(funnel))
    out.add(segments_table("rfm_segments", "Customers by RFM segment", rfm),
            bar("rfm_segments", "Customers by RFM segment", "customers"))
    out.add(segments_table("new_vs_returning", "New and returning customers", new_returning))
    out.add(segments_table("device_segments", "Actors by device (first activity in the period)", device))
    out.add(segments_table("source_segments", "Actors by UTM source (first activity in the period)", source))
    out.add(retention_table("retention", retention))
    out.add(table("activity_by_type", "Activity by type", columns(key_col("Activity type"), "count", "share"),
                  behavior.events_by_type))
    out.add(table("top_pages", "Top pages", columns(key_col("Page"), "views", "share"), behavior.top_pages))
    out.add(heatmap_table(behavior))
    out.notes = [NOTE_ACTIVITY, NOTE_CUSTOMERS, *comparison_note(p)]


INVENTORY_COLUMNS = ("name", "stock", "reorder_point", "days_of_cover", "low_stock", "abc_class", "stock_value",
                     "turnover", "units", "gross_revenue")


async def build_inventory(api: Endpoints, p: CommonParams, o: dict[str, Any], out: Sections) -> None:
    rows = with_limit(p, o["rows"])
    everything = with_limit(p, MAX_ROWS)
    main, low, by_value, top_value = await asyncio.gather(
        api.inventory(rows, o["sort"]), api.inventory(rows, "days_of_cover", low_stock=True),
        api.inventory(everything, "stock_value"), api.inventory(p, "stock_value"))
    s = main.summary
    out.kpis = kpis({**s.model_dump(), "low_stock_products": s.low_stock}, (
        "products", "low_stock_products", "out_of_stock", "slow_movers", "stock_value", "units", "gross_revenue",
        "cogs"))
    product = key_col("Product id")
    out.add(table("inventory", f"Inventory (by {o['sort']})", columns(product, *INVENTORY_COLUMNS), main.items))
    out.add(table("abc_classes", "Products by ABC class", columns(key_col("Class"), col("products")),
                  [{"key": c, "products": getattr(s.abc, c)} for c in "ABC"]),
            bar("abc_classes", "Products by ABC class", "products"))
    out.add(table("low_stock", "Low stock (stock at or under the reorder point), by days of cover",
                  columns(product, *(c for c in INVENTORY_COLUMNS if c != "low_stock")), low.items))
    slow = [i for i in by_value.items if i.slow_mover][: o["rows"]]
    out.add(table("slow_movers", "Slow movers (stock, no sales in the period), by stock value",
                  columns(product, "name", "stock", "stock_value", "reorder_point", "abc_class"), slow))
    out.add(table("top_stock_value", "Top products by stock value", columns(product, *INVENTORY_COLUMNS),
                  top_value.items), bar("top_stock_value", "Top products by stock value", "stock_value",
                                        category="name"))
    out.notes = [NOTE_INVENTORY]


REPORTS: dict[str, ReportType] = {
    "daily_sales": ReportType("Daily sales", "yesterday", "hour", "previous_period", {}, build_daily_sales),
    "weekly_performance": ReportType("Weekly performance", "last_week", "day", "previous_period",
                                     {"geo_level": GEO_LEVEL}, build_weekly_performance),
    "monthly_business_review": ReportType("Monthly business review", "last_month", "day", "previous_period",
                                          {"geo_level": GEO_LEVEL}, build_monthly_business_review),
    "quarterly_executive_summary": ReportType("Quarterly executive summary", "last_quarter", "week",
                                              "previous_period", {}, build_quarterly_executive_summary),
    "product_performance": ReportType(
        "Product performance", "last_30_days", "day", "none",
        {"rows": ROWS,
         "sort": Option(_choice("revenue", "units", "views", "margin"), "revenue", "ranking of the performance table"),
         "min_reviews": Option(_integer(1, 100_000), 3, "minimum reviews of a best-rated product")},
        build_product_performance),
    "customer_behavior": ReportType(
        "Customer behaviour", "last_30_days", "day", "none",
        {"steps": Option(_steps, ",".join(lifecycle.DEFAULT_STEPS), "funnel steps, comma-separated activity types"),
         "retention_basis": Option(_choice("orders", "activity"), "orders",
                                   "retention of customers by sales, or of actors by activity"),
         "granularity": Option(_choice("week", "month"), _cohort_granularity,
                               f"retention cohorts: week up to {WEEKLY_COHORTS_MAX_DAYS} days, else month")},
        build_customer_behavior, activity_only=True),
    "inventory": ReportType(
        "Inventory", "last_30_days", "day", "none",
        {"rows": ROWS,
         "sort": Option(_choice("revenue", "units", "stock", "stock_value", "days_of_cover", "turnover", "key"),
                        "revenue", "ranking of the inventory table")},
        build_inventory),
}
assert set(REPORTS) == set(REPORT_TYPES)


async def build_report(report_type: str, params: CommonParams, ctx: QueryContext,
                       options: Mapping[str, Any] | None = None) -> ReportData:
    """The report of `report_type` for `params` (from `report_params`); missing options take
    their defaults."""
    spec = REPORTS[report_type]
    full = {**options_for(report_type, params, {}), **(options or {})}
    out = Sections()
    await spec.build(Endpoints(ctx), params, full, out)
    return ReportData(
        report_type=report_type, title=f"{spec.title} — {period_label(params.period)}", store_id=params.store_id,
        period=params.period.describe(), generated_at=datetime.now(UTC), kpis=out.kpis, tables=out.tables,
        charts=out.charts, notes=out.notes)
