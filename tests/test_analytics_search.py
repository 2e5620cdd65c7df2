"""Full-text search: what it finds (against the raw records), paging, highlights, and that
nothing a caller types reaches another store's documents."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from tests.conftest import assert_bad_parameter, generate_records, headers, ingest_records

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

PERIOD = {"start": "2026-01-01", "end": "2026-11-16"}
SECRET = {
    "order_id": "secret-1",
    "status": "paid",
    "created_at": "2026-10-01T12:00:00Z",
    "channel": "web",
    "customer": {
        "customer_id": "zc-1",
        "name": "Zebulon Quuxley",
        "email": "zebulon@secret.example",
        "city": "Atlantis",
    },
    "items": [
        {"product_id": "zp-1", "sku": "ZZ-SECRET-1", "name": "Quuxley Secret Widget", "quantity": 1, "unit_price": 10.0}
    ],
}


@pytest.fixture(scope="module")
def data(client):
    default = generate_records(seed=21, orders=400, activity=1500, days=120, end=date(2026, 11, 15))
    ingest_records(client, default)
    s1 = generate_records(seed=22, orders=80, activity=200, days=60, end=date(2026, 11, 15), store_id="s1")
    s1["orders"].append({**SECRET, "store_id": "s1"})
    s1["products"].append(
        {
            "product_id": "zp-1",
            "store_id": "s1",
            "sku": "ZZ-SECRET-1",
            "name": "Quuxley Secret Widget",
            "brand": "Quuxley",
            "category": "Secrets",
        }
    )
    ingest_records(client, s1)
    return {"default": default, "s1": s1}


def search(client, key="read", expect=200, **params):
    if key == "read":
        params.setdefault("store_id", "default")
    for name, value in PERIOD.items():
        params.setdefault(name, value)
    r = client.get("/api/v1/analytics/search", params=params, headers=headers(key))
    assert r.status_code == expect, r.text
    return r.json()


# -- the oracle: which records a query matches -----------------------------------------------


def tokens(value) -> set[str]:
    """The standard analyzer, near enough for alphanumeric words: lower-cased word tokens."""
    return set(re.findall(r"\w+", str(value).lower())) if value is not None else set()


def matches(terms: list[str], text_values: list, keyword_values: list) -> bool:
    """default_operator AND: every term matches a text field's token or a keyword field's whole value."""
    words = set().union(*(tokens(v) for v in text_values)) if text_values else set()
    exact = {str(v) for v in keyword_values if v is not None}
    return all(t.lower() in words or t in exact for t in terms)


def in_period(ts: str) -> bool:
    t = pd.Timestamp(ts)
    return pd.Timestamp(PERIOD["start"], tz="UTC") <= t < pd.Timestamp(PERIOD["end"], tz="UTC")


def expected_orders(orders: list[dict], query: str) -> set[str]:
    terms = query.split()
    out = set()
    for o in orders:
        c, items = o["customer"], o["items"]
        text = [c.get("name"), *(i.get("name") for i in items)]
        keyword = [
            o["order_id"],
            c.get("customer_id"),
            c.get("email"),
            c.get("city"),
            o.get("coupon_code"),
            *(i.get("sku") for i in items),
            *(i.get("product_id") for i in items),
        ]
        if in_period(o["created_at"]) and matches(terms, text, keyword):
            out.add(o["order_id"])
    return out


def all_hits(client, **params) -> list[dict]:
    hits, offset = [], 0
    while True:
        page = search(client, size=100, **{"from": offset}, **params)
        hits.extend(page["hits"])
        offset += 100
        if offset >= page["total"]:
            return hits


# -- finding ---------------------------------------------------------------------------------


def test_finds_orders_by_customer_name_with_highlight(client, data):
    orders = data["default"]["orders"]
    name = next(o["customer"]["name"] for o in orders if in_period(o["created_at"]))
    body = search(client, query=name.lower())
    want = expected_orders(orders, name)
    assert want and body["total"] == len(want)
    assert {h["id"] for h in all_hits(client, query=name.lower())} == want
    hit = body["hits"][0]
    assert hit["index"] == "orders" and hit["score"] > 0 and hit["source"]["order_id"] == hit["id"]
    assert hit["source"]["store_id"] == "default" and ":" not in hit["id"]
    assert any("<em>" in fragment for fragment in hit["highlight"]["customer.name"])
    assert body["time_field"] == "created_at" and body["query"] == name.lower()


def test_finds_orders_by_email_order_id_and_sku(client, data):
    orders = [o for o in data["default"]["orders"] if in_period(o["created_at"])]
    email = orders[5]["customer"]["email"]
    body = search(client, query=email)
    assert {h["id"] for h in body["hits"]} == expected_orders(orders, email) and body["total"] >= 1
    assert "customer.email" in body["hits"][0]["highlight"]
    one = search(client, query=orders[7]["order_id"])
    assert one["total"] == 1 and one["hits"][0]["id"] == orders[7]["order_id"]
    assert one["hits"][0]["highlight"]["order_id"] == [f"<em>{orders[7]['order_id']}</em>"]
    sku = orders[9]["items"][0]["sku"]
    assert search(client, query=sku)["total"] == len(expected_orders(orders, sku))


def test_terms_are_anded_and_operators_work(client, data):
    orders = data["default"]["orders"]
    first, last = next(o["customer"]["name"].split() for o in orders if in_period(o["created_at"]))
    both = search(client, query=f"{first} {last}")["total"]
    either = search(client, query=f"{first} | {last}")["total"]
    only_first = search(client, query=first)["total"]
    assert both == len(expected_orders(orders, f"{first} {last}"))
    assert only_first == len(expected_orders(orders, first))
    assert both <= only_first <= either
    assert search(client, query=f"{first} -{last}")["total"] == only_first - both
    assert search(client, query=f"{first[:3].lower()}*")["total"] >= only_first  # prefix


def test_period_and_channel_filter_orders(client, data):
    orders = data["default"]["orders"]
    body = search(client, query="*", start="2026-10-01", end="2026-10-08", size=1)
    lo, hi = pd.Timestamp("2026-10-01", tz="UTC"), pd.Timestamp("2026-10-08", tz="UTC")
    assert body["total"] == sum(lo <= pd.Timestamp(o["created_at"]) < hi for o in orders)
    web = search(client, query="*", start="2026-10-01", end="2026-10-08", channel="web", size=1)
    assert web["total"] == sum(lo <= pd.Timestamp(o["created_at"]) < hi and o["channel"] == "web" for o in orders)


def test_finds_products_events_and_activity(client, data):
    products = data["default"]["products"]
    brand = products[0]["brand"]
    body = search(client, query=brand, index="products", start="2026-11-01", end="2026-11-02")
    want = {
        p["product_id"]
        for p in products
        if matches(
            [brand],
            [p.get("name")],
            [p.get("product_id"), p.get("sku"), p.get("brand"), p.get("category"), p.get("subcategory")],
        )
    }
    assert body["time_field"] is None  # the catalog is not filtered by the period
    assert body["total"] == len(want) and {h["id"] for h in all_hits(client, query=brand, index="products")} == want
    assert all(h["index"] == "products" for h in body["hits"])

    events = data["default"]["events"]
    failed = search(client, query="payment_failed", index="events")
    assert failed["total"] == sum(e["event_type"] == "payment_failed" and in_period(e["timestamp"]) for e in events)
    assert failed["hits"][0]["id"].startswith("ev21-") and failed["hits"][0]["source"]["event_type"] == "payment_failed"

    activities = [a for a in data["default"]["activities"] if in_period(a["timestamp"])]
    word = next(w for a in activities if a.get("search_query") for w in sorted(tokens(a["search_query"])) if len(w) > 4)
    found = search(client, query=word, index="activity")
    want = {
        a["activity_id"]
        for a in activities
        if matches(
            [word],
            [a.get("search_query"), a.get("review_text")],
            [
                a.get(f)
                for f in (
                    "activity_id",
                    "page_url",
                    "activity_type",
                    "product_id",
                    "order_id",
                    "category",
                    "user_id",
                    "anonymous_id",
                    "session_id",
                )
            ],
        )
    }
    assert found["total"] == len(want) and {h["id"] for h in all_hits(client, query=word, index="activity")} == want
    assert "search_query" in found["hits"][0]["highlight"] or "review_text" in found["hits"][0]["highlight"]


def test_pagination_is_stable_and_complete(client, data):
    first = search(client, query="*", size=10)
    second = search(client, query="*", size=10, **{"from": 10})
    both = search(client, query="*", size=20)
    assert first["total"] == second["total"] == both["total"] > 20
    assert [h["id"] for h in first["hits"] + second["hits"]] == [h["id"] for h in both["hits"]]
    assert len({h["id"] for h in both["hits"]}) == 20
    tail = search(client, query="*", size=100, **{"from": first["total"] - 3})
    assert len(tail["hits"]) == 3


# -- stores ----------------------------------------------------------------------------------

CRAFTED = [
    "store_id:default",
    "store_id:s1",
    "*",
    '"',
    "(",
    ")",
    '"unbalanced',
    "Zebulon | *",
    "* -nothing",
    "store_id:* OR *",
    "_id:default*",
    "default:*",
    "s1:secret-1",
    "\\",
    "~",
    "((((",
    "+-|",
]


@pytest.mark.parametrize("index", ["orders", "events", "activity", "products"])
def test_store_bound_key_never_sees_another_store(client, data, index):
    own = {"orders": "order_id", "events": "event_id", "activity": "activity_id", "products": "product_id"}[index]
    s1_ids = {r[own] for r in data["s1"][{"activity": "activities"}.get(index, index)] if own in r}
    for query in CRAFTED:
        body = search(client, key="read_s1", query=query, index=index)
        assert all(h["source"]["store_id"] == "s1" and h["id"] in s1_ids for h in body["hits"]), query
        everything = all_hits(client, key="read_s1", query=query, index=index) if body["total"] <= 300 else []
        assert all(h["source"]["store_id"] == "s1" for h in everything), query
    # and the other way round: the secret order of s1 is invisible from "default"
    for query in ["Zebulon", "zebulon@secret.example", "secret-1", "ZZ-SECRET-1", "Quuxley", "*"]:
        body = search(client, query=query, index=index)
        assert all(h["source"]["store_id"] == "default" for h in body["hits"]), query
    r = client.get(
        "/api/v1/analytics/search",
        params={"query": "*", "index": index, "store_id": "default"},
        headers=headers("read_s1"),
    )
    assert r.status_code == 403


def test_store_bound_key_finds_its_own(client, data):
    body = search(client, key="read_s1", query="Zebulon Quuxley")
    assert [h["id"] for h in body["hits"]] == ["secret-1"]
    assert search(client, key="read_s1", query="*", size=1)["total"] == sum(
        in_period(o["created_at"]) for o in data["s1"]["orders"]
    )
    assert search(client, query="Zebulon")["total"] == 0
    unbound = client.get("/api/v1/analytics/search", params={"query": "Zebulon", **PERIOD}, headers=headers("read"))
    assert unbound.json()["total"] == 1  # a key without a store sees every store


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, field",
    [
        ({"query": "x", "index": "customers"}, "query.index"),
        ({"query": "x", "size": 0}, "query.size"),
        ({"query": "x", "size": 101}, "query.size"),
        ({"query": "x", "size": "ten"}, "query.size"),
        ({"query": "x", "from": -1}, "query.from"),
        ({"query": "x", "from": 9_991, "size": 10}, "query.from"),
        ({"query": "x" * 501}, "query.query"),
        ({"query": "   "}, "query.query"),
        ({}, "query.query"),
        ({"query": "x", "tz": "Nowhere/City"}, "query.tz"),
    ],
)
def test_bad_parameters_are_422_naming_them(client, params, field):
    assert_bad_parameter(client, "search", params, field)


def test_the_last_allowed_page_and_long_queries(client, data):
    assert search(client, query="*", size=10, **{"from": 9_990})["hits"] == []
    long_query = " ".join(["widget"] * 71)  # 496 characters: allowed
    assert search(client, query=long_query)["total"] >= 0
    many_terms = " ".join(f"{chr(97 + i % 26)}{i}*" for i in range(140))[:500]  # ~140 prefix terms x fields
    assert search(client, query=many_terms, index="activity")["total"] == 0
    worst = " ".join(chr(97 + i % 26) for i in range(250))  # 250 terms x 11 fields
    r = client.get("/api/v1/analytics/search", params={"query": worst, "index": "activity"}, headers=headers("read"))
    assert r.status_code == 200 or r.json()["error"]["details"][0]["field"] == "query.query"
    assert search(client, query='a~2 b~5 "phrase"~3')["total"] >= 0  # fuzzy capped, slop ignored: no error


def test_results_are_cached_per_query(client, data):
    one = search(client, query="payment_succeeded", index="events")
    again = search(client, query="payment_succeeded", index="events")
    other = search(client, query="payment_succeeded", index="events", size=5)
    assert one["cached"] is False and again["cached"] is True and other["cached"] is False
    assert again["hits"] == one["hits"]
