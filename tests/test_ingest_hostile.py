"""Hostile records at the HTTP level, against the real node (issue #7, items 2-4).

Each bad record travels in a batch with good ones: it is refused on its own, with the
field named, the good records are stored, and afterwards every analytics GET endpoint
still answers 200 with finite numbers, for an all-stores key and a store-bound one.
The cases are batched per record kind to keep the module fast.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from elasticsearch import Elasticsearch

from analytics_service.ingest import limits
from tests.conftest import INGEST_ROUTES, headers

WAIT = {"refresh": "wait_for"}
BIG = 1e308
INT32 = 2**31
EMOJI = "\U0001f600"  # 4 bytes of UTF-8
ROUTES = {kind: route for kind, (route, _) in INGEST_ROUTES.items()}
WHEN = "2026-11-20T10:00:00Z"  # the time of every record


def order(order_id: str, **overrides: Any) -> dict:
    base = {
        "order_id": order_id,
        "status": "paid",
        "created_at": WHEN,
        "customer": {"customer_id": "c-1", "country": "BR"},
        "items": [{"product_id": "p-1", "category": "Kitchen", "quantity": 2, "unit_price": 10.0, "unit_cost": 4.0}],
        "shipping_amount": 5.0,
        "tax_amount": 1.0,
    }
    base.update(overrides)
    return base


def item(**overrides: Any) -> dict:
    return {"product_id": "p-1", "category": "Kitchen", "quantity": 1, "unit_price": 10.0, **overrides}


def with_item(order_id: str, **item_fields: Any) -> dict:
    return order(order_id, items=[item(**item_fields)])


def record_of(id_field: str, **defaults: Any) -> Callable[..., dict]:
    """A builder of good records of one kind: the id, `defaults`, then the overrides."""

    def build(record_id: str, **overrides: Any) -> dict:
        return {id_field: record_id, **defaults, **overrides}

    return build


event = record_of("event_id", event_type="payment_succeeded", timestamp=WHEN, user_id="c-1", value=10.0)
activity = record_of(
    "activity_id", activity_type="product_view", timestamp=WHEN, user_id="c-1", session_id="s-1", product_id="p-1"
)
product = record_of("product_id", name="Mug", category="Kitchen", price=10.0, cost=4.0, stock_quantity=10)
expense = record_of("expense_id", date="2026-11-20", category="marketing", amount=100.0)


def nested(depth: int) -> dict:
    """A free-form object `depth` levels deep ({"k": 1} is depth 1)."""
    value: dict = {"k": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


class Deep:
    """A free-form object too deep for Python's json (and the test client): spliced in as raw JSON."""

    def __init__(self, depth: int) -> None:
        self.json = '{"k":' * (depth - 1) + '{"k":1}' + "}" * (depth - 1)


def encode(value: Any) -> str:
    if isinstance(value, Deep):
        return value.json
    if isinstance(value, dict):
        return "{" + ",".join(f"{orjson.dumps(k).decode()}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return orjson.dumps(value).decode()


def post(client, kind: str, records: list[Any], key: str = "ingest_s1") -> dict:
    body = encode({"events" if kind == "events" else kind: records}).encode()
    r = client.post(
        ROUTES[kind], content=body, params=WAIT, headers={**headers(key), "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    return r.json()


def stored(es: Elasticsearch, index: str, doc_id: str) -> dict | None:
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    hits = es.search(index=index, query={"ids": {"values": [doc_id]}}, ignore_unavailable=True, allow_no_indices=True)[
        "hits"
    ]["hits"]
    return hits[0]["_source"] if hits else None


# (record, field the error must name): a field ending in '*' is a prefix.
ORDER_CASES = [
    *[(with_item(f"o-big-{f}", **{f: BIG}), f"items.0.{f}") for f in ("unit_price", "discount", "unit_cost")],
    *[
        (order(f"o-big-{f}", **{f: BIG}), f)
        for f in ("shipping_amount", "tax_amount", "discount_amount", "refunded_amount")
    ],
    (with_item("o-1e13", unit_price=1e13), "items.0.unit_price"),
    (with_item("o-line-total", quantity=limits.MAX_QUANTITY, unit_price=1e7), "items.0.unit_price"),
    (order("o-fx-tiny", currency="EUR", fx_rate=1e-300), "fx_rate"),
    (order("o-fx-huge", currency="EUR", fx_rate=1e300), "fx_rate"),
    (order("o-fx-derived", currency="EUR", fx_rate=1e6, items=[item(unit_price=1e7)]), "items.0.unit_price"),
    (order("o-order-total", items=[item(unit_price=9e11), item(unit_price=9e11)]), "items"),
    (order("o-billed", items=[item(unit_price=9e11)], shipping_amount=9e11), "shipping_amount"),
    (with_item("o-q-int32", quantity=INT32), "items.0.quantity"),
    (with_item("o-q-over", quantity=limits.MAX_QUANTITY + 1), "items.0.quantity"),
    (with_item("o-q-u64", quantity=2**64 - 1), "items.0.quantity"),
    (order("o-installments", payment={"method": "card", "installments": INT32}), "payment.installments"),
    # model-level checks name their field
    (with_item("o-discount", unit_price=10.0, discount=11.0), "items.0.discount"),
    (order("o-discount-amount", discount_amount=100.0), "discount_amount"),
    (order("o-refunded", status="refunded", refunded_amount=100.0), "refunded_amount"),
    (order("o-fx-missing", currency="EUR"), "fx_rate"),
    (order("o-fx-base", currency="USD", fx_rate=2.0), "fx_rate"),
    # ids: length in bytes, control and format characters
    (order(EMOJI * 130), "order_id"),
    (order(EMOJI * 64 + "a"), "order_id"),
    *[
        (order(f"o-{c}-x"), "order_id")
        for c in ("\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\ufeff", "\u200b", "\ue000")
    ],
    (order("o-bidi-customer", customer={"customer_id": "c\u202e1"}), "customer.customer_id"),
    (order("o-bidi-product", items=[item(product_id="p\x85x")]), "items.0.product_id"),
    # stores: ':' and length
    (order("o-store-colon", store_id="s1:eu"), "store_id"),
    (order("o-store-long", store_id="s" * 256), "store_id"),
    # free-form attributes
    (order("o-deep-300", attributes=Deep(300)), "attributes.*"),
    (order("o-deep-1000", attributes=Deep(1000)), "attributes.*"),
    (order("o-deep-limit", attributes=nested(limits.MAX_FREE_FORM_DEPTH + 1)), "attributes.*"),
    (order("o-deep-array", attributes={"a": [[[[[[[[[[[1]]]]]]]]]]]}), "attributes.*"),
    (order("o-keys", attributes={f"k{i}": i for i in range(limits.MAX_FREE_FORM_KEYS + 1)}), "attributes*"),
    (order("o-key-long", attributes={"k" * (limits.MAX_KEY_BYTES + 1): 1}), "attributes*"),
    (order("o-key-nul", attributes={"a\x00b": 1}), "attributes*"),
    (order("o-value-long", attributes={"k": "v" * (limits.MAX_STRING_CHARS + 1)}), "attributes.k"),
    (order("o-values", attributes={"k": list(range(limits.MAX_FREE_FORM_VALUES + 1))}), "attributes.k.*"),
    # deep where nothing may nest: refused before it is serialised, not a 500
    (order("o-deep-customer", customer={"customer_id": "c-1", "name": Deep(300)}), "customer.*"),
]
GOOD_ORDERS = [
    order("o-good", attributes=nested(limits.MAX_FREE_FORM_DEPTH)),
    order(
        "o-good-max",
        currency="EUR",
        fx_rate=limits.MAX_FX_RATE,
        items=[item(quantity=1, unit_price=1e6)],
        shipping_amount=0.0,
        tax_amount=0.0,
    ),  # exactly MAX_AMOUNT in the base currency
    order(EMOJI * 64, items=[item(quantity=limits.MAX_QUANTITY, unit_price=1.0)]),
]

EVENT_CASES = [
    (event("e-big", value=BIG), "value"),
    (event("e-neg", value=-BIG), "value"),
    (event("e-fx-tiny", currency="EUR", fx_rate=1e-300), "fx_rate"),
    (event("e-fx-huge", currency="EUR", fx_rate=1e300), "fx_rate"),
    (event("e-fx-derived", currency="EUR", fx_rate=1e6, value=1e7), "value"),
    (event("e-\u202e"), "event_id"),
    (event("e-store", store_id="s1:x"), "store_id"),
    (event("e-deep-300", properties=Deep(300)), "properties.*"),
    (event("e-deep-1000", properties=Deep(1000)), "properties.*"),
    (event("e-deep-limit", properties=nested(limits.MAX_FREE_FORM_DEPTH + 1)), "properties.*"),
    (event("e-deep-21", properties=nested(21)), "properties.*"),
]
GOOD_EVENTS = [event("e-good", properties={"method": "card", **nested(limits.MAX_FREE_FORM_DEPTH)})]

ACTIVITY_CASES = [
    (activity("a-big", value=BIG), "value"),
    (activity("a-results", activity_type="search", search_query="mug", results_count=INT32), "results_count"),
    (activity("a-duration", duration_ms=2**63), "duration_ms"),
    (activity("a-\x7f"), "activity_id"),
    (activity("a-session", session_id="s\u2028x"), "session_id"),
]
GOOD_ACTIVITIES = [activity("a-good", value=12.0, duration_ms=1000)]

PRODUCT_CASES = [
    (product("p-price", price=BIG), "price"),
    (product("p-cost", cost=BIG), "cost"),
    (product("p-stock", stock_quantity=INT32), "stock_quantity"),
    (product("p-reorder", reorder_point=INT32), "reorder_point"),
    (product("p-\ufeff"), "product_id"),
]
GOOD_PRODUCTS = [product("p-good")]

EXPENSE_CASES = [
    (expense("x-big", amount=BIG), "amount"),
    (expense("x-1e13", amount=1e13), "amount"),
    (expense("x-fx-tiny", currency="EUR", fx_rate=1e-300), "fx_rate"),
    (expense("x-fx-derived", currency="EUR", fx_rate=1e6, amount=1e7), "amount"),
    (expense("x-year-1", date="0001-01-01"), "date"),
    (expense("x-year-9999", date="9999-12-31"), "date"),
    (expense("x-1989", date="1989-12-31"), "date"),
]
GOOD_EXPENSES = [expense("x-good")]

CASES = {
    "orders": (ORDER_CASES, GOOD_ORDERS, "order_id", "orders"),
    "events": (EVENT_CASES, GOOD_EVENTS, "event_id", "events-*"),
    "activities": (ACTIVITY_CASES, GOOD_ACTIVITIES, "activity_id", "activity-*"),
    "products": (PRODUCT_CASES, GOOD_PRODUCTS, "product_id", "products"),
    "expenses": (EXPENSE_CASES, GOOD_EXPENSES, "expense_id", "expenses"),
}


def _matches(field: str | None, expected: str) -> bool:
    if field is None:
        return False
    return field.startswith(expected[:-1]) if expected.endswith("*") else field == expected


@pytest.fixture(scope="module")
def outcomes(client) -> dict[str, dict]:
    """Every kind's batch, bad and good records interleaved, sent once with a store-bound key."""
    answers = {}
    for kind, (cases, good, _, _) in CASES.items():
        records = [copy.deepcopy(r) for r, _ in cases]
        answers[kind] = post(client, kind, [good[0], *records, *good[1:]])
    return answers


@pytest.mark.parametrize("kind", list(CASES))
def test_each_bad_record_is_refused_naming_its_field(outcomes, kind):
    cases, good, _, _ = CASES[kind]
    body = outcomes[kind]
    by_index = {e["index"]: e for e in body["errors"]}
    wrong = []
    for n, (_, expected) in enumerate(cases, start=1):
        error = by_index.get(n)
        if error is None or not _matches(error["field"], expected) or error["retryable"]:
            wrong.append((n, expected, error))
    assert not wrong, wrong
    assert sorted(by_index) == list(range(1, len(cases) + 1)), body["errors"]
    assert body["indexed"] == len(good)


@pytest.mark.parametrize("kind", list(CASES))
def test_the_good_records_of_the_batch_are_stored(outcomes, es, prefix, kind):
    _, good, id_field, index = CASES[kind]
    assert outcomes[kind]["indexed"] == len(good)
    for record in good:
        doc = stored(es, f"{prefix}-{index}", f"s1:{record[id_field]}")
        assert doc is not None and doc["store_id"] == "s1" and doc[id_field] == record[id_field]


def test_the_largest_allowed_values_are_stored_as_sent(outcomes, es, prefix):
    deep = stored(es, f"{prefix}-orders", "s1:o-good")
    assert deep["attributes"] == nested(limits.MAX_FREE_FORM_DEPTH)
    fx = stored(es, f"{prefix}-orders", "s1:o-good-max")
    assert fx["gross_revenue"] == pytest.approx(1e6 * limits.MAX_FX_RATE)
    longest = stored(es, f"{prefix}-order-items", f"s1:{EMOJI * 64}:1")
    assert longest["quantity"] == limits.MAX_QUANTITY
    assert stored(es, f"{prefix}-events-*", "s1:e-good")["properties"]["method"] == "card"


def test_a_store_with_a_colon_cannot_collide_with_another_stores_id(client, es, prefix):
    r = client.post(
        ROUTES["orders"],
        params=WAIT,
        headers=headers("ingest"),
        json={"orders": [order("eu:1", store_id="acme"), order("1", store_id="acme:eu", tax_amount=2.0)]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["indexed"] == 1 and [(e["index"], e["field"]) for e in body["errors"]] == [(1, "store_id")]
    doc = stored(es, f"{prefix}-orders", "acme:eu:1")
    assert doc["store_id"] == "acme" and doc["order_id"] == "eu:1" and doc["tax_amount"] == 1.0


def test_the_longest_store_and_id_fit_elasticsearchs_id(client, es, prefix):
    store, order_id = "s" * 64, EMOJI * 64  # 64 + 256 bytes; a line id is 64 + 1 + 256 + 1 + 4
    lines = [item(product_id=f"p-{n}") for n in range(limits.MAX_ORDER_LINES)]
    r = client.post(
        ROUTES["orders"],
        params=WAIT,
        headers=headers("ingest"),
        json={
            "orders": [
                order(order_id, store_id=store, items=lines),
                order(order_id + "a", store_id=store),
                order("o-256", store_id="s" * 256),
            ]
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["indexed"] == 1 and [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "order_id"),
        (2, "store_id"),
    ]
    assert stored(es, f"{prefix}-order-items", f"{store}:{order_id}:{limits.MAX_ORDER_LINES}") is not None


def test_an_all_bad_batch_is_422_naming_the_field(client):
    r = client.post(ROUTES["orders"], headers=headers("ingest_s1"), json={"orders": [with_item("o-x", unit_price=BIG)]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "items.0.unit_price"


# -- afterwards: every analytics GET endpoint, both kinds of read key -------------------


def _analytics_gets(client) -> list[tuple[str, dict]]:
    """(path, params) for every GET under /api/v1/analytics in the app's own OpenAPI."""
    spec = client.get("/openapi.json").json()
    out = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1/analytics") or "get" not in operations:
            continue
        if "application/json" not in operations["get"]["responses"]["200"]["content"]:
            continue  # the live stream: its KPIs are the dashboard's (tests/test_live.py), checked here
        names = {p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"}
        params = {"start": "2026-11-01", "end": "2026-12-01"} if {"start", "end"} <= names else {}
        if "query" in names:
            params["query"] = "mug"
        out.append((path, params))
    return out


def _non_finite(value: Any, path: str = "") -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{path}.{i}")]
    return []


@pytest.mark.parametrize("key", ["read", "read_s1"])
def test_every_analytics_endpoint_still_answers_finite_numbers(client, outcomes, key):
    endpoints = _analytics_gets(client)
    assert len(endpoints) >= 23
    failures = []
    for path, params in endpoints:
        r = client.get(path, params=params, headers=headers(key))
        if r.status_code != 200:
            failures.append((path, r.status_code, r.text[:300]))
        elif bad := _non_finite(r.json()):
            failures.append((path, "non-finite", bad))
    assert not failures, failures
