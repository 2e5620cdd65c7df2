"""RFM, order cohorts and new/returning customers of the Superstore sample, against pandas over the file.

The file is read from ../shared/data (not part of the repository); the module is skipped when
it is absent. It is imported with the project's importer (built-in `superstore` mapping: every
order `delivered`, created at 00:00 of its Order Date in the store's time zone, UTC here), and
the oracle is pandas over the CSV itself: lines grouped by Order ID, an order's value = the sum
of its lines' Sales (line revenue after discount; there is no order-level discount), its date
the Order Date. The importer keeps each order's FIRST line's Customer ID (two orders,
CA-2021-121465 and CA-2022-130494, carry several ids: see tests/test_csv_import.py), so the
oracle takes the customer of an order from its first line in the file too.
"""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.conftest import analytics_get, assert_rfm_customers, run_import
from tests.oracle import RFM_NAMES, retention_oracle, revenue_cohorts_oracle, rfm_oracle

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

START, END = date(2019, 1, 1), date(2023, 1, 1)


@pytest.fixture(scope="module")
def orders(superstore_path) -> pd.DataFrame:
    """One row per order of the file: first line's customer, Order Date (UTC), sum of Sales."""
    lines = pd.read_csv(superstore_path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    lines["Sales"] = lines["Sales"].astype(float)
    per_order = lines.groupby("Order ID", sort=False).agg(
        customer_id=("Customer ID", "first"), order_date=("Order Date", "first"), order_value=("Sales", "sum")
    )
    per_order = per_order.reset_index().rename(columns={"Order ID": "order_id"})
    per_order["created_at"] = pd.to_datetime(per_order["order_date"], format="%d/%m/%y").dt.tz_localize("UTC")
    per_order["is_sale"] = True
    assert len(per_order) == 5111 and per_order["customer_id"].nunique() == 801
    return per_order


@pytest.fixture(scope="module")
def imported(orders, settings, client, es, superstore_path):
    report = run_import(settings, superstore_path, "superstore")
    es.indices.refresh(index=f"{settings.index_prefix}-*")
    assert report.ok and report.orders == 5111, [str(p) for p in report.errors]
    assert settings.store_timezone(settings.default_store_id).key == "UTC"
    return report


def get(client, path, **params):
    return analytics_get(client, path, **{"start": START.isoformat(), "end": END.isoformat(), "tz": "UTC", **params})


def test_rfm_matches_the_file(client, imported, orders):
    expected = rfm_oracle(SimpleNamespace(orders=orders), START, END, "UTC")
    assert len(expected) == 801
    body = get(client, "users/segments", type="rfm", include_customers="true", page_size=1000)
    assert body["total"] == 801 and body["customers_total"] == 801
    got = pd.DataFrame(body["customers"])
    merged = assert_rfm_customers(expected, got)
    g = expected.groupby("segment").agg(
        customers=("customer_id", "count"), orders=("frequency", "sum"), monetary=("monetary_raw", "sum")
    )
    assert sorted(s["key"] for s in body["segments"]) == sorted(RFM_NAMES)
    for s in body["segments"]:
        row = g.loc[s["key"]] if s["key"] in g.index else None
        assert s["customers"] == (0 if row is None else row.customers), s["key"]
        assert s["orders"] == (0 if row is None else row.orders), s["key"]
        assert s["monetary"] == pytest.approx(0 if row is None else row.monetary, abs=0.01)
        assert s["share"] == pytest.approx(s["customers"] / 801, abs=1e-4)
    # whole days from the last order date to 2023-01-01
    last = orders.groupby("customer_id")["created_at"].max()
    days = (pd.Timestamp("2023-01-01", tz="UTC") - last).dt.days
    assert (merged.set_index("customer_id")["recency_days_api"] == days).all()


def test_monthly_order_cohorts_match_the_file(client, imported, orders):
    expected = retention_oracle(orders, "customer_id", "created_at", START, END, "UTC", "month")
    assert len(expected) == 48 and sum(e["size"] for e in expected) == 801
    body = get(client, "users/retention", basis="orders", granularity="month")
    assert [(c["cohort"], c["size"], c["counts"]) for c in body["cohorts"]] == [
        (e["cohort"], e["size"], e["counts"]) for e in expected
    ]
    for got, want in zip(body["cohorts"], expected, strict=True):
        if want["size"]:
            assert got["retention"] == pytest.approx(want["retention"], abs=1e-4)
        else:
            assert all(x is None for x in got["retention"])


@pytest.mark.parametrize("cumulative", [False, True])
def test_revenue_cohorts_and_ltv_match_the_file(client, imported, orders, cumulative):
    """Monthly revenue cohorts of the real file: revenue per member, and the LTV by cohort age."""
    sales = orders.assign(gross_revenue=orders["order_value"])  # an order's Sales: its gross revenue (no discounts)
    expected = revenue_cohorts_oracle(sales, START, END, "UTC", "month", cumulative)
    body = get(
        client,
        "users/retention",
        basis="orders",
        granularity="month",
        measure="revenue",
        cumulative=str(cumulative).lower(),
    )
    assert [(c["cohort"], c["size"]) for c in body["cohorts"]] == [(e["cohort"], e["size"]) for e in expected]
    for got, want in zip(body["cohorts"], expected, strict=True):
        assert got["gross_revenue"] == pytest.approx(want["gross"], abs=0.01), got["cohort"]
        if want["size"]:
            assert got["revenue"] == pytest.approx(want["revenue"], abs=0.01), got["cohort"]


def test_new_and_returning_customers_of_2022(client, imported, orders):
    first = orders.groupby("customer_id")["created_at"].min()
    in_2022 = orders[orders["created_at"].dt.year == 2022]
    per = in_2022.groupby("customer_id").agg(n=("order_id", "count"), value=("order_value", "sum"))
    new = per.index.map(first) >= pd.Timestamp("2022-01-01", tz="UTC")
    body = get(client, "users/segments", type="new_returning", start="2022-01-01", end="2023-01-01")
    got = {s["key"]: s for s in body["segments"]}
    assert body["total"] == len(per)
    assert got["new"]["customers"] == int(new.sum()) and got["returning"]["customers"] == int((~new).sum())
    assert got["new"]["orders"] == int(per.loc[new, "n"].sum())
    assert got["returning"]["monetary"] == pytest.approx(per.loc[~new, "value"].sum(), abs=0.01)
    assert body["repeat_purchase_rate"] == pytest.approx((per["n"] >= 2).mean(), abs=1e-4)
