"""Reports through the API with the in-process worker (no REDIS_URL): generate, follow, download,
signed links, history, store isolation, validation, cancel, retries, expiry, scopes."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import update

from analytics_service.app import create_app
from analytics_service.reports import signing
from analytics_service.reports.model import FORMATS, MEDIA_TYPES, REPORT_TYPES
from analytics_service.reports.table import Report
from analytics_service.reports.worker import sweep_expired
from tests.conftest import KEYS, generate_records, ingest_records, make_settings
from tests.conftest import report_row as status
from tests.conftest import wait_for_report as wait_for

END = date(2026, 11, 15)
PERIOD = {"start": "2026-10-01", "end": "2026-11-01"}
STORE_KEYS = {
    "reports_s1": {"key": "test-reports-s1-key", "scopes": ["reports"], "store_id": "s1"},
    "reports_s2": {"key": "test-reports-s2-key", "scopes": ["reports"], "store_id": "s2"},
}
ALL_KEYS = {**KEYS, **STORE_KEYS}


def key(name: str) -> dict[str, str]:
    return {"X-API-Key": ALL_KEYS[name]["key"]}


def settings_for(es_connection, prefix, tmp: Path, **overrides):
    return make_settings(es_connection, prefix, tmp, api_keys=json.dumps(list(ALL_KEYS.values())), **overrides)


@pytest.fixture(scope="module")
def settings(es_connection, prefix, tmp_path_factory):
    return settings_for(es_connection, prefix, tmp_path_factory.mktemp("reports-api"))


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        records = generate_records(seed=31, orders=250, activity=1200, days=90, end=END)
        ingest_records(test_client, records)
        s1 = generate_records(seed=32, orders=40, activity=200, days=60, end=END, store_id="s1")
        ingest_records(test_client, s1)
        yield test_client


def generate(
    client: TestClient, report_type: str = "daily_sales", fmt: str = "csv", who: str = "reports", **body
) -> dict:
    payload = {"report_type": report_type, "format": fmt, "parameters": body.pop("parameters", PERIOD), **body}
    r = client.post("/api/v1/reports/generate", json=payload, headers=key(who))
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["status"] == "pending"
    assert answer["status_url"].endswith(f"/api/v1/reports/{answer['report_id']}")
    return answer


def completed(client: TestClient, report_type: str = "daily_sales", fmt: str = "csv", **body) -> dict:
    row = wait_for(client, generate(client, report_type, fmt, **body)["report_id"])
    assert row["status"] == "completed", row
    return row


def error_of(response) -> dict:
    return response.json()["error"]


# -- the whole flow ---------------------------------------------------------------------------


def test_generate_follow_and_download_a_report(client, settings):
    answer = generate(client, "daily_sales", "csv", report_name="October sales")
    row = wait_for(client, answer["report_id"])
    assert row["status"] == "completed", row
    assert row["report_name"] == "October sales" and row["report_type"] == "daily_sales" and row["format"] == "csv"
    assert row["attempts"] == 1 and row["error"] is None and row["store_id"] is None
    assert row["row_count"] > 0 and row["file_size"] > 0 and len(row["checksum"]) == 64
    created, started, done = (datetime.fromisoformat(row[k]) for k in ("created_at", "started_at", "completed_at"))
    assert created <= started <= done
    expires = datetime.fromisoformat(row["expires_at"])
    assert abs((expires - created) - timedelta(hours=settings.report_ttl_hours)) < timedelta(seconds=5)
    # The period is stored resolved, so a retry builds the same report.
    assert row["parameters"]["start"].startswith("2026-10-01T00:00:00") and row["parameters"]["tz"] == "UTC"
    assert row["download_url"] and "token=" in row["download_url"]

    r = client.get(f"/api/v1/reports/{row['report_id']}/download", headers=key("reports"))
    assert r.status_code == 200
    assert r.headers["content-type"] == MEDIA_TYPES["csv"]
    assert r.headers["content-disposition"] == 'attachment; filename="October_sales.csv"'
    assert hashlib.sha256(r.content).hexdigest() == row["checksum"] and len(r.content) == row["file_size"]
    assert list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    # The file lives under REPORTS_DIR with a server-generated name.
    assert (Path(settings.reports_dir) / f"{row['report_id']}-1.csv").is_file()


def test_default_report_name_names_type_and_period(client):
    row = completed(client, "weekly_performance", "json", parameters={"start": "2026-10-05", "end": "2026-10-12"})
    assert row["report_name"] == "weekly_performance 2026-10-05..2026-10-11"
    r = client.get(f"/api/v1/reports/{row['report_id']}/download", headers=key("reports"))
    assert 'filename="weekly_performance_2026-10-05_2026-10-11.json"' in r.headers["content-disposition"]


# -- signed links -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def done_report(client) -> dict:
    return completed(client, "inventory", "xlsx")


def test_the_signed_link_works_without_a_key(client, done_report):
    r = client.get(done_report["download_url"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MEDIA_TYPES["xlsx"]
    assert hashlib.sha256(r.content).hexdigest() == done_report["checksum"]
    assert load_workbook(io.BytesIO(r.content), read_only=True).sheetnames


def _token(url: str) -> str:
    return url.split("token=", 1)[1]


def test_an_altered_link_is_refused(client, done_report):
    token = _token(done_report["download_url"])
    report_id, expires, signature = token.split(".")
    flipped = "0" if signature[-1] != "0" else "1"
    other = completed(client, "inventory", "json")["report_id"]
    for altered in (
        f"{report_id}.{expires}.{signature[:-1]}{flipped}",  # signature
        f"{report_id}.{int(expires) + 3600}.{signature}",  # a longer life
        f"{other}.{expires}.{signature}",  # another report
        "../../etc/passwd",
        "not-a-token",
        "",
    ):
        r = client.get("/api/v1/reports/download", params={"token": altered})
        assert r.status_code == 403, (altered, r.text)
        assert error_of(r)["code"] == "invalid_link"
    assert client.get("/api/v1/reports/download").status_code == 422  # no token at all


def test_an_expired_link_is_gone(client, settings, done_report):
    past = int(time.time()) - 60
    token = signing.make_token(settings.signing_secret.get_secret_value(), done_report["report_id"], past)
    r = client.get("/api/v1/reports/download", params={"token": token})
    assert r.status_code == 410 and error_of(r)["code"] == "link_expired"
    # Signed with another secret: altered, whatever its expiry.
    forged = signing.make_token("another-secret", done_report["report_id"], int(time.time()) + 600)
    assert client.get("/api/v1/reports/download", params={"token": forged}).status_code == 403


def test_link_lifetime_is_capped_by_the_reports_expiry():
    now = 1_800_000_000
    assert signing.link_expiry(None, now=now) == now + signing.LINK_SECONDS
    soon = datetime.fromtimestamp(now + 60, UTC)
    assert signing.link_expiry(soon, now=now) == now + 60


def test_a_link_verifies_in_constant_form():
    token = signing.make_token("s3cret", "a" * 32, 2_000_000_000)
    claims = signing.verify_token("s3cret", token, now=1_900_000_000)
    assert claims.report_id == "a" * 32 and claims.expires == 2_000_000_000
    with pytest.raises(signing.ExpiredLink):
        signing.verify_token("s3cret", token, now=2_000_000_001)
    with pytest.raises(signing.InvalidLink):
        signing.verify_token("other", token, now=1_900_000_000)


# -- history ----------------------------------------------------------------------------------


def test_history_filters_and_pages(client):
    ids = [completed(client, "product_performance", fmt)["report_id"] for fmt in ("csv", "json", "csv")]
    r = client.get(
        "/api/v1/reports/history", params={"report_type": "product_performance", "page_size": 2}, headers=key("reports")
    )
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["total"] >= 3 and first["page"] == 1 and first["page_size"] == 2 and len(first["items"]) == 2
    assert all(item["report_type"] == "product_performance" for item in first["items"])
    second = client.get(
        "/api/v1/reports/history",
        params={"report_type": "product_performance", "page_size": 2, "page": 2},
        headers=key("reports"),
    ).json()
    seen = [i["report_id"] for i in first["items"] + second["items"]]
    assert len(seen) == len(set(seen)) and set(ids) <= set(seen)
    # Newest first.
    assert seen[:3] == ids[::-1]
    done = client.get(
        "/api/v1/reports/history", params={"status": "completed", "page_size": 100}, headers=key("reports")
    ).json()
    assert done["items"] and all(i["status"] == "completed" and i["download_url"] for i in done["items"])
    beyond = client.get("/api/v1/reports/history", params={"page": 1000}, headers=key("reports")).json()
    assert beyond["items"] == [] and beyond["total"] >= 3


@pytest.mark.parametrize(
    "params, field",
    [
        ({"status": "done"}, "query.status"),
        ({"report_type": "yearly"}, "query.report_type"),
        ({"page": 0}, "query.page"),
        ({"page_size": 101}, "query.page_size"),
        ({"page_size": "ten"}, "query.page_size"),
    ],
)
def test_history_filters_are_validated(client, params, field):
    r = client.get("/api/v1/reports/history", params=params, headers=key("reports"))
    assert r.status_code == 422
    assert [d["field"] for d in error_of(r)["details"]] == [field]


# -- stores -----------------------------------------------------------------------------------


def test_a_store_bound_key_sees_only_its_stores_reports(client):
    mine = completed(client, "daily_sales", "json", who="reports_s1")
    assert mine["store_id"] == "s1" and mine["parameters"]["store_id"] == "s1"
    rid = mine["report_id"]
    for path in (f"/api/v1/reports/{rid}", f"/api/v1/reports/{rid}/download"):
        r = client.get(path, headers=key("reports_s2"))
        assert r.status_code == 404, r.text
        assert client.get(path, headers=key("reports_s1")).status_code == 200
    assert client.post(f"/api/v1/reports/{rid}/cancel", headers=key("reports_s2")).status_code == 404
    other = client.get("/api/v1/reports/history", params={"page_size": 100}, headers=key("reports_s2")).json()
    assert other["total"] == 0
    own = client.get("/api/v1/reports/history", params={"page_size": 100}, headers=key("reports_s1")).json()
    assert {i["store_id"] for i in own["items"]} == {"s1"} and rid in {i["report_id"] for i in own["items"]}
    # A key without a store sees every store, and may filter by one.
    assert status(client, rid)["store_id"] == "s1"
    by_store = client.get(
        "/api/v1/reports/history", params={"store_id": "s1", "page_size": 100}, headers=key("reports")
    ).json()
    assert by_store["total"] == own["total"]
    # A store-bound key cannot ask for another store's report.
    r = client.post(
        "/api/v1/reports/generate",
        headers=key("reports_s1"),
        json={"report_type": "daily_sales", "format": "csv", "parameters": {"store_id": "s2"}},
    )
    assert r.status_code == 403


def test_store_reports_use_that_stores_numbers(client):
    row = completed(client, "daily_sales", "json", parameters={**PERIOD, "store_id": "s1"})
    data = client.get(f"/api/v1/reports/{row['report_id']}/download", headers=key("reports")).json()
    dashboard = client.get(
        "/api/v1/analytics/dashboard", params={**PERIOD, "store_id": "s1"}, headers=key("read")
    ).json()
    assert data["store_id"] == "s1"
    gross = next(k for k in data["kpis"] if k["name"] == "gross_revenue")
    assert gross["value"] == pytest.approx(dashboard["kpis"]["gross_revenue"], abs=0.01)


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"report_type": "yearly_sales", "format": "csv"}, "body.report_type"),
        ({"report_type": "daily_sales", "format": "docx"}, "body.format"),
        ({"format": "csv"}, "body.report_type"),
        ({"report_type": "daily_sales", "format": "csv", "colour": "blue"}, "body.colour"),
        ({"report_type": "daily_sales", "format": "csv", "parameters": "yesterday"}, "body.parameters"),
        ({"report_type": "daily_sales", "format": "csv", "report_name": ""}, "body.report_name"),
        ({"report_type": "daily_sales", "format": "csv", "parameters": {"start": "last tuesday"}}, "parameters.start"),
        ({"report_type": "daily_sales", "format": "csv", "parameters": {"tz": "Mars/Olympus"}}, "parameters.tz"),
        (
            {"report_type": "daily_sales", "format": "csv", "parameters": {**PERIOD, "end": "2026-09-01"}},
            "parameters.end",
        ),
        ({"report_type": "daily_sales", "format": "csv", "parameters": {"colour": "blue"}}, "parameters.colour"),
    ],
)
def test_bad_requests_are_422_naming_the_field_and_write_no_row(client, body, field):
    before = client.get("/api/v1/reports/history", headers=key("reports")).json()["total"]
    r = client.post("/api/v1/reports/generate", json=body, headers=key("reports"))
    assert r.status_code == 422, r.text
    err = error_of(r)
    assert field in err["message"] or field in {d.get("field") for d in err["details"]}, err
    assert client.get("/api/v1/reports/history", headers=key("reports")).json()["total"] == before


def test_report_ids_are_checked(client):
    r = client.get("/api/v1/reports/not-a-report-id", headers=key("reports"))
    assert r.status_code == 422 and error_of(r)["details"][0]["field"] == "path.report_id"
    assert client.get("/api/v1/reports/..%2F..%2Fetc%2Fpasswd/download", headers=key("reports")).status_code in (
        404,
        422,
    )
    r = client.get(f"/api/v1/reports/{'0' * 32}", headers=key("reports"))
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


# -- scopes -----------------------------------------------------------------------------------


def test_reports_need_a_key_with_the_reports_scope(client, done_report):
    rid = done_report["report_id"]
    calls = [
        ("post", "/api/v1/reports/generate", {"report_type": "daily_sales", "format": "csv"}),
        ("get", f"/api/v1/reports/{rid}", None),
        ("get", f"/api/v1/reports/{rid}/download", None),
        ("get", "/api/v1/reports/history", None),
        ("post", f"/api/v1/reports/{rid}/cancel", None),
    ]
    for method, path, body in calls:
        assert client.request(method, path, json=body).status_code == 401, path
        assert client.request(method, path, json=body, headers={"X-API-Key": "nope-nope-nope"}).status_code == 401
        r = client.request(method, path, json=body, headers=key("read"))
        assert r.status_code == 403 and error_of(r)["code"] == "missing_scope", path
    assert client.get(f"/api/v1/reports/{rid}", headers=key("admin")).status_code == 200


# -- cancel, retries and expiry (apps of their own) ---------------------------------------------


@pytest.fixture
def slow_client(client, es_connection, prefix, tmp_path, monkeypatch):
    """An app whose worker pauses 6 s between building and rendering (heartbeat every 0.5 s)."""
    monkeypatch.setenv("REPORT_TEST_DELAY_SECONDS", "6")
    monkeypatch.setenv("REPORT_LEASE_SECONDS", "1.5")
    with TestClient(create_app(settings_for(es_connection, prefix, tmp_path))) as slow:
        yield slow


def test_cancel_a_processing_and_a_pending_report(slow_client):
    running = generate(slow_client)["report_id"]
    queued = generate(slow_client)["report_id"]  # one in-process worker: this one waits
    assert wait_for(slow_client, running, ("processing",), timeout=30)["status"] == "processing"
    assert status(slow_client, queued)["status"] == "pending"
    for rid in (running, queued):
        r = slow_client.post(f"/api/v1/reports/{rid}/cancel", headers=key("reports"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["download_url"] is None
    # The running job notices at its next heartbeat and stops long before its 6 s pause ends;
    # the cancelled pending one is skipped when the worker takes it.
    worker = slow_client.app.state.reports.worker
    cancelled_at = time.monotonic()
    while worker.current is not None or len(worker.queue):
        assert time.monotonic() - cancelled_at < 3, "the worker did not stop the cancelled job at its heartbeat"
        time.sleep(0.05)
    reports_dir = Path(slow_client.app.state.settings.reports_dir)
    for rid in (running, queued):
        row = status(slow_client, rid)
        assert row["status"] == "cancelled" and row["file_size"] is None and row["checksum"] is None
        assert not list(reports_dir.glob(f"*{rid}*"))
        r = slow_client.get(f"/api/v1/reports/{rid}/download", headers=key("reports"))
        assert r.status_code == 409 and "cancelled" in error_of(r)["message"]
        again = slow_client.post(f"/api/v1/reports/{rid}/cancel", headers=key("reports"))
        assert again.status_code == 409 and error_of(again)["code"] == "not_cancellable"
    assert status(slow_client, queued)["attempts"] == 0  # never started


def test_download_before_completion_is_409(slow_client):
    rid = generate(slow_client)["report_id"]
    r = slow_client.get(f"/api/v1/reports/{rid}/download", headers=key("reports"))
    assert r.status_code == 409 and error_of(r)["details"][0]["status"] in ("pending", "processing")
    assert status(slow_client, rid)["download_url"] is None
    slow_client.post(f"/api/v1/reports/{rid}/cancel", headers=key("reports"))


def test_cancelling_a_completed_report_is_409(client, done_report):
    r = client.post(f"/api/v1/reports/{done_report['report_id']}/cancel", headers=key("reports"))
    assert r.status_code == 409 and "completed" in error_of(r)["message"]


def test_a_failing_job_is_retried_then_failed_with_its_error(es_connection, prefix, tmp_path, monkeypatch):
    # Elasticsearch is unreachable for this app: every attempt fails (a transient failure,
    # retried with backoff: 0.2 s, then 0.4 s).
    monkeypatch.setenv("REPORT_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("REPORT_RETRY_INITIAL_DELAY_SECONDS", "0.2")
    settings = settings_for(es_connection, prefix, tmp_path, elasticsearch_url="http://127.0.0.1:9")
    with TestClient(create_app(settings)) as broken:
        rid = generate(broken)["report_id"]
        row = wait_for(broken, rid, ("failed",), timeout=60)
    assert row["attempts"] == 3
    # A sentence for the requester: no host, URL or exception text.
    assert row["error"].startswith("Elasticsearch was unavailable for 3 attempts over "), row["error"]
    assert row["error"].endswith("; request the report again") and "127.0.0.1" not in row["error"]
    assert row["completed_at"] and row["file_size"] is None and row["download_url"] is None
    # The attempts were spaced by the backoff (0.2 + 0.4 s at least, less 10 % jitter).
    started = datetime.fromisoformat(row["started_at"])
    assert (started - datetime.fromisoformat(row["created_at"])).total_seconds() >= 0.5


def test_the_expiry_sweep_deletes_files_and_marks_rows_expired(client, settings):
    row = completed(client, "daily_sales", "pdf")
    rid = row["report_id"]
    path = Path(settings.reports_dir) / f"{rid}-1.pdf"
    assert path.is_file()
    link = row["download_url"]
    service = client.app.state.reports.service
    past = datetime.now(UTC) - timedelta(minutes=1)
    with service.repo.engine.begin() as conn:
        conn.execute(update(Report).where(Report.report_id == rid).values(expires_at=past))
    # Past its expiry the file is gone for callers at once, before any sweep.
    assert client.get(f"/api/v1/reports/{rid}/download", headers=key("reports")).status_code == 410
    assert client.get(link).status_code == 410
    assert status(client, rid)["download_url"] is None
    swept = asyncio.run(sweep_expired(service.repo, Path(settings.reports_dir)))
    assert swept >= 1
    assert not path.exists()
    after = status(client, rid)
    assert after["status"] == "expired"
    r = client.get(f"/api/v1/reports/{rid}/download", headers=key("reports"))
    assert r.status_code == 410 and error_of(r)["code"] == "report_expired"
    expired = client.get("/api/v1/reports/history", params={"status": "expired"}, headers=key("reports")).json()
    assert rid in {i["report_id"] for i in expired["items"]}
    # A second sweep has nothing left to do for it.
    assert asyncio.run(sweep_expired(service.repo, Path(settings.reports_dir))) == 0


# -- every type in every format, through the whole flow ------------------------------------------


@pytest.mark.slow
def test_every_report_type_in_every_format(client):
    requested = {(t, f): generate(client, t, f)["report_id"] for t in REPORT_TYPES for f in FORMATS}
    for (report_type, fmt), rid in requested.items():
        row = wait_for(client, rid, timeout=300)
        assert row["status"] == "completed", (report_type, fmt, row["error"])
        r = client.get(row["download_url"])
        assert r.status_code == 200, (report_type, fmt, r.text)
        assert r.headers["content-type"] == MEDIA_TYPES[fmt]
        assert hashlib.sha256(r.content).hexdigest() == row["checksum"]
        if fmt == "csv":
            assert list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        elif fmt == "xlsx":
            assert load_workbook(io.BytesIO(r.content), read_only=True).sheetnames
        elif fmt == "pdf":
            assert r.content.startswith(b"%PDF")
        else:
            assert r.json()["report_type"] == report_type
