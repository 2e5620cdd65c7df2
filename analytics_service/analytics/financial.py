"""Financial: revenue from gross to billed, profit after cogs and expenses, expenses, payments.

Order-level money comes from the orders index (amounts precomputed at ingest), line-level
(category) money from the order-items index, expenses from the expenses index, payment
outcomes from the payment events. Definitions: METRICS.md "Orders and money",
"Payments" and docs/metrics.md ("Financial").

Expenses are placed in time by their calendar `date`, stored as a date (UTC midnight).
An expense dated `d` belongs to a period when the start of day `d` in the request's time
zone lies inside the period: for whole-day periods that is `start_date <= d < end_date`.
The index is therefore filtered by local dates, not by instants, and a UTC
date_histogram over the dates is mapped to the period's bucket keys (for `hour` buckets,
a day's expenses go to the first hour of that local day).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..es.indices import EVENTS, EXPENSES, ORDER_ITEMS, ORDERS, IndexFamily
from .params import CommonParams, Period
from .runner import AnalyticsResponse, BucketKey, PeriodOut, QueryContext, agg_value, money, ratio
from .sales import (
    NONE_KEY,
    Cogs,
    GrossRevenue,
    NetRevenue,
    OrderDiscounts,
    Refunds,
    SaleCount,
    TotalsComparison,
    comparison,
    keyed_buckets,
    order_sum_aggs,
    ranked,
    sales_query,
)

_PERIOD_EXAMPLE = {"start": "2026-10-01T00:00:00-04:00", "end": "2026-11-01T00:00:00-04:00",
                   "tz": "America/New_York", "interval": "month"}


# -- shared helpers -------------------------------------------------------------------


class SeriesKey(BaseModel):
    key: BucketKey


def _sums(names: Iterable[str]) -> dict[str, Any]:
    """A subset of the order sums of the sales area (name -> sum aggregation)."""
    aggs = order_sum_aggs()
    return {name: aggs[name] for name in names}


def _series_buckets(period: Period, aggs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A date_histogram's buckets (in the period's zone) by API key."""
    return {period.key_of(b["key"]): b for b in aggs.get("series", {}).get("buckets", [])}


async def sums_by(ctx: QueryContext, family: IndexFamily, query: dict[str, Any], field: str,
                  sums: dict[str, str]) -> dict[str, dict[str, float]]:
    """{value of `field`: {"count", <name>: sum of <field>}} for every value, exact (composite
    paging); documents without the field under "(none)"."""
    buckets = await keyed_buckets(ctx, family, query, field, {n: {"sum": {"field": f}} for n, f in sums.items()})
    return {key: {"count": b["doc_count"], **{n: agg_value(b, n) for n in sums}} for key, b in buckets.items()}


async def compared(params: CommonParams, current: BaseModel,
                   totals_of: Callable[[Period], Awaitable[tuple[Any, ...]]]) -> dict[str, Any] | None:
    """With `compare`: the previous period's totals and growth (None without).

    `totals_of(period)` returns a tuple whose first item is the totals model."""
    if params.compare == "none":
        return None
    previous = (await totals_of(params.period.previous(params.compare)))[0]
    return comparison(current, previous)


# -- expenses: calendar dates ---------------------------------------------------------


def _day_start(day: date, period: Period) -> datetime:
    """00:00 of `day` in the period's zone (the first instant of the day when DST skips midnight)."""
    return datetime.combine(day, time(0), period.tz)


def expense_dates(period: Period) -> tuple[date, date]:
    """[first, last): the dates whose local day starts inside the period."""
    start_utc, end_utc = period.start.astimezone(UTC), period.end.astimezone(UTC)
    first = period.start.date()
    if _day_start(first, period).astimezone(UTC) < start_utc:
        first += timedelta(days=1)
    last = period.end.date()
    if _day_start(last, period).astimezone(UTC) < end_utc:
        last += timedelta(days=1)
    return first, max(first, last)


def expenses_query(params: CommonParams, period: Period) -> dict[str, Any]:
    """Expenses dated in the period (local dates, see the module docstring), of the store.

    `channel` filters the expense's own channel, so with `channel` only the expenses
    attributed to that channel count (rent or salaries have none).
    """
    first, last = expense_dates(period)
    return {"bool": {"filter": [
        {"range": {"date": {"gte": first.isoformat(), "lt": last.isoformat(), "format": "yyyy-MM-dd"}}},
        *params.filters(None),
    ]}}


def expenses_body(params: CommonParams, period: Period) -> dict[str, Any]:
    """Total and a UTC calendar histogram of the dates (day histogram for hour buckets)."""
    amount = {"expenses": {"sum": {"field": "amount"}}}
    return {"query": expenses_query(params, period), "aggs": {
        **amount,
        "series": {"date_histogram": {
            "field": "date", "time_zone": "UTC", "min_doc_count": 1,
            "calendar_interval": "day" if period.interval == "hour" else period.interval,
        }, "aggs": amount},
    }}


def expense_series(period: Period, aggs: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{API key: {"expenses", "count"}} from the UTC date histogram of expenses_body."""
    out: dict[str, dict[str, float]] = {}
    for b in aggs.get("series", {}).get("buckets", []):
        day = datetime.fromtimestamp(b["key"] / 1000, UTC).date()
        key = period.key_of(int(_day_start(day, period).timestamp() * 1000))
        row = out.setdefault(key, {"expenses": 0.0, "count": 0})
        row["expenses"] += agg_value(b, "expenses")
        row["count"] += b["doc_count"]
    return out


# -- financial/revenue ----------------------------------------------------------------


class RevenueTotals(BaseModel):
    gross_revenue: GrossRevenue
    order_discounts: OrderDiscounts
    refunds: Refunds
    net_revenue: NetRevenue
    shipping: float = Field(description="sum of shipping_amount")
    tax: float = Field(description="sum of tax_amount")
    total_billed: float = Field(description="gross_revenue - order_discounts + shipping + tax")
    orders: SaleCount


class RevenuePoint(RevenueTotals, SeriesKey):
    """A bucket: its key first, then the totals' fields."""


class FinancialRevenueResponse(AnalyticsResponse):
    totals: RevenueTotals = Field(description="over the period's sales")
    series: list[RevenuePoint] = Field(description="every bucket of the period, zeros when empty")
    comparison: TotalsComparison = None
    model_config = ConfigDict(json_schema_extra={"example": {
        "period": _PERIOD_EXAMPLE, "cached": False,
        "totals": {"gross_revenue": 48210.5, "order_discounts": 1210.4, "refunds": 930.0, "net_revenue": 46070.1,
                   "shipping": 812.3, "tax": 2870.4, "total_billed": 50682.8, "orders": 412},
        "series": [{"key": "2026-10-01", "gross_revenue": 48210.5, "order_discounts": 1210.4, "refunds": 930.0,
                    "net_revenue": 46070.1, "shipping": 812.3, "tax": 2870.4, "total_billed": 50682.8,
                    "orders": 412}],
        "comparison": {"gross_revenue": 40100.0, "gross_revenue_growth_pct": 20.22}}})


REVENUE_SUMS = ("gross_revenue", "order_discounts", "refunds", "net_revenue", "shipping", "tax")


def revenue_totals(aggs: dict[str, Any], orders: int) -> RevenueTotals:
    v = {name: agg_value(aggs, name) for name in REVENUE_SUMS}
    billed = v["gross_revenue"] - v["order_discounts"] + v["shipping"] + v["tax"]
    return RevenueTotals(**{k: money(x) for k, x in v.items()}, total_billed=money(billed), orders=orders)


@dataclass(frozen=True)
class FinancialRevenue:
    params: CommonParams
    response_model: ClassVar = FinancialRevenueResponse

    def body(self, period: Period) -> dict[str, Any]:
        sums = _sums(REVENUE_SUMS)
        return {"query": sales_query(self.params, period),
                "aggs": {**sums, "series": {**period.date_histogram("created_at"), "aggs": sums}}}

    async def totals(self, ctx: QueryContext, period: Period) -> tuple[RevenueTotals, dict[str, Any]]:
        r = await ctx.search(ORDERS, self.body(period))
        aggs = r.get("aggregations", {})
        return revenue_totals(aggs, int(r["hits"]["total"]["value"])), aggs

    async def run(self, ctx: QueryContext) -> FinancialRevenueResponse:
        p = self.params
        totals, aggs = await self.totals(ctx, p.period)
        buckets = _series_buckets(p.period, aggs)
        series = []
        for key in p.period.keys():
            b = buckets.get(key, {"doc_count": 0})
            series.append(RevenuePoint(key=key, **revenue_totals(b, int(b["doc_count"])).model_dump()))
        return FinancialRevenueResponse(period=PeriodOut.of(p.period), totals=totals, series=series,
                                        comparison=await compared(p, totals, partial(self.totals, ctx)))


# -- financial/profit -----------------------------------------------------------------


class ProfitTotals(BaseModel):
    net_revenue: float = Field(description="gross_revenue - order_discounts - refunds of sales")
    cogs: Cogs
    gross_profit: float = Field(description="net_revenue - cogs")
    gross_margin: float | None = Field(description="gross_profit / net_revenue (null when net_revenue is 0)")
    expenses: float = Field(description="sum of expense amounts dated in the period")
    net_profit: float = Field(description="gross_profit - expenses")
    net_margin: float | None = Field(description="net_profit / net_revenue (null when net_revenue is 0)")
    lines_without_cost: int = Field(description="sale lines without a unit_cost (left out of cogs)")


class ProfitPoint(ProfitTotals, SeriesKey):
    """A bucket: its key first, then the totals' fields."""


class CategoryProfit(BaseModel):
    key: str = Field(description=f"product category of the line ('{NONE_KEY}' for lines without one)")
    gross_revenue: float = Field(description="sum of line revenue")
    cogs: float = Field(description="sum of line cogs (lines with a known cost)")
    gross_profit: float = Field(description="line-level: gross_revenue - cogs, before order discounts and refunds")
    margin: float | None = Field(description="gross_profit / gross_revenue")
    share: float | None = Field(description="the category's share of gross_revenue")


class Unallocated(BaseModel):
    order_discounts: float = Field(description="order-level discounts, not allocated to categories")
    refunds: float = Field(description="refunds, not allocated to categories")


class FinancialProfitResponse(AnalyticsResponse):
    totals: ProfitTotals = Field(description="over the whole period")
    series: list[ProfitPoint] = Field(description="every bucket of the period, zeros when empty")
    by_category: list[CategoryProfit] = Field(
        description="line-level profit per category, by gross_revenue desc then key; every category")
    unallocated: Unallocated = Field(
        description="order-level amounts left out of by_category: sum(by_category.gross_profit) "
                    "- order_discounts - refunds = totals.gross_profit")
    comparison: TotalsComparison = None
    model_config = ConfigDict(json_schema_extra={"example": {
        "period": _PERIOD_EXAMPLE, "cached": False,
        "totals": {"net_revenue": 46070.1, "cogs": 25110.0, "gross_profit": 20960.1, "gross_margin": 0.455,
                   "expenses": 14200.0, "net_profit": 6760.1, "net_margin": 0.1467, "lines_without_cost": 12},
        "series": [{"key": "2026-10-01", "net_revenue": 46070.1, "cogs": 25110.0, "gross_profit": 20960.1,
                    "gross_margin": 0.455, "expenses": 14200.0, "net_profit": 6760.1, "net_margin": 0.1467,
                    "lines_without_cost": 12}],
        "by_category": [{"key": "Electronics", "gross_revenue": 21000.0, "cogs": 13100.0, "gross_profit": 7900.0,
                         "margin": 0.3762, "share": 0.4356}],
        "unallocated": {"order_discounts": 1210.4, "refunds": 930.0},
        "comparison": None}})


PROFIT_SUMS = ("net_revenue", "cogs", "lines_without_cost")


def profit_values(net: float, cogs: float, expenses: float, lines_without_cost: float) -> dict[str, Any]:
    gross_profit = net - cogs
    net_profit = gross_profit - expenses
    return {"net_revenue": money(net), "cogs": money(cogs), "gross_profit": money(gross_profit),
            "gross_margin": ratio(gross_profit, net), "expenses": money(expenses), "net_profit": money(net_profit),
            "net_margin": ratio(net_profit, net), "lines_without_cost": int(lines_without_cost)}


@dataclass(frozen=True)
class FinancialProfit:
    params: CommonParams
    response_model: ClassVar = FinancialProfitResponse

    def orders_body(self, period: Period) -> dict[str, Any]:
        sums = _sums(PROFIT_SUMS)
        return {"query": sales_query(self.params, period), "aggs": {
            **sums, **_sums(("order_discounts", "refunds")),
            "series": {**period.date_histogram("created_at"), "aggs": sums}}}

    def category_query(self) -> dict[str, Any]:
        """Sale lines of the period (order-items index); grouped by `category` in `breakdown`."""
        return sales_query(self.params)

    async def totals(self, ctx: QueryContext, period: Period) -> tuple[ProfitTotals, dict[str, Any], dict[str, Any]]:
        orders = (await ctx.search(ORDERS, self.orders_body(period))).get("aggregations", {})
        spent = (await ctx.search(EXPENSES, expenses_body(self.params, period))).get("aggregations", {})
        totals = ProfitTotals(**profit_values(agg_value(orders, "net_revenue"), agg_value(orders, "cogs"),
                                              agg_value(spent, "expenses"), agg_value(orders, "lines_without_cost")))
        return totals, orders, spent

    async def run(self, ctx: QueryContext) -> FinancialProfitResponse:
        p = self.params
        totals, orders, spent = await self.totals(ctx, p.period)
        buckets, expenses = _series_buckets(p.period, orders), expense_series(p.period, spent)
        series = []
        for key in p.period.keys():
            b = buckets.get(key, {})
            series.append(ProfitPoint(key=key, **profit_values(
                agg_value(b, "net_revenue"), agg_value(b, "cogs"), expenses.get(key, {}).get("expenses", 0.0),
                agg_value(b, "lines_without_cost"))))
        categories = await sums_by(ctx, ORDER_ITEMS, self.category_query(), "category",
                                   {"gross_revenue": "line_revenue", "cogs": "line_cogs"})
        whole = sum(row["gross_revenue"] for row in categories.values())
        items = [CategoryProfit(key=key, gross_revenue=money(row["gross_revenue"]), cogs=money(row["cogs"]),
                                gross_profit=money(row["gross_revenue"] - row["cogs"]),
                                margin=ratio(row["gross_revenue"] - row["cogs"], row["gross_revenue"]),
                                share=ratio(row["gross_revenue"], whole)) for key, row in categories.items()]
        by_category = ranked(items, {key: row["gross_revenue"] for key, row in categories.items()}, None)
        return FinancialProfitResponse(
            period=PeriodOut.of(p.period), totals=totals, series=series, by_category=by_category,
            unallocated=Unallocated(order_discounts=money(agg_value(orders, "order_discounts")),
                                    refunds=money(agg_value(orders, "refunds"))),
            comparison=await compared(p, totals, partial(self.totals, ctx)))


# -- financial/expenses ---------------------------------------------------------------


class ExpenseTotals(BaseModel):
    expenses: float = Field(description="sum of expense amounts (base currency) dated in the period")
    count: int = Field(description="number of expense records")


class ExpensePoint(ExpenseTotals, SeriesKey):
    """A bucket: its key first, then the totals' fields."""


class ExpenseItem(BaseModel):
    key: str = Field(description="the category or channel")
    amount: float = Field(description="sum of expense amounts")
    count: int = Field(description="number of expense records")
    share: float | None = Field(description="amount / total expenses")


class FinancialExpensesResponse(AnalyticsResponse):
    totals: ExpenseTotals = Field(description="over the expenses dated in the period")
    by_category: list[ExpenseItem] = Field(description="every category, by amount desc then key")
    by_channel: list[ExpenseItem] = Field(
        description=f"every channel, by amount desc then key; '{NONE_KEY}' holds expenses without a channel")
    series: list[ExpensePoint] = Field(
        description="every bucket of the period; an expense counts in the bucket holding the start of its "
                    "date in `tz` (for hour buckets: the first hour of that day)")
    comparison: TotalsComparison = None
    model_config = ConfigDict(json_schema_extra={"example": {
        "period": _PERIOD_EXAMPLE, "cached": False,
        "totals": {"expenses": 14200.0, "count": 131},
        "by_category": [{"key": "marketing", "amount": 6100.0, "count": 95, "share": 0.4296}],
        "by_channel": [{"key": "(none)", "amount": 8100.0, "count": 36, "share": 0.5704}],
        "series": [{"key": "2026-10-01", "expenses": 14200.0, "count": 131}],
        "comparison": None}})


@dataclass(frozen=True)
class FinancialExpenses:
    params: CommonParams
    response_model: ClassVar = FinancialExpensesResponse

    def body(self, period: Period) -> dict[str, Any]:
        return expenses_body(self.params, period)

    async def totals(self, ctx: QueryContext, period: Period) -> tuple[ExpenseTotals, dict[str, Any]]:
        r = await ctx.search(EXPENSES, self.body(period))
        aggs = r.get("aggregations", {})
        return ExpenseTotals(expenses=money(agg_value(aggs, "expenses")), count=int(r["hits"]["total"]["value"])), aggs

    async def items(self, ctx: QueryContext, field: str, whole: float) -> list[ExpenseItem]:
        query = expenses_query(self.params, self.params.period)
        rows = await sums_by(ctx, EXPENSES, query, field, {"amount": "amount"})
        items = [ExpenseItem(key=key, amount=money(row["amount"]), count=int(row["count"]),
                             share=ratio(row["amount"], whole)) for key, row in rows.items()]
        return ranked(items, {key: row["amount"] for key, row in rows.items()}, None)

    async def run(self, ctx: QueryContext) -> FinancialExpensesResponse:
        p = self.params
        totals, aggs = await self.totals(ctx, p.period)
        whole = agg_value(aggs, "expenses")
        by_key = expense_series(p.period, aggs)
        series = [ExpensePoint(key=key, expenses=money(by_key.get(key, {}).get("expenses", 0.0)),
                               count=int(by_key.get(key, {}).get("count", 0))) for key in p.period.keys()]
        return FinancialExpensesResponse(
            period=PeriodOut.of(p.period), totals=totals,
            by_category=await self.items(ctx, "category", whole),
            by_channel=await self.items(ctx, "channel", whole),
            series=series, comparison=await compared(p, totals, partial(self.totals, ctx)))


# -- financial/payments ---------------------------------------------------------------

PAYMENT_EVENTS = ("payment_succeeded", "payment_failed", "refund_issued", "chargeback_opened")


class MethodItem(BaseModel):
    key: str = Field(description=f"payment method ('{NONE_KEY}' when an order or event carries none)")
    orders: int = Field(description="sales paid with the method (the order's payment.method)")
    gross_revenue: float = Field(description="gross revenue of those sales")
    share: float | None = Field(description="the method's share of gross_revenue")
    payments_succeeded: int = Field(description="payment_succeeded events with the method")
    payments_failed: int = Field(description="payment_failed events with the method")
    success_rate: float | None = Field(description="succeeded / (succeeded + failed); null without attempts")


class PaymentAttempts(BaseModel):
    succeeded: int = Field(description="payment_succeeded events in the period")
    failed: int = Field(description="payment_failed events in the period")
    success_rate: float | None = Field(description="succeeded / (succeeded + failed)")


class RefundSummary(BaseModel):
    count: int = Field(description="refund_issued events in the period")
    value: float = Field(description="sum of their value (base currency)")


class ChargebackSummary(BaseModel):
    count: int = Field(description="chargeback_opened events in the period")
    value: float = Field(description="sum of their value (base currency)")
    rate: float | None = Field(description="chargebacks / payment_succeeded events in the period")


class PaymentTotals(BaseModel):
    orders: int = Field(description="sales placed in the period")
    gross_revenue: float = Field(description="their gross revenue")
    payments_succeeded: int = Field(description="payment_succeeded events")
    payments_failed: int = Field(description="payment_failed events")
    success_rate: float | None = Field(description="succeeded / (succeeded + failed)")
    refunds: int = Field(description="refund_issued events")
    refund_value: float = Field(description="sum of the refund_issued events' value")
    chargebacks: int = Field(description="chargeback_opened events")
    chargeback_value: float = Field(description="sum of the chargeback_opened events' value")
    chargeback_rate: float | None = Field(description="chargebacks / payment_succeeded events")


class FinancialPaymentsResponse(AnalyticsResponse):
    by_method: list[MethodItem] = Field(description="every method seen on sales or payment events, "
                                                    "by gross_revenue desc then key")
    payments: PaymentAttempts = Field(description="payment events in the period by outcome, every method")
    refunds: RefundSummary = Field(description="refund_issued events in the period (cash basis, by event time)")
    chargebacks: ChargebackSummary = Field(description="chargeback_opened events in the period")
    totals: PaymentTotals = Field(description="the numbers above in one flat object (what `comparison` compares)")
    comparison: TotalsComparison = None
    model_config = ConfigDict(json_schema_extra={"example": {
        "period": _PERIOD_EXAMPLE, "cached": False,
        "by_method": [{"key": "card", "orders": 290, "gross_revenue": 34100.0, "share": 0.7073,
                       "payments_succeeded": 301, "payments_failed": 27, "success_rate": 0.9177}],
        "payments": {"succeeded": 420, "failed": 35, "success_rate": 0.9231},
        "refunds": {"count": 14, "value": 930.0},
        "chargebacks": {"count": 2, "value": 310.5, "rate": 0.0048},
        "totals": {"orders": 412, "gross_revenue": 48210.5, "payments_succeeded": 420, "payments_failed": 35,
                   "success_rate": 0.9231, "refunds": 14, "refund_value": 930.0, "chargebacks": 2,
                   "chargeback_value": 310.5, "chargeback_rate": 0.0048},
        "comparison": None}})


@dataclass(frozen=True)
class PaymentNumbers:
    """Everything payments reports for one period."""

    by_method: list[MethodItem]
    payments: PaymentAttempts
    refunds: RefundSummary
    chargebacks: ChargebackSummary


@dataclass(frozen=True)
class FinancialPayments:
    """Orders and revenue by the order's payment.method (sales placed in the period); attempts,
    refunds and chargebacks from the payment events timestamped in the period.

    Events carry no sales channel, so `channel` filters the order numbers only.
    """

    params: CommonParams
    response_model: ClassVar = FinancialPaymentsResponse

    def orders_query(self, period: Period) -> dict[str, Any]:
        return sales_query(self.params, period)

    def events_query(self, period: Period) -> dict[str, Any]:
        return {"bool": {"filter": [{"terms": {"event_type": list(PAYMENT_EVENTS)}},
                                    *self.params.filters("timestamp", channel_field=None, period=period)]}}

    def events_sources(self) -> list[dict[str, Any]]:
        """(event type, method) pairs: few, but the events indices are monthly (one shard
        each), so they are paged with a composite aggregation to stay exact."""
        return [{"type": {"terms": {"field": "event_type"}}},
                {"method": {"terms": {"field": "payment_method", "missing_bucket": True}}}]

    async def events(self, ctx: QueryContext, period: Period) -> dict[tuple[str, str], tuple[int, float]]:
        """{(event type, method): (count, value)}."""
        out: dict[tuple[str, str], tuple[int, float]] = {}
        async for b in ctx.composite(EVENTS, self.events_query(period), self.events_sources(),
                                     {"value": {"sum": {"field": "value"}}}):
            key = (b["key"]["type"], NONE_KEY if b["key"]["method"] is None else b["key"]["method"])
            count, value = out.get(key, (0, 0.0))
            out[key] = (count + b["doc_count"], value + agg_value(b, "value"))
        return out

    async def numbers(self, ctx: QueryContext, period: Period) -> tuple[PaymentTotals, PaymentNumbers]:
        orders = await sums_by(ctx, ORDERS, self.orders_query(period), "payment.method",
                               {"gross_revenue": "gross_revenue"})
        events = await self.events(ctx, period)

        def of(event_type: str, method: str | None = None) -> tuple[int, float]:
            found = [cv for (t, m), cv in events.items() if t == event_type and method in (None, m)]
            return sum(c for c, _ in found), sum(v for _, v in found)

        methods = set(orders) | {m for (t, m) in events if t in ("payment_succeeded", "payment_failed")}
        revenue = {m: orders.get(m, {}).get("gross_revenue", 0.0) for m in methods}
        whole = sum(revenue.values())
        items = []
        for key in methods:
            ok, failed = of("payment_succeeded", key)[0], of("payment_failed", key)[0]
            items.append(MethodItem(key=key, orders=int(orders.get(key, {}).get("count", 0)),
                                    gross_revenue=money(revenue[key]), share=ratio(revenue[key], whole),
                                    payments_succeeded=ok, payments_failed=failed, success_rate=ratio(ok, ok + failed)))
        by_method = ranked(items, revenue, None)
        succeeded, failed = of("payment_succeeded")[0], of("payment_failed")[0]
        refunds, chargebacks = of("refund_issued"), of("chargeback_opened")
        success_rate, chargeback_rate = ratio(succeeded, succeeded + failed), ratio(chargebacks[0], succeeded)
        found = PaymentNumbers(
            by_method=by_method,
            payments=PaymentAttempts(succeeded=succeeded, failed=failed, success_rate=success_rate),
            refunds=RefundSummary(count=refunds[0], value=money(refunds[1])),
            chargebacks=ChargebackSummary(count=chargebacks[0], value=money(chargebacks[1]), rate=chargeback_rate))
        totals = PaymentTotals(
            orders=int(sum(row["count"] for row in orders.values())), gross_revenue=money(whole),
            payments_succeeded=succeeded, payments_failed=failed, success_rate=success_rate, refunds=refunds[0],
            refund_value=money(refunds[1]), chargebacks=chargebacks[0], chargeback_value=money(chargebacks[1]),
            chargeback_rate=chargeback_rate)
        return totals, found

    async def run(self, ctx: QueryContext) -> FinancialPaymentsResponse:
        p = self.params
        totals, found = await self.numbers(ctx, p.period)
        return FinancialPaymentsResponse(
            period=PeriodOut.of(p.period), by_method=found.by_method, payments=found.payments,
            refunds=found.refunds, chargebacks=found.chargebacks, totals=totals,
            comparison=await compared(p, totals, partial(self.numbers, ctx)))
