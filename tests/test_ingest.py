"""Ingest endpoints against a real node: what is sent is what is stored, once."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import headers

WAIT = {"refresh": "wait_for"}


def order(order_id: str, **overrides) -> dict:
    base = {
        "order_id": order_id,
        "status": "paid",
        "channel": "web",
        "created_at": "2026-03-08T23:30:00-03:00",  # 2026-03-09 02:30 UTC
        "updated_at": "2026-03-09T03:00:00Z",
        "customer": {"customer_id": "c-1", "country": "BR", "state": "SP", "city": "Sao Paulo"},
        "items": [
            {
                "product_id": "p-1",
                "name": "Mug",
                "category": "Kitchen",
                "quantity": 2,
                "unit_price": 12.5,
                "discount": 1.0,
                "unit_cost": 4.0,
            },
            {"product_id": "p-2", "name": "Plate", "category": "Kitchen", "quantity": 1, "unit_price": 30.0},
        ],
        "discount_amount": 2.0,
        "shipping_amount": 5.0,
        "tax_amount": 1.5,
        "payment": {"method": "card", "status": "captured", "installments": 1},
    }
    base.update(overrides)
    return base


def get(es: Elasticsearch, index: str, doc_id: str) -> dict:
    return es.get(index=index, id=doc_id)["_source"]


def count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    return es.count(index=index, ignore_unavailable=True, allow_no_indices=True)["count"]


# -- orders ---------------------------------------------------------------------------


def test_order_is_stored_with_derived_fields(client, es, prefix):
    r = client.post(
        "/api/v1/analytics/orders/index", json={"orders": [order("o-1")]}, headers=headers("ingest"), params=WAIT
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"indexed": 1, "duplicates": 0, "stale": 0, "errors": []}

    doc = get(es, f"{prefix}-orders", "default:o-1")
    assert doc["store_id"] == "default" and doc["status"] == "paid" and doc["is_sale"] is True
    assert doc["gross_revenue"] == pytest.approx(2 * 12.5 - 1.0 + 30.0)
    assert doc["order_value"] == pytest.approx(54.0 - 2.0)
    assert doc["net_revenue"] == pytest.approx(52.0)
    assert doc["total_billed"] == pytest.approx(52.0 + 5.0 + 1.5)
    assert doc["cogs"] == pytest.approx(8.0) and doc["lines_without_cost"] == 1
    assert doc["units"] == 3 and doc["item_count"] == 2
    assert doc["created_at"].startswith("2026-03-09T02:30:00")
    assert doc["customer"]["customer_id"] == "c-1" and doc["payment"]["method"] == "card"

    line1 = get(es, f"{prefix}-order-items", "default:o-1:1")
    assert line1["line_revenue"] == pytest.approx(24.0) and line1["line_cogs"] == pytest.approx(8.0)
    assert line1["customer"]["state"] == "SP" and line1["status"] == "paid" and line1["product_id"] == "p-1"
    line2 = get(es, f"{prefix}-order-items", "default:o-1:2")
    assert line2["line_cogs"] is None and line2["has_cost"] is False


def test_local_time_fields_follow_the_store_time_zone(es_connection, es, prefix, tmp_path):
    from fastapi.testclient import TestClient

    from analytics_service.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(es_connection, prefix, tmp_path, store_timezones='{"br": "America/Sao_Paulo"}')
    with TestClient(create_app(settings)) as c:
        r = c.post(
            "/api/v1/analytics/orders/index",
            json={"orders": [order("o-tz", store_id="br")]},
            headers=headers("ingest"),
            params=WAIT,
        )
        assert r.status_code == 200, r.text
    local = get(es, f"{prefix}-orders", "br:o-tz")["local"]
    assert local == {
        "date": "2026-03-08",
        "month": "2026-03",
        "hour": 23,
        "weekday": 6,
        "timezone": "America/Sao_Paulo",
    }


def test_resending_orders_changes_nothing(client, es, prefix):
    batch = {"orders": [order("o-r1"), order("o-r2", status="cancelled", cancelled_at="2026-03-09T04:00:00Z")]}
    first = client.post("/api/v1/analytics/orders/index", json=batch, headers=headers("ingest"), params=WAIT)
    assert first.json()["indexed"] == 2
    before = count(es, f"{prefix}-orders"), count(es, f"{prefix}-order-items")
    again = client.post("/api/v1/analytics/orders/index", json=batch, headers=headers("ingest"), params=WAIT)
    assert again.json() == {"indexed": 0, "duplicates": 2, "stale": 0, "errors": []}
    assert (count(es, f"{prefix}-orders"), count(es, f"{prefix}-order-items")) == before


def test_older_update_never_overwrites_newer(client, es, prefix):
    newer = order("o-ooo", status="shipped", updated_at="2026-03-10T12:00:00Z", shipped_at="2026-03-10T12:00:00Z")
    older = order("o-ooo", status="paid", updated_at="2026-03-09T03:00:00Z")
    r1 = client.post("/api/v1/analytics/orders/index", json={"orders": [newer]}, headers=headers("ingest"), params=WAIT)
    assert r1.json()["indexed"] == 1
    r2 = client.post("/api/v1/analytics/orders/index", json={"orders": [older]}, headers=headers("ingest"), params=WAIT)
    assert r2.status_code == 200 and r2.json() == {"indexed": 0, "duplicates": 0, "stale": 1, "errors": []}
    assert get(es, f"{prefix}-orders", "default:o-ooo")["status"] == "shipped"
    assert get(es, f"{prefix}-order-items", "default:o-ooo:1")["status"] == "shipped"


def test_status_progression_decides_between_equal_times(client, es, prefix):
    same_time = "2026-03-09T05:00:00Z"
    delivered = order("o-prog", status="delivered", updated_at=same_time)
    paid = order("o-prog", status="paid", updated_at=same_time)
    client.post("/api/v1/analytics/orders/index", json={"orders": [delivered]}, headers=headers("ingest"), params=WAIT)
    r = client.post("/api/v1/analytics/orders/index", json={"orders": [paid]}, headers=headers("ingest"), params=WAIT)
    assert r.json()["stale"] == 1
    assert get(es, f"{prefix}-orders", "default:o-prog")["status"] == "delivered"


def test_newer_state_with_fewer_lines_removes_the_old_lines(client, es, prefix):
    three = order(
        "o-shrink",
        items=[{"product_id": f"p-{n}", "quantity": 1, "unit_price": 10.0} for n in range(3)],
        discount_amount=0,
    )
    one = order(
        "o-shrink",
        updated_at="2026-03-11T00:00:00Z",
        discount_amount=0,
        items=[{"product_id": "p-0", "quantity": 1, "unit_price": 10.0}],
    )
    client.post("/api/v1/analytics/orders/index", json={"orders": [three]}, headers=headers("ingest"), params=WAIT)
    r = client.post("/api/v1/analytics/orders/index", json={"orders": [one]}, headers=headers("ingest"), params=WAIT)
    assert r.json()["indexed"] == 1, r.text
    es.indices.refresh(index=f"{prefix}-order-items")
    hits = es.search(index=f"{prefix}-order-items", query={"term": {"order_id": "o-shrink"}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["default:o-shrink:1"]


def test_refunded_without_amount_counts_the_whole_order_value(client, es, prefix):
    r = client.post(
        "/api/v1/analytics/orders/index",
        json={"orders": [order("o-ref", status="refunded")]},
        headers=headers("ingest"),
        params=WAIT,
    )
    assert r.json()["indexed"] == 1
    doc = get(es, f"{prefix}-orders", "default:o-ref")
    assert doc["refunded_amount"] == pytest.approx(52.0) and doc["net_revenue"] == pytest.approx(0.0)
    assert doc["has_refund"] is True


def test_foreign_currency_is_converted_and_kept(client, es, prefix):
    eur = order("o-eur", currency="EUR", fx_rate=1.1)
    r = client.post("/api/v1/analytics/orders/index", json={"orders": [eur]}, headers=headers("ingest"), params=WAIT)
    assert r.json()["indexed"] == 1, r.text
    doc = get(es, f"{prefix}-orders", "default:o-eur")
    assert doc["currency"] == "EUR" and doc["fx_rate"] == 1.1
    assert doc["gross_revenue"] == pytest.approx(54.0 * 1.1)
    assert doc["original"]["gross_revenue"] == pytest.approx(54.0)
    assert doc["items"][0]["unit_price_original"] == 12.5
    missing_rate = order("o-eur2", currency="EUR")
    r = client.post(
        "/api/v1/analytics/orders/index",
        json={"orders": [missing_rate, order("o-usd")]},
        headers=headers("ingest"),
        params=WAIT,
    )
    body = r.json()
    assert body["indexed"] == 1 and body["errors"][0]["index"] == 0 and body["errors"][0]["field"] == "fx_rate"


def test_batch_with_one_bad_record_indexes_the_rest_and_names_it(client, es, prefix):
    bad = order("o-bad")
    bad["items"][0]["quantity"] = 0
    batch = {"orders": [order("o-good1"), bad, order("o-good2"), "not an object", order("o-x", surprise=1)]}
    r = client.post("/api/v1/analytics/orders/index", json=batch, headers=headers("ingest"), params=WAIT)
    assert r.status_code == 200
    body = r.json()
    assert body["indexed"] == 2
    errors = {e["index"]: e for e in body["errors"]}
    assert set(errors) == {1, 3, 4}
    assert errors[1]["id"] == "o-bad" and errors[1]["field"] == "items.0.quantity"
    assert "greater than 0" in errors[1]["error"]
    assert errors[3]["error"] == "record must be a JSON object"
    assert errors[4]["field"] == "surprise" and "extra" in errors[4]["error"].lower()
    assert es.exists(index=f"{prefix}-orders", id="default:o-good2")
    assert not es.exists(index=f"{prefix}-orders", id="default:o-bad")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o.pop("created_at"), "created_at"),
        (lambda o: o.update(created_at="2026-03-09T02:30:00"), "created_at"),  # no offset
        (lambda o: o.update(status="shipping"), "status"),
        (lambda o: o.update(items=[]), "items"),
        (lambda o: o["items"][0].update(unit_price=-1), "items.0.unit_price"),
        (lambda o: o["items"][0].update(quantity="2"), "items.0.quantity"),
        (lambda o: o["items"][0].update(discount=100), "items.0.discount"),
        (lambda o: o.update(discount_amount=1000), "discount_amount"),
        (lambda o: o.update(refunded_amount=1000), "refunded_amount"),
        (lambda o: o["customer"].update(nickname="x"), "customer.nickname"),
        (lambda o: o.update(currency="usd"), "currency"),
        (lambda o: o.update(created_at="2999-01-01T00:00:00Z"), "created_at"),
    ],
)
def test_invalid_order_alone_is_422_naming_the_field(client, mutate, field):
    o = order("o-invalid")
    mutate(o)
    r = client.post("/api/v1/analytics/orders/index", json={"orders": [o]}, headers=headers("ingest"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field and field in error["message"]


def test_numeric_order_ids_are_accepted_as_strings(client, es, prefix):
    o = order(1001)
    o["customer"]["customer_id"] = 77
    r = client.post("/api/v1/analytics/orders/index", json={"orders": [o]}, headers=headers("ingest"), params=WAIT)
    assert r.json()["indexed"] == 1, r.text
    assert get(es, f"{prefix}-orders", "default:1001")["customer"]["customer_id"] == "77"


# -- events ---------------------------------------------------------------------------


def event(n: int, **overrides) -> dict:
    e = {
        "event_id": f"e-{n}",
        "event_type": "payment_succeeded",
        "timestamp": "2026-02-27T23:59:59Z",
        "user_id": "c-1",
        "session_id": "s-1",
        "order_id": "o-1",
        "value": 58.5,
        "source": "server",
        "properties": {"method": "card", "nested": {"any": ["thing", 1]}},
    }
    e.update(overrides)
    return e


def test_single_event_and_batch_are_stored_in_monthly_indices(client, es, prefix):
    r = client.post("/api/v1/analytics/events/track", json=event(1), headers=headers("ingest"), params=WAIT)
    assert r.json() == {"indexed": 1, "duplicates": 0, "stale": 0, "errors": []}
    batch = {"events": [event(2, timestamp="2026-03-01T00:00:01Z"), event(3, event_type="payment_failed")]}
    r = client.post("/api/v1/analytics/events/track", json=batch, headers=headers("ingest"), params=WAIT)
    assert r.json()["indexed"] == 2
    doc = get(es, f"{prefix}-events-2026.02", "default:e-1")
    assert doc["payment_method"] == "card" and doc["actor_id"] == "c-1" and doc["value"] == 58.5
    assert doc["properties"]["nested"] == {"any": ["thing", 1]}
    assert es.exists(index=f"{prefix}-events-2026.03", id="default:e-2")
    aliases = es.indices.get_alias(name=f"{prefix}-events")
    assert {f"{prefix}-events-2026.02", f"{prefix}-events-2026.03"} <= set(aliases)


def test_events_are_deduplicated_by_id_and_by_content(client, es, prefix):
    batch = {"events": [event(10), event(11), {k: v for k, v in event(12).items() if k != "event_id"}]}
    client.post("/api/v1/analytics/events/track", json=batch, headers=headers("ingest"), params=WAIT)
    before = count(es, f"{prefix}-events")
    r = client.post("/api/v1/analytics/events/track", json=batch, headers=headers("ingest"), params=WAIT)
    assert r.json() == {"indexed": 0, "duplicates": 3, "stale": 0, "errors": []}
    assert count(es, f"{prefix}-events") == before


def test_event_without_timestamp_gets_now(client, es, prefix):
    e = {"event_type": "newsletter_signup", "anonymous_id": "anon-9"}
    r = client.post("/api/v1/analytics/events/track", json=e, headers=headers("ingest"), params=WAIT)
    assert r.json()["indexed"] == 1
    hits = es.search(index=f"{prefix}-events", query={"term": {"event_type": "newsletter_signup"}})["hits"]["hits"]
    stored = hits[0]["_source"]
    assert stored["actor_id"] == "anon-9"
    assert abs(datetime.fromisoformat(stored["timestamp"]) - datetime.now(UTC)) < timedelta(minutes=5)


def test_bad_event_type_is_rejected(client):
    r = client.post(
        "/api/v1/analytics/events/track", json=event(99, event_type="Add To Cart"), headers=headers("ingest")
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "event_type"


# -- activity, products, expenses -----------------------------------------------------


def test_activity_is_stored_with_actor_and_normalised_query(client, es, prefix):
    acts = {
        "activities": [
            {
                "activity_id": "a-1",
                "activity_type": "search",
                "timestamp": "2026-03-05T10:00:00Z",
                "anonymous_id": "anon-1",
                "session_id": "s-9",
                "search_query": "  Red   MUGS ",
                "results_count": 0,
                "device": {"type": "mobile", "os": "iOS", "browser": "Safari"},
                "geo": {"country": "BR"},
            },
            {
                "activity_id": "a-2",
                "activity_type": "review",
                "timestamp": "2026-03-05T10:05:00Z",
                "user_id": "c-1",
                "session_id": "s-9",
                "product_id": "p-1",
                "rating": 5,
                "review_text": "lovely",
            },
        ]
    }
    r = client.post("/api/v1/analytics/user-activity/index", json=acts, headers=headers("ingest"), params=WAIT)
    assert r.json() == {"indexed": 2, "duplicates": 0, "stale": 0, "errors": []}
    doc = get(es, f"{prefix}-activity-2026.03", "default:a-1")
    assert doc["search_query_normalized"] == "red mugs" and doc["actor_id"] == "anon-1"
    assert doc["results_count"] == 0 and doc["device"]["os"] == "iOS"
    assert get(es, f"{prefix}-activity-2026.03", "default:a-2")["rating"] == 5
    again = client.post("/api/v1/analytics/user-activity/index", json=acts, headers=headers("ingest"), params=WAIT)
    assert again.json()["duplicates"] == 2
    bad = {
        "activities": [{"activity_type": "review", "timestamp": "2026-03-05T10:05:00Z", "session_id": "s", "rating": 6}]
    }
    r = client.post("/api/v1/analytics/user-activity/index", json=bad, headers=headers("ingest"))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rating"


def test_products_upsert_newest_wins(client, es, prefix):
    p_new = {
        "product_id": "p-1",
        "name": "Mug v2",
        "price": 13.0,
        "cost": 4.5,
        "stock_quantity": 7,
        "reorder_point": 10,
        "active": True,
        "updated_at": "2026-03-10T00:00:00Z",
    }
    p_old = dict(p_new, name="Mug v1", updated_at="2026-03-01T00:00:00Z")
    r = client.post(
        "/api/v1/analytics/products/index", json={"products": [p_new]}, headers=headers("ingest"), params=WAIT
    )
    assert r.json()["indexed"] == 1
    r = client.post(
        "/api/v1/analytics/products/index", json={"products": [p_old, p_new]}, headers=headers("ingest"), params=WAIT
    )
    assert r.json() == {"indexed": 0, "duplicates": 1, "stale": 1, "errors": []}
    doc = get(es, f"{prefix}-products", "default:p-1")
    assert doc["name"] == "Mug v2" and doc["stock_quantity"] == 7 and doc["reorder_point"] == 10


def test_expenses_upsert_and_resend_is_a_duplicate(client, es, prefix):
    exp = {
        "expenses": [
            {
                "expense_id": "x-1",
                "date": "2026-03-01",
                "category": "marketing",
                "amount": 250.0,
                "channel": "paid_search",
                "campaign": "spring",
            },
            {
                "expense_id": "x-2",
                "date": "2026-03-02",
                "category": "rent",
                "amount": 900.0,
                "currency": "EUR",
                "fx_rate": 1.1,
            },
        ]
    }
    r = client.post("/api/v1/analytics/expenses/index", json=exp, headers=headers("ingest"), params=WAIT)
    assert r.json()["indexed"] == 2
    assert get(es, f"{prefix}-expenses", "default:x-2")["amount"] == pytest.approx(990.0)
    again = client.post("/api/v1/analytics/expenses/index", json=exp, headers=headers("ingest"), params=WAIT)
    assert again.json() == {"indexed": 0, "duplicates": 2, "stale": 0, "errors": []}
    changed = copy.deepcopy(exp)
    changed["expenses"][0]["amount"] = 300.0
    r = client.post("/api/v1/analytics/expenses/index", json=changed, headers=headers("ingest"), params=WAIT)
    assert r.json()["indexed"] == 1 and r.json()["duplicates"] == 1
    assert get(es, f"{prefix}-expenses", "default:x-1")["amount"] == 300.0


# -- request shape and limits -----------------------------------------------------------


def test_unknown_envelope_field_is_422(client):
    r = client.post("/api/v1/analytics/orders/index", json={"orders": [], "extra": 1}, headers=headers("ingest"))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "extra"
    r = client.post("/api/v1/analytics/orders/index", json={"order": []}, headers=headers("ingest"))
    assert r.status_code == 422


def test_malformed_json_is_400(client):
    r = client.post(
        "/api/v1/analytics/orders/index",
        content=b"{not json",
        headers={**headers("ingest"), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_bad_refresh_value_is_422_naming_it(client):
    r = client.post(
        "/api/v1/analytics/orders/index", json={"orders": []}, headers=headers("ingest"), params={"refresh": "now"}
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.refresh"


def test_too_many_records_is_413(client):
    r = client.post("/api/v1/analytics/events/track", json={"events": [event(1)] * 5001}, headers=headers("ingest"))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large" and "5000" in r.json()["error"]["message"]


def test_too_many_bytes_is_413(client):
    big = {"events": [event(1, properties={"blob": "x" * (11 * 1024 * 1024)})]}
    r = client.post("/api/v1/analytics/events/track", json=big, headers=headers("ingest"))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_unknown_route_uses_the_error_body(client):
    r = client.get("/api/v1/nothing-here", headers=headers("read"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
