"""The notification worker: evaluates due alert rules, runs due report schedules, queues the
deliveries of finished scheduled reports, and sends due deliveries; `tick()` does one round.

Every step takes its row with a lease (repo.py), so any number of workers share the work
without doing any of it twice; a worker that dies mid-step lets the lease lapse and another
one takes the row over. Time comes from the repository's clock (tests move it by hand).

Runs beside the report worker: in the API process without REDIS_URL (NOTIFICATIONS_IN_PROCESS),
and in `python -m analytics_service worker`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..analytics.runner import QueryContext
from ..auth import Principal
from ..config import Settings
from ..errors import ApiError
from ..metrics import ALERT_EVALUATIONS, DELIVERIES, beat
from ..reports import signing
from ..reports.failures import backoff_seconds, classify
from ..reports.model import MEDIA_TYPES
from ..reports.periods import month_start, natural_dates
from ..reports.service import ReportsService, download_filename
from ..reports.table import Report
from ..reports.worker import new_worker_id
from ..zones import zone_named
from .channels import Sender, SendFailed, target_label
from .evaluation import Evaluation, evaluate, iso
from .repo import Applied, NotificationsRepo
from .rules import cron_times, first_evaluation
from .tables import AlertRule, Delivery, ReportSchedule

log = logging.getLogger(__name__)
T = TypeVar("T")
# A rule or schedule whose run failed for a passing reason is tried again this much later.
EVALUATION_RETRY_SECONDS = 30


class NotificationOptions(BaseSettings):
    """Tuning of the notification worker, from `NOTIFY_*` environment variables (or `.env`)."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", env_file=".env", extra="ignore")

    tick_seconds: float = Field(1.0, gt=0, description="how often the worker looks for due work")
    lease_seconds: float = Field(120.0, gt=0, description="a rule, schedule or delivery is held this long at most")
    catch_up: int = Field(10, ge=1, description="after an outage, evaluations replayed per rule at most")
    max_attempts: int = Field(12, ge=1, description="delivery attempts before a delivery is marked failed")
    retry_initial_seconds: float = Field(5.0, gt=0, description="wait after a failed delivery; doubled each time")
    retry_max_seconds: float = Field(3600.0, gt=0, description="longest wait between two delivery attempts")
    batch: int = Field(100, ge=1, description="rules, schedules and deliveries handled per tick at most")
    evaluation_retention_days: float = Field(30, gt=0, description="evaluation rows are kept this long")


# -- schedule ranges ----------------------------------------------------------------------


def range_dates(name: str, today: Any) -> tuple[Any, Any]:
    """[start, end) local dates of a schedule's `range` for a run on local date `today`.
    month_to_date / week_to_date: from the first day of the month / Monday week that holds
    yesterday, to today (so a run on the 1st covers the whole month before)."""
    yesterday = today - timedelta(days=1)
    if name == "month_to_date":
        return month_start(yesterday), today
    if name == "week_to_date":
        return yesterday - timedelta(days=yesterday.weekday()), today
    if name == "last_7_days":
        return today - timedelta(days=7), today
    if name == "last_30_days":
        return today - timedelta(days=30), today
    dates = natural_dates(name, today)  # type: ignore[arg-type]
    assert dates is not None
    return dates


def run_parameters(schedule: ReportSchedule, at: datetime, default_tz: str) -> dict[str, Any]:
    """The report parameters of the run at `at`: `range` turned into start and end (local dates
    in the parameters' tz, else the schedule's)."""
    given = dict(schedule.parameters or {})
    name = given.pop("range", None)
    if name is None:
        return given
    tz = zone_named(given.get("tz") or schedule.tz or default_tz)
    start, end = range_dates(name, at.astimezone(tz).date())
    given.setdefault("tz", tz.key)
    return {**given, "start": start.isoformat(), "end": end.isoformat()}


def latest_due(cron: str, tz: Any, due: datetime, now: datetime) -> tuple[datetime, datetime]:
    """(the latest run time <= now from `due` on, the one after now): missed runs are not replayed one by one."""
    times = cron_times(cron, tz, due)
    latest, following = due, next(times)
    while following <= now:
        latest, following = following, next(times)
    return latest, following


@dataclass
class TickReport:
    evaluations: list[Evaluation] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    deliveries: list[tuple[str, str]] = field(default_factory=list)  # (delivery_id, outcome)


class NotificationWorker:
    def __init__(
        self,
        settings: Settings,
        ctx: QueryContext,
        repo: NotificationsRepo,
        reports: ReportsService,
        *,
        options: NotificationOptions | None = None,
        worker_id: str | None = None,
        on_event: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.repo = repo
        self.reports = reports
        self.options = options or NotificationOptions()
        self.worker_id = worker_id or new_worker_id()
        self.sender = Sender(settings, Path(settings.reports_dir))
        self.on_event = on_event
        self.next_prune = 0.0  # monotonic time of the next pruning of old evaluation rows

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- the loop ------------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("notification worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.warning("notification worker %s: a round failed; trying again", self.worker_id, exc_info=True)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.options.tick_seconds)
        log.info("notification worker %s stopped", self.worker_id)

    async def tick(self) -> TickReport:
        """One round: every due rule, schedule, finished scheduled report and delivery (up to `batch` each)."""
        report = TickReport()
        beat("notifications")
        for _ in range(self.options.batch):
            rule = await self._db(self.repo.claim_due_rule, self.worker_id, self.options.lease_seconds)
            if rule is None:
                break
            await self._evaluate_claimed(rule, report)
        for _ in range(self.options.batch):
            schedule = await self._db(self.repo.claim_due_schedule, self.worker_id, self.options.lease_seconds)
            if schedule is None:
                break
            report_id = await self._run_claimed(schedule)
            if report_id:
                report.reports.append(report_id)
        await self.queue_report_deliveries()
        if time.monotonic() >= self.next_prune:
            self.next_prune = time.monotonic() + 3600
            horizon = self.repo.now() - timedelta(days=self.options.evaluation_retention_days)
            pruned = await self._db(self.repo.prune_evaluations, horizon)
            if pruned:
                log.info("dropped %d alert evaluations older than %s", pruned, iso(horizon))
        for _ in range(self.options.batch):
            delivery = await self._db(self.repo.claim_due_delivery, self.worker_id, self.options.lease_seconds)
            if delivery is None:
                break
            outcome = await self.send(delivery)
            DELIVERIES.labels(channel=delivery.channel, outcome=outcome).inc()
            report.deliveries.append((delivery.delivery_id, outcome))
        return report

    # -- alerts --------------------------------------------------------------------------------

    def _retry_at(self) -> datetime:
        return self.repo.now() + timedelta(seconds=EVALUATION_RETRY_SECONDS)

    async def _evaluate_claimed(self, rule: AlertRule, report: TickReport) -> None:
        """Evaluate the rule's due time: after an outage of more than `catch_up` evaluations, the
        oldest one still within them. A transient failure (Elasticsearch or the database
        unreachable) gives the rule back for EVALUATION_RETRY_SECONDS without advancing it, so
        the same evaluation runs again; a permanent one is recorded and the rule goes on."""
        every = timedelta(seconds=rule.evaluate_every_seconds)
        behind = first_evaluation(self.repo.now() - every * self.options.catch_up, rule.evaluate_every_seconds)
        at = max(rule.next_evaluation_at, behind)
        try:
            evaluation = await evaluate(self.ctx, rule, at)
            if evaluation.exception is not None and classify(evaluation.exception).transient:
                log.warning(
                    "alert %s: evaluation at %s could not read its measure (%s); trying again in %ds",
                    rule.alert_id,
                    iso(at),
                    evaluation.error,
                    EVALUATION_RETRY_SECONDS,
                )
                ALERT_EVALUATIONS.labels(outcome="retry").inc()
                await self._db(self.repo.release_rule, rule.alert_id, self.worker_id, self._retry_at())
                return
            ALERT_EVALUATIONS.labels(outcome=evaluation.outcome).inc()
            applied = await self._db(self.repo.apply_evaluation, rule, evaluation, self.worker_id)
        except Exception:
            log.warning(
                "alert %s: evaluation at %s failed; trying again in %ds",
                rule.alert_id,
                iso(at),
                EVALUATION_RETRY_SECONDS,
                exc_info=True,
            )
            with suppress(Exception):
                await self._db(self.repo.release_rule, rule.alert_id, self.worker_id, self._retry_at())
            return
        await self._db(self.repo.advance_rule, rule, self.worker_id, at, catch_up=self.options.catch_up)
        report.evaluations.append(evaluation)
        if applied is not None:
            report.applied.append(applied)
            for event in applied.events:
                log.info(
                    "alert %s (%s) %s for %r at %s: value %s",
                    rule.alert_id,
                    rule.name,
                    event.kind,
                    event.payload.get("subject") or "the store",
                    iso(at),
                    event.payload.get("value"),
                )
            if applied.events and self.on_event is not None:
                self.on_event()
        if evaluation.error:
            log.warning(
                "alert %s: evaluation at %s could not read its measure: %s", rule.alert_id, iso(at), evaluation.error
            )

    async def evaluate_now(self, rule: AlertRule, at: datetime, *, apply: bool) -> tuple[Evaluation, Applied | None]:
        """`POST /alerts/{id}/evaluate`: the rule at `at` (its window ending then); with `apply`,
        incidents, events and deliveries follow as for a scheduled evaluation."""
        evaluation = await evaluate(self.ctx, rule, at)
        ALERT_EVALUATIONS.labels(outcome=evaluation.outcome).inc()
        applied = await self._db(self.repo.apply_evaluation, rule, evaluation, None) if apply else None
        if applied is not None and applied.events and self.on_event is not None:
            self.on_event()
        return evaluation, applied

    # -- schedules -----------------------------------------------------------------------------

    async def _run_claimed(self, schedule: ReportSchedule) -> str | None:
        """Run the latest due time of a claimed schedule. The database or the queue failing:
        the schedule is given back and the same run is tried again EVALUATION_RETRY_SECONDS
        later. Its parameters refused (e.g. the store's key changed): the run is recorded as
        failed and its recipients are told, then the schedule goes on."""
        tz = zone_named(schedule.tz)
        now = self.repo.now()
        at, following = latest_due(schedule.cron, tz, schedule.next_run_at, now)
        report_id = None
        try:
            report_id = await self.run_schedule(schedule, at)
        except ApiError as exc:
            if classify(exc).transient:  # e.g. the database unreachable (a 503): the same run later
                log.warning(
                    "schedule %s: the run at %s could not be requested (%s); trying again in %ds",
                    schedule.schedule_id,
                    iso(at),
                    exc.message,
                    EVALUATION_RETRY_SECONDS,
                )
                with suppress(Exception):
                    await self._db(self.repo.release_schedule, schedule.schedule_id, self.worker_id, self._retry_at())
                return None
            log.warning("schedule %s: the run at %s was refused: %s", schedule.schedule_id, iso(at), exc.message)
            await self._db(self.repo.queue_schedule_failure, schedule, at, exc.message)
        except Exception as exc:
            log.warning(
                "schedule %s: the run at %s could not be requested (%s); trying again in %ds",
                schedule.schedule_id,
                iso(at),
                exc,
                EVALUATION_RETRY_SECONDS,
            )
            with suppress(Exception):
                await self._db(self.repo.release_schedule, schedule.schedule_id, self.worker_id, self._retry_at())
            return None
        await self._db(self.repo.schedule_ran, schedule.schedule_id, self.worker_id, at, report_id, following)
        return report_id

    async def run_schedule(self, schedule: ReportSchedule, at: datetime) -> str:
        """Request the schedule's report for the run at `at` (a reports-table row linked to it)."""
        principal = Principal(
            key_id=schedule.api_key_id or "schedule", scopes=frozenset({"reports"}), store_id=schedule.store_id
        )
        parameters = run_parameters(schedule, at, self.settings.default_timezone)
        local = at.astimezone(zone_named(schedule.tz))
        name = f"{schedule.name} {local:%Y-%m-%d %H:%M}"
        created = await self.reports.generate(
            principal, schedule.report_type, schedule.format, parameters, name, schedule_id=schedule.schedule_id, now=at
        )
        log.info("schedule %s: run at %s requested report %s", schedule.schedule_id, iso(at), created.report_id)
        return created.report_id

    async def queue_report_deliveries(self) -> int:
        queued = 0
        for report in await self._db(self.repo.reports_to_deliver, self.options.batch):
            schedule = await self._db(self.repo.get_schedule, report.schedule_id or "")
            rows = await self._db(self.repo.queue_report_deliveries, report, schedule, self.report_payload(report))
            queued += len(rows)
        return queued

    def report_payload(self, report: Report) -> dict[str, Any]:
        summary = report.summary or {}
        url = None
        if report.status == "completed":
            secret = self.settings.signing_secret.get_secret_value()
            lifetime = int(self.settings.report_ttl_hours * 3600)
            token = signing.make_token(
                secret, report.report_id, signing.link_expiry(report.expires_at, lifetime=lifetime)
            )
            url = f"{self.settings.public_base_url}/api/v1/reports/download?token={token}"
        parameters = report.parameters or {}
        return {
            "type": "report" if report.status == "completed" else "report_failed",
            "schedule_id": report.schedule_id,
            "store_id": report.store_id,
            "currency": summary.get("currency") or self.settings.base_currency,
            "report": {
                "report_id": report.report_id,
                "report_name": report.report_name,
                "report_type": report.report_type,
                "format": report.format,
                "status": report.status,
                "title": summary.get("title"),
                "period": summary.get("period") or {k: parameters.get(k) for k in ("start", "end", "tz")},
                "file_size": report.file_size,
                "row_count": report.row_count,
                "checksum": report.checksum,
                "error": report.error,
                "expires_at": iso(report.expires_at),
                "download_url": url,
                "filename": download_filename(report),
                "media_type": MEDIA_TYPES[report.format],
                "file_name": report.file_name,
            },
            "kpis": summary.get("kpis") or [],
        }

    # -- deliveries ----------------------------------------------------------------------------

    def _attachment(self, delivery: Delivery) -> Path | None:
        if delivery.channel != "email" or delivery.kind != "report":
            return None
        name = delivery.payload["report"].get("file_name") or ""
        path = Path(self.settings.reports_dir) / name
        if not name or Path(name).name != name or not path.is_file():
            return None
        return path if path.stat().st_size <= self.settings.smtp_max_attachment_bytes else None

    async def send(self, delivery: Delivery) -> str:
        """One attempt at a claimed delivery: delivered, retry (with backoff) or failed."""
        started = time.monotonic()
        try:
            await self.sender.send(delivery, self._attachment(delivery))
        except SendFailed as exc:
            return await self._failed(delivery, str(exc), permanent=exc.permanent)
        except Exception as exc:  # a bug or an unexpected error: recorded, retried like any failure
            log.warning("delivery %s: unexpected error", delivery.delivery_id, exc_info=True)
            return await self._failed(delivery, f"{type(exc).__name__}: {exc}", permanent=False)
        await self._db(self.repo.delivery_done, delivery.delivery_id, self.worker_id)
        log.info(
            "delivery %s (%s to %s): delivered on attempt %d in %.2fs",
            delivery.delivery_id,
            delivery.channel,
            target_label(delivery),
            delivery.attempts,
            time.monotonic() - started,
        )
        return "delivered"

    async def _failed(self, delivery: Delivery, error: str, *, permanent: bool) -> str:
        retry_at = None
        if not permanent and delivery.attempts - delivery.attempts_before_retry < self.options.max_attempts:
            delay = backoff_seconds(
                delivery.attempts - delivery.attempts_before_retry,
                self.options.retry_initial_seconds,
                self.options.retry_max_seconds,
            )
            retry_at = self.repo.now() + timedelta(seconds=delay)
        message = f"attempt {delivery.attempts}: {error}"
        await self._db(self.repo.delivery_failed, delivery.delivery_id, self.worker_id, message, retry_at)
        if retry_at is None:
            log.error(
                "delivery %s (%s to %s) failed for good: %s",
                delivery.delivery_id,
                delivery.channel,
                target_label(delivery),
                message,
            )
            return "failed"
        log.warning(
            "delivery %s (%s to %s): %s; next attempt at %s",
            delivery.delivery_id,
            delivery.channel,
            target_label(delivery),
            message,
            iso(retry_at),
        )
        return "retry"
