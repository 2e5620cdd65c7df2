"""Retention (docs/operations.md "Retention") on real parts: monthly indices on the real node under
prefixes of this module (the project's templates, so the aliases are the real ones), the history
horizons and the daily run on a real SQLite file, the command as a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from elasticsearch import AsyncElasticsearch, Elasticsearch
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics_service.app import create_app
from analytics_service.devtools.local_servers import free_port
from analytics_service.es.client import index_names
from analytics_service.es.indices import ACTIVITY, EVENTS, IndexNames, setup_indices
from analytics_service.notifications.tables import AlertEvaluation, AlertEvent, AlertIncident, AlertRule, Delivery
from analytics_service.periodic import PeriodicTask, PeriodicTasks
from analytics_service.reports.table import ReportsRepo, make_engine, migrate
from analytics_service.retention import (
    TASK_NAME,
    DailyRetention,
    MonthlyIndices,
    horizons,
    month_end,
    run_retention,
)
from tests.conftest import ROOT, make_settings, with_async_es


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def months_back(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def monthly(prefix: str, family: str, month: date) -> str:
    return f"{prefix}-{family}-{month:%Y.%m}"


def set_up(es_connection, prefix: str, tmp: Path, **overrides):
    """Settings for `prefix`, and its templates, aliases and single indices installed (`setup`)."""
    settings = make_settings(es_connection, prefix, tmp, **overrides)
    with_async_es(settings, lambda aes: setup_indices(aes, index_names(settings)))
    return settings


def add_doc(es: Elasticsearch, index: str, month: date, n: int) -> None:
    """A document in `index` (created from the template when it does not exist), stamped in `month`."""
    at = datetime(month.year, month.month, 10, 12, tzinfo=UTC).isoformat()
    family = "event" if "-events-" in index else "activity"
    es.index(index=index, id=f"{index}-{n}", document={f"{family}_id": f"x{n}", "timestamp": at}, refresh=True)


def existing(es: Elasticsearch, pattern: str) -> set[str]:
    return set(es.indices.get(index=pattern, expand_wildcards="open,closed", allow_no_indices=True))


def plan_of(settings, now: datetime, days: int, *, dry_run: bool = True):
    async def go(aes: AsyncElasticsearch):
        return await run_retention([MonthlyIndices(aes, index_names(settings), days)], now, dry_run=dry_run)

    return with_async_es(settings, go)


# -- monthly indices ----------------------------------------------------------------------------


def test_a_month_ends_at_the_first_instant_of_the_next_in_utc():
    assert month_end(date(2025, 1, 1)) == datetime(2025, 2, 1, tzinfo=UTC)
    assert month_end(date(2025, 12, 1)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_only_the_exact_monthly_names_of_this_prefix_are_ours():
    horizon = MonthlyIndices(None, IndexNames("shop"), 30)  # type: ignore[arg-type]
    assert horizon.month_of("shop-events-2024.01") == (EVENTS, date(2024, 1, 1))
    assert horizon.month_of("shop-activity-2024.12") == (ACTIVITY, date(2024, 12, 1))
    for name in (
        "shop-events-2024.01-restored",
        "restored-shop-events-2024.01",
        "shop2-events-2024.01",
        "shop-orders-2024.01",
        "shop-events-2024.13",
        "shop-events-2024.00",
        "shop-events-2024.1",
        "shop-events-24.01",
        "shop-events-*",
        "shop-x-events-2024.01",
    ):
        assert horizon.month_of(name) is None, name


def test_the_dry_run_lists_exactly_the_months_past_the_horizon_and_the_run_drops_exactly_those(
    es, es_connection, prefix, tmp_path
):
    p = f"{prefix}-a"
    settings = set_up(es_connection, p, tmp_path)
    now, days = datetime(2025, 6, 15, 12, tzinfo=UTC), 30  # cutoff 2025-05-16T12:00Z
    months = [date(2025, m, 1) for m in range(1, 7)]
    for n, month in enumerate(months):
        add_doc(es, monthly(p, "events", month), month, n)
        if month.month >= 3:
            add_doc(es, monthly(p, "activity", month), month, n)
    es.indices.close(index=monthly(p, "events", months[1]))  # a closed month past the horizon goes too
    foreign = [
        f"{p}2-events-2025.01",  # another prefix
        f"{p}-events-2025.01-restored",
        f"restored-{p}-events-2025.01",
        f"{p}-events-2025.13",
        f"{p}-events-2025.1",
    ]
    try:
        for name in foreign:
            es.indices.create(index=name)
        finance = existing(es, f"{p}-orders*,{p}-order-items*,{p}-products*,{p}-expenses*,{p}-customers*")
        assert len(finance) == 5
        before = existing(es, f"{p}-*,restored-{p}-*,{p}2-*")
        # January to April end on or before the cutoff; May still holds a day inside the horizon.
        expected = {monthly(p, "events", date(2025, m, 1)) for m in (1, 2, 3, 4)} | {
            monthly(p, "activity", date(2025, m, 1)) for m in (3, 4)
        }

        dry = plan_of(settings, now, days)
        assert dry.ok, dry.errors
        assert {d.target for d in dry.planned} == expected
        assert [line.split(" ")[4] for line in dry.item_lines()] == sorted(expected)
        assert all(line.startswith("would drop monthly-indices: index ") for line in dry.item_lines())
        assert existing(es, f"{p}-*,restored-{p}-*,{p}2-*") == before  # a dry run deletes nothing

        run = plan_of(settings, now, days, dry_run=False)
        assert run.ok, run.errors
        assert [d.target for d, _ in run.dropped] == [d.target for d in dry.planned]
        after = existing(es, f"{p}-*,restored-{p}-*,{p}2-*")
        # Besides: the deletions published for every process's cache (es/store_versions.py).
        assert after - {f"{p}-data-versions"} == before - expected and f"{p}-data-versions" in after
        assert finance <= existing(es, f"{p}-*")
        assert set(foreign) <= existing(es, f"{p}-*,restored-{p}-*,{p}2-*")
        assert "would be dropped" in dry.summary() and "6 indices" in run.summary()

        # The aliases still work: reads see the kept months, and a write lands in a kept month.
        es.indices.refresh(index=f"{p}-events,{p}-activity")
        assert es.count(index=f"{p}-events")["count"] == 2  # May and June
        assert es.count(index=f"{p}-activity")["count"] == 2
        add_doc(es, monthly(p, "events", months[4]), months[4], 99)
        assert es.count(index=f"{p}-events")["count"] == 3
        assert monthly(p, "events", months[5]) in es.indices.get_alias(name=f"{p}-events")

        again = plan_of(settings, now, days, dry_run=False)
        assert again.planned == [] and again.ok
    finally:
        for name in (f"{p}2-events-2025.01", f"restored-{p}-events-2025.01"):
            es.options(ignore_status=404).indices.delete(index=name)


def test_a_month_goes_only_once_it_has_ended_before_the_horizon(es, es_connection, prefix, tmp_path):
    p = f"{prefix}-b"
    settings = set_up(es_connection, p, tmp_path)
    april = date(2025, 4, 1)
    add_doc(es, monthly(p, "events", april), april, 1)
    end = month_end(april)  # 2025-05-01T00:00Z
    days = 41
    at_the_end = end + timedelta(days=days)  # now - days == the month's end: the whole month is past
    assert [d.target for d in plan_of(settings, at_the_end, days).planned] == [monthly(p, "events", april)]
    just_before = at_the_end - timedelta(microseconds=1)  # its last instant is still inside the horizon
    assert plan_of(settings, just_before, days).planned == []
    assert plan_of(settings, at_the_end + timedelta(days=3650), 0).planned == []  # 0: kept forever


# -- the command ------------------------------------------------------------------------------


def command(settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    values = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "API_KEYS")},
        "ELASTICSEARCH_URL": settings.elasticsearch_url,
        "ES_LOCAL_DIR": str(settings.es_local_dir),
        "INDEX_PREFIX": settings.index_prefix,
        "DATABASE_URL": settings.database_url,
        "REPORTS_DIR": str(settings.reports_dir),
        "APP_ENV": "development",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "analytics_service", "retention", *args],
        cwd=ROOT,
        env=values,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_drops_what_its_dry_run_listed(es, es_connection, prefix, tmp_path):
    p = f"{prefix}-c"
    settings = set_up(es_connection, p, tmp_path)
    today = datetime.now(UTC).date()
    # A horizon that ends near the 15th of a month a year ago, far from any month boundary.
    anchor = date(today.year - 1, today.month, 15)
    days = (today - anchor).days
    kept_month = anchor.replace(day=1)
    gone = [months_back(kept_month, 1), months_back(kept_month, 2)]
    for n, month in enumerate([*gone, kept_month]):
        add_doc(es, monthly(p, "events", month), month, n)
    es.indices.create(index=f"{monthly(p, 'events', gone[1])}-restored")
    env = {"ANALYTICS_DATA_RETENTION_DAYS": str(days)}

    dry = command(settings, "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr
    listed = [line.split(" ")[4] for line in dry.stdout.splitlines() if line.startswith("would drop monthly-indices")]
    assert listed == sorted(monthly(p, "events", m) for m in gone)
    assert f"{days} days ago (ANALYTICS_DATA_RETENTION_DAYS)" in dry.stdout
    assert "2 indices (2 documents)" in dry.stdout.splitlines()[-1]
    assert set(listed) <= existing(es, f"{p}-events-*")

    real = command(settings, **env)
    assert real.returncode == 0, real.stderr
    dropped = [line.split(" ")[3] for line in real.stdout.splitlines() if line.startswith("dropped monthly-indices")]
    assert dropped == listed
    left = existing(es, f"{p}-events-*")
    assert not set(listed) & left
    assert {monthly(p, "events", kept_month), f"{monthly(p, 'events', gone[1])}-restored"} <= left

    off = command(settings, "--dry-run")  # unset: kept forever, and said so
    assert off.returncode == 0 and "kept forever (ANALYTICS_DATA_RETENTION_DAYS unset or 0)" in off.stdout


def test_the_command_fails_clearly_when_elasticsearch_cannot_be_reached(es_connection, prefix, tmp_path):
    settings = make_settings(es_connection, f"{prefix}-d", tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    done = command(settings, "--dry-run", ELASTICSEARCH_URL=url, ANALYTICS_DATA_RETENTION_DAYS="30")
    assert done.returncode == 1
    assert f"error: monthly-indices: Elasticsearch at {url} cannot be reached" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_negative_horizon_is_refused(es_connection, prefix, tmp_path):
    settings = make_settings(es_connection, f"{prefix}-e", tmp_path)
    done = command(settings, "--dry-run", ANALYTICS_DATA_RETENTION_DAYS="-1")
    assert done.returncode == 2 and "ANALYTICS_DATA_RETENTION_DAYS" in done.stderr


# -- the history in the reports database (SQLite) ----------------------------------------------

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=120)  # past the 90 days of ALERT_HISTORY_RETENTION_DAYS
RECENT = NOW - timedelta(days=10)


def incident(incident_id: str, status: str, resolved_at: datetime | None, opened_at: datetime = OLD) -> AlertIncident:
    return AlertIncident(
        incident_id=incident_id,
        alert_id="a1",
        alert_name="rule",
        measure="orders",
        store_id=None,
        subject="",
        status=status,
        open_key="a1:" if status == "open" else None,
        opened_at=opened_at,
        resolved_at=resolved_at,
        last_evaluated_at=resolved_at or opened_at,
        details={},
    )


def event(incident_id: str, at: datetime) -> AlertEvent:
    return AlertEvent(incident_id=incident_id, alert_id="a1", evaluation_id=1, kind="fired", at=at, payload={})


def delivery(delivery_id: str, status: str, created_at: datetime, report_id: str | None = None) -> Delivery:
    return Delivery(
        delivery_id=delivery_id,
        dedup_key=delivery_id,
        kind="report" if report_id else "alert",
        report_id=report_id,
        channel="webhook",
        target="https://example.com/hook",
        options={},
        payload={},
        status=status,
        attempts=1,
        attempts_before_retry=0,
        history=[],
        created_at=created_at,
    )


def count(engine, model) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_alert_history_and_report_files_past_their_horizons_go_and_nothing_else(es_connection, prefix, tmp_path):
    settings = make_settings(es_connection, f"{prefix}-f", tmp_path)
    engine = make_engine(settings.database_url)
    migrate(engine)
    report_clock = Clock(OLD)
    reports = ReportsRepo(engine, clock=report_clock)

    def daily_sales_csv(expires_in: timedelta, **extra):
        return reports.create(
            report_type="daily_sales",
            format="csv",
            parameters={},
            report_name=None,
            api_key_id="k",
            store_id=None,
            expires_in=expires_in,
            **extra,
        )

    expired, failed = (daily_sales_csv(timedelta(days=7), schedule_id="s1") for _ in range(2))
    report_clock.at = NOW - timedelta(days=30)
    live = daily_sales_csv(timedelta(days=60))
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    for report in (expired, live):
        assert reports.claim(report.report_id, "w", 60)
        assert reports.complete(
            report.report_id, "w", file_name=f"{report.report_id}.csv", file_size=1, row_count=1, checksum="0" * 64
        )
        (settings.reports_dir / f"{report.report_id}.csv").write_text("x")
    assert reports.claim(failed.report_id, "w", 60)
    assert reports.fail(failed.report_id, "w", "boom", retry=False)
    with Session(engine) as s, s.begin():
        s.add(
            AlertRule(
                alert_id="a1",
                name="rule",
                measure="orders",
                window="1h",
                condition={},
                filters={},
                channels=[],
                evaluate_every_seconds=60,
                cooldown_seconds=0,
                tz="UTC",
                muted=False,
                created_at=OLD - timedelta(days=365),
                updated_at=OLD,
                next_evaluation_at=OLD,
            )
        )
        s.add_all(
            [
                incident("old-resolved", "resolved", OLD),
                incident("old-closed", "closed", OLD + timedelta(days=1)),
                incident("recent-resolved", "resolved", RECENT),
                incident("old-open", "open", None),  # opened long ago, still open: stays
                event("old-resolved", OLD),
                event("old-resolved", OLD),
                event("old-closed", OLD),
                event("recent-resolved", OLD),
                event("old-open", OLD),
                delivery("d-delivered-old", "delivered", OLD),
                delivery("d-failed-old", "failed", OLD),
                delivery("d-pending-old", "pending", OLD),
                delivery("d-sending-old", "sending", OLD),
                delivery("d-delivered-recent", "delivered", RECENT),
                delivery("d-expired-report-old", "delivered", OLD, expired.report_id),
                # A failed scheduled report's delivery: deleting it would make the run be delivered again.
                delivery("d-failed-report-old", "delivered", OLD, failed.report_id),
            ]
        )
        for at in (NOW - timedelta(days=40), NOW - timedelta(days=31), NOW - timedelta(days=5)):
            s.add(AlertEvaluation(alert_id="a1", at=at, evaluated_at=at, outcome="ok", details={}))

    def run(dry_run: bool):
        return asyncio.run(run_retention(horizons(settings, None, engine), NOW, dry_run=dry_run))  # type: ignore[arg-type]

    dry = run(True)
    assert dry.ok, dry.errors
    planned = {d.horizon: d.count for d in dry.planned}
    assert planned == {"report-files": 1, "alert-evaluations": 2, "alert-incidents": 5, "deliveries": 3}
    assert (count(engine, AlertIncident), count(engine, Delivery), count(engine, AlertEvaluation)) == (4, 7, 3)

    real = run(False)
    assert real.ok, real.errors
    assert [(d.horizon, n) for d, n in real.dropped] == [(d.horizon, d.count) for d in dry.planned]
    with Session(engine) as s:
        assert set(s.scalars(select(AlertIncident.incident_id))) == {"recent-resolved", "old-open"}
        assert sorted(s.scalars(select(AlertEvent.incident_id))) == ["old-open", "recent-resolved"]
        assert set(s.scalars(select(Delivery.delivery_id))) == {
            "d-pending-old",
            "d-sending-old",
            "d-delivered-recent",
            "d-failed-report-old",
        }
        assert s.scalar(select(func.count()).select_from(AlertRule)) == 1
        assert s.scalar(select(func.count()).select_from(AlertEvaluation)) == 1
    assert reports.get(expired.report_id).status == "expired"
    assert not (settings.reports_dir / f"{expired.report_id}.csv").exists()
    assert reports.get(live.report_id).status == "completed"
    assert (settings.reports_dir / f"{live.report_id}.csv").exists()
    assert run(False).planned == []

    forever = make_settings(es_connection, f"{prefix}-f", tmp_path, alert_history_retention_days=0)
    kept = asyncio.run(run_retention(horizons(forever, None, engine), NOW + timedelta(days=3650), dry_run=True))  # type: ignore[arg-type]
    assert {d.horizon for d in kept.planned} <= {"report-files", "alert-evaluations"}
    engine.dispose()


# -- the daily run ------------------------------------------------------------------------------


def test_the_daily_run_happens_once_a_day_whatever_the_number_of_workers(es_connection, prefix, tmp_path):
    settings = make_settings(es_connection, f"{prefix}-g", tmp_path)
    engine = make_engine(settings.database_url)
    migrate(engine)
    clock = Clock(NOW)
    workers = [DailyRetention(settings, None, engine, clock=clock, worker_id=f"w{i}") for i in range(3)]  # type: ignore[arg-type]

    def round_() -> list[str]:
        async def go():
            return await asyncio.gather(*(w.run_if_due() for w in workers))

        return [w.worker_id for w, run in zip(workers, asyncio.run(go())) if run is not None]

    assert len(round_()) == 1  # the first look: due at once, run by one worker
    assert round_() == []
    clock.at = NOW + timedelta(hours=23, minutes=59)
    assert round_() == []
    clock.at = NOW + timedelta(days=1)
    assert len(round_()) == 1
    assert round_() == []
    row = PeriodicTasks(engine).get(TASK_NAME)
    assert row is not None and row.next_run_at == NOW + timedelta(days=2) and row.lease_until is None
    assert row.last_outcome == {"at": "2026-06-02T12:00:00Z", "dropped": [], "errors": []}

    # A worker that died holding the run: another one takes it once the lease has lapsed.
    clock.at = NOW + timedelta(days=2)
    tasks = PeriodicTasks(engine, clock=clock)
    assert tasks.claim(TASK_NAME, "dead", 3600)
    assert round_() == []
    clock.at += timedelta(hours=1)
    assert len(round_()) == 1
    engine.dispose()


def test_a_failed_daily_run_is_tried_again_an_hour_later(es_connection, prefix, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(es_connection, f"{prefix}-h", tmp_path, analytics_data_retention_days=30)
    settings = settings.model_copy(update={"elasticsearch_url": url})
    engine = make_engine(settings.database_url)
    migrate(engine)
    clock = Clock(NOW)

    async def go():
        aes = AsyncElasticsearch(url, max_retries=0, request_timeout=5)
        try:
            return await DailyRetention(settings, aes, engine, clock=clock, worker_id="w").run_if_due()
        finally:
            await aes.close()

    run = asyncio.run(go())
    assert run is not None and not run.ok
    assert "cannot be reached" in run.errors[0]
    row = PeriodicTasks(engine).get(TASK_NAME)
    assert row is not None and row.next_run_at == NOW + timedelta(hours=1)
    assert row.last_outcome is not None and row.last_outcome["errors"] == run.errors
    engine.dispose()


def test_the_api_process_runs_retention_without_redis(es_connection, prefix, tmp_path):
    from fastapi.testclient import TestClient

    settings = make_settings(es_connection, f"{prefix}-i", tmp_path)
    with TestClient(create_app(settings)) as client:
        assert "retention" in {t.get_name() for t in client.app.state.notifications.tasks}
        engine = client.app.state.reports.service.repo.engine
        deadline = time.monotonic() + 30
        while True:
            with Session(engine) as s:
                row = s.get(PeriodicTask, TASK_NAME)
            if row is not None and row.last_run_at is not None:
                break
            assert time.monotonic() < deadline, "the in-process daily run did not happen"
            time.sleep(0.1)
        assert row.next_run_at > datetime.now(UTC) + timedelta(hours=23)
