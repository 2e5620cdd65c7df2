"""Deliveries with real parts: a webhook receiver in this process that checks the signature and
answers 500 twice before 200 (the delivery is retried and recorded once delivered); an SSE
client that sees an incident within 2 s of the evaluation; two workers on the same rules
without a double evaluation or delivery (SQLite and PostgreSQL); a real SMTP server (aiosmtpd)
that receives the scheduled monthly review with its PDF attached and the API's numbers in the
body; bad input (422 naming the field) and SSRF refusals; mute.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from analytics_service.app import create_app
from analytics_service.devtools.local_servers import free_port
from analytics_service.metrics import REGISTRY
from analytics_service.notifications.repo import NotificationsRepo
from analytics_service.notifications.rules import TargetRefused, check_public_target
from analytics_service.notifications.service import make_worker
from analytics_service.notifications.worker import NotificationOptions
from analytics_service.reports.table import make_engine, migrate
from tests.conftest import KEYS, generate_records, headers, ingest_records, make_settings, served, wait_for_report
from tests.live_data import order_at

SECRET = "test-webhook-secret"
FAST = NotificationOptions(retry_initial_seconds=0.01, retry_max_seconds=0.05, tick_seconds=0.05)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class Receiver:
    """An HTTP server in a thread: records every request, answers the scripted statuses (then 200),
    and checks each request's signature as a receiver would (docs/alerts.md)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers["X-Timestamp"]
                expected = (
                    "sha256=" + hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
                )
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        {
                            "body": json.loads(body),
                            "headers": dict(self.headers),
                            "status": status,
                            "signed": hmac.compare_digest(expected, self.headers["X-Signature"]),
                            "fresh": abs(time.time() - int(stamp)) < 300,
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def smtp_server() -> Iterator[tuple[str, list]]:
    """aiosmtpd on a free port: (SMTP_URL, the messages it received)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list = []

    class Keep(Message):
        def handle_message(self, message) -> None:  # type: ignore[override]
            received.append(message)

    port = free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", received
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(datetime(2026, 12, 1, 4, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def settings(es_connection, prefix, tmp_path_factory, smtp):
    return make_settings(
        es_connection,
        prefix,
        tmp_path_factory.mktemp("notify"),
        notifications_in_process=False,
        webhook_allow_private_targets=True,
        webhook_signing_secret=SECRET,
        smtp_url=smtp[0],
        smtp_from="reports@example.com",
        public_base_url="http://analytics.example.com",
    )


@pytest.fixture(scope="module")
def client(settings, clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        test_client.app.state.notifications.service.repo.clock = clock
        yield test_client


@pytest.fixture(scope="module")
def records(client) -> dict:
    """November 2026 sales (Berlin), for the monthly review."""
    templates = generate_records(seed=23, orders=120, activity=0, days=20)["orders"]
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    orders = [
        order_at(t, start + timedelta(hours=5 * k + 1), f"nt-{k}", store_id="default") for k, t in enumerate(templates)
    ]
    data = {"orders": orders}
    ingest_records(client, data)
    return data


def worker_of(client: TestClient, worker_id: str, options: NotificationOptions = FAST):
    service = client.app.state.notifications.service
    return make_worker(
        service.settings, client.app.state.es, service.repo, service.reports, options=options, worker_id=worker_id
    )


def always(channels: list[dict], **extra) -> dict:
    """A rule whose condition holds whatever the data: it fires at its first evaluation."""
    return {
        "measure": "orders",
        "window": "1h",
        "store_id": "default",
        "channels": channels,
        "condition": {"type": "threshold", "operator": ">=", "value": 0},
        **extra,
    }


def deliveries(client: TestClient, **params) -> list[dict]:
    r = client.get("/api/v1/deliveries", params=params, headers=headers("reports"))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def counted(name: str, **labels: str) -> float:
    """A sample of GET /metrics (the process's registry)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_webhook_alert_is_signed_retried_after_two_500s_and_recorded_once_delivered(client, records, clock):
    attempts = [("delivered", 1), ("retry", 2)]
    before = {o: counted("analytics_deliveries_total", channel="webhook", outcome=o) for o, _ in attempts}
    evaluated = counted("analytics_alert_evaluations_total", outcome="firing")
    with Receiver([500, 500]) as receiver:
        rule = client.post(
            "/api/v1/alerts", json=always([{"type": "webhook", "target": receiver.url}]), headers=headers("reports")
        ).json()
        outcome = client.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports")).json()
        assert [e["kind"] for e in outcome["events"]] == ["fired"]
        worker = worker_of(client, "w-webhook")
        for _ in range(50):
            clock.at += timedelta(seconds=1)  # past the backoff
            client.portal.call(worker.tick)
            (row,) = deliveries(client, alert_id=rule["alert_id"])
            if row["status"] == "delivered":
                break
            time.sleep(0.02)
        assert row["status"] == "delivered" and row["attempts"] == 3
        assert row["error"].startswith("attempt 2: HTTP 500") and row["delivered_at"]
        assert [r["status"] for r in receiver.requests] == [500, 500, 200]
        assert all(r["signed"] and r["fresh"] for r in receiver.requests)
        assert len({r["headers"]["X-Delivery-ID"] for r in receiver.requests}) == 1
        body = receiver.requests[-1]["body"]
        assert body["delivery_id"] == row["delivery_id"] and body["type"] == "alert"
        assert body["events"][0]["incident_id"] == outcome["events"][0]["incident_id"]
        assert body["events"][0]["value"] == outcome["value"]
        # Delivered: nothing more is sent.
        client.portal.call(worker.tick)
        assert len(receiver.requests) == 3
        # In the metrics: the firing evaluation, two attempts to retry and one delivered.
        moved = {o: counted("analytics_deliveries_total", channel="webhook", outcome=o) - n for o, n in before.items()}
        assert moved == dict(attempts)
        assert counted("analytics_alert_evaluations_total", outcome="firing") - evaluated >= 1
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_a_failing_target_ends_failed_with_its_error_and_can_be_retried(client, records, clock):
    with Receiver([500] * 3) as receiver:
        rule = client.post(
            "/api/v1/alerts",
            json=always([{"type": "webhook", "target": receiver.url, "format": "slack"}]),
            headers=headers("reports"),
        ).json()
        client.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports"))
        worker = worker_of(
            client, "w-fail", NotificationOptions(max_attempts=3, retry_initial_seconds=0.01, retry_max_seconds=0.01)
        )
        for _ in range(50):
            clock.at += timedelta(seconds=1)  # past the backoff
            client.portal.call(worker.tick)
            (row,) = deliveries(client, alert_id=rule["alert_id"])
            if row["status"] == "failed":
                break
            time.sleep(0.02)
        assert row["status"] == "failed" and row["attempts"] == 3 and "HTTP 500" in row["error"]
        assert receiver.requests[0]["body"]["text"].startswith("Alert fired")  # the Slack format
        retried = client.post(f"/api/v1/deliveries/{row['delivery_id']}/retry", headers=headers("reports"))
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
        client.portal.call(worker.tick)
        assert deliveries(client, alert_id=rule["alert_id"])[0]["status"] == "delivered"
        again = client.post(f"/api/v1/deliveries/{row['delivery_id']}/retry", headers=headers("reports"))
        assert again.status_code == 409
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_a_muted_rule_records_its_incident_and_delivers_nothing(client, records):
    with Receiver() as receiver:
        rule = client.post(
            "/api/v1/alerts", json=always([{"type": "webhook", "target": receiver.url}]), headers=headers("reports")
        ).json()
        muted = client.post(f"/api/v1/alerts/{rule['alert_id']}/mute", headers=headers("reports"))
        assert muted.status_code == 200 and muted.json()["muted"] is True
        outcome = client.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports")).json()
        assert [e["kind"] for e in outcome["events"]] == ["fired"]
        client.portal.call(worker_of(client, "w-mute").tick)
        assert deliveries(client, alert_id=rule["alert_id"]) == [] and receiver.requests == []
        assert (
            client.post(f"/api/v1/alerts/{rule['alert_id']}/unmute", headers=headers("reports")).json()["muted"]
            is False
        )
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_the_stream_shows_an_incident_within_2s_of_the_evaluation(settings, records):
    app = create_app(settings)
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        rule = http.post("/api/v1/alerts", json=always([]), headers=headers("reports")).json()
        seen: list[tuple[float, dict]] = []
        ready = threading.Event()

        def listen() -> None:
            with http.stream("GET", "/api/v1/alerts/stream", headers=headers("reports")) as response:
                assert response.status_code == 200
                kind = None
                for line in response.iter_lines():
                    if line.startswith(": connected"):
                        ready.set()
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "incident":
                        seen.append((time.monotonic(), json.loads(line[5:])))
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert ready.wait(10)
        evaluated = http.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports"))
        answered = time.monotonic()
        assert evaluated.status_code == 200
        listener.join(5)
        assert seen, "no incident event on the stream"
        at, event = seen[0]
        assert at - answered < 2.0
        assert event["alert_id"] == rule["alert_id"] and event["kind"] == "fired"
        assert event["incident_id"] == evaluated.json()["events"][0]["incident_id"]
        # Another store's key does not see it.
        s1_stream = http.get("/api/v1/alerts/stream", headers=headers("read_s1"))
        assert s1_stream.status_code == 403
        http.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_workers_on_the_same_rules_evaluate_and_deliver_each_once(client, records, database, request, tmp_path):
    """Two workers (each with its own engine, as two processes would have) tick at the same
    times over 6 rules and 3 evaluation times: 18 evaluations, 6 incidents, 6 deliveries."""
    if database == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    clock = Clock(datetime(2026, 11, 10, 11, 59, 30, tzinfo=UTC))
    engines = [make_engine(url), make_engine(url)]
    migrate(engines[0])
    service = client.app.state.notifications.service
    repos = [NotificationsRepo(engine, clock=clock) for engine in engines]
    with Receiver() as receiver:
        body = always([{"type": "webhook", "target": receiver.url}], evaluate_every="1m")
        from analytics_service.notifications.rules import AlertBody, resolved_rule

        rules = [
            repos[0].create_rule(
                resolved_rule(AlertBody.model_validate(body)), tz="UTC", api_key_id="k", store_id="default"
            )
            for _ in range(6)
        ]
        workers = [
            make_worker(service.settings, client.app.state.es, repo, service.reports, options=FAST, worker_id=f"w{i}")
            for i, repo in enumerate(repos)
        ]

        async def both() -> None:
            await asyncio.gather(*(w.tick() for w in workers))

        for minute in range(3):
            clock.at = datetime(2026, 11, 10, 12, minute, 1, tzinfo=UTC)
            client.portal.call(both)
        for _ in range(3):  # deliveries queued by the last round
            client.portal.call(both)
        for rule in rules:
            evaluations = repos[1].evaluations(rule.alert_id)
            assert sorted(e.at.minute for e in evaluations) == [0, 1, 2]
            incidents, total = repos[1].incidents(
                store_id=None, alert_id=rule.alert_id, status=None, page=1, page_size=10
            )
            assert total == 1 and incidents[0].status == "open"
        sent = [r["body"]["alert"]["alert_id"] for r in receiver.requests]
        assert sorted(sent) == sorted(r.alert_id for r in rules)
        delivered, total = repos[0].deliveries(
            store_id=None, alert_id=None, schedule_id=None, report_id=None, status=None, page=1, page_size=50
        )
        assert total == 6 and all(d.status == "delivered" and d.attempts == 1 for d in delivered)
        # Both workers took part.
        assert {e.worker_id for r in rules for e in repos[0].evaluations(r.alert_id)} == {"w0", "w1"}
    for engine in engines:
        engine.dispose()


def test_the_scheduled_monthly_review_arrives_by_email_with_the_pdf_and_the_apis_numbers(client, records, smtp, clock):
    _, received = smtp
    received.clear()
    clock.at = datetime(2026, 11, 20, tzinfo=UTC)
    r = client.post(
        "/api/v1/reports/schedules",
        headers=headers("reports"),
        json={
            "name": "Monthly review",
            "report_type": "monthly_business_review",
            "format": "pdf",
            "parameters": {"range": "last_month", "tz": "Europe/Berlin", "store_id": "default"},
            "cron": "0 6 1 * *",
            "tz": "Europe/Berlin",
            "recipients": [{"type": "email", "target": "owner@example.com"}],
        },
    )
    assert r.status_code == 201, r.text
    schedule = r.json()
    assert schedule["next_run_at"].startswith("2026-12-01T05:00:00")  # 06:00 in Berlin
    assert client.get("/api/v1/reports/schedules", headers=headers("reports")).json()["total"] >= 1
    worker = worker_of(client, "w-schedule")
    clock.at = datetime(2026, 12, 1, 5, 0, 20, tzinfo=UTC)
    ran = client.portal.call(worker.tick)
    assert len(ran.reports) == 1
    row = wait_for_report(client, ran.reports[0])
    assert row["status"] == "completed" and row["schedule_id"] == schedule["schedule_id"]
    assert row["parameters"]["start"].startswith("2026-11-01T00:00:00+01:00")
    for _ in range(50):
        client.portal.call(worker.tick)
        if received:
            break
        time.sleep(0.05)
    (message,) = received
    assert message["To"] == "owner@example.com" and message["From"] == "reports@example.com"
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    pdf = PdfReader(io.BytesIO(attachment.get_content()))
    assert len(pdf.pages) >= 1
    # The API's numbers for November in Berlin, as the e-mail writes them.
    api = client.get(
        "/api/v1/analytics/dashboard",
        params={"start": "2026-11-01", "end": "2026-12-01", "tz": "Europe/Berlin", "store_id": "default"},
        headers=headers("read"),
    ).json()["kpis"]
    assert api["orders"] > 0
    assert f"Gross revenue: USD {api['gross_revenue']:,.2f}" in text
    assert f"Orders: {api['orders']:,}" in text
    assert f"USD {api['gross_revenue']:,.2f}" in html
    assert "http://analytics.example.com/api/v1/reports/download?token=" in text
    (delivery,) = deliveries(client, schedule_id=schedule["schedule_id"])
    assert delivery["status"] == "delivered" and delivery["report_id"] == row["report_id"]
    # The next run is the next 1st of the month; the run is not repeated.
    after = client.get(f"/api/v1/reports/schedules/{schedule['schedule_id']}", headers=headers("reports")).json()
    assert after["next_run_at"].startswith("2027-01-01T05:00:00") and after["last_report_id"] == row["report_id"]
    client.portal.call(worker.tick)
    assert len(received) == 1
    run_now = client.post(f"/api/v1/reports/schedules/{schedule['schedule_id']}/run", headers=headers("reports"))
    assert run_now.status_code == 202 and run_now.json()["report_id"] != row["report_id"]
    assert (
        client.delete(f"/api/v1/reports/schedules/{schedule['schedule_id']}", headers=headers("reports")).status_code
        == 204
    )


BAD = [
    ("/api/v1/alerts", {**always([]), "measure": "orders_per_hour"}, "body.measure"),
    ("/api/v1/alerts", always([{"type": "webhook", "target": "ftp://example.com/x"}]), "body.channels.0.target"),
    ("/api/v1/alerts", always([{"type": "email", "target": "not-an-address"}]), "body.channels.0.target"),
    ("/api/v1/alerts", {**always([]), "condition": {"type": "threshold", "value": 3}}, "body.condition.operator"),
    ("/api/v1/alerts", {**always([]), "window": "5 minutes"}, "body.window"),
    ("/api/v1/alerts", {**always([]), "evaluate_every": "10s"}, "body.evaluate_every"),
    ("/api/v1/alerts", {**always([]), "tz": "Mars/Olympus"}, "body.tz"),
    ("/api/v1/alerts", {"measure": "stock", "window": "30d", "condition": {"type": "anomaly"}}, "body.condition.type"),
    ("/api/v1/alerts", {**always([]), "filters": {"category": "Books"}, "measure": "aov"}, "body.filters.category"),
    (
        "/api/v1/reports/schedules",
        {
            "report_type": "daily_sales",
            "format": "csv",
            "cron": "61 * * * *",
            "recipients": [{"type": "email", "target": "a@example.com"}],
        },
        "body.cron",
    ),
    (
        "/api/v1/reports/schedules",
        {
            "report_type": "daily_sales",
            "format": "csv",
            "cron": "0 6 * * *",
            "recipients": [{"type": "email", "target": "nobody"}],
        },
        "body.recipients.0.target",
    ),
    (
        "/api/v1/reports/schedules",
        {
            "report_type": "daily_sales",
            "format": "csv",
            "cron": "0 6 * * *",
            "parameters": {"range": "last_century"},
            "recipients": [{"type": "email", "target": "a@example.com"}],
        },
        "parameters.range",
    ),
    ("/api/v1/alerts", always([{"type": "webhook", "target": "http://example.com:99999/x"}]), "body.channels.0.target"),
    ("/api/v1/alerts", {**always([]), "evaluate_every": "999999w"}, "body.evaluate_every"),
    ("/api/v1/alerts", {**always([]), "cooldown": "999999w"}, "body.cooldown"),
    ("/api/v1/alerts", {**always([]), "name": "two\nlines"}, "body.name"),
    ("/api/v1/alerts", {**always([]), "store_id": "x" * 300}, "body.store_id"),
    (
        "/api/v1/reports/schedules",
        {
            "report_type": "daily_sales",
            "format": "csv",
            "cron": "0 0 30 2 *",
            "recipients": [{"type": "email", "target": "a@example.com"}],
        },
        "body.cron",
    ),
    (
        "/api/v1/reports/schedules",
        {
            "report_type": "daily_sales",
            "format": "csv",
            "cron": "0 6 * * *",
            "parameters": {"tz": "Mars/Base"},
            "recipients": [{"type": "email", "target": "a@example.com"}],
        },
        "parameters.tz",
    ),
    (
        "/api/v1/reports/schedules",
        {
            "report_type": "daily_sales",
            "format": "csv",
            "cron": "0 6 * * *",
            "parameters": {"tz": 5},
            "recipients": [{"type": "email", "target": "a@example.com"}],
        },
        "parameters.tz",
    ),
    (
        "/api/v1/reports/schedules",
        {
            "report_type": "weekly_nonsense",
            "format": "csv",
            "cron": "0 6 * * *",
            "recipients": [{"type": "email", "target": "a@example.com"}],
        },
        "report_type",
    ),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD)
def test_bad_input_is_a_422_naming_the_field(client, path, body, field):
    r = client.post(path, json=body, headers=headers("reports"))
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]], r.json()


def test_webhooks_to_private_addresses_are_refused_unless_allowed(es_connection, prefix, tmp_path):
    settings = make_settings(es_connection, prefix, tmp_path, notifications_in_process=False)
    with TestClient(create_app(settings)) as strict:
        for target in (
            "http://127.0.0.1:9/x",
            "http://10.1.2.3/x",
            "http://[::1]/x",
            "http://169.254.169.254/x",
            "http://localhost/x",
        ):
            r = strict.post(
                "/api/v1/alerts", json=always([{"type": "webhook", "target": target}]), headers=headers("reports")
            )
            assert r.status_code == 422, (target, r.text)
            assert r.json()["error"]["details"][0]["field"] == "body.channels.0.target"
            assert "WEBHOOK_ALLOW_PRIVATE_TARGETS" in r.json()["error"]["message"]


def test_templates_list_every_measure_and_the_keys_scope_applies(client):
    r = client.get("/api/v1/alerts/templates", headers=headers("reports"))
    assert r.status_code == 200
    body = r.json()
    assert {
        "stock_out_imminent",
        "low_stock",
        "orders_per_minute",
        "revenue_drop",
        "payment_failures_spike",
        "zero_result_searches",
    } <= set(body["templates"])
    assert {m["name"] for m in body["measures"]} >= {
        "orders",
        "gross_revenue",
        "aov",
        "conversion",
        "payment_success_rate",
        "zero_result_search_rate",
        "refunds",
        "days_of_cover",
        "stock",
    }
    assert client.get("/api/v1/alerts", headers=headers("read")).status_code == 403
    assert client.get("/api/v1/deliveries", headers=headers("read")).status_code == 403
    assert client.get("/api/v1/alerts/0123", headers=headers("reports")).status_code == 422
    assert client.get(f"/api/v1/alerts/{'0' * 32}", headers=headers("reports")).status_code == 404
    assert KEYS["reports"]["scopes"] == ["reports"]


def test_a_report_over_the_attachment_limit_is_linked_not_attached(client, records, smtp, clock):
    _, received = smtp
    received.clear()
    r = client.post(
        "/api/v1/reports/schedules",
        headers=headers("reports"),
        json={
            "report_type": "daily_sales",
            "format": "csv",
            "parameters": {"range": "yesterday"},
            "cron": "0 7 * * *",
            "recipients": [{"type": "email", "target": "team@example.com"}],
        },
    )
    assert r.status_code == 201, r.text
    schedule = r.json()
    report_id = client.post(
        f"/api/v1/reports/schedules/{schedule['schedule_id']}/run", headers=headers("reports")
    ).json()["report_id"]
    assert wait_for_report(client, report_id)["status"] == "completed"
    service = client.app.state.notifications.service
    small = service.settings.model_copy(update={"smtp_max_attachment_bytes": 10})
    worker = make_worker(small, client.app.state.es, service.repo, service.reports, options=FAST, worker_id="w-small")
    for _ in range(50):
        client.portal.call(worker.tick)
        if any(m["To"] == "team@example.com" for m in received):
            break
        time.sleep(0.05)
    (message,) = [m for m in received if m["To"] == "team@example.com"]
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert list(parsed.iter_attachments()) == []
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    token = text.split("download?token=")[1].split()[0]
    download = client.get("/api/v1/reports/download", params={"token": token})  # no key: the signed link
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    client.delete(f"/api/v1/reports/schedules/{schedule['schedule_id']}", headers=headers("reports"))


def test_a_mute_until_without_an_offset_is_a_422(client):
    rule = client.post("/api/v1/alerts", json=always([]), headers=headers("reports")).json()
    r = client.post(
        f"/api/v1/alerts/{rule['alert_id']}/mute", json={"until": "2026-12-24T00:00:00"}, headers=headers("reports")
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.until"
    ok = client.post(
        f"/api/v1/alerts/{rule['alert_id']}/mute",
        json={"until": "2026-12-24T00:00:00+01:00"},
        headers=headers("reports"),
    )
    assert ok.status_code == 200 and ok.json()["muted_until"].startswith("2026-12-23T23:00:00")
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


@pytest.mark.parametrize(
    "host", ["[::ffff:127.0.0.1]", "[64:ff9b::a9fe:a9fe]", "[::127.0.0.1]", "[2002:7f00:1::]", "0.0.0.0", "[fd00::1]"]
)
def test_ipv6_forms_of_private_addresses_are_refused(host):
    with pytest.raises(TargetRefused):
        check_public_target(f"http://{host}/hook", allow_private=False)


def test_public_addresses_pass_the_check():
    assert check_public_target("http://93.184.215.14:8080/hook", allow_private=False) == ["93.184.215.14"]


def test_a_webhook_goes_to_the_address_that_was_checked(client, records, monkeypatch):
    """With private targets refused, the request connects to the checked address, naming the
    host in the Host header (a second DNS answer cannot redirect it)."""
    from analytics_service.notifications import channels

    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        target = f"http://hooks.example.test:{port}/hook"  # does not resolve: accepted when saved
        rule = client.post(
            "/api/v1/alerts", json=always([{"type": "webhook", "target": target}]), headers=headers("reports")
        )
        assert rule.status_code == 201, rule.text
        client.post(f"/api/v1/alerts/{rule.json()['alert_id']}/evaluate", headers=headers("reports"))
        monkeypatch.setattr(channels, "check_public_target", lambda url, allow_private: ["127.0.0.1"])
        service = client.app.state.notifications.service
        strict = service.settings.model_copy(update={"webhook_allow_private_targets": False})
        worker = make_worker(
            strict, client.app.state.es, service.repo, service.reports, options=FAST, worker_id="w-pinned"
        )
        client.portal.call(worker.tick)
        (request,) = receiver.requests
        assert request["headers"]["Host"] == f"hooks.example.test:{port}" and request["signed"]
        (row,) = deliveries(client, alert_id=rule.json()["alert_id"])
        assert row["status"] == "delivered" and row["history"][0]["outcome"] == "delivered"
    client.delete(f"/api/v1/alerts/{rule.json()['alert_id']}", headers=headers("reports"))


def test_without_a_webhook_secret_outside_development_webhooks_are_refused(es_connection, prefix, tmp_path):
    settings = make_settings(
        es_connection,
        prefix,
        tmp_path,
        notifications_in_process=False,
        app_env="production",
        signing_secret="a-production-signing-secret",
        webhook_allow_private_targets=True,
    )
    with TestClient(create_app(settings)) as strict:
        r = strict.post(
            "/api/v1/alerts",
            json=always([{"type": "webhook", "target": "http://127.0.0.1:9/x"}]),
            headers=headers("reports"),
        )
        assert r.status_code == 422 and "WEBHOOK_SIGNING_SECRET" in r.json()["error"]["message"]


def test_a_schedule_run_that_cannot_be_requested_now_is_tried_again(client, records, clock, monkeypatch):
    from analytics_service.errors import ApiError

    r = client.post(
        "/api/v1/reports/schedules",
        headers=headers("reports"),
        json={
            "report_type": "daily_sales",
            "format": "json",
            "parameters": {"range": "yesterday"},
            "cron": "15 * * * *",
            "recipients": [{"type": "email", "target": "retry@example.com"}],
        },
    )
    schedule = r.json()
    due = datetime.fromisoformat(schedule["next_run_at"].replace("Z", "+00:00"))
    worker = worker_of(client, "w-retry-run")
    calls = []

    async def unavailable(*args, **kwargs):
        calls.append(1)
        raise ApiError(503, "the reports database is unavailable", code="database_unavailable")

    monkeypatch.setattr(worker.reports, "generate", unavailable)
    clock.at = due + timedelta(seconds=5)
    assert client.portal.call(worker.tick).reports == [] and calls == [1]
    after = client.get(f"/api/v1/reports/schedules/{schedule['schedule_id']}", headers=headers("reports")).json()
    assert after["next_run_at"] == schedule["next_run_at"] and after["last_run_at"] is None  # not lost
    monkeypatch.undo()
    clock.at = due + timedelta(seconds=40)
    ran = client.portal.call(worker.tick)
    assert len(ran.reports) == 1
    done = client.get(f"/api/v1/reports/schedules/{schedule['schedule_id']}", headers=headers("reports")).json()
    assert done["last_report_id"] == ran.reports[0] and done["next_run_at"] != schedule["next_run_at"]
    client.delete(f"/api/v1/reports/schedules/{schedule['schedule_id']}", headers=headers("reports"))
