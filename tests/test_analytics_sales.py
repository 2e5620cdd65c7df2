"""Sales endpoints against pandas over the generated records (docs/metrics.md)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from analytics_service.analytics import requests
from tests.conftest import analytics_get as get
from tests.conftest import (
    assert_bad_parameter,
    assert_changes,
    generate_records,
    headers,
    ingest_records,
    numbers_of,
    post_records,
)
from tests.oracle import (
    all_keys,
    bucket,
    build_frames,
    compared_period,
    growth_pct,
    in_period,
    local_start,
    sale_lines,
    sale_orders,
)
from tests.periods import AUTUMN, COMMON_BAD_PARAMETERS, INTERVAL_PERIODS, SPRING, YEAR, ZONES, period_params

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")


@pytest.fixture(scope="module")
def data(client):
    records = generate_records(seed=11, orders=1500, activity=3000, days=420, end=date(2026, 11, 15))
    ingest_records(client, records)
    return build_frames(records)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", list(INTERVAL_PERIODS))
def test_revenue_trends_match_pandas(client, data, tz, interval):
    start, end = INTERVAL_PERIODS[interval]
    body = get(client, "revenue/trends", **period_params(start, end, tz, interval=interval))
    sales = sale_orders(data, start, end, tz)
    keys = all_keys(start, end, tz, interval)
    assert [p["key"] for p in body["series"]] == keys
    grouped = sales.assign(k=bucket(sales["created_at"], tz, interval)).groupby("k")
    expected = grouped.agg(
        gross=("gross_revenue", "sum"),
        net=("net_revenue", "sum"),
        orders=("order_id", "count"),
        units=("units", "sum"),
        disc=("order_discounts", "sum"),
    )
    for point in body["series"]:
        row = expected.loc[point["key"]] if point["key"] in expected.index else None
        if row is None:
            assert point["orders"] == 0 and point["gross_revenue"] == 0 and point["aov"] is None
            continue
        assert point["orders"] == row.orders and point["units"] == row.units
        assert point["gross_revenue"] == pytest.approx(row.gross, abs=0.01)
        assert point["net_revenue"] == pytest.approx(row.net, abs=0.01)
        assert point["aov"] == pytest.approx((row.gross - row.disc) / row.orders, abs=0.01)
    totals = body["totals"]
    assert totals["orders"] == len(sales)
    assert totals["gross_revenue"] == pytest.approx(sales["gross_revenue"].sum(), abs=0.01)
    assert totals["refunds"] == pytest.approx(sales["refunds"].sum(), abs=0.01)
    assert body["period"]["tz"] == tz and body["period"]["interval"] == interval


def test_hour_buckets_on_the_fall_back_day_have_25_hours(client, data):
    body = get(client, "revenue/trends", start="2026-11-01", end="2026-11-02", tz="America/New_York", interval="hour")
    keys = [p["key"] for p in body["series"]]
    assert len(keys) == 25
    assert "2026-11-01T01:00:00-04:00" in keys and "2026-11-01T01:00:00-05:00" in keys


def test_day_buckets_on_the_spring_forward_day(client, data):
    body = get(client, "revenue/trends", start="2026-03-07", end="2026-03-10", tz="America/New_York", interval="day")
    assert [p["key"] for p in body["series"]] == ["2026-03-07", "2026-03-08", "2026-03-09"]
    sales = sale_orders(data, date(2026, 3, 8), date(2026, 3, 9), "America/New_York")
    assert body["series"][1]["orders"] == len(sales)


@pytest.mark.parametrize("tz", ZONES)
def test_dashboard_kpis_and_comparison(client, data, tz):
    start, end = AUTUMN
    body = get(client, "dashboard", **period_params(start, end, tz, compare="previous_period"))
    sales = sale_orders(data, start, end, tz)
    k = body["kpis"]
    assert k["orders"] == len(sales)
    assert k["gross_revenue"] == pytest.approx(sales["gross_revenue"].sum(), abs=0.01)
    assert k["net_revenue"] == pytest.approx(sales["net_revenue"].sum(), abs=0.01)
    assert k["units"] == sales["units"].sum()
    assert k["customers"] == sales["customer_id"].nunique()
    assert k["aov"] == pytest.approx(
        (sales["gross_revenue"].sum() - sales["order_discounts"].sum()) / len(sales), abs=0.01
    )
    assert k["gross_profit"] == pytest.approx(sales["net_revenue"].sum() - sales["cogs"].sum(), abs=0.01)
    all_sales = data.orders[data.orders["is_sale"]]
    first = all_sales.groupby("customer_id")["created_at"].min()
    lo, hi = pd.Timestamp(start.isoformat()).tz_localize(tz), pd.Timestamp(end.isoformat()).tz_localize(tz)
    assert k["new_customers"] == int(((first >= lo) & (first < hi)).sum())
    # previous period: same length, ending where this one starts
    days = (end - start).days
    prev = sale_orders(data, start - timedelta(days=days), start, tz)
    c = body["comparison"]
    assert c["orders"] == len(prev)
    assert c["gross_revenue"] == pytest.approx(prev["gross_revenue"].sum(), abs=0.01)
    assert c["gross_revenue_growth_pct"] == pytest.approx(growth_pct(k["gross_revenue"], c["gross_revenue"]), abs=0.01)
    assert c["has_data"] is True and c["up_is_good"]["gross_revenue"] is True
    assert len(body["series"]) == days
    top = body["top_products"]
    lines = sale_lines(data, start, end, tz)
    by_product = lines.groupby("product_id").agg(
        rev=("line_revenue", "sum"), units=("quantity", "sum"), orders=("order_id", "nunique")
    )
    ranked = by_product.reset_index().sort_values(["rev", "product_id"], ascending=[False, True]).head(10)
    assert [t["key"] for t in top] == list(ranked["product_id"])
    for t, (_, row) in zip(top, ranked.iterrows(), strict=True):
        assert t["gross_revenue"] == pytest.approx(row.rev, abs=0.01) and t["units"] == row.units
        assert t["orders"] == row.orders


def test_previous_year_comparison(client, data):
    body = get(client, "dashboard", start="2026-10-01", end="2026-11-01", tz="UTC", compare="previous_year")
    prev = sale_orders(data, date(2025, 10, 1), date(2025, 11, 1), "UTC")
    assert body["comparison"]["orders"] == len(prev)


@pytest.mark.parametrize("by", ["revenue", "units"])
def test_top_selling(client, data, by):
    start, end = YEAR
    body = get(client, "products/top-selling", **period_params(start, end, by=by, limit=15))
    lines = sale_lines(data, start, end, "UTC")
    g = (
        lines.groupby("product_id")
        .agg(rev=("line_revenue", "sum"), units=("quantity", "sum"), orders=("order_id", "nunique"))
        .reset_index()
    )
    measure = "rev" if by == "revenue" else "units"
    ranked = g.sort_values([measure, "product_id"], ascending=[False, True]).head(15)
    assert [i["key"] for i in body["items"]] == list(ranked["product_id"])
    assert [i["units"] for i in body["items"]] == list(ranked["units"])


def test_top_selling_is_exact_when_partitions_overflow(client, data, monkeypatch, partitions_sent):
    """Every product's sums are read to rank them; partitions far too small for the products
    are read again in twice the partitions until none leaves values over, and the ranking is
    the oracle's."""
    monkeypatch.setattr(requests, "PARTITION_SIZE", 4)
    start, end = AUTUMN
    body = get(client, "products/top-selling", **period_params(start, end, "Asia/Kolkata", limit=12))
    lines = sale_lines(data, start, end, "Asia/Kolkata")
    g = lines.groupby("product_id").agg(rev=("line_revenue", "sum"), orders=("order_id", "nunique")).reset_index()
    assert len(g) > 4 * 8
    top = g.sort_values(["rev", "product_id"], ascending=[False, True]).head(12)
    assert [i["key"] for i in body["items"]] == list(top["product_id"])
    assert [i["orders"] for i in body["items"]] == list(top["orders"])
    assert [i["gross_revenue"] for i in body["items"]] == pytest.approx(list(top["rev"]), abs=0.01)
    assert partitions_sent[0] == 1 and max(partitions_sent) >= 8  # it started with one partition and had to split


@pytest.mark.parametrize("tz", ZONES)
def test_sales_revenue_and_orders(client, data, tz):
    start, end = SPRING
    rev = get(client, "sales/revenue", **period_params(start, end, tz))
    sales = sale_orders(data, start, end, tz)
    for name in ("gross_revenue", "order_discounts", "refunds", "net_revenue"):
        assert rev["totals"][name] == pytest.approx(sales[name].sum(), abs=0.01)
    assert sum(p["gross_revenue"] for p in rev["series"]) == pytest.approx(sales["gross_revenue"].sum(), abs=0.05)
    orders = get(client, "sales/orders", **period_params(start, end, tz))
    placed = in_period(data.orders, "created_at", start, end, tz)
    assert orders["orders"] == len(sales) and orders["placed"] == len(placed)
    assert {s["key"]: s["count"] for s in orders["by_status"]} == placed["status"].value_counts().to_dict()
    assert orders["cancellation_rate"] == pytest.approx((placed["status"] == "cancelled").mean(), abs=1e-4)
    assert orders["refunded_order_rate"] == pytest.approx((sales["refunds"] > 0).mean(), abs=1e-4)


@pytest.mark.parametrize("compare", ["previous_period", "previous_year"])
def test_orders_comparison_in_points(client, data, compare):
    """sales/orders compares its counts and rates; the rates change in percentage points."""
    start, end, tz = date(2026, 10, 1), date(2026, 11, 1), "America/New_York"  # a month: with September
    body = get(client, "sales/orders", **period_params(start, end, tz, compare=compare, store_id="default"))

    def counts(lo: date, hi: date) -> dict:
        placed, sales = in_period(data.orders, "created_at", lo, hi, tz), sale_orders(data, lo, hi, tz)
        return {
            "orders": len(sales),
            "placed": len(placed),
            "cancellation_rate": (placed["status"] == "cancelled").mean() if len(placed) else None,
            "refunded_order_rate": (sales["refunds"] > 0).mean() if len(sales) else None,
        }

    lo, hi = compared_period(start, end, compare)
    assert body["comparison_period"]["start"] == local_start(lo, tz).isoformat()
    now, before = counts(start, end), counts(lo, hi)
    assert body["comparison"]["placed"] == before["placed"]
    assert_changes(body["comparison"], now, before, has_data=before["placed"] > 0)
    assert body["comparison"]["up_is_good"]["cancellation_rate"] is False


def test_channel_and_store_filters(client, data):
    start, end = YEAR
    body = get(client, "revenue/trends", **period_params(start, end, channel="mobile", interval="month"))
    sales = sale_orders(data, start, end, "UTC")
    assert body["totals"]["orders"] == int((sales["channel"] == "mobile").sum())
    none = get(client, "revenue/trends", **period_params(start, end, store_id="no-such-store"))
    assert none["totals"]["orders"] == 0


def test_store_bound_key_sees_only_its_store(client, data):
    r = client.get("/api/v1/analytics/dashboard", params={"store_id": "default"}, headers=headers("read_s1"))
    assert r.status_code == 403
    r = client.get(
        "/api/v1/analytics/dashboard", params={"start": "2025-01-01", "end": "2026-11-15"}, headers=headers("read_s1")
    )
    assert r.status_code == 200 and r.json()["kpis"]["orders"] == 0


@pytest.mark.parametrize(
    "params, field",
    [*COMMON_BAD_PARAMETERS, ({"start": "2020-01-01", "end": "2026-01-01", "interval": "hour"}, "query.interval")],
)
def test_bad_parameters_are_422_naming_them(client, params, field):
    assert_bad_parameter(client, "revenue/trends", params, field)


def test_responses_are_cached_and_invalidated_by_ingest(client, data):
    # a store of its own: the order it adds stays out of the oracle of the tests that ask for "default"
    params = {"start": "2026-10-01", "end": "2026-11-01", "store_id": "cache-store"}
    first = get(client, "dashboard", **params)
    second = get(client, "dashboard", **params)
    assert first["cached"] is False and second["cached"] is True
    assert numbers_of(first) == numbers_of(second)
    order = {
        "order_id": "cache-bust-1",
        "store_id": "cache-store",
        "status": "paid",
        "created_at": "2026-10-15T12:00:00Z",
        "customer": {"customer_id": "cache-c"},
        "items": [{"product_id": "px", "quantity": 1, "unit_price": 100.0}],
    }
    r = post_records(client, "orders", [order])
    assert r.json()["indexed"] == 1
    third = get(client, "dashboard", **params)
    assert third["cached"] is False and third["kpis"]["orders"] == first["kpis"]["orders"] + 1


# -- rolling AOV (docs/metrics.md "Rolling AOV") -----------------------------------------------


def rolling_aov_oracle(data, start: date, end: date, tz: str, interval: str, days: int) -> list[dict]:
    """Per bucket: the sales created in the `days` local days up to the bucket's end (the next
    bucket's start, or the period's end), their count and AOV."""
    keys = all_keys(start, end, tz, interval)
    starts = [date.fromisoformat(k) for k in keys]
    ends = [*starts[1:], end]
    out = []
    for key, last in zip(keys, ends, strict=True):
        window = sale_orders(data, last - timedelta(days=days), last, tz)
        n = len(window)
        aov = (window["gross_revenue"].sum() - window["order_discounts"].sum()) / n if n else None
        out.append({"key": key, "orders": n, "aov": aov, "start": last - timedelta(days=days), "end": last})
    return out


@pytest.mark.parametrize("window", [7, 30, 90])
@pytest.mark.parametrize(
    "interval, start, end",
    [
        ("day", date(2026, 10, 20), date(2026, 11, 10)),  # New York falls back on 1 November
        ("week", date(2026, 2, 18), date(2026, 3, 25)),  # and springs forward on 8 March
        ("month", date(2025, 11, 1), date(2026, 11, 1)),
    ],
)
def test_rolling_aov(client, data, window, interval, start, end):
    tz = "America/New_York"
    params = period_params(start, end, tz, interval=interval, window=f"{window}d", store_id="default")
    body = get(client, "sales/aov", **params)
    assert body["window_days"] == window
    expected = rolling_aov_oracle(data, start, end, tz, interval, window)
    assert [p["key"] for p in body["series"]] == [e["key"] for e in expected]
    for point, want in zip(body["series"], expected, strict=True):
        assert point["orders"] == want["orders"], point["key"]
        if want["aov"] is None:
            assert point["aov"] is None
        else:
            assert point["aov"] == pytest.approx(want["aov"], abs=0.01), point["key"]
        assert point["window_start"] == local_start(want["start"], tz).isoformat()
        assert point["window_end"] == local_start(want["end"], tz).isoformat()


@pytest.mark.parametrize(
    "params, field",
    [
        ({"window": "2w"}, "query.window"),
        ({"window": "0d"}, "query.window"),
        ({"window": "400d"}, "query.window"),
        ({"interval": "hour"}, "query.interval"),
        ({"interval": "year"}, "query.interval"),
    ],
)
def test_rolling_aov_bad_parameters(client, data, params, field):
    r = client.get("/api/v1/analytics/sales/aov", params=params, headers=headers("read"))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == field
