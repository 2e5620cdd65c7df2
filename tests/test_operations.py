"""Operations (issue 13, docs/operations.md): /metrics, request ids and JSON logs, rate limits,
the audit trail, and data versions shared across processes without Redis."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from analytics_service.app import create_app
from analytics_service.devtools.local_servers import free_port
from analytics_service.ingest.schemas import SALE_STATUSES
from analytics_service.log_setup import configure_logging
from tests.conftest import (
    KEYS,
    ROOT,
    generate_records,
    headers,
    make_settings,
    post_records,
    redis_server,
    wait_for_report,
)

START, END = "2026-10-01", "2026-11-01"  # END exclusive


def metric_samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text exposition, parsed by the official parser."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient) -> dict:
    r = client.get("/metrics", headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return metric_samples(r.text)


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict]]:
    return generate_records(orders=40, activity=100, days=30, seed=13, end=date(2026, 11, 1))


@pytest.fixture(scope="module")
def client(settings, records) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        for kind in ("products", "orders", "activities"):
            assert post_records(c, kind, records[kind]).status_code == 200
        yield c


# -- metrics -------------------------------------------------------------------------------------


def test_metrics_need_the_admin_scope_unless_public(client, settings):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=headers("read")).status_code == 403
    public = settings.model_copy(update={"metrics_public": True})
    with TestClient(create_app(public)) as c:  # no key needed
        assert c.get("/metrics").status_code == 200


def test_metrics_counters_move_with_requests_ingests_and_the_cache(client, records):
    before = scrape(client)
    route = "/api/v1/analytics/dashboard"
    for _ in range(3):
        r = client.get(route, params={"start": START, "end": END}, headers=headers("read"))
        assert r.status_code == 200
    again = records["orders"][:5]  # the same versions again: duplicates
    bad = [{"order_id": "x-1"}]  # invalid: an error
    r = post_records(client, "orders", again + bad)
    assert r.status_code == 200 and r.json()["duplicates"] == 5 and len(r.json()["errors"]) == 1
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("analytics_http_requests_total", method="GET", route=route, status="200") == 3
    assert moved("analytics_http_request_duration_seconds_count", method="GET", route=route, status="200") == 3
    assert moved("analytics_ingest_records_total", kind="orders", outcome="duplicate") == 5
    assert moved("analytics_ingest_records_total", kind="orders", outcome="error") == 1
    # The first dashboard read computed the answer, the next two were served from the cache.
    assert moved("analytics_cache_lookups_total", result="miss") >= 1
    assert moved("analytics_cache_lookups_total", result="hit") >= 2
    es_requests = sum(
        v - before.get(k, 0.0)
        for k, v in after.items()
        if k[0] == "analytics_elasticsearch_request_duration_seconds_count"
    )
    assert es_requests >= 2  # at least the dashboard's searches and the bulk write
    for queue in ("reports", "deliveries"):
        assert ("analytics_queue_depth", frozenset({("queue", queue)})) in after
    assert sample(after, "analytics_worker_heartbeat_timestamp_seconds", worker="reports") > time.time() - 60


def test_report_jobs_are_counted_by_status(client):
    before = scrape(client)
    body = {"report_type": "daily_sales", "format": "csv", "parameters": {}}
    r = client.post("/api/v1/reports/generate", json=body, headers=headers("reports"))
    assert r.status_code == 202, r.text
    assert wait_for_report(client, r.json()["report_id"])["status"] == "completed"
    deadline = time.monotonic() + 10
    while True:  # counted as the worker returns, a moment after the row says completed
        after = scrape(client)
        done = sample(after, "analytics_report_jobs_total", status="completed")
        if done - sample(before, "analytics_report_jobs_total", status="completed") == 1:
            break
        assert time.monotonic() < deadline, "the completed job was not counted"
        time.sleep(0.1)


# -- request ids and logs ------------------------------------------------------------------------


@pytest.fixture()
def json_log() -> Iterator[io.StringIO]:
    """Every log record of the process as the services write them (LOG_FORMAT=json), captured."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_request_ids_are_echoed_and_logged_as_json_without_the_key(client, json_log):
    mine = client.get(
        "/api/v1/analytics/sales/revenue",
        params={"start": START, "end": END},
        headers={**headers("read"), "X-Request-ID": "client-chosen-42"},
    )
    assert mine.headers["x-request-id"] == "client-chosen-42"
    generated = client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    for hostile_id in (b"a b\xe9", b"x" * 129, b"\x00;DROP"):  # spaces, non-ASCII, too long, control bytes
        hostile = client.get("/health", headers={"X-Request-ID": hostile_id})
        assert len(hostile.headers["x-request-id"]) == 32  # replaced by a generated one
    refused = client.get("/api/v1/analytics/dashboard", headers={"X-API-Key": "not-a-known-key-123"})
    assert refused.status_code == 401

    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]  # every line is JSON
    requests = {entry["request_id"]: entry for entry in lines if entry.get("event") == "request"}
    entry = requests["client-chosen-42"]
    assert entry["route"] == "/api/v1/analytics/sales/revenue"
    assert entry["status"] == 200 and entry["duration_ms"] > 0 and entry["level"] == "info"
    assert entry["key_id"] and entry["key_id"] != KEYS["read"]["key"]
    assert requests[generated.headers["x-request-id"]]["route"] == "/health"
    assert requests[refused.headers["x-request-id"]]["status"] == 401
    text = json_log.getvalue()
    for secret in [k["key"] for k in KEYS.values()] + ["not-a-known-key-123"]:
        assert secret not in text


# -- rate limits ---------------------------------------------------------------------------------


def test_a_key_over_its_limit_gets_429_while_another_key_is_served(settings):
    from analytics_service.metrics import REGISTRY

    refused_before = REGISTRY.get_sample_value("analytics_rate_limited_total", {"route_class": "read"}) or 0.0
    limited = settings.model_copy(update={"rate_limit_read": "3/minute", "rate_limit_ingest": "2/minute"})
    with TestClient(create_app(limited)) as c:
        params = {"start": START, "end": END}
        answers = [c.get("/api/v1/analytics/sales/revenue", params=params, headers=headers("read")) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "3 per 1 minute" in refused.json()["error"]["message"]
        refused_now = REGISTRY.get_sample_value("analytics_rate_limited_total", {"route_class": "read"})
        assert refused_now - refused_before == 1
        # Another key, and the same key on another route class, are served.
        assert c.get("/api/v1/analytics/sales/revenue", params=params, headers=headers("read_s1")).status_code == 200
        assert post_records(c, "orders", [], refresh=None).status_code in (200, 422)


def _serve(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "analytics_service", "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else "exited"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.2)


def service_env(settings, tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "REDIS", "INDEX_", "DATABASE", "API_"))
    }
    env.update(
        ELASTICSEARCH_URL=settings.elasticsearch_url,
        ES_LOCAL_DIR=str(Path(settings.es_local_dir).resolve()),
        INDEX_PREFIX=settings.index_prefix,
        API_KEYS=json.dumps(list(KEYS.values())),
        DATABASE_URL=f"sqlite:///{tmp / 'analytics.db'}",
        REPORTS_DIR=str(tmp / "reports"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def test_two_api_processes_share_the_limits_through_redis(settings, tmp_path):
    with redis_server(tmp_path) as (redis_url, _):
        env = service_env(settings, tmp_path, REDIS_URL=redis_url, RATE_LIMIT_READ="4/minute")
        ports = [free_port(), free_port()]
        procs = [_serve(env, port, tmp_path) for port in ports]
        try:
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            for url, proc in zip(urls, procs):
                _wait_up(url, proc)
            path = "/api/v1/analytics/sales/revenue"
            params = {"start": START, "end": END}
            statuses = [
                httpx.get(urls[i % 2] + path, params=params, headers=headers("read"), timeout=30).status_code
                for i in range(6)
            ]
            assert statuses == [200, 200, 200, 200, 429, 429]  # 4 in all, whichever process answered
            other = httpx.get(urls[1] + path, params=params, headers=headers("read_s1"), timeout=30)
            assert other.status_code == 200
            refused = httpx.get(urls[0] + path, params=params, headers=headers("read"), timeout=30)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)


# -- audit trail ---------------------------------------------------------------------------------


def audit(client: TestClient, **params) -> dict:
    r = client.get("/api/v1/audit", params=params, headers=headers("admin"))
    assert r.status_code == 200, r.text
    return r.json()


def test_every_kind_of_access_is_audited_and_filtered(client, records):
    start = datetime.now(UTC)
    params = {"start": START, "end": END}
    routes = ("/api/v1/analytics/dashboard", "/api/v1/analytics/products/search", "/api/v1/export/orders")
    reads = {route: client.get(route, params=params, headers=headers("read")) for route in routes}
    reads["/api/v1/analytics/search"] = client.get(  # the full-text search
        "/api/v1/analytics/search", params={"query": "a*", "index": "products"}, headers=headers("read")
    )
    for route, answer in reads.items():
        assert answer.status_code == 200, (route, answer.text)
    write = post_records(client, "products", records["products"][:2], key="ingest")
    assert write.status_code == 200
    store_read = client.get("/api/v1/analytics/dashboard", params=params, headers=headers("read_s1"))
    assert store_read.status_code == 200
    body = {"report_type": "daily_sales", "format": "csv", "parameters": {}}
    report_id = client.post("/api/v1/reports/generate", json=body, headers=headers("reports")).json()["report_id"]
    row = wait_for_report(client, report_id)
    assert row["status"] == "completed"
    assert client.get(f"/api/v1/reports/{report_id}/download", headers=headers("reports")).status_code == 200
    signed = client.get(row["download_url"])
    assert signed.status_code == 200

    rows = audit(client, **{"from": start.isoformat()}, page_size=1000)["items"]
    by_route = {}
    for item in rows:
        by_route.setdefault(item["route"], []).append(item)
    for route, answer in reads.items():
        hit = next(i for i in by_route[route] if i["request_id"] == answer.headers["x-request-id"])
        assert hit["status"] == 200 and hit["result_bytes"] == len(answer.content) and hit["method"] == "GET"
        assert hit["params"].get("start", START) == START
    ingest = by_route["/api/v1/analytics/products/index"][0]
    assert ingest["method"] == "POST" and ingest["request_id"] == write.headers["x-request-id"]
    assert ingest["store_id"] == records["products"][0]["store_id"]  # the store the batch wrote to
    assert by_route["/api/v1/reports/{report_id}/download"][0]["params"]["report_id"] == report_id
    link = by_route["/api/v1/reports/download"][0]
    assert link["key_id"] is None and "token" not in link["params"] and link["result_bytes"] == len(signed.content)
    assert link["params"]["report_id"] == report_id

    # Filters: by key, by store, by time.
    read_key = next(i["key_id"] for i in by_route["/api/v1/analytics/products/search"])
    only_key = audit(client, key_id=read_key, **{"from": start.isoformat()}, page_size=1000)
    assert only_key["total"] == len([i for i in rows if i["key_id"] == read_key]) >= 3
    assert {i["key_id"] for i in only_key["items"]} == {read_key}
    only_store = audit(client, store_id="s1", **{"from": start.isoformat()})
    assert only_store["total"] >= 1 and {i["store_id"] for i in only_store["items"]} == {"s1"}
    later = audit(client, **{"from": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()})
    assert later["total"] == 0
    before_start = audit(client, to=start.isoformat(), page_size=1000)
    assert all(datetime.fromisoformat(i["time"]) < start for i in before_start["items"])
    assert before_start["total"] + len(rows) <= audit(client, page_size=1)["total"]
    assert client.get("/api/v1/audit", headers=headers("read")).status_code == 403


# -- data versions across processes, without Redis -----------------------------------------------

SMALL_MAPPING = {
    "name": "fresh",
    "group_by": "order",
    "order": {"status": "status", "created_at": "date", "customer.customer_id": "customer"},
    "item": {"product_id": "sku", "quantity": "qty"},
    "amounts": {"unit_price": "price"},
}
SMALL_CSV = """order,date,status,customer,sku,qty,price
f-1,2026-10-05T10:00:00Z,delivered,c-1,A,2,10.5
f-1,2026-10-05T10:00:00Z,delivered,c-1,B,1,20
f-2,2026-10-06T11:00:00Z,paid,c-2,A,3,10.5
"""


STORE = ("--store-id", "fresh", "--no-progress")


def test_a_command_line_import_is_visible_to_a_running_api_at_once(client, settings, tmp_path):
    assert settings.redis_url is None and settings.cache_ttl_seconds > 0  # an in-process cache
    params = {"start": START, "end": END, "store_id": "fresh"}

    def revenue() -> dict:
        r = client.get("/api/v1/analytics/dashboard", params=params, headers=headers("read"))
        assert r.status_code == 200, r.text
        return r.json()

    assert revenue()["kpis"]["orders"] == 0
    assert revenue()["cached"] is True  # cached, so only a shared data version can make it stale
    (tmp_path / "orders.csv").write_text(SMALL_CSV)
    (tmp_path / "mapping.json").write_text(json.dumps(SMALL_MAPPING))
    env = service_env(settings, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "analytics_service", "import-csv", "orders.csv", "--mapping", "mapping.json", *STORE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = revenue()  # at once: no sleep, no TTL
    frame = pd.read_csv(tmp_path / "orders.csv")
    assert answer["cached"] is False
    assert answer["kpis"]["orders"] == frame["order"].nunique()
    assert answer["kpis"]["gross_revenue"] == pytest.approx(float((frame["qty"] * frame["price"]).sum()))


def test_a_write_by_another_api_process_is_visible_at_once(client, settings, records, tmp_path):
    params = {"start": START, "end": END, "store_id": "other"}
    first = client.get("/api/v1/analytics/dashboard", params=params, headers=headers("read")).json()
    assert first["kpis"]["orders"] == 0
    other_settings = make_settings(
        {"url": settings.elasticsearch_url, "es_local_dir": settings.es_local_dir},
        settings.index_prefix,
        tmp_path,
    )
    orders = [dict(o, store_id="other", order_id=f"other-{o['order_id']}") for o in records["orders"][:3]]
    with TestClient(create_app(other_settings)) as other:  # its own in-process cache and counters
        assert post_records(other, "orders", orders, refresh=None).status_code == 200
    # Without refresh the documents are searchable within a second: the second version says when.
    deadline = time.monotonic() + 5
    while True:
        got = client.get("/api/v1/analytics/dashboard", params=params, headers=headers("read")).json()
        if got["kpis"]["orders"] == len({o["order_id"] for o in orders if o["status"] in SALE_STATUSES}):
            break
        assert time.monotonic() < deadline, got["kpis"]
        time.sleep(0.2)


# -- the Grafana dashboard and the worker's metrics ----------------------------------------------


def registered_metric_names() -> set[str]:
    """Every series name the registry exposes (counters with _total, histograms with _bucket, ...)."""
    from analytics_service.metrics import REGISTRY

    return {s.name for family in REGISTRY.collect() for s in family.samples} | {
        f"{family.name}{suffix}"
        for family in REGISTRY.collect()
        for suffix in {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}[family.type]
    }


def test_the_grafana_dashboard_queries_only_metrics_the_service_exposes():
    import re

    dashboard = json.loads((ROOT / "grafana" / "store-analytics-service.json").read_text())
    known = registered_metric_names()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) == len(dashboard["panels"]) >= 15
    used = {name for expr in exprs for name in re.findall(r"\banalytics_[a-z_]+", expr)}
    assert used - known == set(), f"the dashboard queries series nobody exposes: {used - known}"
    # Every family the service exposes is on the dashboard.
    from analytics_service.metrics import REGISTRY

    families = {family.name for family in REGISTRY.collect()}
    assert {f for f in families if not any(u.startswith(f) for u in used)} == set()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and panel["title"]


def test_the_worker_serves_its_own_metrics(settings, tmp_path):
    with redis_server(tmp_path) as (redis_url, _):
        port = free_port()
        env = service_env(settings, tmp_path, REDIS_URL=redis_url, WORKER_METRICS_PORT=str(port))
        proc = subprocess.Popen(
            [sys.executable, "-m", "analytics_service", "worker"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else "exited"
                try:
                    samples = metric_samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
                except httpx.HTTPError:
                    samples = {}
                beats = {
                    w: sample(samples, "analytics_worker_heartbeat_timestamp_seconds", worker=w)
                    for w in ("reports", "notifications")
                }
                if all(beats.values()):
                    break
                assert time.monotonic() < deadline, f"no heartbeats: {beats}"
                time.sleep(0.3)
            assert all(v > time.time() - 60 for v in beats.values())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        # The service's logs are JSON lines (LOG_FORMAT unset: json for `worker` and `serve`).
        lines = [line for line in proc.stderr.read().decode().splitlines() if line.strip()] if proc.stderr else []
        assert lines and all(json.loads(line)["event"] for line in lines)


def test_the_audit_trail_keeps_its_own_horizon(settings, tmp_path):
    import asyncio

    from analytics_service.audit.table import AuditRepo
    from analytics_service.reports.table import make_engine, migrate
    from analytics_service.retention import horizons, run_retention

    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(engine)
    repo = AuditRepo(engine)
    now = datetime.now(UTC)
    ages = [400, 366, 364, 1, 0]  # days
    repo.append(
        {
            "time": now - timedelta(days=age),
            "request_id": f"r{age}",
            "key_id": "k",
            "key_name": None,
            "store_id": None,
            "method": "GET",
            "route": "/api/v1/analytics/dashboard",
            "params": {},
            "status": 200,
            "result_bytes": 10,
            "duration_ms": 1.0,
        }
        for age in ages
    )
    keep_a_year = settings.model_copy(update={"audit_retention_days": 365})
    audit_only = [h for h in horizons(keep_a_year, None, engine) if h.name == "audit"]  # type: ignore[arg-type]
    dry = asyncio.run(run_retention(audit_only, now, dry_run=True))
    assert [d.count for d in dry.planned] == [sum(age > 365 for age in ages)]
    assert repo.page()[1] == len(ages)  # a dry run deletes nothing
    done = asyncio.run(run_retention(audit_only, now))
    assert [n for _, n in done.dropped] == [d.count for d in dry.planned]
    rows, total = repo.page()
    assert total == sum(age <= 365 for age in ages) and {r.request_id for r in rows} == {"r364", "r1", "r0"}
    engine.dispose()


def test_hostile_parameters_never_stop_the_audit_trail_on_postgresql(settings, postgres_url, tmp_path):
    """PostgreSQL refuses NUL characters and values longer than a column: the trail stores such
    requests cleaned, and the rows of other requests are written as well."""
    import sqlalchemy as sa

    schema = f"audit_{os.getpid()}_{int(time.time())}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.engine.make_url(postgres_url).update_query_dict({"options": f"-c search_path={schema}"})
    on_postgres = settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})
    try:
        with TestClient(create_app(on_postgres)) as c:
            hostile = {"store_id": "s" * 500, "x\x00y": "a\x00b", **{f"p{i}": "v" * 400 for i in range(80)}}
            first = c.get("/api/v1/reports/history", params=hostile, headers=headers("reports"))
            second = c.get("/api/v1/reports/history", headers=headers("reports"))
            assert first.status_code in (200, 422) and second.status_code == 200
            items = audit(c, route="/api/v1/reports/history")["items"]
            by_id = {i["request_id"]: i for i in items}
            row = by_id[first.headers["x-request-id"]]
            assert second.headers["x-request-id"] in by_id
            assert len(row["params"]) <= 50 and all(len(v) <= 300 for v in row["params"].values())
            assert "\\u0000" not in json.dumps(row) and len(row["store_id"] or "") <= 128
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def test_http_client_lines_never_show_a_url(json_log):
    """A webhook's URL is its credential: httpx's own request lines are not logged."""
    import httpx as client

    with client.Client(transport=client.MockTransport(lambda request: client.Response(204))) as c:
        c.post("https://hooks.example.com/services/T000/B000/secret-part")
    assert "secret-part" not in json_log.getvalue()


def test_a_write_is_published_once_searchable_and_a_burst_of_writes_costs_one_refresh(es, settings, monkeypatch):
    """ingest/publisher.py: with the index never refreshing by itself, the versions move only
    after the publisher's refresh, when a search finds every document written before it;
    writes gathered together share that refresh, and the next one waits out the minimum
    interval; a write made with refresh is published at once, and settle() publishes what is
    pending now."""
    import asyncio
    import time

    from analytics_service.ingest import publisher as publishing
    from tests.conftest import with_async_es

    monkeypatch.setattr(publishing, "GATHER_SECONDS", 0.5)  # room for two writes in one gathering
    index = f"{settings.index_prefix}-publisher-check"
    es.indices.create(index=index, settings={"number_of_shards": 1, "refresh_interval": "-1"})

    async def go(aes) -> list[tuple[set[str], int, float]]:
        told: list[tuple[set[str], int, float]] = []  # (stores, documents a search finds then, when)
        publisher = publishing.WritePublisher(aes, settings.index_prefix, index)

        async def published(stores: set[str]) -> None:
            told.append((stores, (await aes.count(index=index))["count"], time.monotonic()))

        publisher.on_published = published
        refreshes: list[float] = []
        refresh = aes.indices.refresh

        async def counted_refresh(**kwargs):
            refreshes.append(time.monotonic())
            return await refresh(**kwargs)

        aes.indices.refresh = counted_refresh
        await aes.index(index=index, id="1", document={"n": 1})
        await publisher.written({"a"})
        await aes.index(index=index, id="2", document={"n": 2})
        await publisher.written({"b"})
        assert told == [] and (await aes.count(index=index))["count"] == 0  # not searchable, not told
        await asyncio.sleep(publishing.GATHER_SECONDS + 0.5)
        assert [t[:2] for t in told] == [({"a", "b"}, 2)] and len(refreshes) == 1
        await publisher.written({"c"}, searchable=True)
        assert told[-1][:2] == ({"c"}, 2) and len(refreshes) == 1
        await aes.index(index=index, id="3", document={"n": 3})
        await publisher.written({"d"})  # soon after the first refresh: waits out the interval
        await asyncio.sleep(publishing.MIN_INTERVAL_SECONDS + 0.5)
        assert told[-1][:2] == ({"d"}, 3) and len(refreshes) == 2
        assert refreshes[1] - refreshes[0] >= publishing.MIN_INTERVAL_SECONDS
        await aes.index(index=index, id="4", document={"n": 4})
        await publisher.written({"e"})
        await publisher.settle()
        assert told[-1][:2] == ({"e"}, 4) and not publisher.pending
        await asyncio.sleep(publishing.MIN_INTERVAL_SECONDS + 0.2)
        return told

    try:
        told = with_async_es(settings, go)
        assert len(told) == 4  # settle() left no second round behind
    finally:
        es.indices.delete(index=index)


class _FlakyElasticsearch:
    """Just what WritePublisher calls: `indices.refresh` answers as `refresh_answer` says, `bulk`
    (the stored versions) as `bulk_ok` says."""

    def __init__(self) -> None:
        self.refresh_answer: Any = "ok"
        self.bulk_ok = True
        self.indices = self
        self.refreshes = 0

    async def refresh(self, **_: Any) -> Any:
        from elastic_transport import ObjectApiResponse

        self.refreshes += 1
        if isinstance(self.refresh_answer, Exception):
            raise self.refresh_answer
        return ObjectApiResponse(body={"_shards": {"total": 1, "successful": 1, "failed": 0}}, meta=None)

    async def create(self, **_: Any) -> None:
        return None

    async def bulk(self, **_: Any) -> dict:
        if not self.bulk_ok:
            from elastic_transport import ConnectionError as Unreachable

            raise Unreachable("down")
        return {"errors": False}


def test_a_publication_that_fails_is_kept_and_a_refusal_for_good_does_not_stop_freshness(caplog):
    """ingest/publisher.py when Elasticsearch misbehaves: an unreachable node keeps the stores
    pending (settle() says so; the next round publishes them); versions that could not be stored
    are kept for the next round too; a refresh refused for good (403) is published anyway."""
    import asyncio

    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
    from elastic_transport import ConnectionError as Unreachable
    from elasticsearch import AuthorizationException

    from analytics_service.ingest.publisher import WritePublisher

    async def go() -> None:
        es = _FlakyElasticsearch()
        publisher = WritePublisher(es, "flaky", "flaky-orders")  # type: ignore[arg-type]
        told: list[set[str]] = []

        async def published(stores: set[str]) -> None:
            told.append(stores)

        publisher.on_published = published
        es.refresh_answer = Unreachable("down")
        await publisher.written({"a"})
        await publisher.settle()
        assert told == [] and publisher.pending
        assert "data versions of a not published" in caplog.text
        es.refresh_answer = "ok"
        await publisher.settle()
        assert told == [{"a"}] and not publisher.pending

        es.bulk_ok = False  # the refresh works, the stored versions do not
        await publisher.written({"b"})
        await publisher.settle()
        assert told[-1] == {"b"} and publisher.pending  # this process told, the others next round
        es.bulk_ok = True
        await publisher.settle()
        assert not publisher.pending

        meta = ApiResponseMeta(403, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "localhost", 9200))
        es.refresh_answer = AuthorizationException("security_exception", meta, {"error": "no maintenance"})
        await publisher.written({"c"})
        await publisher.settle()
        assert told[-1] == {"c"} and not publisher.pending
        assert "versions published unrefreshed" in caplog.text

    asyncio.run(go())


def test_stored_versions_move_per_store_and_all_of_them_on_deletions(settings):
    """What each process reads (es/store_versions.py): a write moves its store's version and the
    all-stores one, not another store's; retention's deletions move every version."""
    import asyncio

    from analytics_service.es.store_versions import StoredDataVersions
    from tests.conftest import with_async_es

    async def go(es) -> None:
        reader = StoredDataVersions(es, settings.index_prefix)
        writer = StoredDataVersions(es, settings.index_prefix)  # another process
        await writer.publish({"a"})
        before = {s: await reader.version(s) for s in ("a", "b", None)}
        await writer.publish({"a"})
        await asyncio.sleep(StoredDataVersions.READ_EVERY_SECONDS + 0.05)  # the reader's readings age out
        after_write = {s: await reader.version(s) for s in ("a", "b", None)}
        assert after_write["a"] != before["a"] and after_write[None] != before[None]
        assert after_write["b"] == before["b"]
        await writer.deleted()
        await asyncio.sleep(StoredDataVersions.READ_EVERY_SECONDS + 0.05)
        after_delete = {s: await reader.version(s) for s in ("a", "b", None)}
        assert all(after_delete[s] != after_write[s] for s in after_delete)

    with_async_es(settings, go)
