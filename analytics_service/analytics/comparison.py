"""Comparison with another period (`compare`): which period, and the change figures of every
KPI (docs/metrics.md "Comparison and change").

- `growth_pct = (current - previous) / abs(previous) * 100`, so the sign always says up or
  down (a loss growing from -855 to -2,543 is -197.4 %); null when previous is 0 or the
  compared period holds no record;
- fractions (rates, margins, shares) also change in percentage points, `change_pp`;
- every KPI is "up is good" unless it is named in `UP_IS_BAD`; reports and the dashboard page
  colour a change by that, not by its sign.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..es.indices import IndexFamily
from .params import CommonParams, Period
from .requests import Composite
from .shared import keyed, money, ratio, sales_query, sum_aggs

# KPIs whose rise is bad news (every other KPI's rise is good news).
UP_IS_BAD = frozenset(
    {
        "order_discounts",
        "refunds",
        "refund_value",
        "refund_rate",
        "refunded_order_rate",
        "cancelled",
        "cancellation_rate",
        "expenses",
        "cogs",
        "lines_without_cost",
        "payments_failed",
        "chargebacks",
        "chargeback_value",
        "chargeback_rate",
        "bounce_rate",
        "zero_result_rate",
        "cac",
        "days_without_stock",
        "out_of_stock",
        "low_stock_products",
        "slow_movers",
    }
)
# Fractions that are not named `*_rate`, `*_margin` or `*_share`.
_FRACTION_NAMES = frozenset({"share", "margin", "stickiness", "rate", "conversion"})


def up_is_good(name: str) -> bool:
    """Whether a rise of the KPI `name` is good news (docs/metrics.md "Direction")."""
    return name not in UP_IS_BAD


def is_fraction(name: str) -> bool:
    """Whether the KPI `name` is a fraction 0..1 (a rate, margin or share), which changes in
    percentage points."""
    return name in _FRACTION_NAMES or name.endswith(("_rate", "_margin", "_share"))


def growth_pct(current: float | None, previous: float | None) -> float | None:
    """(current - previous) / abs(previous) * 100; None when either is None or previous is 0."""
    if current is None or previous is None or previous == 0:
        return None
    return round((current - previous) / abs(previous) * 100, 2)


def change_pp(current: float | None, previous: float | None) -> float | None:
    """The change of a fraction in percentage points; None when either is None."""
    if current is None or previous is None:
        return None
    return round((current - previous) * 100, 2)


def previous_period(params: CommonParams) -> Period | None:
    """The comparison period (None without `compare`): Period.previous says which."""
    return params.period.previous(params.compare) if params.compare != "none" else None


def comparison_period(params: CommonParams) -> dict[str, str] | None:
    """A response's `comparison_period` (None without `compare`)."""
    previous = previous_period(params)
    return None if previous is None else previous.describe()


def changes(name: str, current: float | None, previous: float | None, *, has_data: bool) -> dict[str, Any]:
    """`<name>_growth_pct`, and `<name>_change_pp` for a fraction; null without data to compare with."""
    out: dict[str, Any] = {f"{name}_growth_pct": growth_pct(current, previous) if has_data else None}
    if is_fraction(name):
        out[f"{name}_change_pp"] = change_pp(current, previous) if has_data else None
    return out


def comparison(current: BaseModel, previous: BaseModel | None, *, has_data: bool) -> dict[str, Any] | None:
    """A response's `comparison` (None without a `previous`: no `compare`): for every numeric
    field of `current` its previous value and `changes`, then `has_data` (whether the compared
    period holds any record) and `up_is_good` per field."""
    if previous is None:
        return None
    out: dict[str, Any] = {}
    directions: dict[str, bool] = {}
    for name, value in current.model_dump().items():
        if isinstance(value, (int, float)) or value is None:
            prev = getattr(previous, name)
            out[name] = prev
            out.update(changes(name, value, prev, has_data=has_data))
            directions[name] = up_is_good(name)
    return {**out, "has_data": has_data, "up_is_good": directions}


def previous_comparison(
    current: BaseModel,
    previous: dict[str, Any] | None,
    read: Callable[[dict[str, Any]], BaseModel],
    records: Callable[[dict[str, Any]], int],
) -> dict[str, Any] | None:
    """`comparison` of `current` with the comparison period's answer `previous`, read by `read`
    as `current` was, with data when `records(previous)` counts any; None without that answer
    (no `compare`)."""
    if previous is None:
        return None
    return comparison(current, read(previous), has_data=records(previous) > 0)


# -- the comparisons of breakdowns (a gross revenue per key) ------------------------------------


def previous_sums(params: CommonParams, family: IndexFamily, field: str, sum_field: str) -> Composite | None:
    """`sum_field` summed per value of `field` over the sales of the comparison period (None
    without `compare`); read by `shared.sums_by_key(buckets, "r")`."""
    previous = previous_period(params)
    if previous is None:
        return None
    return keyed(family, sales_query(params, previous), field, sum_aggs({"r": sum_field}))


def key_comparison(key: str, current: float, share: float | None, previous: dict[str, float] | None) -> dict[str, Any]:
    """A breakdown row's `gross_revenue_previous`, `gross_revenue_growth_pct` and
    `share_change_pp` (nothing without `compare`). `previous` holds the keys the comparison
    period has sales of."""
    if previous is None:
        return {}
    before = money(previous.get(key, 0.0))
    return {
        "gross_revenue_previous": before,
        "gross_revenue_growth_pct": growth_pct(money(current), before),
        "share_change_pp": change_pp(share, ratio(previous.get(key, 0.0), sum(previous.values()))),
    }


def revenue_comparison(total: float, previous: dict[str, float] | None) -> dict[str, Any] | None:
    """A breakdown's `comparison`: the comparison period's gross revenue and its change,
    `has_data` and `up_is_good` (None without `compare`)."""
    if previous is None:
        return None
    before, has_data = money(sum(previous.values())), bool(previous)
    return {
        "gross_revenue": before,
        **changes("gross_revenue", money(total), before, has_data=has_data),
        "has_data": has_data,
        "up_is_good": {"gross_revenue": True},
    }
