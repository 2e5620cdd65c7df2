"""The live stream (GET /api/v1/analytics/live) on a real uvicorn server and the real node:
its figures against the dashboard endpoint and an independent pandas computation, the push
after an ingest, the key and store rules, and the data-version bump that makes an answer
computed before new documents were searchable go stale.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest

from analytics_service.app import create_app
from analytics_service.es.client import index_names
from analytics_service.es.indices import ORDERS
from analytics_service.ingest import publisher
from tests.conftest import headers, ingest_records, make_settings, served
from tests.live_data import order_at, store_with_recent_records
from tests.oracle import build_frames

LIVE = "/api/v1/analytics/live"


@pytest.fixture(scope="module")
def records(http):
    data = store_with_recent_records(datetime.now(UTC))
    ingest_records(http, data)  # through the served app, so its cache knows of every write
    return data


def events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """(event type, data) of each server-sent event of a streamed response, as they arrive."""
    kind, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def first_kpis(http: httpx.Client, key: str = "read", **params) -> dict:
    with http.stream("GET", LIVE, params=params, headers=headers(key)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for kind, data in events(response):
            assert kind == "kpis", data
            return data
    raise AssertionError("the stream ended without an event")


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_the_first_event_is_todays_dashboard_and_the_recorded_minutes(http, records, tz):
    event = first_kpis(http, tz=tz, minutes=30)
    period = event["period"]
    dashboard = http.get(
        "/api/v1/analytics/dashboard",
        params={"start": period["start"], "end": period["end"], "tz": tz, "interval": "hour", "limit": 5},
        headers=headers("read"),
    ).json()
    assert event["kpis"] == dashboard["kpis"]
    assert event["store_id"] is None and event["as_of"]

    # Independently: the sales of the window per minute, and the sessions of the last 5 minutes.
    frames = build_frames(records)
    as_of = pd.Timestamp(event["as_of"])
    start = pd.Timestamp(event["recent"]["start"])
    assert start == as_of.floor("min") - pd.Timedelta(minutes=30)
    sales = frames.orders[frames.orders["is_sale"] & (frames.orders["created_at"] >= start)]
    sales = sales[sales["created_at"] < as_of]
    per_minute = sales.groupby(sales["created_at"].dt.floor("min")).agg(
        orders=("order_id", "count"), gross_revenue=("gross_revenue", "sum")
    )
    minutes = pd.date_range(start, as_of.floor("min"), freq="min")
    expected = [
        {
            "minute": m.isoformat().replace("+00:00", "Z"),
            "orders": int(per_minute["orders"].get(m, 0)),
            "gross_revenue": round(float(per_minute["gross_revenue"].get(m, 0.0)), 2),
        }
        for m in minutes
    ]
    assert event["recent"]["series"] == expected
    assert event["recent"]["orders"] == len(sales) > 0
    assert event["recent"]["gross_revenue"] == round(sales["gross_revenue"].sum(), 2)
    activity = frames.activity
    recent = activity[(activity["timestamp"] >= as_of - pd.Timedelta(minutes=5)) & (activity["timestamp"] < as_of)]
    assert event["recent"]["active_sessions"] == recent["session_id"].nunique() > 0


def test_an_ingested_order_is_pushed_within_two_seconds(http, records):
    template = records["orders"][0]
    with http.stream("GET", LIVE, headers=headers("read")) as response:
        stream = events(response)
        kind, before = next(stream)
        assert kind == "kpis"
        order = order_at(template, datetime.now(UTC) - timedelta(seconds=5), "live-pushed-1", status="paid")
        # No ?refresh: a storefront's webhook does not wait for the documents to be searchable.
        answer = http.post("/api/v1/analytics/orders/index", json={"orders": [order]}, headers=headers("ingest"))
        answered = time.monotonic()
        assert answer.status_code == 200 and answer.json()["indexed"] == 1, answer.text
        for kind, data in stream:
            assert kind == "kpis", data
            if data["kpis"]["orders"] == before["kpis"]["orders"] + 1:
                break
        delay = time.monotonic() - answered
    assert delay <= 2.0, f"the new order reached the stream {delay:.2f} s after the ingest answer"
    assert data["recent"]["orders"] == before["recent"]["orders"] + 1


def test_keys_stores_and_parameters(http, records):
    assert http.get(LIVE).status_code == 401
    bad = http.get(LIVE, params={"tz": "Mars/Olympus"}, headers=headers("read"))
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "query.tz"
    bad = http.get(LIVE, params={"minutes": 0}, headers=headers("read"))
    assert bad.status_code == 422 and "minutes" in json.dumps(bad.json()["error"]["details"])
    other = http.get(LIVE, params={"store_id": "s2"}, headers=headers("read_s1"))
    assert other.status_code == 403 and other.json()["error"]["code"] == "store_forbidden"
    # A store-bound key streams its own store only.
    event = first_kpis(http, key="read_s1")
    assert event["store_id"] == "s1" and event["kpis"]["orders"] == 0


def test_the_stream_ends_after_its_lifetime(es_connection, prefix, tmp_path):
    settings = make_settings(es_connection, prefix, tmp_path, live_stream_max_seconds=1)
    with served(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        started = time.monotonic()
        with client.stream("GET", LIVE, headers=headers("read")) as response:
            kinds = [kind for kind, _ in events(response)]
        assert kinds and set(kinds) == {"kpis"}
        assert time.monotonic() - started < 15  # it ended by itself (the read would otherwise never return)


def test_an_answer_computed_before_the_documents_were_searchable_goes_stale(http, records, es, settings, monkeypatch):
    """The ingest answers before its documents are searchable (no ?refresh): an answer computed
    in between misses them. The data versions move only once they are searchable (the
    publisher refreshes: here the orders index never refreshes by itself), so that answer is
    not served as fresh afterwards."""
    orders_alias = index_names(settings).alias(ORDERS)
    es.indices.put_settings(index=orders_alias, settings={"index": {"refresh_interval": "-1"}})
    monkeypatch.setattr(publisher, "GATHER_SECONDS", 1.5)  # the read below comes before the round
    try:
        today = datetime.now(UTC).date()
        params = {"start": today.isoformat(), "end": (today + timedelta(days=1)).isoformat(), "interval": "hour"}

        def orders_today() -> int:
            body = http.get("/api/v1/analytics/dashboard", params=params, headers=headers("read")).json()
            return body["kpis"]["orders"]

        before = orders_today()
        order = order_at(records["orders"][1], datetime.now(UTC) - timedelta(seconds=3), "live-late-1", status="paid")
        answer = http.post("/api/v1/analytics/orders/index", json={"orders": [order]}, headers=headers("ingest"))
        assert answer.status_code == 200 and answer.json()["indexed"] == 1
        assert orders_today() == before  # not searchable yet, and the version has not moved
        time.sleep(publisher.GATHER_SECONDS + 1.0)
        assert orders_today() == before + 1
    finally:
        es.indices.put_settings(index=orders_alias, settings={"index": {"refresh_interval": "1s"}})
