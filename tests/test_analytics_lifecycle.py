"""Lifecycle endpoints (retention, conversion, segments) against pandas over the generated records.

The oracle is computed from the raw records that were POSTed (tests/oracle.py, plus columns
built here from the records), following docs/metrics.md "Users and activity" and the
definitions of docs/metrics.md; nothing of the service's own code is used for it.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics_service.analytics import requests
from tests.conftest import (
    analytics_get,
    assert_bad_parameter,
    assert_rfm_customers,
    bad_parameters_test,
    generate_records,
    ingest_records,
    numbers_of,
    post_records,
)
from tests.oracle import (
    RFM_NAMES,
    build_frames,
    funnel_oracle,
    in_period,
    local_start,
    retention_oracle,
    revenue_cohorts_oracle,
    rfm_oracle,
)
from tests.periods import YEAR, ZONES, period_params

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

STORE = "default"
# Periods with a New York DST change inside (8 March and 1 November 2026); some start or end
# inside a week or month, so the first cohort starts after the period's start and the last
# bucket is cut at the end.
RETENTION_PERIODS = {
    "month": [(date(2025, 11, 1), date(2026, 11, 1)), (date(2025, 11, 10), date(2026, 11, 15))],
    "week": [(date(2026, 2, 16), date(2026, 4, 20)), (date(2026, 10, 1), date(2026, 11, 15))],
}
AUTUMN = (date(2026, 10, 1), date(2026, 11, 10))
DEFAULT_STEPS = ["product_view", "add_to_cart", "checkout_started", "purchase"]


@pytest.fixture(scope="module")
def records(client):
    records = generate_records(seed=23, orders=1500, activity=6000, days=420, end=date(2026, 11, 15))
    ingest_records(client, records)
    return records


@pytest.fixture(scope="module")
def data(records):
    frames = build_frames(records)
    act = frames.activity

    def nested(name, field):
        return [(r.get(name) or {}).get(field) for r in records["activities"]]

    # the activity frame has one row per record, in order
    act["device_type"] = nested("device", "type")
    act["utm_source"] = nested("utm", "source")
    act["geo_country"] = nested("geo", "country")
    return frames


def get(client, path, **params):
    params.setdefault("store_id", STORE)
    return analytics_get(client, path, **params)


def sales(frames):
    return frames.orders[frames.orders["is_sale"]]


# -- retention ---------------------------------------------------------------------------


def retention_frame(frames, basis):
    if basis == "orders":
        return sales(frames), "customer_id", "created_at"
    return frames.activity[frames.activity["actor"].notna()], "actor", "timestamp"


CASES = [(g, p) for g, periods in RETENTION_PERIODS.items() for p in periods]


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("basis", ["orders", "activity"])
@pytest.mark.parametrize("granularity, period", CASES)
def test_retention_matches_pandas(client, data, tz, basis, granularity, period):
    start, end = period
    body = get(client, "users/retention", **period_params(start, end, tz), basis=basis, granularity=granularity)
    expected = retention_oracle(*retention_frame(data, basis), start, end, tz, granularity)
    assert body["basis"] == basis and body["granularity"] == granularity
    assert body["period"]["tz"] == tz and body["period"]["interval"] == granularity
    assert [c["cohort"] for c in body["cohorts"]] == [e["cohort"] for e in expected]
    assert sum(e["size"] for e in expected) > 10  # the data is not trivially empty
    for got, want in zip(body["cohorts"], expected, strict=True):
        assert got["size"] == want["size"], got["cohort"]
        assert got["counts"] == want["counts"], got["cohort"]
        assert len(got["retention"]) == len(want["retention"])
        for g, w in zip(got["retention"], want["retention"], strict=True):
            assert g == (None if w is None else pytest.approx(w, abs=1e-4))
        if want["size"]:
            assert got["retention"][0] == 1.0
    # size-weighted mean per offset, over the cohorts that have that offset
    for k, avg in enumerate(body["average"]):
        rows = [e for e in expected if len(e["counts"]) > k]
        size = sum(e["size"] for e in rows)
        assert avg == (None if not size else pytest.approx(sum(e["counts"][k] for e in rows) / size, abs=1e-4))
    assert len(body["average"]) == len(expected)


@pytest.mark.parametrize("tz", ["America/New_York", "UTC"])
@pytest.mark.parametrize("cumulative", [False, True])
@pytest.mark.parametrize("granularity, period", CASES)
def test_revenue_cohorts_match_pandas(client, data, tz, cumulative, granularity, period):
    """measure=revenue: gross revenue per cohort member and bucket; cumulative=true: the LTV by age."""
    start, end = period
    params = period_params(
        start, end, tz, granularity=granularity, measure="revenue", cumulative=str(cumulative).lower()
    )
    body = get(client, "users/retention", **params)
    expected = revenue_cohorts_oracle(sales(data), start, end, tz, granularity, cumulative)
    assert body["measure"] == "revenue" and body["cumulative"] is cumulative
    assert [c["cohort"] for c in body["cohorts"]] == [e["cohort"] for e in expected]
    assert sum(sum(e["gross"]) for e in expected) > 0
    for got, want in zip(body["cohorts"], expected, strict=True):
        assert got["size"] == want["size"], got["cohort"]
        assert got["gross_revenue"] == pytest.approx(want["gross"], abs=0.01), got["cohort"]
        for g, w in zip(got["revenue"], want["revenue"], strict=True):
            assert g == (None if w is None else pytest.approx(w, abs=0.01)), got["cohort"]
        if cumulative and want["size"]:  # LTV never falls with age
            assert got["revenue"] == sorted(got["revenue"])
    for k, avg in enumerate(body["average_revenue"]):
        rows = [e for e in expected if len(e["gross"]) > k]
        members = sum(e["size"] for e in rows)
        through = [sum(e["gross"][: k + 1]) if cumulative else e["gross"][k] for e in rows]
        assert avg == (None if not members else pytest.approx(sum(through) / members, abs=0.01))
    plain = get(client, "users/retention", **period_params(start, end, tz, granularity=granularity))
    assert [c["counts"] for c in plain["cohorts"]] == [c["counts"] for c in body["cohorts"]]  # same members


def test_retention_weeks_start_on_monday_across_dst(client, data):
    body = get(
        client,
        "users/retention",
        **period_params(date(2026, 2, 16), date(2026, 4, 20), "America/New_York"),
        granularity="week",
    )
    keys = [c["cohort"] for c in body["cohorts"]]
    assert keys[0] == "2026-02-16" and "2026-03-09" in keys and keys[-1] == "2026-04-13"
    assert all(date.fromisoformat(k).weekday() == 0 for k in keys)
    assert [len(c["retention"]) for c in body["cohorts"]] == list(range(len(keys), 0, -1))


def test_retention_of_a_period_shorter_than_a_bucket_is_empty(client, data):
    body = get(client, "users/retention", start="2026-10-10", end="2026-10-20")
    assert body["cohorts"] == [] and body["average"] == []


# -- conversion ----------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize(
    "steps",
    [
        None,
        "search,product_view,add_to_cart",
        "purchase,product_view",
        "page_view,product_view,add_to_cart,checkout_started,purchase,review",
    ],
)
def test_conversion_matches_pandas(client, data, tz, steps):
    start, end = YEAR if steps and "review" in steps else AUTUMN
    params = period_params(start, end, tz)
    if steps:
        params["steps"] = steps
    body = get(client, "users/conversion", **params)
    names = steps.split(",") if steps else DEFAULT_STEPS
    reached = funnel_oracle(in_period(data.activity, "timestamp", start, end, tz), names)
    assert reached[0] > 0
    assert [s["step"] for s in body["steps"]] == names
    assert [s["actors"] for s in body["steps"]] == reached
    for k, s in enumerate(body["steps"]):
        assert s["conversion"] == pytest.approx(reached[k] / reached[0], abs=1e-4)
        previous = reached[k - 1] if k else reached[0]
        assert s["step_conversion"] == (pytest.approx(reached[k] / previous, abs=1e-4) if previous else None)


ALL_TYPES = (
    "page_view,product_view,search,add_to_cart,remove_from_cart,checkout_started,purchase,login,signup,"
    "wishlist_add,review"
)


@pytest.mark.parametrize(
    "steps", ["purchase", "", "product_view,,purchase", "product_view,teleport", "purchase,purchase", ALL_TYPES]
)
def test_bad_steps_are_422(client, steps):
    assert_bad_parameter(client, "users/conversion", {"steps": steps}, "query.steps")


# -- segments: RFM and new/returning ----------------------------------------------------------


def all_rfm_customers(client, params) -> list[dict]:
    out, page = [], 1
    while True:
        body = get(client, "users/segments", **params, type="rfm", include_customers="true", page=page, page_size=400)
        out.extend(body["customers"])
        if page * 400 >= body["customers_total"]:
            assert len(out) == body["customers_total"]
            return out
        page += 1


def check_customer_segments(body, expected: pd.DataFrame, names: list[str], key: str):
    raw = "monetary_raw" if "monetary_raw" in expected else "monetary"
    g = expected.groupby(key).agg(
        customers=("customer_id", "count"), orders=("frequency", "sum"), monetary=(raw, "sum")
    )
    total = len(expected)
    assert body["total"] == total
    assert sorted(s["key"] for s in body["segments"]) == sorted(names)
    counts = [s["customers"] for s in body["segments"]]
    assert counts == sorted(counts, reverse=True)
    for s in body["segments"]:
        row = g.loc[s["key"]] if s["key"] in g.index else None
        assert s["customers"] == (0 if row is None else row.customers), s["key"]
        assert s["orders"] == (0 if row is None else row.orders), s["key"]
        assert s["monetary"] == pytest.approx(0 if row is None else row.monetary, abs=0.01)
        assert s["share"] == pytest.approx(s["customers"] / total, abs=1e-4)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("period", [YEAR, AUTUMN])
def test_rfm_matches_pandas(client, data, tz, period):
    start, end = period
    params = period_params(start, end, tz)
    expected = rfm_oracle(data, start, end, tz)
    body = get(client, "users/segments", **params, type="rfm")
    assert body["type"] == "rfm" and body["customers"] is None
    check_customer_segments(body, expected, RFM_NAMES, "segment")
    got = pd.DataFrame(all_rfm_customers(client, params))
    # the list is ordered by monetary descending, ties by customer_id
    ordered = got.sort_values(["monetary", "customer_id"], ascending=[False, True])
    assert list(got["customer_id"]) == list(ordered["customer_id"])
    assert_rfm_customers(expected, got)
    assert set(expected["segment"]) >= {"Champions", "Hibernating"}  # the data exercises the rules


def test_rfm_is_exact_when_partitions_overflow(client, data, monkeypatch, partitions_sent):
    """Partitions far too small for the customers: each read that leaves values over is read
    again in twice the partitions, until none does; the answer is the oracle's."""
    monkeypatch.setattr(requests, "PARTITION_VALUES", 10_000)
    monkeypatch.setattr(requests, "PARTITION_SIZE", 3)
    start, end = AUTUMN
    params = period_params(start, end, "Asia/Kolkata")  # not asked before: not cached
    expected = rfm_oracle(data, start, end, "Asia/Kolkata")
    assert len(expected) > 12
    body = get(client, "users/segments", **params, type="rfm", include_customers="true", page_size=1000)
    assert_rfm_customers(expected, pd.DataFrame(body["customers"]))
    assert partitions_sent[0] == 1 and max(partitions_sent) >= 8  # it started with one partition and had to split


def test_rfm_pages_and_segment_filter(client, data):
    start, end = YEAR
    params = period_params(start, end, "UTC")
    expected = rfm_oracle(data, start, end, "UTC")
    champions = expected[expected["segment"] == "Champions"].sort_values(
        ["monetary", "customer_id"], ascending=[False, True]
    )
    body = get(
        client,
        "users/segments",
        **params,
        type="rfm",
        include_customers="true",
        segment="Champions",
        page=2,
        page_size=7,
    )
    assert body["customers_total"] == len(champions) and body["page"] == 2 and body["page_size"] == 7
    assert [c["customer_id"] for c in body["customers"]] == list(champions["customer_id"][7:14])
    assert all(c["segment"] == "Champions" for c in body["customers"])
    beyond = get(client, "users/segments", **params, type="rfm", include_customers="true", page=1000)
    assert beyond["customers"] == [] and beyond["customers_total"] == len(expected)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("period", [YEAR, AUTUMN])
def test_new_returning_matches_pandas(client, data, tz, period):
    start, end = period
    all_sales = sales(data)
    first = all_sales.groupby("customer_id")["created_at"].min()
    s = in_period(all_sales, "created_at", start, end, tz)
    g = s.groupby("customer_id").agg(frequency=("order_id", "count"), monetary=("order_value", "sum")).reset_index()
    g["kind"] = (g["customer_id"].map(first) >= local_start(start, tz)).map({True: "new", False: "returning"})
    assert set(g["kind"]) == {"new", "returning"}
    body = get(client, "users/segments", **period_params(start, end, tz), type="new_returning")
    check_customer_segments(body, g, ["new", "returning"], "kind")
    assert body["repeat_purchase_rate"] == pytest.approx((g["frequency"] >= 2).mean(), abs=1e-4)


@pytest.mark.parametrize("tz", ZONES)
def test_customer_documents_and_orders_give_the_same_answers(client, data, tz, monkeypatch):
    """The customer documents' counts (the default) equal paging the orders (the path taken
    with a channel filter or before the documents are built), for every answer that reads them."""
    import asyncio

    from analytics_service.analytics.runner import QueryContext

    params = {**period_params(*YEAR, tz), "compare": "previous_period"}
    reads = [
        ("dashboard", {}),
        ("users/segments", {"type": "new_returning"}),
        ("users/retention", {"basis": "orders", "granularity": "month"}),
        ("users/retention", {"basis": "orders", "granularity": "week"}),
        ("sales/geographic", {"level": "country"}),
        ("sales/geographic", {"level": "city"}),
    ]

    def answers() -> list[dict]:
        asyncio.run(client.app.state.cache.bump([]))  # nothing cached is current any more
        return [numbers_of(get(client, path, **params, **extra)) for path, extra in reads]

    from_documents = answers()

    async def not_built(self) -> bool:
        return False

    monkeypatch.setattr(QueryContext, "customer_documents_ready", not_built)
    assert answers() == from_documents
    assert from_documents[0]["kpis"]["new_customers"] > 0 and from_documents[1]["repeat_purchase_rate"] > 0


def test_channel_filter_applies_to_customers(client, data):
    start, end = YEAR
    s = in_period(sales(data), "created_at", start, end, "UTC")
    mobile = s[s["channel"] == "mobile"]
    body = get(client, "users/segments", **period_params(start, end, "UTC"), type="rfm", channel="mobile")
    assert body["total"] == mobile["customer_id"].nunique() < s["customer_id"].nunique()
    assert sum(seg["orders"] for seg in body["segments"]) == len(mobile)
    # new: the first mobile sale ever is in the period
    all_mobile = sales(data)[sales(data)["channel"] == "mobile"]
    first = all_mobile.groupby("customer_id")["created_at"].min()
    new = (first[mobile["customer_id"].unique()] >= local_start(start, "UTC")).sum()
    body = get(client, "users/segments", **period_params(start, end, "UTC"), type="new_returning", channel="mobile")
    assert {x["key"]: x["customers"] for x in body["segments"]}["new"] == new


# -- segments: actors by device, source, country -------------------------------------------------

DIMENSIONS = {"device": "device_type", "source": "utm_source", "country": "geo_country"}


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("dimension", list(DIMENSIONS))
def test_actor_segments_match_pandas(client, data, tz, dimension):
    start, end = AUTUMN
    act = in_period(data.activity, "timestamp", start, end, tz)
    act = act[act["actor"].notna()]
    column = DIMENSIONS[dimension]
    # first touch: each actor's earliest activity in the period; at the same instant a value
    # before none, then the smaller value
    ordered = act.assign(missing=act[column].isna(), value=act[column].fillna("")).sort_values(
        ["actor", "timestamp", "missing", "value"]
    )
    first = ordered.drop_duplicates("actor")
    keys = first[column].fillna("(none)")
    expected = keys.value_counts()
    body = get(client, "users/segments", **period_params(start, end, tz), type=dimension)
    assert body["type"] == dimension and body["total"] == act["actor"].nunique() == len(first)
    assert {s["key"]: s["actors"] for s in body["segments"]} == expected.to_dict()
    assert [(s["actors"], s["key"]) for s in body["segments"]] == sorted(
        ((s["actors"], s["key"]) for s in body["segments"]), key=lambda x: (-x[0], x[1])
    )
    for s in body["segments"]:
        assert s["share"] == pytest.approx(s["actors"] / len(first), abs=1e-4)
    if dimension == "source":
        assert "(none)" in expected.index  # sessions without UTM exist


# -- hand-made records: the definitions, spelled out -------------------------------------------


def _order(order_id, customer, when, value, status="delivered"):
    return {
        "order_id": order_id,
        "store_id": "hand",
        "status": status,
        "created_at": when,
        "customer": {"customer_id": customer},
        "items": [{"product_id": "p", "quantity": 1, "unit_price": value}],
    }


def _act(n, actor, kind, when, anonymous=False, **extra):
    who = {"anonymous_id": actor} if anonymous else {"user_id": actor}
    return {
        "activity_id": f"hand-{n}",
        "store_id": "hand",
        "activity_type": kind,
        "timestamp": when,
        "session_id": f"s-{actor}",
        **who,
        **extra,
    }


@pytest.fixture(scope="module")
def hand(client, records):
    orders = [
        _order("h1", "old", "2026-05-20T10:00:00Z", 10.0),  # first sale before the period
        _order("h2", "old", "2026-06-03T10:00:00Z", 10.0),
        _order("h3", "a", "2026-06-01T00:00:00Z", 50.0),  # June cohort
        _order("h4", "a", "2026-08-15T00:00:00Z", 50.0),  # active in June+2
        _order("h5", "b", "2026-06-30T23:59:59Z", 20.0),  # June cohort, inactive after
        _order("h6", "b", "2026-06-02T00:00:00Z", 5.0, status="cancelled"),  # not a sale
        _order("h7", "c", "2026-07-10T00:00:00Z", 30.0),  # July cohort
        _order("h8", "c", "2026-09-05T00:00:00Z", 30.0),  # after the end: ignored
        _order("h9", "d", "2026-08-31T12:00:00Z", 80.0),
        _order("h10", "e", "2026-08-20T00:00:00Z", 15.0),
    ]
    activities = [
        # x does the steps out of order: still reaches every step
        _act(1, "x", "purchase", "2026-08-01T10:00:00Z", device={"type": "mobile"}),
        _act(2, "x", "product_view", "2026-08-02T10:00:00Z", device={"type": "desktop"}),
        _act(3, "x", "checkout_started", "2026-08-03T10:00:00Z"),
        _act(4, "x", "add_to_cart", "2026-08-04T10:00:00Z"),
        # y skips add_to_cart: reaches step 1 only
        _act(5, "y", "product_view", "2026-08-01T10:00:00Z", anonymous=True),
        _act(6, "y", "checkout_started", "2026-08-01T10:05:00Z", anonymous=True),
        _act(7, "y", "purchase", "2026-08-01T10:06:00Z", anonymous=True),
        # z never views a product: in no step
        _act(8, "z", "add_to_cart", "2026-08-01T10:00:00Z", device={"type": "tablet"}),
    ]
    for kind, batch in (("orders", orders), ("activities", activities)):
        r = post_records(client, kind, batch)
        assert r.status_code == 200 and not r.json()["errors"], r.text


def hand_get(client, path, **params):
    return get(client, path, store_id="hand", **params)


def test_funnel_needs_every_earlier_step_but_no_order(client, hand):
    body = hand_get(client, "users/conversion", start="2026-08-01", end="2026-09-01")
    assert [(s["step"], s["actors"], s["conversion"], s["step_conversion"]) for s in body["steps"]] == [
        ("product_view", 2, 1.0, 1.0),
        ("add_to_cart", 1, 0.5, 0.5),
        ("checkout_started", 1, 0.5, 1.0),
        ("purchase", 1, 0.5, 1.0),
    ]


def test_first_touch_device(client, hand):
    body = hand_get(client, "users/segments", start="2026-08-01", end="2026-09-01", type="device")
    assert body["total"] == 3
    assert body["segments"] == [
        {"key": "(none)", "actors": 1, "share": 0.3333},
        {"key": "mobile", "actors": 1, "share": 0.3333},
        {"key": "tablet", "actors": 1, "share": 0.3333},
    ]


def test_order_cohorts_by_hand(client, hand):
    body = hand_get(client, "users/retention", start="2026-06-01", end="2026-09-01")
    assert [(c["cohort"], c["size"], c["counts"], c["retention"]) for c in body["cohorts"]] == [
        ("2026-06-01", 2, [2, 0, 1], [1.0, 0.0, 0.5]),  # a and b; a again in August
        ("2026-07-01", 1, [1, 0], [1.0, 0.0]),  # c; September is after the end
        ("2026-08-01", 2, [2], [1.0]),  # d and e
    ]
    assert body["average"] == [1.0, pytest.approx(0 / 3), 0.5]


def test_rfm_by_hand(client, hand):
    # August 2026: customers a (1 sale, 50, 17 days ago), d (80, 0 days: 12 h before the end),
    # e (15, 12 days). R by recency asc: d, e, a -> 5, 4, 2; F all 1 sale: by id a, d, e -> 5, 4, 2;
    # M by monetary desc: d, a, e -> 5, 4, 2.
    body = hand_get(
        client, "users/segments", start="2026-08-01", end="2026-09-01", type="rfm", include_customers="true"
    )
    got = {
        c["customer_id"]: (c["recency_days"], c["frequency"], c["monetary"], c["r"], c["f"], c["m"], c["segment"])
        for c in body["customers"]
    }
    assert got == {
        "a": (17, 1, 50.0, 2, 5, 4, "Loyal Customers"),
        "d": (0, 1, 80.0, 5, 4, 5, "Champions"),
        "e": (12, 1, 15.0, 4, 2, 2, "Potential Loyalists"),
    }
    assert [c["customer_id"] for c in body["customers"]] == ["d", "a", "e"]
    nr = hand_get(client, "users/segments", start="2026-06-01", end="2026-09-01", type="new_returning")
    assert {s["key"]: (s["customers"], s["orders"]) for s in nr["segments"]} == {"new": (5, 6), "returning": (1, 1)}
    assert nr["repeat_purchase_rate"] == pytest.approx(1 / 6, abs=1e-4)


# -- parameters, cache ----------------------------------------------------------------------------


test_bad_parameters_are_422_naming_them = bad_parameters_test(
    [
        ("users/retention", {"basis": "events"}, "query.basis"),
        ("users/retention", {"granularity": "day"}, "query.granularity"),
        ("users/retention", {"measure": "profit"}, "query.measure"),
        ("users/retention", {"measure": "revenue", "basis": "activity"}, "query.measure"),
        ("users/retention", {"cumulative": "true"}, "query.cumulative"),
        ("users/retention", {"cumulative": "maybe", "measure": "revenue"}, "query.cumulative"),
        ("users/retention", {"tz": "Nowhere/City"}, "query.tz"),
        ("users/segments", {"type": "age"}, "query.type"),
        ("users/segments", {"segment": "Whales", "include_customers": "true"}, "query.segment"),
        ("users/segments", {"page": "0"}, "query.page"),
        ("users/segments", {"page_size": "5000"}, "query.page_size"),
        ("users/segments", {"include_customers": "maybe"}, "query.include_customers"),
    ]
)


def test_every_parameter_is_part_of_the_cache_key(client, data):
    params = {"start": "2026-10-01", "end": "2026-11-01"}
    first = get(client, "users/conversion", **params)
    assert get(client, "users/conversion", **params)["cached"] is True
    other = get(client, "users/conversion", **params, steps="page_view,product_view")
    assert other["cached"] is False and [s["step"] for s in other["steps"]] == ["page_view", "product_view"]
    weekly = get(client, "users/retention", **params, granularity="week")
    monthly = get(client, "users/retention", **params)
    assert weekly["granularity"] == "week" and monthly["granularity"] == "month"
    assert first["steps"][0]["step"] == "product_view"
