"""Financial endpoints against pandas over the generated records (docs/metrics.md).

Data: a generated store ("default"), a few crafted records that exercise edges (expenses
on the first and last day of a period and around it, an expense in EUR, payment events
without a method, a chargeback), and a second small store ("s1") that must never leak
into "default"'s numbers. Every number is recomputed here from the raw records.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tests.conftest import (
    analytics_get,
    assert_bad_parameter,
    assert_changes,
    generate_records,
    headers,
    ingest_records,
)
from tests.oracle import (
    all_keys,
    bucket,
    build_frames,
    compared_period,
    expenses_in,
    in_period,
    local_start,
    profit_sums,
    revenue_sums,
    sale_lines,
    sale_orders,
)
from tests.periods import AUTUMN, INTERVAL_PERIODS, SPRING, YEAR, ZONES, period_params

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

MONEY = 0.01
RATE = 1e-4

# Expenses around the New York spring-forward week: only those dated 8..14 March are in it.
BOUNDARY = {"2026-03-07": 1.0, "2026-03-08": 10.0, "2026-03-14": 100.0, "2026-03-15": 1000.0}


def crafted_records() -> dict[str, list[dict]]:
    expenses = [
        {"expense_id": f"boundary-{d}", "date": d, "category": "boundary", "amount": amount}
        for d, amount in BOUNDARY.items()
    ]
    expenses.append(
        {
            "expense_id": "eur-1",
            "date": "2026-03-10",
            "category": "software",
            "amount": 50.0,
            "currency": "EUR",
            "fx_rate": 1.1,
            "channel": "saas",
        }
    )
    events = [
        {
            "event_id": "x-fail-nomethod",
            "event_type": "payment_failed",
            "timestamp": "2026-03-10T12:00:00Z",
            "order_id": "x-1",
            "value": 20.0,
            "properties": {"reason": "timeout"},
        },
        {
            "event_id": "x-ok-nomethod",
            "event_type": "payment_succeeded",
            "timestamp": "2026-03-10T12:05:00Z",
            "order_id": "x-1",
            "value": 20.0,
        },
        {
            "event_id": "x-cb",
            "event_type": "chargeback_opened",
            "timestamp": "2026-03-11T09:00:00Z",
            "order_id": "x-2",
            "value": 80.0,
            "currency": "EUR",
            "fx_rate": 1.2,
            "properties": {"method": "card"},
        },
        {
            "event_id": "x-refund",
            "event_type": "refund_issued",
            "timestamp": "2026-03-12T09:00:00Z",
            "order_id": "x-3",
            "value": 30.0,
            "properties": {"method": "pix"},
        },
    ]
    return {"expenses": expenses, "events": events}


@pytest.fixture(scope="module")
def data(client):
    records = generate_records(seed=7, orders=1500, activity=300, days=420, end=date(2026, 11, 15))
    for kind, extra in crafted_records().items():
        records[kind].extend(extra)
    ingest_records(client, records)
    other = generate_records(seed=8, orders=150, activity=50, days=60, end=date(2026, 11, 15), store_id="s1")
    ingest_records(client, other)
    return build_frames(records), build_frames(other, store_id="s1")


@pytest.fixture(scope="module")
def frames(data):
    return data[0]


def get(client, path, key="read", **params):
    if key == "read":
        params.setdefault("store_id", "default")
    return analytics_get(client, f"financial/{path}", key, **params)


# -- the oracle: docs/metrics.md with pandas, from the raw records ------------------------------


def expense_keys(e: pd.DataFrame, tz: str, interval: str) -> pd.Series:
    """The bucket holding the start of each expense's date in tz."""
    starts = pd.Series([local_start(d, tz).tz_convert("UTC") for d in e["date"]], index=e.index, dtype="object")
    return bucket(pd.to_datetime(starts, utc=True), tz, interval) if len(e) else pd.Series([], dtype=str)


def assert_close(actual: dict, expected: dict, fields=None):
    for name in fields or expected:
        want, got = expected[name], actual[name]
        want = None if want is None or pd.isna(want) else want
        if want is None or got is None or name in ("orders", "count", "lines_without_cost") or isinstance(want, int):
            assert got == want, (name, got, want)
        elif name.endswith(("margin", "rate", "share")):
            assert got == pytest.approx(want, abs=RATE), (name, got, want)
        else:
            assert got == pytest.approx(want, abs=MONEY), (name, got, want)


def assert_breakdown(items: list[dict], expected: pd.DataFrame, measure: str):
    """expected: indexed by key; items must list every key, by measure desc then key asc."""
    order = expected.assign(_m=expected[measure].round(6), _k=expected.index).sort_values(
        ["_m", "_k"], ascending=[False, True]
    )
    assert [i["key"] for i in items] == list(order.index)
    for item in items:
        assert_close(item, expected.loc[item["key"]].to_dict())


def payment_events(f, start, end, tz):
    """Payment events of a store's frames (each store has its own) in the period, base-currency value."""
    ev = in_period(f.events, "timestamp", start, end, tz)
    ev = ev[ev["event_type"].isin(["payment_succeeded", "payment_failed", "refund_issued", "chargeback_opened"])]
    props = ev["properties"].map(lambda p: p if isinstance(p, dict) else {})
    fx = ev["fx_rate"].fillna(1.0) if "fx_rate" in ev else 1.0
    method = props.map(lambda p: p.get("method") if isinstance(p.get("method"), str) else None)
    return ev.assign(method=method.fillna("(none)"), value_base=ev["value"] * fx)


# -- financial/revenue --------------------------------------------------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", list(INTERVAL_PERIODS))
def test_revenue_matches_pandas(client, frames, tz, interval):
    start, end = INTERVAL_PERIODS[interval]
    body = get(client, "revenue", **period_params(start, end, tz, interval=interval))
    sales = sale_orders(frames, start, end, tz)
    assert_close(body["totals"], revenue_sums(sales))
    keys = all_keys(start, end, tz, interval)
    assert [p["key"] for p in body["series"]] == keys
    by_key = dict(list(sales.groupby(bucket(sales["created_at"], tz, interval))))
    for point in body["series"]:
        assert_close(point, revenue_sums(by_key.get(point["key"], sales.iloc[0:0])))
    assert body["comparison"] is None and body["period"]["interval"] == interval


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("compare", ["previous_period", "previous_year"])
def test_revenue_comparison(client, frames, tz, compare):
    start, end = AUTUMN
    body = get(client, "revenue", **period_params(start, end, tz, compare=compare))
    prev_start, prev_end = compared_period(start, end, compare)
    assert body["comparison_period"]["start"][:10] == prev_start.isoformat()
    assert body["comparison_period"]["end"][:10] == prev_end.isoformat()
    current = revenue_sums(sale_orders(frames, start, end, tz))
    previous = revenue_sums(sale_orders(frames, prev_start, prev_end, tz))
    c = body["comparison"]
    assert_close(c, previous)
    assert_changes(c, current, previous)
    assert body["totals"]["orders"] == current["orders"]


# -- financial/profit ---------------------------------------------------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", list(INTERVAL_PERIODS))
def test_profit_matches_pandas(client, frames, tz, interval):
    start, end = INTERVAL_PERIODS[interval]
    body = get(client, "profit", **period_params(start, end, tz, interval=interval))
    sales, lines, spent = (
        sale_orders(frames, start, end, tz),
        sale_lines(frames, start, end, tz),
        expenses_in(frames, start, end),
    )
    assert_close(body["totals"], profit_sums(sales, lines, spent["amount_base"].sum()))

    assert [p["key"] for p in body["series"]] == all_keys(start, end, tz, interval)
    order_groups = dict(list(sales.groupby(bucket(sales["created_at"], tz, interval))))
    line_groups = dict(list(lines.groupby(bucket(lines["created_at"], tz, interval))))
    spent_by_key = spent.groupby(expense_keys(spent, tz, interval))["amount_base"].sum()
    assert set(spent_by_key.index) <= {p["key"] for p in body["series"]}
    for point in body["series"]:
        k = point["key"]
        assert_close(
            point,
            profit_sums(
                order_groups.get(k, sales.iloc[0:0]), line_groups.get(k, lines.iloc[0:0]), spent_by_key.get(k, 0.0)
            ),
        )

    cats = (
        lines.assign(category=lines["category"].fillna("(none)"))
        .groupby("category")
        .agg(gross_revenue=("line_revenue", "sum"), cogs=("line_cogs", "sum"))
    )
    cats["gross_profit"] = cats["gross_revenue"] - cats["cogs"]
    cats["margin"] = cats["gross_profit"] / cats["gross_revenue"]
    cats["share"] = cats["gross_revenue"] / cats["gross_revenue"].sum()
    assert_breakdown(body["by_category"], cats, "gross_revenue")
    assert_close(
        body["unallocated"], {"order_discounts": sales["order_discounts"].sum(), "refunds": sales["refunds"].sum()}
    )
    # The reconciliation the response documents.
    reconciled = sum(c["gross_profit"] for c in body["by_category"]) - sum(body["unallocated"].values())
    assert reconciled == pytest.approx(body["totals"]["gross_profit"], abs=0.05)


def test_profit_previous_year_and_channel(client, frames):
    start, end = AUTUMN
    tz = "America/New_York"
    body = get(client, "profit", **period_params(start, end, tz, compare="previous_year"))
    p_start, p_end = start.replace(year=2025), end.replace(year=2025)
    prev = profit_sums(
        sale_orders(frames, p_start, p_end, tz),
        sale_lines(frames, p_start, p_end, tz),
        expenses_in(frames, p_start, p_end)["amount_base"].sum(),
    )
    assert_close(body["comparison"], prev)
    now = profit_sums(
        sale_orders(frames, start, end, tz),
        sale_lines(frames, start, end, tz),
        expenses_in(frames, start, end)["amount_base"].sum(),
    )
    assert_changes(body["comparison"], now, prev)
    # channel: sales of the channel; only expenses attributed to it (none is attributed to "web")
    web = get(client, "profit", **period_params(start, end, tz, channel="web"))
    sales, lines = sale_orders(frames, start, end, tz), sale_lines(frames, start, end, tz)
    assert_close(web["totals"], profit_sums(sales[sales["channel"] == "web"], lines[lines["channel"] == "web"], 0.0))


# -- financial/expenses -------------------------------------------------------------------


def expense_items(e: pd.DataFrame, column: str, missing: str) -> pd.DataFrame:
    g = (
        e.assign(k=e[column].fillna(missing) if column in e else missing)
        .groupby("k")
        .agg(amount=("amount_base", "sum"), count=("expense_id", "count"))
    )
    g["share"] = g["amount"] / e["amount_base"].sum()
    return g


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", list(INTERVAL_PERIODS))
def test_expenses_match_pandas(client, frames, tz, interval):
    start, end = INTERVAL_PERIODS[interval]
    body = get(client, "expenses", **period_params(start, end, tz, interval=interval))
    e = expenses_in(frames, start, end)
    assert_close(body["totals"], {"expenses": e["amount_base"].sum(), "count": len(e)})
    assert_breakdown(body["by_category"], expense_items(e, "category", "(none)"), "amount")
    assert_breakdown(body["by_channel"], expense_items(e, "channel", "(none)"), "amount")
    assert [p["key"] for p in body["series"]] == all_keys(start, end, tz, interval)
    g = e.groupby(expense_keys(e, tz, interval)).agg(expenses=("amount_base", "sum"), count=("expense_id", "count"))
    for point in body["series"]:
        want = g.loc[point["key"]].to_dict() if point["key"] in g.index else {"expenses": 0.0, "count": 0}
        assert_close(point, {"expenses": want["expenses"], "count": int(want["count"])})


@pytest.mark.parametrize("tz", ["America/New_York", "America/Sao_Paulo", "UTC", "Asia/Tokyo"])
def test_expense_dates_are_local_calendar_dates(client, frames, tz):
    """Dated on the first day: in; on the end date or the day before start: out, in every zone."""
    body = get(client, "expenses", start="2026-03-08", end="2026-03-15", tz=tz)
    boundary = {i["key"]: i for i in body["by_category"]}["boundary"]
    assert boundary["amount"] == pytest.approx(10.0 + 100.0) and boundary["count"] == 2
    daily = {p["key"]: p for p in body["series"]}
    assert len(daily) == 7 and "2026-03-15" not in daily
    on = expenses_in(frames, date(2026, 3, 8), date(2026, 3, 9))["amount_base"].sum()
    assert daily["2026-03-08"]["expenses"] == pytest.approx(on, abs=MONEY)
    # hour buckets: a day's expenses are in the first hour of that local day
    hourly = get(client, "expenses", start="2026-03-08", end="2026-03-09", tz=tz, interval="hour")
    first = local_start(date(2026, 3, 8), tz).isoformat()
    assert hourly["series"][0]["key"] == first
    assert hourly["series"][0]["expenses"] == pytest.approx(on, abs=MONEY)
    assert sum(p["expenses"] for p in hourly["series"][1:]) == 0
    assert len(hourly["series"]) == (23 if tz == "America/New_York" else 24)


def test_expense_period_with_times(client, frames):
    """A period bounded by times counts the dates whose local day starts inside it."""
    body = get(client, "expenses", start="2026-03-08T12:00:00", end="2026-03-14T12:00:00", tz="America/New_York")
    boundary = {i["key"]: i for i in body["by_category"]}["boundary"]
    assert boundary["amount"] == pytest.approx(100.0)  # 8 March starts before the period; 14 March inside
    e = expenses_in(frames, date(2026, 3, 9), date(2026, 3, 15))
    assert body["totals"]["expenses"] == pytest.approx(e["amount_base"].sum(), abs=MONEY)


def test_expenses_channel_and_comparison(client, frames):
    start, end = SPRING
    body = get(client, "expenses", **period_params(start, end, channel="google_ads", compare="previous_period"))
    e = expenses_in(frames, start, end)
    ads = e[e["channel"] == "google_ads"]
    assert_close(body["totals"], {"expenses": ads["amount_base"].sum(), "count": len(ads)})
    assert [i["key"] for i in body["by_channel"]] == ["google_ads"]
    prev = expenses_in(frames, start - (end - start), start)
    prev = prev[prev["channel"] == "google_ads"]
    assert_close(body["comparison"], {"expenses": prev["amount_base"].sum(), "count": len(prev)})
    eur = get(client, "expenses", start="2026-03-10", end="2026-03-11", channel="saas")
    assert eur["totals"]["expenses"] == pytest.approx(55.0)  # 50 EUR at 1.1


# -- financial/payments -------------------------------------------------------------------


def payments_oracle(f, start, end, tz, channel=None):
    sales = sale_orders(f, start, end, tz)
    if channel:
        sales = sales[sales["channel"] == channel]
    ev = payment_events(f, start, end, tz)
    by_type = {t: g for t, g in ev.groupby("event_type")}  # noqa: C416 (a GroupBy is not a mapping)
    empty = ev.iloc[0:0]
    ok, failed = by_type.get("payment_succeeded", empty), by_type.get("payment_failed", empty)
    orders = (
        sales.assign(method=sales["payment_method"].fillna("(none)"))
        .groupby("method")
        .agg(orders=("order_id", "count"), gross_revenue=("gross_revenue", "sum"))
    )
    methods = sorted(set(orders.index) | set(ok["method"]) | set(failed["method"]))
    rows = {}
    for m in methods:
        n_ok, n_failed = int((ok["method"] == m).sum()), int((failed["method"] == m).sum())
        gross = orders["gross_revenue"].get(m, 0.0)
        rows[m] = {
            "orders": int(orders["orders"].get(m, 0)),
            "gross_revenue": gross,
            "share": gross / sales["gross_revenue"].sum(),
            "payments_succeeded": n_ok,
            "payments_failed": n_failed,
            "success_rate": n_ok / (n_ok + n_failed) if n_ok + n_failed else None,
        }
    refunds, chargebacks = by_type.get("refund_issued", empty), by_type.get("chargeback_opened", empty)
    success_rate = len(ok) / (len(ok) + len(failed)) if len(ok) + len(failed) else None
    chargeback_rate = len(chargebacks) / len(ok) if len(ok) else None
    return {
        "by_method": pd.DataFrame.from_dict(rows, orient="index"),
        "payments": {"succeeded": len(ok), "failed": len(failed), "success_rate": success_rate},
        "refunds": {"count": len(refunds), "value": refunds["value_base"].sum()},
        "chargebacks": {"count": len(chargebacks), "value": chargebacks["value_base"].sum(), "rate": chargeback_rate},
        "totals": {
            "orders": len(sales),
            "gross_revenue": sales["gross_revenue"].sum(),
            "payments_succeeded": len(ok),
            "payments_failed": len(failed),
            "success_rate": success_rate,
            "refunds": len(refunds),
            "refund_value": refunds["value_base"].sum(),
            "chargebacks": len(chargebacks),
            "chargeback_value": chargebacks["value_base"].sum(),
            "chargeback_rate": chargeback_rate,
        },
    }


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("period", [YEAR, SPRING])
def test_payments_match_pandas(client, frames, tz, period):
    start, end = period
    body = get(client, "payments", **period_params(start, end, tz))
    want = payments_oracle(frames, start, end, tz)
    assert want["chargebacks"]["count"] > 0 and want["refunds"]["count"] > 0  # the data exercises them
    assert "(none)" in want["by_method"].index  # events without a method
    assert_breakdown(body["by_method"], want["by_method"], "gross_revenue")
    for name in ("payments", "refunds", "chargebacks", "totals"):
        assert_close(body[name], want[name])
    assert body["comparison"] is None


@pytest.mark.parametrize("tz", ZONES)
def test_payments_comparison(client, frames, tz):
    start, end = date(2026, 5, 1), date(2026, 11, 1)
    body = get(client, "payments", **period_params(start, end, tz, compare="previous_period"))
    prev = payments_oracle(frames, start - (end - start), start, tz)["totals"]  # same number of days before
    assert_close(body["comparison"], prev)
    assert_changes(body["comparison"], payments_oracle(frames, start, end, tz)["totals"], prev)


def test_payments_channel_filters_orders_only(client, frames):
    start, end = YEAR
    body = get(client, "payments", **period_params(start, end, channel="mobile"))
    want = payments_oracle(frames, start, end, "UTC", channel="mobile")
    assert_breakdown(body["by_method"], want["by_method"], "gross_revenue")
    assert_close(body["chargebacks"], want["chargebacks"])


# -- stores, validation -------------------------------------------------------------------


def test_store_bound_key_sees_only_its_store(client, data):
    _, s1 = data
    start, end = date(2026, 9, 1), date(2026, 11, 15)
    for path in ("revenue", "profit", "expenses", "payments"):
        r = client.get(
            f"/api/v1/analytics/financial/{path}", params={"store_id": "default"}, headers=headers("read_s1")
        )
        assert r.status_code == 403
    revenue = get(client, "revenue", key="read_s1", **period_params(start, end))
    assert_close(revenue["totals"], revenue_sums(sale_orders(s1, start, end, "UTC")))
    expenses = get(client, "expenses", key="read_s1", **period_params(start, end))
    e = expenses_in(s1, start, end)
    assert_close(expenses["totals"], {"expenses": e["amount_base"].sum(), "count": len(e)})
    payments = get(client, "payments", key="read_s1", **period_params(start, end))
    ev = payment_events(s1, start, end, "UTC")
    assert payments["payments"]["succeeded"] == int((ev["event_type"] == "payment_succeeded").sum())
    # an unbound key without store_id sees both stores
    both = client.get(
        "/api/v1/analytics/financial/revenue",
        params=period_params(start, end),
        headers=headers("read"),
    ).json()
    assert both["totals"]["orders"] == revenue["totals"]["orders"] + len(sale_orders(data[0], start, end, "UTC"))


@pytest.mark.parametrize("path", ["revenue", "profit", "expenses", "payments"])
@pytest.mark.parametrize(
    "params, field",
    [
        ({"tz": "Nowhere/City"}, "query.tz"),
        ({"interval": "minute"}, "query.interval"),
        ({"compare": "yesterday"}, "query.compare"),
        ({"end": "2026-99-01"}, "query.end"),
    ],
)
def test_bad_parameters_are_422(client, path, params, field):
    assert_bad_parameter(client, f"financial/{path}", params, field)


def test_openapi_documents_the_financial_responses(client):
    spec = client.get("/openapi.json").json()
    for path in ("revenue", "profit", "expenses", "payments"):
        assert f"/api/v1/analytics/financial/{path}" in spec["paths"]
    profit = spec["components"]["schemas"]["FinancialProfitResponse"]
    assert "example" in profit and profit["properties"]["unallocated"]["description"]
