"""sales/products, sales/categories and sales/geographic against pandas over the generated records.

The generated store is complete (every line has a category, every customer a place), so a
few hand-written orders add the edge cases: lines without a category or a cost, customers
without a place, one product twice in an order, a product renamed, a product never
costed, and orders that are not sales. The oracle works from the raw records only.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics_service.analytics import runner
from tests.conftest import analytics_get as get
from tests.conftest import assert_changes, bad_parameters_test, generate_records, headers, ingest_records
from tests.oracle import build_frames, change_pp, compared_period, growth_pct, latest_of, sale_lines, sale_orders
from tests.periods import AUTUMN, SPRING, ZONES, period_params

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

PERIODS = {"spring": SPRING, "autumn": AUTUMN}
NONE = "(none)"


def _order(order_id, created_at, customer, items, status="paid"):
    return {
        "order_id": order_id,
        "status": status,
        "created_at": created_at,
        "channel": "web",
        "customer": customer,
        "items": items,
    }


EDGE_ORDERS = [
    # the same product on two lines, the first without a cost and a category, on New York's fall-back day
    _order(
        "x-1",
        "2026-11-01T05:30:00Z",
        {"customer_id": "x-c1"},
        [
            {"product_id": "x-p1", "name": "Gadget old", "quantity": 2, "unit_price": 10.0},
            {
                "product_id": "x-p1",
                "name": "Gadget",
                "category": "Gizmos",
                "quantity": 1,
                "unit_price": 10.0,
                "unit_cost": 4.0,
            },
        ],
    ),
    # a product never costed, without name or category; the same customer in another country
    _order(
        "x-2",
        "2026-11-02T12:00:00Z",
        {"customer_id": "x-c1", "country": "ZZ"},
        [{"product_id": "x-p2", "quantity": 1, "unit_price": 50.0, "discount": 5.0}],
        status="delivered",
    ),
    # the product renamed later; a refunded order is a sale
    _order(
        "x-3",
        "2026-11-03T23:59:59Z",
        {"customer_id": "x-c2", "country": "ZZ", "city": "Nowhere"},
        [
            {
                "product_id": "x-p1",
                "name": "Gadget v2",
                "category": "Gizmos",
                "subcategory": "Small",
                "quantity": 1,
                "unit_price": 12.0,
                "unit_cost": 5.0,
            }
        ],
        status="refunded",
    ),
    # not sales
    _order(
        "x-4",
        "2026-11-02T10:00:00Z",
        {"customer_id": "x-c3"},
        [{"product_id": "x-p1", "quantity": 5, "unit_price": 10.0}],
        status="pending",
    ),
    _order(
        "x-5",
        "2026-11-02T11:00:00Z",
        {"customer_id": "x-c3"},
        [{"product_id": "x-p2", "quantity": 5, "unit_price": 10.0}],
        status="cancelled",
    ),
    # just after the spring-forward jump in New York (03:30 EDT)
    _order(
        "x-6",
        "2026-03-08T07:30:00Z",
        {"customer_id": "x-c4", "city": "Nowhere"},
        [{"product_id": "x-p1", "quantity": 3, "unit_price": 11.0}],
    ),
]


@pytest.fixture(scope="module")
def data(client):
    records = generate_records(seed=23, orders=1500, activity=500, days=420, end=date(2026, 11, 15))
    records["orders"].extend(EDGE_ORDERS)
    ingest_records(client, records)
    return build_frames(records)


def expected_order(table: pd.DataFrame, measure: str) -> list[str]:
    """Keys by the measure (to 1e-6) descending (nulls last), ties by key ascending."""
    rows = [(pd.isna(v), -round(float(v), 6) if not pd.isna(v) else 0, k) for k, v in table[measure].items()]
    return [k for *_, k in sorted(rows)]


# -- oracles ------------------------------------------------------------------------------


def product_table(lines: pd.DataFrame) -> pd.DataFrame:
    """docs/metrics.md "Breakdowns": per product over sale lines; profit over the lines with a cost."""
    costed = lines["line_cogs"].notna()
    t = (
        lines.assign(costed_revenue=lines["line_revenue"].where(costed, 0.0), costed=costed)
        .groupby("product_id")
        .agg(
            gross_revenue=("line_revenue", "sum"),
            units=("quantity", "sum"),
            orders=("order_id", "nunique"),
            cogs=("line_cogs", "sum"),
            costed_revenue=("costed_revenue", "sum"),
            costed_lines=("costed", "sum"),
            lines=("line", "count"),
        )
    )
    t["name"] = latest_of(lines, "product_id", "name", ["created_at", "order_id", "line"])
    t["gross_profit"] = (t["costed_revenue"] - t["cogs"]).where(t["costed_lines"] > 0)
    t["margin"] = t["gross_profit"] / t["costed_revenue"]
    t["share"] = t["gross_revenue"] / t["gross_revenue"].sum()
    return t


def category_table(lines: pd.DataFrame, level: str) -> pd.DataFrame:
    keyed = lines.assign(k=lines[level].fillna(NONE))
    t = keyed.groupby("k").agg(
        gross_revenue=("line_revenue", "sum"), units=("quantity", "sum"), orders=("order_id", "nunique")
    )
    t["share"] = t["gross_revenue"] / lines["line_revenue"].sum()
    return t


def geo_table(orders: pd.DataFrame, level: str) -> pd.DataFrame:
    keyed = orders.assign(k=orders[level].fillna(NONE))
    t = keyed.groupby("k").agg(
        gross_revenue=("gross_revenue", "sum"), orders=("order_id", "count"), customers=("customer_id", "nunique")
    )
    t["share"] = t["gross_revenue"] / orders["gross_revenue"].sum()
    return t


def assert_compared(item: dict, key: str, previous: pd.Series) -> None:
    """A row's previous revenue, growth and share change (previous: revenue per key)."""
    before = float(previous.get(key, 0.0))
    assert item["gross_revenue_previous"] == pytest.approx(before, abs=0.01), key
    expected = growth_pct(item["gross_revenue"], before)
    if expected is None:
        assert item["gross_revenue_growth_pct"] is None, key
    else:
        assert item["gross_revenue_growth_pct"] == pytest.approx(expected, abs=0.01), key
    was = before / previous.sum() if previous.sum() else None
    if was is None:
        assert item["share_change_pp"] is None, key
    else:
        assert item["share_change_pp"] == pytest.approx(change_pp(item["share"], was), abs=0.011), key


def assert_comparison(body: dict, current_total: float, previous_total: float) -> None:
    c = body["comparison"]
    assert c["gross_revenue"] == pytest.approx(previous_total, abs=0.01)
    assert_changes(c, {"gross_revenue": current_total}, {"gross_revenue": previous_total}, has_data=previous_total != 0)


# -- sales/products -----------------------------------------------------------------------


def assert_product(item: dict, row) -> None:
    key = item["key"]
    assert item["name"] == (None if pd.isna(row.name_) else row.name_), key
    assert item["units"] == row.units and item["orders"] == row.orders, key
    assert item["gross_revenue"] == pytest.approx(row.gross_revenue, abs=0.01), key
    assert item["avg_price"] == pytest.approx(row.gross_revenue / row.units, abs=0.01), key
    assert item["cogs"] == pytest.approx(row.cogs, abs=0.01), key
    assert item["lines_without_cost"] == row.lines - row.costed_lines, key
    if pd.isna(row.gross_profit):
        assert item["gross_profit"] is None and item["margin"] is None, key
    else:
        assert item["gross_profit"] == pytest.approx(row.gross_profit, abs=0.01), key
        assert item["margin"] == pytest.approx(row.margin, abs=1e-4), key
    assert item["share"] == pytest.approx(row.share, abs=1e-4), key


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("when", list(PERIODS))
@pytest.mark.parametrize(
    "sort, measure",
    [("revenue", "gross_revenue"), ("units", "units"), ("orders", "orders"), ("gross_profit", "gross_profit")],
)
def test_products_match_pandas(client, data, tz, when, sort, measure):
    start, end = PERIODS[when]
    body = get(client, "sales/products", **period_params(start, end, tz, sort=sort, limit=1000))
    lines = sale_lines(data, start, end, tz)
    table = product_table(lines).rename(columns={"name": "name_"})
    assert body["sort"] == sort and body["total_products"] == len(table)
    assert [i["key"] for i in body["items"]] == expected_order(table, measure)
    for item in body["items"]:
        assert_product(item, table.loc[item["key"]])
    totals = body["totals"]
    assert totals["gross_revenue"] == pytest.approx(lines["line_revenue"].sum(), abs=0.01)
    assert totals["units"] == lines["quantity"].sum()
    assert totals["cogs"] == pytest.approx(lines["line_cogs"].sum(), abs=0.01)
    assert totals["lines_without_cost"] == int(lines["line_cogs"].isna().sum())
    costed = lines[lines["line_cogs"].notna()]
    assert totals["gross_profit"] == pytest.approx((costed["line_revenue"] - costed["line_cogs"]).sum(), abs=0.01)
    assert body["comparison"] is None and body["period"]["tz"] == tz


def test_edge_products(client, data):
    """The hand-written cases, spelled out: duplicate lines, a rename, a product never costed."""
    body = get(client, "sales/products", **period_params(*AUTUMN, "America/New_York", limit=1000))
    items = {i["key"]: i for i in body["items"]}
    p1, p2 = items["x-p1"], items["x-p2"]
    assert (p1["orders"], p1["units"], p1["name"], p1["lines_without_cost"]) == (2, 4, "Gadget v2", 1)
    assert p1["gross_revenue"] == 42.0 and p1["cogs"] == 9.0 and p1["gross_profit"] == 13.0
    assert p1["margin"] == pytest.approx(13 / 22, abs=1e-4) and p1["avg_price"] == 10.5
    assert (p2["orders"], p2["name"], p2["gross_revenue"], p2["cogs"]) == (1, None, 45.0, 0.0)
    assert p2["gross_profit"] is None and p2["margin"] is None and p2["lines_without_cost"] == 1


@pytest.mark.parametrize("compare", ["previous_period", "previous_year"])
@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_products_top_n_and_compare(client, data, tz, compare):
    start, end = AUTUMN
    body = get(client, "sales/products", **period_params(start, end, tz, limit=7, compare=compare))
    table = product_table(sale_lines(data, start, end, tz)).rename(columns={"name": "name_"})
    assert body["total_products"] == len(table)
    assert [i["key"] for i in body["items"]] == expected_order(table, "gross_revenue")[:7]
    previous = product_table(sale_lines(data, *compared_period(start, end, compare), tz))["gross_revenue"]
    for item in body["items"]:
        assert_product(item, table.loc[item["key"]])
        assert_compared(item, item["key"], previous)
    assert_comparison(body, table["gross_revenue"].sum(), previous.sum())


def test_products_default_limit_is_ten(client, data):
    start, end = SPRING
    body = get(client, "sales/products", **period_params(start, end, "UTC"))
    table = product_table(sale_lines(data, start, end, "UTC"))
    assert body["total_products"] == len(table) > 10
    assert [i["key"] for i in body["items"]] == expected_order(table, "gross_revenue")[:10]


def test_every_page_is_read(client, data, monkeypatch):
    """Composite paging: with pages of 7 buckets every key must still be counted once."""
    monkeypatch.setattr(runner, "COMPOSITE_PAGE", 7)
    start, end = date(2026, 1, 1), date(2026, 11, 15)  # a period no other test asks for (no cache hit)
    lines = sale_lines(data, start, end, "UTC")
    body = get(client, "sales/products", **period_params(start, end, "UTC", limit=1000, sort="orders"))
    table = product_table(lines).rename(columns={"name": "name_"})
    assert body["total_products"] == len(table) > 7 * 3
    assert [i["key"] for i in body["items"]] == expected_order(table, "orders")
    for item in body["items"]:
        assert_product(item, table.loc[item["key"]])
    geo = get(client, "sales/geographic", **period_params(start, end, "UTC", level="city"))
    expected = geo_table(sale_orders(data, start, end, "UTC"), "city")
    assert {i["key"]: (i["orders"], i["customers"]) for i in geo["items"]} == {
        k: (r.orders, r.customers) for k, r in expected.iterrows()
    }
    assert geo["totals"]["customers"] == sale_orders(data, start, end, "UTC")["customer_id"].nunique()


# -- sales/categories ---------------------------------------------------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("when", list(PERIODS))
@pytest.mark.parametrize("level", ["category", "subcategory"])
def test_categories_match_pandas(client, data, tz, when, level):
    start, end = PERIODS[when]
    body = get(client, "sales/categories", **period_params(start, end, tz, level=level, compare="previous_period"))
    lines, orders = sale_lines(data, start, end, tz), sale_orders(data, start, end, tz)
    table = category_table(lines, level)
    assert body["level"] == level and body["total_keys"] == len(table)
    assert [i["key"] for i in body["items"]] == expected_order(table, "gross_revenue")
    previous_lines = sale_lines(data, *compared_period(start, end, "previous_period"), tz)
    previous = previous_lines.assign(k=previous_lines[level].fillna(NONE)).groupby("k")["line_revenue"].sum()
    for item in body["items"]:
        row = table.loc[item["key"]]
        assert item["gross_revenue"] == pytest.approx(row.gross_revenue, abs=0.01), item["key"]
        assert item["units"] == row.units and item["orders"] == row.orders, item["key"]
        assert item["share"] == pytest.approx(row.share, abs=1e-4), item["key"]
        assert_compared(item, item["key"], previous)
    assert body["totals"]["orders"] == len(orders)
    assert body["totals"]["units"] == lines["quantity"].sum()
    assert body["totals"]["gross_revenue"] == pytest.approx(lines["line_revenue"].sum(), abs=0.01)
    assert_comparison(body, lines["line_revenue"].sum(), previous_lines["line_revenue"].sum())
    if when == "autumn":  # the hand-written lines without a (sub)category
        assert NONE in [i["key"] for i in body["items"]]


def test_categories_limit_and_none_orders(client, data):
    start, end = AUTUMN
    body = get(client, "sales/categories", **period_params(start, end, "UTC", level="subcategory", limit=3))
    table = category_table(sale_lines(data, start, end, "UTC"), "subcategory")
    assert body["total_keys"] == len(table) > 3
    assert [i["key"] for i in body["items"]] == expected_order(table, "gross_revenue")[:3]
    full = {i["key"]: i for i in get(client, "sales/categories", **period_params(start, end, "UTC"))["items"]}
    # x-1 (one of its lines has no category) and x-2: two orders; x-4 and x-5 are not sales
    assert full[NONE]["orders"] == 2 and full[NONE]["units"] == 3 and full[NONE]["gross_revenue"] == 65.0
    assert full["Gizmos"]["orders"] == 2 and full["Gizmos"]["units"] == 2


# -- sales/geographic ---------------------------------------------------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("when", list(PERIODS))
@pytest.mark.parametrize("level", ["country", "region", "state", "city"])
def test_geographic_matches_pandas(client, data, tz, when, level):
    start, end = PERIODS[when]
    compare = "previous_year" if level in ("state", "city") else "previous_period"
    body = get(client, "sales/geographic", **period_params(start, end, tz, level=level, compare=compare))
    orders = sale_orders(data, start, end, tz)
    table = geo_table(orders, level)
    assert body["level"] == level and body["total_keys"] == len(table)
    assert [i["key"] for i in body["items"]] == expected_order(table, "gross_revenue")
    previous_orders = sale_orders(data, *compared_period(start, end, compare), tz)
    previous = previous_orders.assign(k=previous_orders[level].fillna(NONE)).groupby("k")["gross_revenue"].sum()
    for item in body["items"]:
        row = table.loc[item["key"]]
        assert item["gross_revenue"] == pytest.approx(row.gross_revenue, abs=0.01), item["key"]
        assert item["orders"] == row.orders and item["customers"] == row.customers, item["key"]
        assert item["share"] == pytest.approx(row.share, abs=1e-4), item["key"]
        assert_compared(item, item["key"], previous)
    assert body["totals"] == {
        "gross_revenue": pytest.approx(orders["gross_revenue"].sum(), abs=0.01),
        "orders": len(orders),
        "customers": orders["customer_id"].nunique(),
    }
    assert_comparison(body, orders["gross_revenue"].sum(), previous_orders["gross_revenue"].sum())


def test_geographic_limit_and_missing_places(client, data):
    start, end = AUTUMN
    body = get(client, "sales/geographic", **period_params(start, end, "UTC", level="city", limit=5))
    table = geo_table(sale_orders(data, start, end, "UTC"), "city")
    assert body["total_keys"] == len(table) > 5
    assert [i["key"] for i in body["items"]] == expected_order(table, "gross_revenue")[:5]
    full = {i["key"]: i for i in get(client, "sales/geographic", **period_params(start, end, "UTC"))["items"]}
    # x-1 (no country) and x-2, x-3 (ZZ): customer x-c1 is counted under both places
    assert (full[NONE]["orders"], full[NONE]["customers"], full[NONE]["gross_revenue"]) == (1, 1, 30.0)
    assert (full["ZZ"]["orders"], full["ZZ"]["customers"], full["ZZ"]["gross_revenue"]) == (2, 2, 57.0)


# -- filters and parameters ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path, field", [("sales/products", "units"), ("sales/categories", "units"), ("sales/geographic", "orders")]
)
def test_channel_and_store_filters(client, data, path, field):
    start, end = AUTUMN
    body = get(client, path, **period_params(start, end, "UTC", channel="mobile"))
    orders = sale_orders(data, start, end, "UTC")
    lines = sale_lines(data, start, end, "UTC")
    mobile = {
        "units": lines.loc[lines["channel"] == "mobile", "quantity"].sum(),
        "orders": int((orders["channel"] == "mobile").sum()),
    }
    assert body["totals"][field] == mobile[field] > 0
    none = get(client, path, **period_params(start, end, "UTC", store_id="no-such-store"))
    assert none["items"] == [] and none["totals"][field] == 0
    r = client.get(f"/api/v1/analytics/{path}", params={"start": "2026-01-01"}, headers=headers("read_s1"))
    assert r.status_code == 200 and r.json()["items"] == []


test_bad_parameters_are_422_naming_them = bad_parameters_test(
    [
        ("sales/products", {"sort": "profit"}, "query.sort"),
        ("sales/products", {"limit": "0"}, "query.limit"),
        ("sales/categories", {"level": "brand"}, "query.level"),
        ("sales/geographic", {"level": "continent"}, "query.level"),
        ("sales/geographic", {"compare": "yesterday"}, "query.compare"),
        ("sales/categories", {"tz": "Nowhere/Special"}, "query.tz"),
    ]
)


def test_previous_period_of_a_partial_day_period(client, data):
    """Datetimes as bounds: the previous period has the same length and ends where this starts."""
    start, end = "2026-11-01T00:00:00-04:00", "2026-11-03T12:00:00-05:00"
    body = get(client, "sales/geographic", start=start, end=end, tz="America/New_York", compare="previous_period")
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    orders = data.orders[data.orders["is_sale"]]
    current = orders[(orders["created_at"] >= lo) & (orders["created_at"] < hi)]
    before = orders[(orders["created_at"] >= lo - (hi - lo)) & (orders["created_at"] < lo)]
    assert body["totals"]["orders"] == len(current)
    assert_comparison(body, current["gross_revenue"].sum(), before["gross_revenue"].sum())
