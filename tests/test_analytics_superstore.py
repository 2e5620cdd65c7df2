"""Acceptance: the real Superstore file (2019-2022), imported, against pandas on the file itself.

The file is read with pandas independently of the importer (dd/mm/yy dates, `Sales` =
line revenue, `Profit` = line profit, so line cost = Sales - Profit) and every number
the sales endpoints return is compared with it.

Every order of the file is a sale (the mapping stores them as `delivered`), there are
no refunds and no order-level discounts, so gross profit = net revenue - cogs = the
file's Profit. Order dimensions (country, region, state, city, customer) are the
order's, i.e. its first line's: two orders (CA-2021-121465, CA-2022-130494) carry four
customer ids each and two (CA-2019-131807, CA-2022-131807) two cities; the importer keeps
the first line's, so the `customers` and place numbers are compared with pandas on the
first line of each order. A few Product IDs have two names in the file: products are
compared by id, and the name shown is the one on the product's latest line (latest
order date, then order id, then line, descending).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics_service.config import Settings
from analytics_service.importers.csv_import import ImportReport
from tests.conftest import analytics_get as get
from tests.conftest import assert_changes, run_import
from tests.oracle import compared_period, growth_pct, latest_of
from tests.periods import period_params

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

WHOLE = {"start": "2019-01-01", "end": "2023-01-01", "tz": "UTC"}
NONE = "(none)"


@pytest.fixture(scope="module")
def frame(superstore_path) -> pd.DataFrame:
    df = pd.read_csv(superstore_path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    df["Sales"] = df["Sales"].astype(float)
    df["Profit"] = df["Profit"].astype(float)
    df["Quantity"] = df["Quantity"].astype(int)
    df["order_date"] = pd.to_datetime(df["Order Date"], format="%d/%m/%y")
    df["line"] = df.groupby("Order ID").cumcount() + 1
    return df


@pytest.fixture(scope="module")
def orders(frame) -> pd.DataFrame:
    """One row per order: its first line's fields, the sum of its lines' Sales."""
    first = frame.drop_duplicates("Order ID").set_index("Order ID")
    first["gross_revenue"] = frame.groupby("Order ID")["Sales"].sum()
    return first.reset_index()


@pytest.fixture(scope="module")
def imported(settings: Settings, es, prefix, superstore_path, frame) -> ImportReport:
    report = run_import(settings, superstore_path, "superstore")
    assert report.ok, [str(p) for p in report.errors][:5]
    es.indices.refresh(index=f"{prefix}-*")
    return report


def expected_order(values: pd.Series) -> list[str]:
    """Keys by the measure (to 1e-6) descending, ties by key ascending."""
    return [k for _, k in sorted((-round(float(v), 6), k) for k, v in values.items())]


# -- categories and places ----------------------------------------------------------------


@pytest.mark.parametrize("level, column", [("category", "Category"), ("subcategory", "Sub-Category")])
def test_revenue_by_category(client, imported, frame, level, column):
    body = get(client, "sales/categories", level=level, **WHOLE)
    expected = frame.groupby(column).agg(
        gross_revenue=("Sales", "sum"), units=("Quantity", "sum"), orders=("Order ID", "nunique")
    )
    assert body["total_keys"] == len(expected) == {"category": 3, "subcategory": 17}[level]
    assert [i["key"] for i in body["items"]] == expected_order(expected["gross_revenue"])
    for item in body["items"]:
        row = expected.loc[item["key"]]
        assert item["gross_revenue"] == pytest.approx(row.gross_revenue, abs=0.01), item["key"]
        assert item["units"] == row.units and item["orders"] == row.orders, item["key"]
        assert item["share"] == pytest.approx(row.gross_revenue / frame["Sales"].sum(), abs=1e-4), item["key"]
    assert body["totals"]["orders"] == 5111 and body["totals"]["units"] == frame["Quantity"].sum()
    assert body["totals"]["gross_revenue"] == pytest.approx(frame["Sales"].sum(), abs=0.01)


def test_category_growth_2022_over_2021(client, imported, frame):
    body = get(client, "sales/categories", start="2022-01-01", end="2023-01-01", tz="UTC", compare="previous_year")
    year = frame["order_date"].dt.year
    now, before = (frame[year == y].groupby("Category")["Sales"].sum() for y in (2022, 2021))
    for item in body["items"]:
        k = item["key"]
        assert item["gross_revenue"] == pytest.approx(now[k], abs=0.01)
        assert item["gross_revenue_previous"] == pytest.approx(before[k], abs=0.01)
        assert item["gross_revenue_growth_pct"] == pytest.approx(growth_pct(now[k], before[k]), abs=0.01), k
    assert body["comparison"]["gross_revenue"] == pytest.approx(before.sum(), abs=0.01)


@pytest.mark.parametrize(
    "level, column, keys",
    [
        ("country", "Country/Region", 2),
        ("region", "Region", 4),
        ("state", "State/Province", 59),
        ("city", "City", None),
    ],
)
def test_revenue_by_place(client, imported, orders, level, column, keys):
    body = get(client, "sales/geographic", level=level, **WHOLE)  # no limit: every key
    expected = orders.groupby(column).agg(
        gross_revenue=("gross_revenue", "sum"), orders=("Order ID", "count"), customers=("Customer ID", "nunique")
    )
    assert body["total_keys"] == len(expected) == len(body["items"])
    if keys is not None:
        assert len(expected) == keys
    assert [i["key"] for i in body["items"]] == expected_order(expected["gross_revenue"])
    total = orders["gross_revenue"].sum()
    for item in body["items"]:
        row = expected.loc[item["key"]]
        assert item["gross_revenue"] == pytest.approx(row.gross_revenue, abs=0.01), item["key"]
        assert (item["orders"], item["customers"]) == (row.orders, row.customers), item["key"]
        assert item["share"] == pytest.approx(row.gross_revenue / total, abs=1e-4), item["key"]
    assert body["totals"]["orders"] == 5111 and body["totals"]["customers"] == 801
    assert body["totals"]["gross_revenue"] == pytest.approx(total, abs=0.01)


# -- monthly revenue ----------------------------------------------------------------------


def test_monthly_revenue(client, imported, frame, orders):
    months = [f"{y}-{m:02d}-01" for y in range(2019, 2023) for m in range(1, 13)]
    month = frame["order_date"].dt.strftime("%Y-%m-01")
    sales, units = frame.groupby(month)["Sales"].sum(), frame.groupby(month)["Quantity"].sum()
    per_order = orders.groupby(orders["order_date"].dt.strftime("%Y-%m-01"))["Order ID"].count()

    trends = get(client, "revenue/trends", interval="month", **WHOLE)
    assert [p["key"] for p in trends["series"]] == months
    for p in trends["series"]:
        k = p["key"]
        assert p["gross_revenue"] == pytest.approx(sales[k], abs=0.01), k
        assert p["net_revenue"] == pytest.approx(sales[k], abs=0.01), k
        assert (p["orders"], p["units"]) == (per_order[k], units[k]), k
        assert p["aov"] == pytest.approx(sales[k] / per_order[k], abs=0.01), k
    assert trends["totals"]["gross_revenue"] == pytest.approx(frame["Sales"].sum(), abs=0.01)
    assert trends["totals"]["orders"] == 5111

    revenue = get(client, "sales/revenue", interval="month", **WHOLE)
    assert [p["key"] for p in revenue["series"]] == months
    for p in revenue["series"]:
        assert p["gross_revenue"] == pytest.approx(sales[p["key"]], abs=0.01), p["key"]
        assert p["net_revenue"] == pytest.approx(sales[p["key"]], abs=0.01), p["key"]
        assert p["order_discounts"] == 0 and p["refunds"] == 0
    totals = revenue["totals"]
    assert totals["gross_revenue"] == pytest.approx(frame["Sales"].sum(), abs=0.01)
    assert totals["net_revenue"] == pytest.approx(frame["Sales"].sum(), abs=0.01)
    assert totals["order_discounts"] == 0 and totals["refunds"] == 0


# -- products and profit ------------------------------------------------------------------


def product_table(lines: pd.DataFrame) -> pd.DataFrame:
    t = lines.groupby("Product ID").agg(
        gross_revenue=("Sales", "sum"),
        units=("Quantity", "sum"),
        orders=("Order ID", "nunique"),
        gross_profit=("Profit", "sum"),
    )
    t["product_name"] = latest_of(lines, "Product ID", "Product Name", ["order_date", "Order ID", "line"])
    return t


def assert_products(body: dict, lines: pd.DataFrame) -> None:
    table = product_table(lines)
    total = lines["Sales"].sum()
    assert body["total_products"] == len(table) == len(body["items"])
    for item in body["items"]:
        row = table.loc[item["key"]]
        k = item["key"]
        assert item["name"] == row.product_name, k
        assert (item["units"], item["orders"], item["lines_without_cost"]) == (row.units, row.orders, 0), k
        assert item["gross_revenue"] == pytest.approx(row.gross_revenue, abs=0.01), k
        assert item["avg_price"] == pytest.approx(row.gross_revenue / row.units, abs=0.01), k
        assert item["cogs"] == pytest.approx(row.gross_revenue - row.gross_profit, abs=0.01), k
        assert item["gross_profit"] == pytest.approx(row.gross_profit, abs=0.01), k
        assert item["margin"] == pytest.approx(row.gross_profit / row.gross_revenue, abs=1e-4), k
        assert item["share"] == pytest.approx(row.gross_revenue / total, abs=1e-4), k
    assert [i["key"] for i in body["items"]] == expected_order(table["gross_profit"])


def test_profit(client, imported, frame, orders):
    """Every product of every quarter (each has fewer than 1,000), summed: the file's Profit."""
    quarter = frame["order_date"].dt.to_period("Q")
    profit, items = 0.0, 0
    for q in sorted(quarter.unique()):
        start, end = q.start_time.date(), (q + 1).start_time.date()
        body = get(client, "sales/products", **period_params(start, end, "UTC", sort="gross_profit", limit=1000))
        assert_products(body, frame[quarter == q])
        profit += sum(i["gross_profit"] for i in body["items"])
        items += len(body["items"])
    # each item is rounded to cents: the sum is off by at most half a cent per item
    assert profit == pytest.approx(frame["Profit"].sum(), abs=0.005 * items)

    whole = get(client, "sales/products", sort="gross_profit", limit=1, **WHOLE)
    assert whole["total_products"] == frame["Product ID"].nunique() == 1862
    assert whole["totals"]["gross_profit"] == pytest.approx(frame["Profit"].sum(), abs=0.01)
    assert whole["totals"]["cogs"] == pytest.approx((frame["Sales"] - frame["Profit"]).sum(), abs=0.01)
    assert whole["totals"]["lines_without_cost"] == 0

    k = get(client, "dashboard", **WHOLE)["kpis"]
    assert k["gross_profit"] == pytest.approx(frame["Profit"].sum(), abs=0.01)
    assert k["gross_revenue"] == pytest.approx(frame["Sales"].sum(), abs=0.01)
    assert k["net_revenue"] == pytest.approx(frame["Sales"].sum(), abs=0.01)
    assert (k["orders"], k["units"], k["customers"], k["new_customers"]) == (
        5111,
        frame["Quantity"].sum(),
        orders["Customer ID"].nunique(),
        orders["Customer ID"].nunique(),
    )
    assert k["aov"] == pytest.approx(frame["Sales"].sum() / 5111, abs=0.01)


@pytest.mark.parametrize("sort, measure", [("revenue", "gross_revenue"), ("units", "units")])
def test_top_products(client, imported, frame, sort, measure):
    body = get(client, "sales/products", sort=sort, limit=25, **WHOLE)
    table = product_table(frame)
    assert [i["key"] for i in body["items"]] == expected_order(table[measure])[:25]
    for item in body["items"]:
        row = table.loc[item["key"]]
        assert item["gross_revenue"] == pytest.approx(row.gross_revenue, abs=0.01), item["key"]
        assert (item["units"], item["orders"]) == (row.units, row.orders), item["key"]
        assert item["gross_profit"] == pytest.approx(row.gross_profit, abs=0.01), item["key"]


@pytest.mark.parametrize(
    "start, end, compare",
    [
        ("2022-10-01", "2023-01-01", "previous_period"),  # Q4 with Q3
        ("2020-03-01", "2020-04-01", "previous_period"),  # March with February (29 days)
        ("2020-02-29", "2020-03-01", "previous_year"),  # a leap day with 28 February 2019
        ("2021-03-01", "2021-03-08", "previous_year"),  # ISO week 9 with week 9 of 2020
        ("2021-01-01", "2022-01-01", "previous_year"),
    ],
)
def test_calendar_comparisons(client, imported, orders, start, end, compare):
    """A calendar unit compares with the whole unit before it (or a year earlier), on the real file."""
    lo, hi = compared_period(date.fromisoformat(start), date.fromisoformat(end), compare)
    body = get(client, "dashboard", start=start, end=end, tz="UTC", compare=compare)
    assert body["comparison_period"]["start"][:10] == lo.isoformat()
    assert body["comparison_period"]["end"][:10] == hi.isoformat()

    def kpis(a: date, b: date) -> dict:
        days = orders["order_date"].dt.date
        rows = orders[(days >= a) & (days < b)]
        return {"orders": len(rows), "gross_revenue": rows["gross_revenue"].sum()}

    now, before = kpis(date.fromisoformat(start), date.fromisoformat(end)), kpis(lo, hi)
    assert body["comparison"]["orders"] == before["orders"]
    assert body["comparison"]["gross_revenue"] == pytest.approx(before["gross_revenue"], abs=0.01)
    # the file has no order on 28 February 2019: that comparison has no data
    assert_changes(body["comparison"], now, before, has_data=before["orders"] > 0)


@pytest.mark.parametrize("window, interval", [(7, "week"), (30, "month"), (90, "month")])
def test_rolling_aov_of_the_file(client, imported, orders, window, interval):
    """The trailing-window AOV at the end of every bucket of 2021, from the file's orders (an
    order's gross revenue is the sum of its lines' Sales; the file has no order discounts)."""
    body = get(
        client, "sales/aov", start="2021-01-04", end="2022-01-03", tz="UTC", interval=interval, window=f"{window}d"
    )
    days = orders["order_date"].dt.date
    for point in body["series"]:
        end = date.fromisoformat(point["window_end"][:10])
        start = date.fromisoformat(point["window_start"][:10])
        assert (end - start).days == window
        rows = orders[(days >= start) & (days < end)]
        assert point["orders"] == len(rows), point["key"]
        assert point["aov"] == pytest.approx(rows["gross_revenue"].sum() / len(rows), abs=0.01), point["key"]


def test_campaigns_of_a_file_without_utm(client, imported, orders):
    """The file carries no campaign: every sale is unattributed, and no campaign is made up."""
    body = get(client, "marketing/campaigns", **WHOLE)
    assert body["items"] == [] and body["totals"]["spend"] == 0 and body["totals"]["roas"] is None
    assert body["unattributed"]["orders"] == len(orders) == 5111
    assert body["unattributed"]["gross_revenue"] == pytest.approx(orders["gross_revenue"].sum(), abs=0.05)
    assert body["unattributed"]["new_customers"] == orders["Customer ID"].nunique()
