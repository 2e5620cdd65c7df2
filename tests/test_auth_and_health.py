"""README "Auth" rules, error bodies, health, and behaviour when Elasticsearch is down."""

from __future__ import annotations

import hashlib
import json
import socket

import pytest
from fastapi.testclient import TestClient

from analytics_service.app import create_app
from analytics_service.es.indices import FAMILIES, IndexNames, setup_indices, template_status
from tests.conftest import headers, make_settings, with_async_es

ORDERS = "/api/v1/analytics/orders/index"
EVENT = {"event_id": "auth-e1", "event_type": "page_view", "timestamp": "2026-03-01T10:00:00Z", "user_id": "u1"}


def order(order_id: str, store_id: str | None = None) -> dict:
    o = {
        "order_id": order_id,
        "status": "paid",
        "created_at": "2026-03-01T10:00:00Z",
        "customer": {"customer_id": "c1"},
        "items": [{"product_id": "p1", "quantity": 1, "unit_price": 10.0}],
    }
    if store_id:
        o["store_id"] = store_id
    return o


def assert_error_body(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def test_missing_key_is_401(client):
    assert_error_body(client.post(ORDERS, json={"orders": []}), 401, "unauthorized")


def test_unknown_key_is_401(client):
    r = client.post(ORDERS, json={"orders": []}, headers={"X-API-Key": "nope-nope-nope"})
    assert_error_body(r, 401, "unauthorized")


@pytest.mark.parametrize("key", ["read", "reports"])
def test_key_without_ingest_scope_is_403(client, key):
    error = assert_error_body(client.post(ORDERS, json={"orders": []}, headers=headers(key)), 403, "missing_scope")
    assert "ingest" in error["message"]


def test_ingest_key_cannot_read(client):
    r = client.get("/api/v1/analytics/health/elasticsearch", headers=headers("ingest"))
    assert_error_body(r, 403, "missing_scope")


def test_admin_key_has_every_scope(client):
    assert client.post(ORDERS, json={"orders": []}, headers=headers("admin")).status_code == 200
    assert client.get("/api/v1/analytics/health/elasticsearch", headers=headers("admin")).status_code == 200


def test_store_bound_key_writes_only_its_store(client, es, prefix):
    r = client.post(
        ORDERS,
        json={"orders": [order("sb-1"), order("sb-2", "s1")]},
        headers=headers("ingest_s1"),
        params={"refresh": "wait_for"},
    )
    assert r.json()["indexed"] == 2
    assert es.get(index=f"{prefix}-orders", id="s1:sb-1")["_source"]["store_id"] == "s1"
    r = client.post(ORDERS, json={"orders": [order("sb-3", "s1"), order("sb-4", "s2")]}, headers=headers("ingest_s1"))
    error = assert_error_body(r, 403, "store_forbidden")
    assert error["details"] == [{"index": 1, "id": "sb-4", "store_id": "s2"}]
    # Nothing of a refused request is written.
    assert not es.exists(index=f"{prefix}-orders", id="s1:sb-3")


def test_unbound_key_may_write_any_store(client, es, prefix):
    r = client.post(
        ORDERS, json={"orders": [order("any-1", "s2")]}, headers=headers("ingest"), params={"refresh": "wait_for"}
    )
    assert r.json()["indexed"] == 1
    assert es.exists(index=f"{prefix}-orders", id="s2:any-1")


def test_store_bound_key_cannot_read_another_store(client):
    from analytics_service.auth import Principal, resolve_store
    from analytics_service.errors import ApiError

    bound = Principal("k", frozenset({"read"}), "s1")
    assert resolve_store(bound, None) == "s1" and resolve_store(bound, "s1") == "s1"
    with pytest.raises(ApiError) as exc:
        resolve_store(bound, "s2")
    assert exc.value.status == 403
    assert resolve_store(Principal("k", frozenset({"read"}), None), "s2") == "s2"


def test_hashed_keys_and_key_files(es_connection, prefix, tmp_path):
    secret = "a-very-secret-key"
    keys = [{"key": "sha256:" + hashlib.sha256(secret.encode()).hexdigest(), "scopes": ["ingest"]}]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys))
    settings = make_settings(es_connection, prefix, tmp_path, api_keys=f"@{path}")
    with TestClient(create_app(settings)) as c:
        assert c.post(ORDERS, json={"orders": []}, headers={"X-API-Key": secret}).status_code == 200
        hashed = keys[0]["key"]
        assert c.post(ORDERS, json={"orders": []}, headers={"X-API-Key": hashed}).status_code == 401


def test_open_endpoints_need_no_key(client):
    for path in ("/health", "/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_health_reports_each_dependency(client):
    body = client.get("/health").json()
    assert body == {"status": "ok", "checks": {"elasticsearch": "ok", "redis": "not_configured", "database": "ok"}}


def test_elasticsearch_health(client):
    body = client.get("/api/v1/analytics/health/elasticsearch", headers=headers("read")).json()
    assert body["status"] in ("green", "yellow") and body["version"].startswith("8.")
    assert body["cluster_name"] and body["number_of_nodes"] >= 1
    assert body["templates"] == {f.name: "ok" for f in FAMILIES}


def test_openapi_documents_the_ingest_bodies(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/analytics/orders/index"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/OrderBatch"
    order_schema = spec["components"]["schemas"]["Order"]
    assert {"order_id", "status", "created_at", "customer", "items"} <= set(order_schema["required"])


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_elasticsearch_down_gives_503(es_connection, tmp_path):
    settings = make_settings(
        es_connection,
        "t-down",
        tmp_path,
        elasticsearch_url=f"http://127.0.0.1:{_dead_port()}",
        elasticsearch_timeout=2.0,
        bulk_max_retries=1,
    )
    with TestClient(create_app(settings)) as c:
        r = c.post(ORDERS, json={"orders": [order("down-1")]}, headers=headers("ingest"))
        error = assert_error_body(r, 503, "elasticsearch_unavailable")
        assert r.headers["Retry-After"]
        assert "Traceback" not in r.text
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["checks"]["elasticsearch"] == "unavailable"
        es_health = c.get("/api/v1/analytics/health/elasticsearch", headers=headers("read")).json()
        assert es_health["status"] == "unavailable"
        assert error["message"]


def test_setup_is_idempotent(es_connection, es):
    prefix = "t-setup-idem"
    settings = make_settings(es_connection, prefix, es_connection["es_local_dir"])

    async def run(client) -> tuple[list[str], list[str], dict[str, str]]:
        names = IndexNames(prefix)
        first = await setup_indices(client, names)
        second = await setup_indices(client, names)
        return first, second, await template_status(client, names)

    try:
        first, second, status = with_async_es(settings, run)
        assert len([c for c in first if c.startswith("template")]) == len(FAMILIES)
        assert second == []
        assert set(status.values()) == {"ok"}
        mapping = es.indices.get_mapping(index=f"{prefix}-orders")
        assert next(iter(mapping.values()))["mappings"]["dynamic"] == "strict"
        assert es.indices.get_alias(name=f"{prefix}-orders")
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


def test_strict_mapping_refuses_unknown_fields(es, client, prefix):
    from elasticsearch import BadRequestError

    with pytest.raises(BadRequestError) as exc:
        es.index(index=f"{prefix}-orders", id="x", document={"order_id": "x", "not_mapped": 1})
    assert "strict_dynamic_mapping_exception" in str(exc.value)
