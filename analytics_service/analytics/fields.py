"""Response parts every area shares: the period, the response base, and the meaning of the
money and count fields (docs/metrics.md "Orders and money"). Totals are over the period's
sales, series items over their bucket's."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .params import Period

# The key of a series bucket, shared by every `series` item.
BucketKey = Annotated[str, Field(description="local bucket start: YYYY-MM-DD, or ISO datetime with offset for hours")]


class ResponsePart(BaseModel):
    """The base of every response model: a field's description is the docstring under it."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class PeriodOut(ResponsePart):
    start: str
    """period start, local ISO 8601 datetime in `tz`"""
    end: str
    """period end (exclusive)"""
    tz: str
    """IANA time zone of the period and of the bucket keys (default DEFAULT_TIMEZONE)"""
    interval: str
    """bucket size of `series`: hour, day, week (Monday), month, quarter or year"""

    @classmethod
    def of(cls, period: Period) -> PeriodOut:
        return cls(**period.describe())


class AnalyticsResponse(ResponsePart):
    period: PeriodOut
    """the half-open period [start, end) the numbers cover"""
    cached: bool = False
    """true when served from the response cache"""
    as_of: str | None = None
    """when the answer was computed (UTC, ISO 8601): data that arrived after it is not in it"""
    stale: bool = False
    """true when data arrived after `as_of` and this answer was served within CACHE_MAX_STALENESS_SECONDS"""


GrossRevenue = Annotated[
    float, Field(description="sum of line revenue (quantity * unit_price - line discount) over the sale lines")
]
OrderDiscounts = Annotated[float, Field(description="sum of the sales' order-level discount_amount")]
Refunds = Annotated[
    float, Field(description="sum of the sales' refunded_amount (a refunded order without one: its order value)")
]
NetRevenue = Annotated[float, Field(description="gross_revenue - order_discounts - refunds")]

SaleCount = Annotated[int, Field(description="number of sales (orders paid, processing, shipped, delivered, refunded)")]
Aov = Annotated[float | None, Field(description="(gross_revenue - order_discounts) / orders; null without sales")]
Units = Annotated[int, Field(description="units sold: sum of quantity over the sale lines")]
Cogs = Annotated[float, Field(description="sum of quantity * unit_cost over the sale lines with a known cost")]
LinesWithoutCost = Annotated[int, Field(description="sale lines without a unit_cost (left out of cogs and profit)")]

# Line revenue (quantity * unit_price - line discount) of a key's sale lines, and of every sale line.
LineRevenue = Annotated[float, Field(description="sum of line revenue")]
LineRevenueTotal = Annotated[float, Field(description="line revenue of every sale line in the period")]
ProductOrders = Annotated[int, Field(description="distinct sales containing the product")]

# Per-key comparison of the breakdowns (sales/products, categories, geographic).
RevenuePrevious = Annotated[
    float | None,
    Field(description="with compare: the key's gross revenue in the comparison period (0 when it had none)"),
]
RevenueGrowth = Annotated[
    float | None,
    Field(
        description="with compare: (gross_revenue - previous) / abs(previous) * 100; null when the previous value is 0"
    ),
]
ShareChange = Annotated[float | None, Field(description="with compare: the change of `share` in percentage points")]
RevenueComparison = Annotated[
    dict[str, Any] | None,
    Field(
        description="with compare: {gross_revenue: the comparison period's, gross_revenue_growth_pct, has_data: "
        "whether the comparison period has any sale, up_is_good: {gross_revenue: true}}"
    ),
]
# `comparison` of the endpoints whose `compare` compares every total (comparison.comparison).
TotalsComparison = Annotated[
    dict[str, Any] | None,
    Field(
        description="with compare: each KPI's value in the comparison period, `<kpi>_growth_pct` "
        "((current - previous) / abs(previous) * 100, null when previous is 0 or without data), "
        "`<kpi>_change_pp` for rates, margins and shares (percentage points), `has_data` (false when the "
        "comparison period holds no record) and `up_is_good` {<kpi>: whether a rise is good news}"
    ),
]
ComparisonPeriod = Annotated[
    PeriodOut | None,
    Field(description="with compare: the period compared with (a whole calendar unit compares with the previous one)"),
]


class RevenueSums(ResponsePart):
    # From gross to net revenue: the first fields of the totals of sales/revenue and financial/revenue.
    gross_revenue: GrossRevenue
    order_discounts: OrderDiscounts
    refunds: Refunds
    net_revenue: NetRevenue


class SoldProduct(ResponsePart):
    # A product of the period's sale lines, named by its latest one (the items of sales/products,
    # products/top-selling and the dashboard's top_products).
    key: str
    """product_id"""
    name: str | None
    """the name on the product's latest sale line in the period"""
