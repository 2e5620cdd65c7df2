"""Faults, against real servers: an Elasticsearch outage during a report, a hung Redis,
an unreachable cluster's health, unbounded paging parameters.

The Elasticsearch outage runs on a node of its own (never the shared one on 9200: other
tests use it). Its data dir is a temporary one in which the unpacked distribution of the
shared data dir is linked, so the node neither downloads nor unpacks anything; the node's
data (nodes/<port>/data) survives the stop, so the restarted node has the orders again.
The Redis pause uses a redis-server of its own too (SIGSTOP would stall every other user
of the session's server).

Each test prints a `FAULT FIGURES` line with what it measured (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError as ESApiError
from elasticsearch import ConnectionError as ESConnectionError
from fastapi.testclient import TestClient
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError

from analytics_service.app import create_app
from analytics_service.devtools import local_es as local
from analytics_service.devtools.local_servers import free_port
from analytics_service.errors import ApiError
from analytics_service.redis_client import CircuitBreaker, RedisUnavailable
from analytics_service.reports.failures import backoff_seconds, classify, final_message
from tests.conftest import headers, make_settings, post_records, redis_server, report_row, request_report
from tests.conftest import wait_for_report as wait_for_status

PERIOD = {"start": "2026-10-01", "end": "2026-10-08", "interval": "day"}
HUGE = str(10**30)


def orders(n: int, store: str = "fault-store") -> list[dict]:
    """`n` paid orders spread over the first week of October 2026, one line each."""
    return [
        {
            "order_id": f"f-{i}",
            "store_id": store,
            "status": "paid",
            "created_at": f"2026-10-0{1 + i % 7}T{10 + i % 8:02d}:00:00Z",
            "customer": {"customer_id": f"c-{i % 5}"},
            "items": [{"product_id": f"p-{i % 3}", "quantity": 1 + i % 2, "unit_price": 10.0 + i}],
        }
        for i in range(n)
    ]


def ingest(client: TestClient, batch: list[dict]) -> None:
    r = post_records(client, "orders", batch)
    assert r.status_code == 200 and not r.json()["errors"], r.text


def request_daily_report(client: TestClient) -> str:
    return request_report(client, "daily_sales", "json", PERIOD)


def report_tables(client: TestClient, report_id: str) -> list[dict]:
    r = client.get(f"/api/v1/reports/{report_id}/download", headers=headers("reports"))
    assert r.status_code == 200, r.text
    return r.json()["tables"]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def figures(name: str, **values) -> None:
    print(f"\nFAULT FIGURES {name}: {json.dumps(values)}")


# -- an Elasticsearch outage while a report is queued ---------------------------------------


@pytest.fixture
def own_node(es_connection) -> Iterator[local.NodeInfo]:
    """A single-node cluster of its own on a free port, in a temporary data dir.

    The dir is made directly under /tmp, not under pytest's tmp_path: as root the node runs
    as user `elasticsearch`, and every pytest session that starts (other people's too)
    resets /tmp/pytest-of-root to 0700, which would lock the node out of its own files.
    """
    if os.environ.get("ELASTICSEARCH_URL"):
        pytest.skip("needs the local node manager (ELASTICSEARCH_URL points at another cluster)")
    shared = Path(es_connection["es_local_dir"])
    home = local.ensure_distribution(shared)  # cached: unpacked once for every node
    data_dir = Path(tempfile.mkdtemp(prefix="analytics-es-fault-", dir="/tmp"))
    data_dir.chmod(0o755)
    (data_dir / home.name).symlink_to(home, target_is_directory=True)
    port = free_port()
    try:
        yield local.start(port=port, data_dir=data_dir, heap="512m")
    finally:
        local.stop(port=port, data_dir=data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.slow
def test_a_report_requested_during_an_elasticsearch_outage_completes_once_it_is_back(own_node, tmp_path, monkeypatch):
    # Backoff 1, 2, 4, 8, 8, ... s: minutes of outage fit in 20 attempts.
    monkeypatch.setenv("REPORT_MAX_ATTEMPTS", "20")
    monkeypatch.setenv("REPORT_RETRY_INITIAL_DELAY_SECONDS", "1")
    monkeypatch.setenv("REPORT_RETRY_MAX_DELAY_SECONDS", "8")
    # No response cache: the report would reuse the baseline's cached answers and never need the node.
    settings = make_settings(
        {"url": own_node.url, "es_local_dir": own_node.data_dir}, "fault-es", tmp_path, cache_ttl_seconds=0
    )
    with TestClient(create_app(settings)) as client:
        ingest(client, orders(30))
        baseline_id = request_daily_report(client)
        baseline = wait_for_status(client, baseline_id, ("completed", "failed"), 60)
        assert baseline["status"] == "completed" and baseline["attempts"] == 1, baseline

        local.stop(port=own_node.port, data_dir=own_node.data_dir)
        stopped = time.monotonic()
        report_id = request_daily_report(client)
        seen: list[dict] = []
        while time.monotonic() - stopped < 30:
            seen.append(report_row(client, report_id))
            time.sleep(1)
        during = seen[-1]
        assert during["status"] in ("pending", "processing"), during
        attempts_during = during["attempts"]
        # 1 + 2 + 4 + 8 + 8 s of backoff fit in 30 s: at least 5 attempts, none of them lost.
        assert attempts_during >= 5, seen
        errors = [row["error"] for row in seen if row["error"]]
        assert errors and all("Elasticsearch was unavailable" in e and "127.0.0.1" not in e for e in errors), errors
        assert any(
            e.startswith(f"attempt {attempts_during - 1} of 20 failed")
            or e.startswith(f"attempt {attempts_during} of 20 failed")
            for e in errors[-2:]
        ), errors

        restart = time.monotonic()
        local.start(port=own_node.port, data_dir=own_node.data_dir, heap="512m")
        back = time.monotonic()
        row = wait_for_status(client, report_id, ("completed", "failed"), 90)
        done = time.monotonic()
        assert row["status"] == "completed", row
        assert row["error"] is None and row["attempts"] > attempts_during
        # The same report as before the outage: same rows, same numbers.
        assert row["row_count"] == baseline["row_count"] > 0
        assert report_tables(client, report_id) == report_tables(client, baseline_id)
        assert datetime.fromisoformat(row["completed_at"]) > datetime.fromisoformat(row["created_at"])
    figures(
        "elasticsearch_outage",
        outage_seconds=round(back - stopped, 1),
        restart_seconds=round(back - restart, 1),
        attempts_during_30s=attempts_during,
        attempts_total=row["attempts"],
        seconds_to_complete_after_node_back=round(done - back, 1),
        row_count=row["row_count"],
        last_error_seen=errors[-1],
    )


# -- a hung Redis -----------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A redis-server of our own (this test stops it with SIGSTOP)."""
    with redis_server(tmp_path) as (url, proc):
        try:
            yield url, proc
        finally:
            proc.send_signal(signal.SIGCONT)


READS = [("dashboard", {}), ("revenue/trends", {"interval": "day"}), ("sales/orders", {}), ("products/top-selling", {})]


def timed_read(client: TestClient, path: str, params: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    r = client.get(f"/api/v1/analytics/{path}", params={**PERIOD, **params}, headers=headers("read"))
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    return elapsed, r.json()


def test_a_paused_redis_costs_one_short_timeout_then_is_bypassed(es_connection, prefix, tmp_path, own_redis):
    url, proc = own_redis
    settings = make_settings(es_connection, prefix, tmp_path, redis_url=url)
    assert settings.redis_timeout_seconds == 0.25 and settings.redis_cooldown_seconds == 5
    with TestClient(create_app(settings)) as client:
        ingest(client, orders(20, store="redis-store"))
        for path, params in READS:
            timed_read(client, path, params)
        before = [timed_read(client, path, params) for path, params in READS]
        assert all(body["cached"] for _, body in before)  # Redis serves the cache

        proc.send_signal(signal.SIGSTOP)
        paused = time.monotonic()
        latencies, cached = [], []
        while time.monotonic() - paused < 10:
            path, params = READS[len(latencies) % len(READS)]
            elapsed, body = timed_read(client, path, params)
            latencies.append(elapsed)
            cached.append(body["cached"])
        started = time.perf_counter()
        health = client.get("/health")
        health_seconds = time.perf_counter() - started
        assert health.status_code == 503 and health.json()["checks"]["redis"] == "unavailable"
        assert health_seconds < 0.5
        proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()

        assert not any(cached)  # nothing could come from the paused Redis
        assert p95(latencies) < 0.5, sorted(latencies)[-10:]
        # Only the first call and the probes after each cool-down wait for the timeout.
        assert sum(t > 0.2 for t in latencies) <= 4, sorted(latencies)[-10:]

        # Back: after the cool-down a probe succeeds and the cache serves hits again.
        hit = None
        while time.monotonic() - resumed < 15:
            timed_read(client, *READS[0])
            elapsed, body = timed_read(client, *READS[0])
            if body["cached"]:
                hit = time.monotonic() - resumed
                break
            time.sleep(0.5)
        assert hit is not None, "the cache did not serve a hit within 15 s after SIGCONT"
        assert client.get("/health").json()["checks"]["redis"] == "ok"
    figures(
        "redis_pause",
        pause_seconds=10,
        requests=len(latencies),
        p50_ms=round(sorted(latencies)[len(latencies) // 2] * 1000, 1),
        p95_ms=round(p95(latencies) * 1000, 1),
        max_ms=round(max(latencies) * 1000, 1),
        first_request_ms=round(latencies[0] * 1000, 1),
        slow_requests=sum(t > 0.2 for t in latencies),
        health_ms=round(health_seconds * 1000, 1),
        cache_hit_after_resume_seconds=round(hit, 1),
    )


# -- the cluster's health ---------------------------------------------------------------------


def test_elasticsearch_health_is_503_with_the_same_body_when_the_cluster_is_unreachable(
    es_connection, prefix, tmp_path
):
    closed = free_port()  # nothing listens there
    down = make_settings(es_connection, prefix, tmp_path / "down", elasticsearch_url=f"http://127.0.0.1:{closed}")
    with TestClient(create_app(down)) as client:
        started = time.perf_counter()
        r = client.get("/api/v1/analytics/health/elasticsearch", headers=headers("read"))
        seconds = time.perf_counter() - started
        assert r.status_code == 503, r.text
        assert r.json() == {
            "status": "unavailable",
            "cluster_name": None,
            "version": None,
            "number_of_nodes": None,
            "templates": {},
        }
        assert seconds < 5
        responses = client.get("/openapi.json").json()["paths"]["/api/v1/analytics/health/elasticsearch"]["get"][
            "responses"
        ]
        assert responses["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ElasticsearchHealth")
    up = make_settings(es_connection, prefix, tmp_path / "up")
    with TestClient(create_app(up)) as client:
        r = client.get("/api/v1/analytics/health/elasticsearch", headers=headers("read"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("green", "yellow") and r.json()["number_of_nodes"] >= 1


# -- paging parameters ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(es_connection, prefix, tmp_path_factory) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(es_connection, prefix, tmp_path_factory.mktemp("paging")))) as c:
        yield c


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": HUGE}, "query.page"),
        ({"page": "100001"}, "query.page"),
        ({"page": "0"}, "query.page"),
        ({"page_size": HUGE}, "query.page_size"),
        ({"page_size": "101"}, "query.page_size"),
        ({"page": HUGE, "page_size": "1"}, "query.page"),
    ],
)
def test_history_paging_is_bounded(client, params, field):
    r = client.get("/api/v1/reports/history", params=params, headers=headers("reports"))
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]], r.json()


def test_the_last_history_page_answers(client):
    r = client.get("/api/v1/reports/history", params={"page": "100000", "page_size": "100"}, headers=headers("reports"))
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [] and r.json()["page"] == 100000


@pytest.mark.parametrize("kind", ["sales", "users", "products", "orders"])
@pytest.mark.parametrize("value", [HUGE, "1001", "0"])
def test_export_limit_is_bounded(client, kind, value):
    r = client.get(f"/api/v1/export/{kind}", params={"limit": value}, headers=headers("read"))
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == ["query.limit"]


# -- the pieces: the breaker, the classification of failures, the backoff -------------------


def test_the_breaker_opens_on_a_failure_probes_once_after_the_cool_down_and_closes():
    now = [0.0]
    breaker = CircuitBreaker("Redis", cooldown=5, clock=lambda: now[0])
    calls: list[str] = []

    async def ok() -> str:
        calls.append("ok")
        return "pong"

    async def hung() -> str:
        calls.append("hung")
        raise RedisTimeoutError("Timeout reading from socket")

    async def slow_probe(release: asyncio.Event) -> str:
        calls.append("probe")
        await release.wait()
        raise RedisTimeoutError("still hung")

    async def scenario() -> None:
        assert await breaker.call(ok) == "pong" and not breaker.is_open
        with pytest.raises(RedisTimeoutError):
            await breaker.call(hung)
        assert breaker.is_open
        now[0] = 4.9
        with pytest.raises(RedisUnavailable):
            await breaker.call(ok)  # refused at once: `ok` is not called
        now[0] = 5.0
        release = asyncio.Event()
        probe = asyncio.create_task(breaker.call(lambda: slow_probe(release)))
        await asyncio.sleep(0)
        with pytest.raises(RedisUnavailable):
            await breaker.call(ok)  # one probe at a time
        release.set()
        with pytest.raises(RedisTimeoutError):
            await probe
        assert breaker.is_open  # the probe failed: another cool-down
        now[0] = 10.1
        assert await breaker.call(ok) == "pong" and not breaker.is_open

    asyncio.run(scenario())
    assert calls == ["ok", "hung", "probe", "ok"]


def test_failures_are_sorted_into_transient_and_permanent_without_hosts():
    def es_status(status: int) -> ESApiError:
        meta = ApiResponseMeta(
            status=status,
            http_version="1.1",
            headers=HttpHeaders(),
            duration=0.0,
            node=NodeConfig("http", "10.1.2.3", 9200),
        )
        return ESApiError("boom at http://10.1.2.3:9200", meta=meta, body={})

    transient = [
        ESConnectionError("Connection error caused by: ConnectError(http://10.1.2.3:9200)"),
        es_status(429),
        es_status(502),
        es_status(503),
        es_status(504),
        OperationalError("SELECT 1", {}, Exception("could not connect to server at 10.1.2.3")),
        ApiError(503, "the reports database is unavailable", code="database_unavailable"),
    ]
    permanent = [es_status(400), ApiError(422, "parameters.start: not a date"), ValueError("bug at 10.1.2.3")]
    assert all(classify(e).transient for e in transient)
    assert not any(classify(e).transient for e in permanent)
    for exc in transient + permanent:
        assert "10.1.2.3" not in classify(exc).what
    assert classify(permanent[1]).what == "parameters.start: not a date"
    assert final_message(classify(transient[0]), 6, timedelta(minutes=4)) == (
        "Elasticsearch was unavailable for 6 attempts over 4 minutes; request the report again"
    )
    delays = [backoff_seconds(n, 2, 60, jitter=0) for n in range(1, 9)]
    assert delays == [2, 4, 8, 16, 32, 60, 60, 60]
    assert all(1.8 <= backoff_seconds(1, 2, 60) <= 2 for _ in range(50))
