"""Financial: revenue from gross to billed, profit after cogs and expenses, expenses, payments.

Order-level money comes from the orders index (amounts precomputed at ingest), line-level
(category) money from the order-items index, expenses from the expenses index, payment
outcomes from the payment events. Every Elasticsearch body a query here sends is built in
this module, in its query object's `requests()` and `*_request` methods, from the pieces
of analytics/shared.py. Definitions: docs/metrics.md "Orders and money" and "Financial".

Expenses are placed in time by their calendar `date`, stored as a date (UTC midnight).
An expense dated `d` belongs to a period when the start of day `d` in the request's time
zone lies inside the period: for whole-day periods that is `start_date <= d < end_date`.
The index is therefore filtered by local dates, not by instants, and a UTC
date_histogram over the dates is mapped to the period's bucket keys (for `hour` buckets,
a day's expenses go to the first hour of that local day).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from pydantic import Field

from ..es.indices import EVENTS, EXPENSES, ORDER_ITEMS, ORDERS
from .comparison import comparison_period, previous_comparison, previous_period
from .fields import (
    AnalyticsResponse,
    BucketKey,
    Cogs,
    ComparisonPeriod,
    PeriodOut,
    ResponsePart,
    RevenueSums,
    SaleCount,
    TotalsComparison,
)
from .params import CommonParams, Period
from .requests import Composite, Search, terms_source
from .runner import AnalyticsQuery, QueryContext
from .shared import (
    NONE_KEY,
    agg_value,
    aggregations,
    bucket_series,
    by_key,
    doc_count,
    keyed,
    money,
    money_sums,
    only,
    order_sums,
    order_sums_request,
    ranked,
    ratio,
    sales_query,
    sum_aggs,
    total_hits,
)


class SeriesKey(ResponsePart):
    key: BucketKey


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
    return {
        "bool": {
            "filter": [
                {"range": {"date": {"gte": first.isoformat(), "lt": last.isoformat(), "format": "yyyy-MM-dd"}}},
                *params.filters(None),
            ]
        }
    }


EXPENSE_AMOUNT = sum_aggs({"expenses": "amount"})


def expenses_request(params: CommonParams, period: Period, *, series: bool) -> Search:
    """The expenses' total and count and, with `series`, a UTC calendar histogram of their
    dates (a day histogram for hour buckets; read by `expense_series`)."""
    aggs: dict[str, Any] = dict(EXPENSE_AMOUNT)
    if series:
        aggs["series"] = {
            "date_histogram": {
                "field": "date",
                "time_zone": "UTC",
                "min_doc_count": 1,
                "calendar_interval": "day" if period.interval == "hour" else period.interval,
            },
            "aggs": EXPENSE_AMOUNT,
        }
    return Search(EXPENSES, {"query": expenses_query(params, period), "aggs": aggs})


def expense_series(period: Period, aggs: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{API key: {"expenses", "count"}} from the UTC date histogram of `expenses_request`."""
    out: dict[str, dict[str, float]] = {}
    for b in aggs.get("series", {}).get("buckets", []):
        day = datetime.fromtimestamp(b["key"] / 1000, UTC).date()
        key = period.key_of(int(_day_start(day, period).timestamp() * 1000))
        row = out.setdefault(key, {"expenses": 0.0, "count": 0})
        row["expenses"] += agg_value(b, "expenses")
        row["count"] += b["doc_count"]
    return out


# -- financial/revenue ----------------------------------------------------------------


class FinancialRevenueTotals(RevenueSums):
    shipping: float
    """sum of shipping_amount"""
    tax: float
    """sum of tax_amount"""
    total_billed: float
    """gross_revenue - order_discounts + shipping + tax"""
    orders: SaleCount


class FinancialRevenuePoint(FinancialRevenueTotals, SeriesKey):
    """A bucket: its key first, then the totals' fields."""


class FinancialRevenueResponse(AnalyticsResponse):
    totals: FinancialRevenueTotals
    """over the period's sales"""
    series: list[FinancialRevenuePoint]
    """every bucket of the period, zeros when empty"""
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


REVENUE_SUMS = ("gross_revenue", "order_discounts", "refunds", "net_revenue", "shipping", "tax")


def revenue_totals(aggs: dict[str, Any], orders: int) -> FinancialRevenueTotals:
    v = {name: agg_value(aggs, name) for name in REVENUE_SUMS}
    billed = v["gross_revenue"] - v["order_discounts"] + v["shipping"] + v["tax"]
    return FinancialRevenueTotals(**{k: money(x) for k, x in v.items()}, total_billed=money(billed), orders=orders)


@dataclass(frozen=True)
class FinancialRevenue(AnalyticsQuery[FinancialRevenueResponse]):
    """The period's revenue totals and series; with `compare`, the comparison period's totals."""

    params: CommonParams
    name: ClassVar = "financial/revenue"

    def sales_request(self, period: Period, *, series: bool) -> Search:
        """The sums over the period's sales and, with `series`, per bucket."""
        totals = order_sums(*REVENUE_SUMS)
        return order_sums_request(self.params, period, totals, totals if series else None)

    def requests(self) -> dict[str, Search | Composite]:
        previous = previous_period(self.params)
        return only(
            {
                "sales": self.sales_request(self.params.period, series=True),
                "previous_sales": previous and self.sales_request(previous, series=False),
            }
        )

    @staticmethod
    def totals(response: dict[str, Any]) -> FinancialRevenueTotals:
        return revenue_totals(aggregations(response), total_hits(response))

    async def run(self, ctx: QueryContext) -> FinancialRevenueResponse:
        p = self.params
        a = await ctx.fetch(self.requests())
        totals = self.totals(a["sales"])
        series = bucket_series(
            p.period,
            aggregations(a["sales"]),
            lambda key, b: FinancialRevenuePoint(key=key, **revenue_totals(b, int(b["doc_count"])).model_dump()),
        )
        return FinancialRevenueResponse(
            period=PeriodOut.of(p.period),
            totals=totals,
            series=series,
            comparison=previous_comparison(totals, a.get("previous_sales"), self.totals, total_hits),
            comparison_period=comparison_period(p),
        )


# -- financial/profit -----------------------------------------------------------------


class ProfitTotals(ResponsePart):
    net_revenue: float
    """gross_revenue - order_discounts - refunds of sales"""
    cogs: Cogs
    gross_profit: float
    """net_revenue - cogs"""
    gross_margin: float | None
    """gross_profit / net_revenue (null when net_revenue is 0)"""
    expenses: float
    """sum of expense amounts dated in the period"""
    net_profit: float
    """gross_profit - expenses"""
    net_margin: float | None
    """net_profit / net_revenue (null when net_revenue is 0)"""
    lines_without_cost: int
    """sale lines without a unit_cost (left out of cogs)"""


class ProfitPoint(ProfitTotals, SeriesKey):
    """A bucket: its key first, then the totals' fields."""


class CategoryProfit(ResponsePart):
    key: str = Field(description=f"product category of the line ('{NONE_KEY}' for lines without one)")
    gross_revenue: float
    """sum of line revenue"""
    cogs: float
    """sum of line cogs (lines with a known cost)"""
    gross_profit: float
    """line-level: gross_revenue - cogs, before order discounts and refunds"""
    margin: float | None
    """gross_profit / gross_revenue"""
    share: float | None
    """the category's share of gross_revenue"""


class Unallocated(ResponsePart):
    order_discounts: float
    """order-level discounts, not allocated to categories"""
    refunds: float
    """refunds, not allocated to categories"""


class FinancialProfitResponse(AnalyticsResponse):
    totals: ProfitTotals
    """over the whole period"""
    series: list[ProfitPoint]
    """every bucket of the period, zeros when empty"""
    by_category: list[CategoryProfit]
    """line-level profit per category, by gross_revenue desc then key; every category"""
    unallocated: Unallocated = Field(
        description="order-level amounts left out of by_category: sum(by_category.gross_profit) "
        "- order_discounts - refunds = totals.gross_profit"
    )
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


PROFIT_SUMS = ("net_revenue", "cogs", "lines_without_cost")


def profit_values(net: float, cogs: float, expenses: float, lines_without_cost: float) -> dict[str, Any]:
    gross_profit = net - cogs
    net_profit = gross_profit - expenses
    return {
        "net_revenue": money(net),
        "cogs": money(cogs),
        "gross_profit": money(gross_profit),
        "gross_margin": ratio(gross_profit, net),
        "expenses": money(expenses),
        "net_profit": money(net_profit),
        "net_margin": ratio(net_profit, net),
        "lines_without_cost": int(lines_without_cost),
    }


@dataclass(frozen=True)
class FinancialProfit(AnalyticsQuery[FinancialProfitResponse]):
    """Profit totals and series, line-level profit by category; with `compare`, the comparison
    period's totals (its order sums and expense total, no series)."""

    params: CommonParams
    name: ClassVar = "financial/profit"

    def orders_request(self, period: Period, *, current: bool) -> Search:
        """The profit sums over the period's sales; for the current period also the unallocated
        order discounts and refunds, and the profit sums per bucket."""
        totals = order_sums(*PROFIT_SUMS)
        if not current:
            return order_sums_request(self.params, period, totals)
        return order_sums_request(self.params, period, {**totals, **order_sums("order_discounts", "refunds")}, totals)

    def categories_request(self) -> Composite:
        """Line revenue and line cogs per category over the period's sale lines (every category)."""
        return keyed(
            ORDER_ITEMS,
            sales_query(self.params),
            "category",
            sum_aggs({"gross_revenue": "line_revenue", "cogs": "line_cogs"}),
        )

    def requests(self) -> dict[str, Search | Composite]:
        p = self.params
        previous = previous_period(p)
        return only(
            {
                "orders": self.orders_request(p.period, current=True),
                "expenses": expenses_request(p, p.period, series=True),
                "categories": self.categories_request(),
                "previous_orders": previous and self.orders_request(previous, current=False),
                "previous_expenses": previous and expenses_request(p, previous, series=False),
            }
        )

    @staticmethod
    def totals(orders: dict[str, Any], spent: dict[str, Any]) -> ProfitTotals:
        return ProfitTotals(
            **profit_values(
                agg_value(orders, "net_revenue"),
                agg_value(orders, "cogs"),
                agg_value(spent, "expenses"),
                agg_value(orders, "lines_without_cost"),
            )
        )

    async def run(self, ctx: QueryContext) -> FinancialProfitResponse:
        p = self.params
        a = await ctx.fetch(self.requests())
        orders, spent = aggregations(a["orders"]), aggregations(a["expenses"])
        totals = self.totals(orders, spent)
        expenses = expense_series(p.period, spent)
        series = bucket_series(
            p.period,
            orders,
            lambda key, b: ProfitPoint(
                key=key,
                **profit_values(
                    agg_value(b, "net_revenue"),
                    agg_value(b, "cogs"),
                    expenses.get(key, {}).get("expenses", 0.0),
                    agg_value(b, "lines_without_cost"),
                ),
            ),
        )
        categories = {
            key: (agg_value(b, "gross_revenue"), agg_value(b, "cogs")) for key, b in by_key(a["categories"]).items()
        }
        whole = sum(revenue for revenue, _ in categories.values())
        items = [
            CategoryProfit(
                key=key,
                gross_revenue=money(revenue),
                cogs=money(cogs),
                gross_profit=money(revenue - cogs),
                margin=ratio(revenue - cogs, revenue),
                share=ratio(revenue, whole),
            )
            for key, (revenue, cogs) in categories.items()
        ]
        return FinancialProfitResponse(
            period=PeriodOut.of(p.period),
            totals=totals,
            series=series,
            by_category=ranked(items, lambda item: categories[item.key][0]),
            unallocated=Unallocated(**money_sums(orders, ("order_discounts", "refunds"))),
            comparison=previous_comparison(
                totals,
                a.get("previous_orders"),
                lambda r: self.totals(aggregations(r), aggregations(a["previous_expenses"])),
                lambda r: total_hits(r) + total_hits(a["previous_expenses"]),
            ),
            comparison_period=comparison_period(p),
        )


# -- financial/expenses ---------------------------------------------------------------


class ExpenseTotals(ResponsePart):
    expenses: float
    """sum of expense amounts (base currency) dated in the period"""
    count: int
    """number of expense records"""


class ExpensePoint(ExpenseTotals, SeriesKey):
    """A bucket: its key first, then the totals' fields."""


class ExpenseItem(ResponsePart):
    key: str
    """the category or channel"""
    amount: float
    """sum of expense amounts"""
    count: int
    """number of expense records"""
    share: float | None
    """amount / total expenses"""


class FinancialExpensesResponse(AnalyticsResponse):
    totals: ExpenseTotals
    """over the expenses dated in the period"""
    by_category: list[ExpenseItem]
    """every category, by amount desc then key"""
    by_channel: list[ExpenseItem] = Field(
        description=f"every channel, by amount desc then key; '{NONE_KEY}' holds expenses without a channel"
    )
    series: list[ExpensePoint] = Field(
        description="every bucket of the period; an expense counts in the bucket holding the start of its "
        "date in `tz` (for hour buckets: the first hour of that day)"
    )
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


@dataclass(frozen=True)
class FinancialExpenses(AnalyticsQuery[FinancialExpensesResponse]):
    """Expense totals, series and breakdowns by category and channel; with `compare`, the
    comparison period's totals (no series)."""

    params: CommonParams
    name: ClassVar = "financial/expenses"

    def items_request(self, field: str) -> Composite:
        """The amount and count of the period's expenses per value of `field` (every value)."""
        return keyed(EXPENSES, expenses_query(self.params, self.params.period), field, sum_aggs({"amount": "amount"}))

    def requests(self) -> dict[str, Search | Composite]:
        p = self.params
        previous = previous_period(p)
        return only(
            {
                "expenses": expenses_request(p, p.period, series=True),
                "by_category": self.items_request("category"),
                "by_channel": self.items_request("channel"),
                "previous_expenses": previous and expenses_request(p, previous, series=False),
            }
        )

    @staticmethod
    def totals(response: dict[str, Any]) -> ExpenseTotals:
        return ExpenseTotals(expenses=money(agg_value(aggregations(response), "expenses")), count=total_hits(response))

    @staticmethod
    def items(buckets: list[dict[str, Any]], whole: float) -> list[ExpenseItem]:
        rows = by_key(buckets)
        amounts = {key: agg_value(b, "amount") for key, b in rows.items()}
        items = [
            ExpenseItem(
                key=key, amount=money(amounts[key]), count=int(b["doc_count"]), share=ratio(amounts[key], whole)
            )
            for key, b in rows.items()
        ]
        return ranked(items, lambda item: amounts[item.key])

    async def run(self, ctx: QueryContext) -> FinancialExpensesResponse:
        p = self.params
        a = await ctx.fetch(self.requests())
        aggs = aggregations(a["expenses"])
        whole = agg_value(aggs, "expenses")
        by_bucket = expense_series(p.period, aggs)
        series = [
            ExpensePoint(
                key=key,
                expenses=money(by_bucket.get(key, {}).get("expenses", 0.0)),
                count=int(by_bucket.get(key, {}).get("count", 0)),
            )
            for key in p.period.bucket_keys()
        ]
        totals = self.totals(a["expenses"])
        return FinancialExpensesResponse(
            period=PeriodOut.of(p.period),
            totals=totals,
            by_category=self.items(a["by_category"], whole),
            by_channel=self.items(a["by_channel"], whole),
            series=series,
            comparison=previous_comparison(totals, a.get("previous_expenses"), self.totals, total_hits),
            comparison_period=comparison_period(p),
        )


# -- financial/payments ---------------------------------------------------------------

PAYMENT_EVENTS = ("payment_succeeded", "payment_failed", "refund_issued", "chargeback_opened")


class MethodItem(ResponsePart):
    key: str = Field(description=f"payment method ('{NONE_KEY}' when an order or event carries none)")
    orders: int
    """sales paid with the method (the order's payment.method)"""
    gross_revenue: float
    """gross revenue of those sales"""
    share: float | None
    """the method's share of gross_revenue"""
    payments_succeeded: int
    """payment_succeeded events with the method"""
    payments_failed: int
    """payment_failed events with the method"""
    success_rate: float | None
    """succeeded / (succeeded + failed); null without attempts"""


class PaymentAttempts(ResponsePart):
    succeeded: int
    """payment_succeeded events in the period"""
    failed: int
    """payment_failed events in the period"""
    success_rate: float | None
    """succeeded / (succeeded + failed)"""


class RefundSummary(ResponsePart):
    count: int
    """refund_issued events in the period"""
    value: float
    """sum of their value (base currency)"""


class ChargebackSummary(ResponsePart):
    count: int
    """chargeback_opened events in the period"""
    value: float
    """sum of their value (base currency)"""
    rate: float | None
    """chargebacks / payment_succeeded events in the period"""


class PaymentTotals(ResponsePart):
    orders: int
    """sales placed in the period"""
    gross_revenue: float
    """their gross revenue"""
    payments_succeeded: int
    """payment_succeeded events"""
    payments_failed: int
    """payment_failed events"""
    success_rate: float | None
    """succeeded / (succeeded + failed)"""
    refunds: int
    """refund_issued events"""
    refund_value: float
    """sum of the refund_issued events' value"""
    chargebacks: int
    """chargeback_opened events"""
    chargeback_value: float
    """sum of the chargeback_opened events' value"""
    chargeback_rate: float | None
    """chargebacks / payment_succeeded events"""


class FinancialPaymentsResponse(AnalyticsResponse):
    by_method: list[MethodItem]
    """every method seen on sales or payment events, by gross_revenue desc then key"""
    payments: PaymentAttempts
    """payment events in the period by outcome, every method"""
    refunds: RefundSummary
    """refund_issued events in the period (cash basis, by event time)"""
    chargebacks: ChargebackSummary
    """chargeback_opened events in the period"""
    totals: PaymentTotals
    """the numbers above in one flat object (what `comparison` compares)"""
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


# Count and value of payment events, by event type.
EventSums = Mapping[str, tuple[int, float]]


def payment_totals(orders: int, gross_revenue: float, events: EventSums) -> PaymentTotals:
    succeeded, failed = events.get("payment_succeeded", (0, 0.0))[0], events.get("payment_failed", (0, 0.0))[0]
    refunds, chargebacks = events.get("refund_issued", (0, 0.0)), events.get("chargeback_opened", (0, 0.0))
    return PaymentTotals(
        orders=orders,
        gross_revenue=money(gross_revenue),
        payments_succeeded=succeeded,
        payments_failed=failed,
        success_rate=ratio(succeeded, succeeded + failed),
        refunds=refunds[0],
        refund_value=money(refunds[1]),
        chargebacks=chargebacks[0],
        chargeback_value=money(chargebacks[1]),
        chargeback_rate=ratio(chargebacks[0], succeeded),
    )


@dataclass(frozen=True)
class FinancialPayments(AnalyticsQuery[FinancialPaymentsResponse]):
    """Orders and revenue by the order's payment.method (sales placed in the period); attempts,
    refunds and chargebacks from the payment events timestamped in the period. With `compare`,
    the comparison period's totals (no breakdown by method).

    Events carry no sales channel, so `channel` filters the order numbers only.
    """

    params: CommonParams
    name: ClassVar = "financial/payments"

    def events_query(self, period: Period) -> dict[str, Any]:
        return {
            "bool": {
                "filter": [
                    {"terms": {"event_type": list(PAYMENT_EVENTS)}},
                    *self.params.filters("timestamp", channel_field=None, period=period),
                ]
            }
        }

    def orders_request(self) -> Composite:
        """The period's sales and their gross revenue per payment.method (every method)."""
        return keyed(ORDERS, sales_query(self.params), "payment.method", order_sums("gross_revenue"))

    def events_request(self) -> Composite:
        """Count and value per (event type, method) of the period's payment events: few pairs,
        but the events indices are monthly (one shard each), so they are paged to stay exact."""
        sources = [terms_source("type", "event_type"), terms_source("method", "payment_method", missing=True)]
        return Composite(EVENTS, self.events_query(self.params.period), sources, sum_aggs({"value": "value"}))

    def previous_orders_request(self, period: Period) -> Search:
        """The comparison period's sales and their gross revenue, in total."""
        return order_sums_request(self.params, period, order_sums("gross_revenue"))

    def previous_events_request(self, period: Period) -> Search:
        """Count and value of the comparison period's events per type (filter aggregations: exact)."""
        return Search(
            EVENTS,
            {
                "query": self.events_query(period),
                "aggs": {
                    t: {"filter": {"term": {"event_type": t}}, "aggs": sum_aggs({"value": "value"})}
                    for t in PAYMENT_EVENTS
                },
            },
        )

    def requests(self) -> dict[str, Search | Composite]:
        """`events` is streamed (`run`), the others fetched."""
        previous = previous_period(self.params)
        return only(
            {
                "orders": self.orders_request(),
                "events": self.events_request(),
                "previous_orders": previous and self.previous_orders_request(previous),
                "previous_events": previous and self.previous_events_request(previous),
            }
        )

    @staticmethod
    async def event_pairs(buckets: AsyncIterator[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, float]]:
        """{(event type, method): (count, value)}, the method "(none)" when an event has none."""
        out: dict[tuple[str, str], tuple[int, float]] = {}
        async for b in buckets:
            key = (b["key"]["type"], NONE_KEY if b["key"]["method"] is None else b["key"]["method"])
            count, value = out.get(key, (0, 0.0))
            out[key] = (count + b["doc_count"], value + agg_value(b, "value"))
        return out

    @staticmethod
    def previous_totals(orders: dict[str, Any], events: dict[str, Any]) -> PaymentTotals:
        """The comparison period's totals, from `previous_orders_request` and `previous_events_request`."""
        per_type = aggregations(events)
        by_type = {t: (doc_count(per_type, t), agg_value(per_type.get(t, {}), "value")) for t in PAYMENT_EVENTS}
        return payment_totals(total_hits(orders), agg_value(aggregations(orders), "gross_revenue"), by_type)

    async def run(self, ctx: QueryContext) -> FinancialPaymentsResponse:
        p = self.params
        pairs, a = await ctx.stream_and_fetch(self.requests(), "events", self.event_pairs)
        orders = {key: (int(b["doc_count"]), agg_value(b, "gross_revenue")) for key, b in by_key(a["orders"]).items()}
        by_type: dict[str, tuple[int, float]] = {}
        for (event_type, _), (count, value) in pairs.items():
            before = by_type.get(event_type, (0, 0.0))
            by_type[event_type] = (before[0] + count, before[1] + value)
        methods = set(orders) | {m for (t, m) in pairs if t in ("payment_succeeded", "payment_failed")}
        revenue = {m: orders.get(m, (0, 0.0))[1] for m in methods}
        whole = sum(revenue.values())
        items = []
        for key in methods:
            ok = pairs.get(("payment_succeeded", key), (0, 0.0))[0]
            failed = pairs.get(("payment_failed", key), (0, 0.0))[0]
            items.append(
                MethodItem(
                    key=key,
                    orders=orders.get(key, (0, 0.0))[0],
                    gross_revenue=money(revenue[key]),
                    share=ratio(revenue[key], whole),
                    payments_succeeded=ok,
                    payments_failed=failed,
                    success_rate=ratio(ok, ok + failed),
                )
            )
        totals = payment_totals(sum(n for n, _ in orders.values()), whole, by_type)
        return FinancialPaymentsResponse(
            period=PeriodOut.of(p.period),
            by_method=ranked(items, lambda item: revenue[item.key]),
            payments=PaymentAttempts(
                succeeded=totals.payments_succeeded, failed=totals.payments_failed, success_rate=totals.success_rate
            ),
            refunds=RefundSummary(count=totals.refunds, value=totals.refund_value),
            chargebacks=ChargebackSummary(
                count=totals.chargebacks, value=totals.chargeback_value, rate=totals.chargeback_rate
            ),
            totals=totals,
            comparison=previous_comparison(
                totals,
                a.get("previous_orders"),
                lambda r: self.previous_totals(r, a["previous_events"]),
                lambda r: total_hits(r) + total_hits(a["previous_events"]),
            ),
            comparison_period=comparison_period(p),
        )
