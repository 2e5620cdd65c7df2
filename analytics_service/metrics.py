"""Prometheus metrics (prometheus-client): what is counted, and `GET /metrics`.

Every metric lives in one registry of this process (`REGISTRY`), so several apps in one
process (the tests) add to the same series. Counters and histograms are moved where the
thing happens (the request middleware, the ingest service, the bulk writer, the
Elasticsearch transport, the response cache, the report worker, the notifications
worker); the gauges of state (queue depth, worker heartbeats) are read when Prometheus
scrapes (metrics_route.py). Each API process and each worker answers for itself: scrape every one
(docs/operations.md "Metrics"; a Grafana dashboard is in grafana/).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds; the API's target is 200 ms, reports take minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "analytics_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "analytics_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the body), by route template and status",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "analytics_rate_limited",
    "Requests refused with 429, by route class (ingest, read, reports)",
    ["route_class"],
    registry=REGISTRY,
)
INGEST_RECORDS = Counter(
    "analytics_ingest_records",
    "Records received by ingest, by kind and outcome (indexed, duplicate, stale, error)",
    ["kind", "outcome"],
    registry=REGISTRY,
)
BULK_RETRIES = Counter(
    "analytics_bulk_retries",
    "Bulk requests or items sent again after a retryable failure (429, 5xx, connection)",
    ["reason"],
    registry=REGISTRY,
)
ES_LATENCY = Histogram(
    "analytics_elasticsearch_request_duration_seconds",
    "Elasticsearch requests, by endpoint (_search, _bulk, _doc, ...) and outcome",
    ["endpoint", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CACHE_LOOKUPS = Counter(
    "analytics_cache_lookups",
    "Analytics response cache lookups: hit (fresh), stale (served, refreshed in the background), miss",
    ["result"],
    registry=REGISTRY,
)
REPORT_JOBS = Counter(
    "analytics_report_jobs",
    "Report jobs a worker took, by outcome (completed, failed, retry, released, skipped, lost)",
    ["status"],
    registry=REGISTRY,
)
ALERT_EVALUATIONS = Counter(
    "analytics_alert_evaluations",
    "Alert rule evaluations (the worker's and POST .../evaluate), by outcome (ok, firing, no_data, error, retry)",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "analytics_deliveries",
    "Delivery attempts (e-mail, webhooks), by channel and outcome (delivered, retry, failed)",
    ["channel", "outcome"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "analytics_queue_depth",
    "Work waiting, read at scrape time: reports (pending), deliveries (pending)",
    ["queue"],
    registry=REGISTRY,
)
WORKER_HEARTBEAT = Gauge(
    "analytics_worker_heartbeat_timestamp_seconds",
    "When each worker loop of this process last went round (Unix time)",
    ["worker"],
    registry=REGISTRY,
)
LIVE_REPORT_WORKERS = Gauge(
    "analytics_report_workers_alive",
    "Report workers whose heartbeat is current (Redis queue), read at scrape time",
    registry=REGISTRY,
)


def beat(worker: str) -> None:
    """A worker loop went round (a heartbeat the scraper can alert on when it stops moving)."""
    WORKER_HEARTBEAT.labels(worker=worker).set(time.time())


def es_endpoint(path: str) -> str:
    """The Elasticsearch API a path calls, without index names or ids: `/a-orders/_search` -> `_search`."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    named = [p for p in parts if p.startswith("_")]
    if named:
        return named[0]
    return "index" if len(parts) <= 1 else "other"  # PUT /<index>, or a path with no API name


def instrument_transport(es: Any) -> None:
    """Time every request the client sends (`analytics_elasticsearch_request_duration_seconds`)."""
    transport = es.transport
    send = transport.perform_request
    if getattr(send, "_instrumented", False):
        return

    async def perform_request(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await send(method, target, *args, **kwargs)
            outcome = "ok"
            return response
        except Exception as exc:
            status = getattr(getattr(exc, "meta", None), "status", None)
            outcome = str(status) if status else "error"
            raise
        finally:
            ES_LATENCY.labels(endpoint=es_endpoint(target), outcome=outcome).observe(time.perf_counter() - started)

    perform_request._instrumented = True  # type: ignore[attr-defined]
    transport.perform_request = perform_request
