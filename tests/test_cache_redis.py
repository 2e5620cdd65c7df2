"""The response cache on a real Redis: shared by API processes, invalidated by any ingest."""

from __future__ import annotations

from fastapi.testclient import TestClient

from analytics_service.app import create_app
from tests.conftest import analytics_get, make_settings, post_records

PARAMS = {"start": "2026-10-01", "end": "2026-11-01"}


def order(order_id: str, store: str) -> dict:
    return {
        "order_id": order_id,
        "store_id": store,
        "status": "paid",
        "created_at": "2026-10-10T12:00:00Z",
        "customer": {"customer_id": "c-" + order_id},
        "items": [{"product_id": "p", "quantity": 1, "unit_price": 10.0}],
    }


def dashboard(client: TestClient, **params) -> dict:
    return analytics_get(client, "dashboard", **{**PARAMS, **params})


def test_two_api_processes_share_the_cache_and_its_invalidation(es_connection, prefix, tmp_path, redis_url):
    settings = make_settings(es_connection, prefix, tmp_path, redis_url=redis_url)
    with TestClient(create_app(settings)) as api_a, TestClient(create_app(settings)) as api_b:
        assert api_a.get("/health").json()["checks"]["redis"] == "ok"
        post_records(api_a, "orders", [order("r1", "s1")])
        first = dashboard(api_a)
        assert first["cached"] is False and first["kpis"]["orders"] == 1
        # The other process finds A's answer in Redis.
        assert dashboard(api_b)["cached"] is True
        # A write through B makes the answer stale for A too.
        post_records(api_b, "orders", [order("r2", "s1")])
        after = dashboard(api_a)
        assert after["cached"] is False and after["kpis"]["orders"] == 2


def test_an_ingest_for_one_store_leaves_other_stores_cached(es_connection, prefix, tmp_path, redis_url):
    settings = make_settings(es_connection, prefix, tmp_path, redis_url=redis_url)
    with TestClient(create_app(settings)) as api:
        for store in ("s1", "s2"):
            post_records(api, "orders", [order(f"x-{store}", store)])
        dashboard(api, store_id="s1"), dashboard(api, store_id="s2"), dashboard(api)
        post_records(api, "orders", [order("y-s2", "s2")])
        assert dashboard(api, store_id="s1")["cached"] is True
        assert dashboard(api, store_id="s2")["cached"] is False
        assert dashboard(api)["cached"] is False  # the all-stores answer includes s2
        # A resend that changes nothing keeps the cache.
        post_records(api, "orders", [order("y-s2", "s2")])
        assert dashboard(api, store_id="s2")["cached"] is True


def test_redis_down_degrades_to_uncached_answers(es_connection, prefix, tmp_path):
    settings = make_settings(es_connection, prefix, tmp_path, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as api:
        body = api.get("/health")
        assert body.status_code == 503 and body.json()["checks"]["redis"] == "unavailable"
        r = post_records(api, "orders", [order("down-1", "s-down")])
        assert r.status_code == 200 and r.json()["indexed"] == 1
        first, second = dashboard(api, store_id="s-down"), dashboard(api, store_id="s-down")
        assert first["cached"] is False and second["cached"] is False
        assert second["kpis"]["orders"] == 1
