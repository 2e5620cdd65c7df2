"""The HTTP contract: JSON bodies only (415), a 500 that keeps the connection open, bounded
paging parameters, and analytics answers that never carry or cache a non-finite number."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from datetime import date

import orjson
import pytest

from analytics_service.analytics import sales
from analytics_service.app import create_app
from analytics_service.cache import Entry
from analytics_service.es.indices import ORDERS, IndexNames
from tests.conftest import analytics_get, generate_records, headers, ingest_records, numbers_of, served

ORDERS_ROUTE = "/api/v1/analytics/orders/index"
PERIOD = {"start": "2026-09-01", "end": "2026-11-01"}


@pytest.fixture(scope="module")
def data(client):
    records = generate_records(seed=5, orders=60, activity=200, days=60, end=date(2026, 11, 1))
    ingest_records(client, records)
    return records


# -- Content-Type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x", None],
)
def test_a_body_that_is_not_json_is_415_naming_what_was_sent(client, data, content_type):
    order = generate_records(seed=6, orders=1, activity=0, days=5, end=date(2026, 11, 1))["orders"][0]
    sent = {**headers("ingest")}
    if content_type is not None:
        sent["Content-Type"] = content_type
    r = client.post(ORDERS_ROUTE, content=orjson.dumps({"orders": [order]}), headers=sent)
    assert r.status_code == 415, r.text
    error = r.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert (content_type or "no Content-Type") in error["message"]
    assert error["details"][0]["field"] == "header.content-type"
    # The same bytes as JSON are stored.
    r = client.post(
        ORDERS_ROUTE,
        content=orjson.dumps({"orders": [order]}),
        headers={**headers("ingest"), "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200 and r.json()["indexed"] + r.json()["duplicates"] == 1, r.text


def test_reports_generate_refuses_a_form_body_with_415(client):
    r = client.post(
        "/api/v1/reports/generate",
        content=b"report_type=sales_summary&format=csv",
        headers={**headers("reports"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type", r.text


def test_json_suffix_media_types_and_bodiless_posts_pass(client):
    r = client.post(
        ORDERS_ROUTE,
        content=b'{"orders": []}',
        headers={**headers("ingest"), "Content-Type": "application/vnd.api+json"},
    )
    assert r.status_code == 200, r.text
    # A POST without a body needs no Content-Type (cancel of an unknown report: 404, not 415).
    r = client.post(f"/api/v1/reports/{'0' * 32}/cancel", headers=headers("reports"))
    assert r.status_code == 404, r.text


# -- a 500 keeps the keep-alive connection ----------------------------------------------


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    fields = {k.lower(): v for k, v in fields.items()}
    length = int(fields.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return int(lines[0].split()[1]), fields, body


def test_an_unexpected_error_answers_the_standard_500_and_keeps_the_connection(settings):
    app = create_app(settings)

    async def boom() -> dict:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/boom", boom, methods=["GET"])
    with served(app, log_level="critical") as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for path in ("/test-only/boom", "/test-only/boom", "/health"):
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
                status, fields, body = _read_response(sock)
                if path.endswith("boom"):
                    assert status == 500
                    assert body == b'{"error":{"code":"internal_error","message":"internal error","details":[]}}'
                    assert fields.get("connection", "").lower() != "close"
                else:
                    assert status in (200, 503) and b'"checks"' in body


# -- paging and size parameters are bounded ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("dashboard", {"limit": 1001}, "query.limit"),
        ("dashboard", {"limit": 0}, "query.limit"),
        ("users/segments", {"type": "rfm", "include_customers": "true", "page": 100_001}, "query.page"),
        ("users/segments", {"type": "rfm", "include_customers": "true", "page_size": 1001}, "query.page_size"),
        ("search", {"query": "x", "size": 101}, "query.size"),
        ("search", {"query": "x", "from": 10**12}, "query.from"),
        ("products/reviews", {"min_reviews": 10**9}, "query.min_reviews"),
        ("users/conversion", {"steps": ",".join(f"s{i}" for i in range(11))}, "query.steps"),
    ],
)
def test_paging_and_size_parameters_are_bounded(client, path, params, field):
    r = client.get(f"/api/v1/analytics/{path}", params=params, headers=headers("read"))
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]], r.text


def analytics_get_paths(client, parameter: str | None = None) -> list[str]:
    """Every GET under /api/v1/analytics/ (those that take `parameter`, when given)."""
    spec = client.get("/openapi.json").json()
    return sorted(
        p
        for p, ops in spec["paths"].items()
        if p.startswith("/api/v1/analytics/")
        and "get" in ops
        and (parameter is None or parameter in {q["name"] for q in ops["get"].get("parameters", [])})
    )


@pytest.mark.parametrize(("params", "field"), [({"limit": 0}, "query.limit"), ({"tz": "America"}, "query.tz")])
def test_every_analytics_endpoint_names_a_bad_common_parameter_once(client, params, field):
    """A bad common parameter is one 422 detail on every endpoint (the users routes once listed
    a bad limit twice), and a zone folder such as "America" is a 422, not a 500."""
    (name,) = params
    for path in analytics_get_paths(client, name):  # the live stream has no `limit`
        extra = {"query": "x"} if path.endswith("/search") else {}
        r = client.get(path, params={**params, **extra}, headers=headers("read"))
        assert r.status_code == 422, (path, r.text)
        assert [d["field"] for d in r.json()["error"]["details"]] == [field], (path, r.text)


# -- defence in depth: a number that cannot be computed ----------------------------------


@pytest.fixture
def cache_writes(client, monkeypatch):
    """Every (key, payload) the response cache stores during the test (the real cache, observed)."""
    cache = client.app.state.cache
    writes: list[tuple[str, Entry]] = []
    original = cache.store

    async def recording_store(key: str, entry: Entry) -> None:
        writes.append((key, entry))
        await original(key, entry)

    monkeypatch.setattr(cache, "store", recording_store)
    return writes


def _poison_orders(es, prefix: str, count: int = 2) -> list[str]:
    """Orders whose every money field is 1e308, written straight into Elasticsearch (ingest
    refuses such values): their sums overflow to Infinity in Elasticsearch itself."""
    found = es.search(index=IndexNames(prefix).alias(ORDERS), size=1, query={"match_all": {}})["hits"]["hits"][0]
    ids = []
    for i in range(count):
        source = {k: (1e308 if isinstance(v, float) else v) for k, v in found["_source"].items()}
        doc_id = f"poison-{i}"
        source["order_id"] = doc_id
        es.index(index=found["_index"], id=doc_id, document=source, refresh=True)
        ids.append(doc_id)
    return ids


def test_a_sum_that_overflows_is_a_clear_502_and_is_never_cached(client, data, es, prefix, cache_writes):
    ids = _poison_orders(es, prefix)
    try:
        for _ in range(2):  # the second read recomputes: nothing was cached
            r = client.get("/api/v1/analytics/dashboard", params=PERIOD, headers=headers("admin"))
            assert r.status_code == 502, r.text
            error = r.json()["error"]
            assert error["code"] == "uncomputable_result" and error["message"].startswith("dashboard:")
            assert error["details"] and all(d["message"] == "not a finite number" for d in error["details"])
        assert cache_writes == []
    finally:
        for doc_id in ids:
            es.delete(index=IndexNames(prefix).alias(ORDERS), id=doc_id, refresh=True)
    # Without the poison the same read is 200 with finite numbers, and is cached.
    body = analytics_get(client, "dashboard", key="admin", **PERIOD)
    assert body["cached"] is False and len(cache_writes) == 1
    assert analytics_get(client, "dashboard", key="admin", **PERIOD)["cached"] is True


def test_a_cached_entry_that_fails_its_model_is_a_miss(client, data, cache_writes):
    first = analytics_get(client, "sales/revenue", key="admin", **PERIOD)
    assert first["cached"] is False and len(cache_writes) == 1
    key, entry = cache_writes[0]
    backend = client.app.state.cache.backend
    corrupted = orjson.loads(entry.payload)
    first_number = next(k for k, v in corrupted.items() if isinstance(v, dict))
    corrupted[first_number] = None  # a null where the model wants an object of numbers
    asyncio.run(backend.set(key, replace(entry, payload=orjson.dumps(corrupted)).encode(), 60))
    again = analytics_get(client, "sales/revenue", key="admin", **PERIOD)
    assert again["cached"] is False and numbers_of(again) == numbers_of(first)
    assert len(cache_writes) == 2  # recomputed and cached afresh
    assert analytics_get(client, "sales/revenue", key="admin", **PERIOD)["cached"] is True


def test_a_null_where_the_model_wants_a_number_is_a_502_naming_the_field(client, data, monkeypatch, cache_writes):
    """A query whose count comes back absent (the real answer, with `orders` set to null before
    the model is built) answers uncomputable_result naming the field, not a 500 from validation."""
    original = sales.SalesOrders.run

    async def run_with_a_null(self, ctx):
        answer = (await original(self, ctx)).model_dump()
        assert isinstance(answer["orders"], int)
        answer["orders"] = None
        return sales.SalesOrdersResponse.model_validate(answer)

    monkeypatch.setattr(sales.SalesOrders, "run", run_with_a_null)
    r = client.get("/api/v1/analytics/sales/orders", params=PERIOD, headers=headers("admin"))
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert (
        error["code"] == "uncomputable_result" and "sales/orders" in error["message"] and "orders" in error["message"]
    )
    assert [d["field"] for d in error["details"]] == ["orders"]
    assert cache_writes == []
