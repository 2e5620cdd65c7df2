"""Between the notification routes and the tables: store rules, validation that needs the
settings (time zones, SSRF), the alert stream; and the start-up wiring (`start_notifications`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, get_args

import orjson
from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from ..analytics.live import KEEPALIVE_SECONDS, RETRY_SECONDS, sse_event
from ..analytics.runner import QueryContext
from ..auth import Principal, resolve_store
from ..config import Settings
from ..errors import ApiError, validation_details
from ..es.client import index_names
from ..ingest.limits import FieldError
from ..reports.parameters import report_params
from ..reports.service import ReportsService, database_call
from ..zones import zone_named
from .evaluation import Evaluation
from .repo import Applied, NotificationsRepo, new_id
from .rules import (
    AlertBody,
    Channel,
    ScheduleBody,
    ScheduleRange,
    TargetRefused,
    TargetUnresolved,
    check_public_target,
    next_run,
    resolved_rule,
    stored_channel,
)
from .tables import AlertEvaluation, AlertIncident, AlertRule, Delivery, ReportSchedule
from .worker import NotificationOptions, NotificationWorker, run_parameters

log = logging.getLogger(__name__)
T = TypeVar("T")
_ID = re.compile(r"^[0-9a-f]{32}$")
# The alert stream looks for new events this often.
STREAM_POLL_SECONDS = 0.25
STREAM_GAP_SECONDS = 10.0
STREAM_MAX_GAPS = 500


def check_id(value: str, name: str) -> str:
    if not _ID.match(value):
        raise ApiError(
            422,
            f"{name}: must be 32 hexadecimal characters",
            details=[{"field": f"path.{name}", "message": "must be 32 hexadecimal characters"}],
        )
    return value


def field_error(field: str, message: str) -> ApiError:
    return ApiError(422, f"{field}: {message}", details=[{"field": field, "message": message}])


class NotificationsService:
    def __init__(
        self, repo: NotificationsRepo, reports: ReportsService, settings: Settings, worker: NotificationWorker
    ) -> None:
        self.repo = repo
        self.reports = reports
        self.settings = settings
        self.worker = worker

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await database_call(fn, *args, **kwargs)

    # -- checks --------------------------------------------------------------------------------

    def store_of(self, principal: Principal, requested: str | None) -> str | None:
        return resolve_store(principal, requested)

    def _tz(self, tz: str | None, store: str | None) -> str:
        if tz is not None:
            return tz
        return self.settings.store_timezone(store).key if store is not None else self.settings.default_timezone

    async def _check_targets(self, channels: list[Channel], field: str) -> None:
        for index, channel in enumerate(channels):
            if channel.type != "webhook":
                continue
            if self.settings.webhook_secret is None:
                raise field_error(
                    f"body.{field}.{index}.target",
                    "webhooks need WEBHOOK_SIGNING_SECRET (the key of their X-Signature); it is not set",
                )
            try:
                await asyncio.to_thread(
                    check_public_target, channel.target, self.settings.webhook_allow_private_targets
                )
            except TargetUnresolved:  # checked again before every attempt
                log.info("%s.%d.target: the host does not resolve now; accepted, checked again when sent", field, index)
            except TargetRefused as exc:
                raise field_error(f"body.{field}.{index}.target", str(exc)) from None

    def _resolved(self, body: AlertBody) -> dict[str, Any]:
        try:
            return resolved_rule(body)
        except FieldError as exc:
            raise field_error(".".join(("body", *(str(p) for p in exc.field_loc))), exc.message) from None

    # -- alert rules ---------------------------------------------------------------------------

    async def create_alert(self, principal: Principal, body: AlertBody) -> AlertRule:
        store = self.store_of(principal, body.store_id)
        fields = self._resolved(body)
        await self._check_targets(body.channels, "channels")
        rule = await self._db(
            self.repo.create_rule, fields, tz=self._tz(body.tz, store), api_key_id=principal.key_id, store_id=store
        )
        log.info(
            "alert %s created: %s on %s (%s) by key %s",
            rule.alert_id,
            rule.name,
            rule.measure,
            rule.window,
            principal.key_id,
        )
        return rule

    async def visible_alert(self, principal: Principal, alert_id: str) -> AlertRule:
        rule = await self._db(self.repo.get_rule, check_id(alert_id, "alert_id"))
        if rule is None or (principal.store_id is not None and rule.store_id != principal.store_id):
            raise ApiError(404, "alert not found")
        return rule

    async def list_alerts(self, principal: Principal, store_id: str | None) -> list[AlertRule]:
        return await self._db(self.repo.list_rules, self.store_of(principal, store_id))

    async def update_alert(self, principal: Principal, alert_id: str, patch: dict[str, Any]) -> AlertRule:
        rule = await self.visible_alert(principal, alert_id)
        if "store_id" in patch and patch["store_id"] != rule.store_id:
            raise field_error("body.store_id", "cannot be changed; create a rule for the other store")
        try:  # the rule as it would be: every check of a new rule applies (a 422 naming body.<field>)
            merged = AlertBody.model_validate({**stored_body(rule), **patch})
        except ValidationError as exc:
            details = validation_details(exc.errors(), ("body",))
            raise ApiError(
                422, f"invalid value for {', '.join(d['field'] for d in details)}", details=details
            ) from None
        fields = self._resolved(merged)
        if "channels" in patch:
            await self._check_targets(merged.channels, "channels")
        fields["template"] = rule.template  # what it was made from stays
        if "tz" in patch:
            fields["tz"] = self._tz(merged.tz, rule.store_id)
        if "muted" in patch and not patch["muted"]:
            fields["muted_until"] = None
        if merged.evaluate_every is None or fields["evaluate_every_seconds"] == rule.evaluate_every_seconds:
            fields.pop("evaluate_every_seconds")
        updated = await self._db(self.repo.update_rule, rule.alert_id, fields)
        if updated is None:
            raise ApiError(404, "alert not found")
        return updated

    async def mute(self, principal: Principal, alert_id: str, muted: bool, until: datetime | None) -> AlertRule:
        rule = await self.visible_alert(principal, alert_id)
        updated = await self._db(
            self.repo.update_rule, rule.alert_id, {"muted": muted, "muted_until": until if muted else None}
        )
        if updated is None:
            raise ApiError(404, "alert not found")
        return updated

    async def delete_alert(self, principal: Principal, alert_id: str) -> None:
        rule = await self.visible_alert(principal, alert_id)
        await self._db(self.repo.delete_rule, rule.alert_id)

    async def evaluations(self, principal: Principal, alert_id: str, limit: int) -> list[AlertEvaluation]:
        rule = await self.visible_alert(principal, alert_id)
        return await self._db(self.repo.evaluations, rule.alert_id, limit)

    async def evaluate(self, principal: Principal, alert_id: str, *, apply: bool) -> tuple[Evaluation, Applied | None]:
        rule = await self.visible_alert(principal, alert_id)
        return await self.worker.evaluate_now(rule, self.repo.now(), apply=apply)

    async def incidents(
        self, principal: Principal, *, store_id: str | None, **filters: Any
    ) -> tuple[list[AlertIncident], int]:
        return await self._db(self.repo.incidents, store_id=self.store_of(principal, store_id), **filters)

    # -- schedules -----------------------------------------------------------------------------

    async def create_schedule(self, principal: Principal, body: ScheduleBody) -> ReportSchedule:
        parameters = dict(body.parameters)
        if "start" in parameters or "end" in parameters:
            field = "start" if "start" in parameters else "end"
            raise field_error(f"parameters.{field}", "a schedule's period is `range` (relative to each run)")
        range_name = parameters.get("range", "yesterday")
        allowed = get_args(ScheduleRange)
        if range_name not in allowed:
            raise field_error("parameters.range", f"must be one of {', '.join(allowed)}")
        parameters["range"] = range_name
        tz = parameters.get("tz")
        if tz is not None:
            try:
                zone_named(tz) if isinstance(tz, str) else None
            except ValueError:
                tz = None
            if not isinstance(tz, str):
                raise field_error("parameters.tz", "must be an IANA time zone name such as Europe/Berlin")
        store = self.store_of(principal, parameters.get("store_id"))
        if store is not None:
            parameters["store_id"] = store
        now = self.repo.now()
        probe = ReportSchedule(schedule_id="", parameters=parameters, tz=body.tz)
        try:  # the parameters as a run would send them: a 422 naming parameters.<key> now, not at 06:00
            report_params(
                run_parameters(probe, now, self.settings.default_timezone),
                principal,
                report_type=body.report_type,
                default_tz=self.settings.default_timezone,
                now=now,
            )
        except ApiError as exc:
            if exc.status == 422 and exc.details and exc.details[0].get("field") in ("start", "end"):
                raise field_error("parameters.range", exc.message) from None
            raise
        await self._check_targets(body.recipients, "recipients")

        schedule = ReportSchedule(
            schedule_id=new_id(),
            name=body.name or body.report_type.replace("_", " ").capitalize(),
            report_type=body.report_type,
            format=body.format,
            parameters=parameters,
            cron=body.cron,
            tz=body.tz,
            recipients=[stored_channel(c) for c in body.recipients],
            api_key_id=principal.key_id,
            store_id=store,
            created_at=now,
            next_run_at=next_run(body.cron, zone_named(body.tz), now),
        )
        await self._db(self.repo.create_schedule, schedule)
        log.info(
            "schedule %s created: %s %s at '%s' %s by key %s",
            schedule.schedule_id,
            body.report_type,
            body.format,
            body.cron,
            body.tz,
            principal.key_id,
        )
        return schedule

    async def visible_schedule(self, principal: Principal, schedule_id: str) -> ReportSchedule:
        schedule = await self._db(self.repo.get_schedule, check_id(schedule_id, "schedule_id"))
        if schedule is None or (principal.store_id is not None and schedule.store_id != principal.store_id):
            raise ApiError(404, "schedule not found")
        return schedule

    async def list_schedules(self, principal: Principal, store_id: str | None) -> list[ReportSchedule]:
        return await self._db(self.repo.list_schedules, self.store_of(principal, store_id))

    async def delete_schedule(self, principal: Principal, schedule_id: str) -> None:
        schedule = await self.visible_schedule(principal, schedule_id)
        await self._db(self.repo.delete_schedule, schedule.schedule_id)

    async def run_schedule(self, principal: Principal, schedule_id: str) -> str:
        schedule = await self.visible_schedule(principal, schedule_id)
        return await self.worker.run_schedule(schedule, self.repo.now())

    # -- deliveries ----------------------------------------------------------------------------

    async def deliveries(self, principal: Principal, **filters: Any) -> tuple[list[Delivery], int]:
        store = self.store_of(principal, filters.pop("store_id", None))
        return await self._db(self.repo.deliveries, store_id=store, **filters)

    async def visible_delivery(self, principal: Principal, delivery_id: str) -> Delivery:
        delivery = await self._db(self.repo.get_delivery, check_id(delivery_id, "delivery_id"))
        if delivery is None or (principal.store_id is not None and delivery.store_id != principal.store_id):
            raise ApiError(404, "delivery not found")
        return delivery

    async def retry_delivery(self, principal: Principal, delivery_id: str) -> Delivery:
        delivery = await self.visible_delivery(principal, delivery_id)
        retried = await self._db(self.repo.retry_delivery, delivery.delivery_id)
        if retried is None:
            raise ApiError(
                409, f"delivery is {delivery.status}; only failed deliveries can be retried", code="not_retryable"
            )
        return retried

    # -- the stream ----------------------------------------------------------------------------

    async def stream(
        self, store: str | None, last_event_id: int | None, disconnected: Callable[[], Any], max_seconds: float
    ) -> AsyncIterator[bytes]:
        """Server-sent events: an `incident` event for each incident opened or resolved (in the
        key's store) from now on, or after `Last-Event-ID` when the client reconnects."""
        cursor = last_event_id if last_event_id is not None else await self._db(self.repo.last_event_id)
        # Event ids are handed out when a transaction inserts and become visible when it commits:
        # with several workers (PostgreSQL) a lower id can appear after higher ones. An id
        # skipped over is looked for again on every poll for STREAM_GAP_SECONDS (a transaction
        # that takes longer than that is not waited for).
        gaps: dict[int, float] = {}  # id skipped over -> when it was first missed
        yield b"retry: %d\n\n" % int(RETRY_SECONDS * 1000)
        yield b": connected\n\n"
        ends_at, kept_at = time.monotonic() + max_seconds, time.monotonic()
        while time.monotonic() < ends_at and not await disconnected():
            clock = time.monotonic()
            gaps = {i: since for i, since in gaps.items() if clock - since < STREAM_GAP_SECONDS}
            try:
                events = await asyncio.to_thread(self.repo.events_after, cursor, store, 500)
                if gaps:
                    events = [*await asyncio.to_thread(self.repo.events_with_ids, list(gaps), store), *events]
            except OperationalError:
                events = []
                await asyncio.sleep(RETRY_SECONDS)
            for event in events:
                if event.event_id in gaps:
                    del gaps[event.event_id]
                elif event.event_id > cursor:
                    # (other stores' events are gaps too, to a key bound to one store: at most STREAM_MAX_GAPS)
                    skipped = range(max(cursor + 1, event.event_id - STREAM_MAX_GAPS), event.event_id)
                    gaps.update((i, clock) for i in skipped if len(gaps) < STREAM_MAX_GAPS)
                    cursor = event.event_id
                else:
                    continue
                yield sse_event("incident", orjson.dumps(event.payload), event.event_id)
                kept_at = time.monotonic()
            if time.monotonic() - kept_at >= KEEPALIVE_SECONDS:
                yield b": keep-alive\n\n"
                kept_at = time.monotonic()
            await asyncio.sleep(STREAM_POLL_SECONDS)


def every_text(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def stored_body(rule: AlertRule) -> dict[str, Any]:
    """A stored rule as the fields of an AlertBody (what PATCH applies its changes to)."""
    return {
        "name": rule.name,
        "measure": rule.measure,
        "window": rule.window,
        "condition": rule.condition,
        "filters": rule.filters or {},
        "channels": rule.channels or [],
        "evaluate_every": every_text(rule.evaluate_every_seconds),
        "cooldown": every_text(rule.cooldown_seconds) if rule.cooldown_seconds else "0s",
        "tz": rule.tz,
        "muted": rule.muted,
    }


# -- wiring ------------------------------------------------------------------------------------


@dataclass
class NotificationsRuntime:
    service: NotificationsService
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def stop(self) -> None:
        self.stop_event.set()
        for task in self.tasks:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task


def make_worker(
    settings: Settings,
    es: Any,
    repo: NotificationsRepo,
    reports: ReportsService,
    options: NotificationOptions | None = None,
    worker_id: str | None = None,
) -> NotificationWorker:
    # No response cache: an alert reads the data as it is now.
    ctx = QueryContext(es=es, names=index_names(settings), settings=settings, cache=None)
    return NotificationWorker(settings, ctx, repo, reports, options=options, worker_id=worker_id)


async def start_notifications(state: Any, settings: Settings) -> NotificationsRuntime:
    """The service over the reports database; the worker loop and the daily retention run in this
    process without Redis (unless NOTIFICATIONS_IN_PROCESS=false). `state` is the app's: `.es`,
    `.redis`, `.reports`."""
    reports: ReportsService = state.reports.service
    repo = NotificationsRepo(reports.repo.engine)
    worker = make_worker(settings, state.es, repo, reports)
    runtime = NotificationsRuntime(service=NotificationsService(repo, reports, settings, worker))
    if state.redis is None and settings.notifications_in_process:
        runtime.tasks.append(asyncio.create_task(worker.run_forever(runtime.stop_event), name="notifications"))
        # Retention once a day (retention.py), beside the alerts: with REDIS_URL the workers run it.
        from ..retention import DailyRetention

        retention = DailyRetention(settings, state.es, reports.repo.engine, worker_id=worker.worker_id)
        runtime.tasks.append(asyncio.create_task(retention.run_forever(runtime.stop_event), name="retention"))
    return runtime


def notifications_service(request: Request) -> NotificationsService:
    return request.app.state.notifications.service
