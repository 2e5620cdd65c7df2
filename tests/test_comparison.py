"""`compare` against pandas (docs/metrics.md "Comparison and change"): which period a calendar
unit compares with (month, quarter, ISO week, year, a leap day, week 53, in a DST zone and in
UTC), growth with a negative base, percentage points, `has_data` and `up_is_good`."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tests.conftest import analytics_get, assert_changes, generate_records, ingest_records
from tests.oracle import (
    build_frames,
    calendar_unit,
    compared_period,
    expenses_in,
    growth_pct,
    local_start,
    profit_sums,
    sale_lines,
    sale_orders,
)
from tests.periods import period_params

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

# Two large expenses: October 2026 ends in a loss and November in a larger one.
LOSSES = [
    {"expense_id": "loss-oct", "date": "2026-10-15", "category": "rent", "amount": 400_000.0},
    {"expense_id": "loss-nov", "date": "2026-11-15", "category": "rent", "amount": 1_200_000.0},
]
# Calendar units (and one period that is none), with what each `compare` must compare with.
PERIODS = {
    "month with a DST change": (date(2026, 11, 1), date(2026, 12, 1)),
    "month after a 31-day month": (date(2024, 3, 1), date(2024, 4, 1)),
    "quarter": (date(2026, 7, 1), date(2026, 10, 1)),
    "ISO week": (date(2026, 11, 2), date(2026, 11, 9)),
    "ISO week 53": (date(2026, 12, 28), date(2027, 1, 4)),
    "year": (date(2025, 1, 1), date(2026, 1, 1)),
    "leap day": (date(2024, 2, 29), date(2024, 3, 1)),
    "DST day": (date(2026, 3, 8), date(2026, 3, 9)),
    "not a unit": (date(2026, 10, 20), date(2026, 11, 10)),
}


@pytest.fixture(scope="module")
def data(client):
    records = generate_records(seed=41, orders=3000, activity=1000, days=1500, end=date(2026, 12, 2))
    records["expenses"].extend(LOSSES)
    ingest_records(client, records)
    return build_frames(records)


def dashboard_kpis(frames, start: date, end: date, tz: str) -> dict[str, float]:
    """The dashboard's order KPIs of [start, end) local to tz, by pandas."""
    s = sale_orders(frames, start, end, tz)
    lines = sale_lines(frames, start, end, tz)
    n = len(s)
    return {
        "gross_revenue": s["gross_revenue"].sum(),
        "net_revenue": s["net_revenue"].sum(),
        "orders": n,
        "aov": (s["gross_revenue"].sum() - s["order_discounts"].sum()) / n if n else None,
        "units": int(lines["quantity"].sum()),
        "customers": s["customer_id"].nunique(),
    }


@pytest.mark.parametrize("tz", ["America/New_York", "UTC"])
@pytest.mark.parametrize("compare", ["previous_period", "previous_year"])
@pytest.mark.parametrize("name", list(PERIODS))
def test_a_calendar_unit_compares_with_the_whole_unit(client, data, name, compare, tz):
    start, end = PERIODS[name]
    body = analytics_get(client, "dashboard", **period_params(start, end, tz, compare=compare))
    prev_start, prev_end = compared_period(start, end, compare)
    if name != "not a unit":
        assert calendar_unit(start, end) is not None
    assert body["comparison_period"]["start"] == local_start(prev_start, tz).isoformat()
    assert body["comparison_period"]["end"] == local_start(prev_end, tz).isoformat()
    now, before = dashboard_kpis(data, start, end, tz), dashboard_kpis(data, prev_start, prev_end, tz)
    c = body["comparison"]
    for key, want in before.items():
        if want is None:
            assert c[key] is None, key
        else:
            assert c[key] == pytest.approx(want, abs=0.01), key
    assert_changes(c, now, before, has_data=before["orders"] > 0)


def test_the_units_compared_with(client, data):
    """The rule spelled out once for the cases it is easy to get wrong (the oracle agrees)."""
    expected = {
        ("month with a DST change", "previous_period"): (date(2026, 10, 1), date(2026, 11, 1)),
        ("quarter", "previous_period"): (date(2026, 4, 1), date(2026, 7, 1)),
        ("leap day", "previous_year"): (date(2023, 2, 28), date(2023, 3, 1)),
        ("ISO week 53", "previous_year"): (date(2025, 12, 22), date(2025, 12, 29)),
        ("ISO week", "previous_year"): (date(2025, 11, 3), date(2025, 11, 10)),
        ("not a unit", "previous_period"): (date(2026, 9, 29), date(2026, 10, 20)),
    }
    for (name, compare), (lo, hi) in expected.items():
        assert compared_period(*PERIODS[name], compare) == (lo, hi), name
        body = analytics_get(client, "sales/revenue", **period_params(*PERIODS[name], "UTC", compare=compare))
        assert body["comparison_period"]["start"][:10] == lo.isoformat(), name
        assert body["comparison_period"]["end"][:10] == hi.isoformat(), name


@pytest.mark.parametrize("tz", ["America/New_York", "UTC"])
def test_a_growing_loss_is_negative_growth(client, data, tz):
    """November's loss is larger than October's: growth is negative, margins change in pp."""
    start, end = date(2026, 11, 1), date(2026, 12, 1)
    body = analytics_get(client, "financial/profit", **period_params(start, end, tz, compare="previous_period"))

    def profit(lo: date, hi: date) -> dict:
        spent = expenses_in(data, lo, hi)["amount_base"].sum()
        return profit_sums(sale_orders(data, lo, hi, tz), sale_lines(data, lo, hi, tz), spent)

    now, before = profit(start, end), profit(date(2026, 10, 1), start)
    assert before["net_profit"] < 0 and now["net_profit"] < before["net_profit"]
    c = body["comparison"]
    assert c["net_profit"] == pytest.approx(before["net_profit"], abs=0.01)
    assert c["net_profit_growth_pct"] < 0 and c["net_margin_change_pp"] < 0
    assert c["net_profit_growth_pct"] == pytest.approx(growth_pct(now["net_profit"], before["net_profit"]), abs=0.01)
    assert_changes(c, now, before)
    assert c["up_is_good"]["net_profit"] is True and c["up_is_good"]["net_margin"] is True
    assert c["up_is_good"]["expenses"] is False and c["up_is_good"]["cogs"] is False


def test_a_compared_period_without_data(client, data):
    """January 2022 is before the store's first record: no growth, `has_data` false, zeros kept."""
    body = analytics_get(
        client, "dashboard", **period_params(date(2023, 1, 1), date(2023, 2, 1), compare="previous_year")
    )
    c = body["comparison"]
    assert body["comparison_period"]["start"].startswith("2022-01-01")
    assert body["kpis"]["orders"] > 0
    assert c["has_data"] is False and c["orders"] == 0 and c["gross_revenue"] == 0
    assert all(c[k] is None for k in c if k.endswith(("_growth_pct", "_change_pp")))
    assert len(data.orders[pd.to_datetime(data.orders["created_at"]).dt.year == 2022]) > 0  # data does start in 2022
