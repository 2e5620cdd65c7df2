"""marketing/campaigns against pandas (docs/metrics.md "Campaigns"): last-touch attribution on
the order's utm.campaign, spend from the expenses' campaign, new customers by their first sale
ever, ROAS, CAC and conversion, on generated data plus records made for the edge cases."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import analytics_get, bad_parameters_test, generate_records, ingest_records
from tests.oracle import build_frames, campaigns_oracle
from tests.periods import period_params

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

START, END = date(2026, 10, 1), date(2026, 11, 1)


def order(order_id: str, customer: str, created_at: str, campaign: str | None, price: float) -> dict:
    record = {
        "order_id": order_id,
        "status": "paid",
        "created_at": created_at,
        "customer": {"customer_id": customer},
        "items": [{"product_id": "edge-p", "quantity": 1, "unit_price": price}],
    }
    if campaign:
        record["utm"] = {"source": "edge", "medium": "cpc", "campaign": campaign}
    return record


# A returning customer (a sale before the period) buying through a campaign is not new; a new
# customer whose first sale is untagged counts as unattributed even when a later sale is tagged;
# a campaign with spend and no sale has ROAS 0; one with sales and no spend has no ROAS.
EDGE_ORDERS = [
    order("edge-1", "edge-old", "2026-09-20T10:00:00Z", None, 40.0),
    order("edge-2", "edge-old", "2026-10-05T10:00:00Z", "edge-launch", 60.0),
    order("edge-3", "edge-new", "2026-10-06T10:00:00Z", "edge-launch", 80.0),
    order("edge-4", "edge-mixed", "2026-10-07T10:00:00Z", None, 25.0),
    order("edge-5", "edge-mixed", "2026-10-09T10:00:00Z", "edge-launch", 35.0),
    order("edge-6", "edge-free", "2026-10-10T10:00:00Z", "edge-unpaid", 50.0),
]
EDGE_EXPENSES = [
    {
        "expense_id": "edge-x1",
        "date": "2026-10-03",
        "category": "marketing",
        "amount": 90.0,
        "campaign": "edge-launch",
        "channel": "edge_ads",
    },
    {
        "expense_id": "edge-x2",
        "date": "2026-10-04",
        "category": "marketing",
        "amount": 30.0,
        "campaign": "edge-silent",
        "channel": "edge_ads",
    },
    {
        "expense_id": "edge-x3",
        "date": "2026-11-01",
        "category": "marketing",
        "amount": 999.0,
        "campaign": "edge-launch",
        "channel": "edge_ads",
    },  # the day after the period
]


@pytest.fixture(scope="module")
def data(client):
    records = generate_records(seed=61, orders=1500, activity=4000, days=400, end=date(2026, 11, 20))
    records["orders"].extend(EDGE_ORDERS)
    records["expenses"].extend(EDGE_EXPENSES)
    ingest_records(client, records)
    return build_frames(records)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_campaigns_match_pandas(client, data, tz):
    body = analytics_get(client, "marketing/campaigns", **period_params(START, END, tz))
    expected = campaigns_oracle(data, START, END, tz)
    items = {i["campaign"]: i for i in body["items"]}
    assert set(items) == {k for k in expected if k is not None}
    assert len(items) >= 6  # the generated campaigns and the edge ones
    for name, item in items.items():
        want = expected[name]
        for key in ("orders", "new_customers", "sessions"):
            assert item[key] == want[key], (name, key)
        for key in ("spend", "gross_revenue", "cac"):
            assert item[key] == (None if want[key] is None else pytest.approx(want[key], abs=0.01)), (name, key)
        for key in ("roas", "conversion_rate"):
            assert item[key] == (None if want[key] is None else pytest.approx(want[key], abs=1e-4)), (name, key)
        assert sum(u["orders"] for u in item["utm"]) == item["orders"]
        assert sum(c["spend"] for c in item["spend_by_channel"]) == pytest.approx(item["spend"], abs=0.02)
    keys = [(-i["gross_revenue"], -i["spend"], i["campaign"]) for i in body["items"]]
    assert keys == sorted(keys)
    none = expected[None]
    assert body["unattributed"]["orders"] == none["orders"]
    assert body["unattributed"]["new_customers"] == none["new_customers"]
    assert body["unattributed"]["gross_revenue"] == pytest.approx(none["gross_revenue"], abs=0.01)
    t = body["totals"]
    spend = sum(e["spend"] for k, e in expected.items() if k)
    revenue = sum(e["gross_revenue"] for k, e in expected.items() if k)
    won = sum(e["new_customers"] for k, e in expected.items() if k)
    assert t["spend"] == pytest.approx(spend, abs=0.05) and t["gross_revenue"] == pytest.approx(revenue, abs=0.05)
    assert t["roas"] == pytest.approx(revenue / spend, abs=1e-3) and t["cac"] == pytest.approx(spend / won, abs=0.01)


def test_the_edge_campaigns(client, data):
    """The rules spelled out on the records made for them (the oracle agrees with each)."""
    body = analytics_get(client, "marketing/campaigns", **period_params(START, END))
    items = {i["campaign"]: i for i in body["items"]}
    launch = items["edge-launch"]
    # edge-old had a sale before the period; edge-mixed's first sale carries no campaign
    assert launch["orders"] == 3 and launch["new_customers"] == 1
    assert launch["spend"] == 90.0 and launch["gross_revenue"] == 175.0  # the 1 November expense is outside
    assert launch["roas"] == pytest.approx(175 / 90, abs=1e-4) and launch["cac"] == 90.0
    assert launch["channel"] == "edge_ads" and launch["utm"][0]["source"] == "edge"
    assert items["edge-silent"]["roas"] == 0.0 and items["edge-silent"]["cac"] is None  # spend, no sale
    unpaid = items["edge-unpaid"]
    assert unpaid["roas"] is None and unpaid["cac"] == 0.0 and unpaid["new_customers"] == 1  # sales, no spend
    assert unpaid["channel"] == "edge / cpc"


test_bad_parameters_are_422_naming_them = bad_parameters_test(
    [
        ("marketing/campaigns", {"tz": "Nowhere/City"}, "query.tz"),
        ("marketing/campaigns", {"start": "2026-13-01"}, "query.start"),
        ("marketing/campaigns", {"store_id": "no such store!"}, "query.store_id"),
    ]
)
