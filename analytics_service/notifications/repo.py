"""Reads and state changes of the notification tables (tables.py). Sync, like ReportsRepo:
call it through `asyncio.to_thread`. The clock is injectable (tests move time by hand).

Claims are one conditional UPDATE each (the row is due and nobody's lease runs), so two
workers never hold the same rule, schedule or delivery at once; `apply_evaluation` writes an
evaluation's whole outcome in one transaction guarded by the (rule, time) unique constraint.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..reports.table import Repo, Report, filtered_page
from .evaluation import Evaluation, iso
from .measures import MEASURES
from .rules import first_evaluation
from .tables import AlertEvaluation, AlertEvent, AlertIncident, AlertRule, Delivery, ReportSchedule

T = TypeVar("T", AlertRule, ReportSchedule, Delivery)
MAX_ERROR_CHARS = 4000


def _evaluated_before(exc: IntegrityError) -> bool:
    """Whether the error is the (rule, time) unique constraint of alert_evaluations, and nothing else."""
    diag = getattr(exc.orig, "diag", None)  # psycopg
    if diag is not None:
        return getattr(exc.orig, "sqlstate", None) == "23505" and diag.constraint_name == "alert_evaluations_once"
    return "UNIQUE constraint failed: alert_evaluations.alert_id, alert_evaluations.at" in str(exc.orig)


def changed(result: Any) -> bool:
    """Whether an UPDATE or DELETE touched a row (its CursorResult's rowcount)."""
    return bool(result.rowcount)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Applied:
    """What an evaluation changed: None when another worker had applied it already."""

    evaluation_id: int
    events: list[AlertEvent]
    deliveries: list[Delivery]


class NotificationsRepo(Repo):
    # -- alert rules -------------------------------------------------------------------------

    def create_rule(
        self, fields: dict[str, Any], *, tz: str, api_key_id: str | None, store_id: str | None
    ) -> AlertRule:
        now = self.now()
        rule = AlertRule(
            alert_id=new_id(),
            tz=tz,
            api_key_id=api_key_id,
            store_id=store_id,
            created_at=now,
            updated_at=now,
            next_evaluation_at=first_evaluation(now, fields["evaluate_every_seconds"]),
            **fields,
        )
        with self._session() as s, s.begin():
            s.add(rule)
        return rule

    def get_rule(self, alert_id: str) -> AlertRule | None:
        with self._session() as s:
            return s.get(AlertRule, alert_id)

    def list_rules(self, store_id: str | None) -> builtins.list[AlertRule]:
        query = select(AlertRule).order_by(AlertRule.created_at, AlertRule.alert_id)
        if store_id is not None:
            query = query.where(AlertRule.store_id == store_id)
        with self._session() as s:
            return builtins.list(s.scalars(query))

    def update_rule(self, alert_id: str, fields: dict[str, Any]) -> AlertRule | None:
        values = {**fields, "updated_at": self.now()}
        if "evaluate_every_seconds" in fields:
            values["next_evaluation_at"] = first_evaluation(self.now(), fields["evaluate_every_seconds"])
        with self._session() as s, s.begin():
            return s.scalars(
                update(AlertRule)
                .where(AlertRule.alert_id == alert_id)
                .values(**values)
                .returning(AlertRule)
                .execution_options(synchronize_session=False)
            ).one_or_none()

    def delete_rule(self, alert_id: str) -> bool:
        """The rule goes; its incidents and deliveries stay as history (open ones are closed). The
        rule row first, as `apply_evaluation` takes it: an evaluation running meanwhile either
        finished before (its incidents are closed here) or finds the rule gone."""
        with self._session() as s, s.begin():
            deleted = changed(s.execute(delete(AlertRule).where(AlertRule.alert_id == alert_id)))
            s.execute(
                update(AlertIncident)
                .where(AlertIncident.alert_id == alert_id, AlertIncident.status == "open")
                .values(status="closed", open_key=None, resolved_at=self.now())
                .execution_options(synchronize_session=False)
            )
            return deleted

    def claim_due_rule(self, worker_id: str, lease_seconds: float) -> AlertRule | None:
        """A rule whose next evaluation time has come and that nobody holds, leased to `worker_id`."""
        now = self.now()
        due = and_(AlertRule.next_evaluation_at <= now, self._free(AlertRule.lease_until, now))
        return self._claim(AlertRule, AlertRule.alert_id, due, worker_id, lease_seconds, AlertRule.next_evaluation_at)

    def advance_rule(self, rule: AlertRule, worker_id: str, at: datetime, *, catch_up: int) -> None:
        """After the evaluation at `at`: the next time is `at + every`, or (after an outage of
        more than `catch_up` evaluations) the latest time due, so the rule does not replay hours."""
        every = timedelta(seconds=rule.evaluate_every_seconds)
        following = at + every
        behind = first_evaluation(self.now() - every * catch_up, rule.evaluate_every_seconds)
        with self._session() as s, s.begin():
            s.execute(
                update(AlertRule)
                .where(AlertRule.alert_id == rule.alert_id, AlertRule.worker_id == worker_id)
                .values(
                    next_evaluation_at=max(following, behind), last_evaluated_at=at, lease_until=None, worker_id=None
                )
                .execution_options(synchronize_session=False)
            )

    def release_rule(self, alert_id: str, worker_id: str, retry_at: datetime) -> None:
        """Give the rule back without advancing it: its evaluation is tried again from
        `retry_at` on (by whichever worker comes first), other rules go on meanwhile."""
        with self._session() as s, s.begin():
            s.execute(
                update(AlertRule)
                .where(AlertRule.alert_id == alert_id, AlertRule.worker_id == worker_id)
                .values(lease_until=retry_at, worker_id=None)
                .execution_options(synchronize_session=False)
            )

    # -- evaluations and incidents -----------------------------------------------------------

    def apply_evaluation(self, rule: AlertRule, evaluation: Evaluation, worker_id: str | None) -> Applied | None:
        """Record the evaluation and its consequences at once: incidents opened (the condition
        became true for a subject, past the cool-down), updated, resolved (it became false);
        an event for each opening and resolution; one delivery per channel listing them (none
        while muted). None when this rule's evaluation at that time was applied before, or the
        rule is gone.

        The transaction starts by updating the rule's row: that locks it (PostgreSQL: the row;
        SQLite: the database), so evaluations of one rule (a worker's and a manual one) apply
        one after the other, each reading the incidents the one before left."""
        now = self.now()
        try:
            with self._session() as s, s.begin():
                locked = s.execute(
                    update(AlertRule)
                    .where(AlertRule.alert_id == rule.alert_id)
                    .values(alert_id=AlertRule.alert_id)
                    .execution_options(synchronize_session=False)
                )
                if not changed(locked):
                    return None  # deleted meanwhile
                record = AlertEvaluation(
                    alert_id=rule.alert_id,
                    at=evaluation.at,
                    evaluated_at=now,
                    worker_id=worker_id,
                    outcome=evaluation.outcome,
                    value=evaluation.value,
                    details=evaluation.as_dict(),
                    error=evaluation.error,
                )
                s.add(record)
                s.flush()  # the unique (rule, time) constraint answers here
                newer = s.scalar(
                    select(func.count())
                    .select_from(AlertEvaluation)
                    .where(AlertEvaluation.alert_id == rule.alert_id, AlertEvaluation.at > evaluation.at)
                )
                # An evaluation older than one applied already (a replay after a manual one) is
                # recorded, but the incidents follow the newest.
                events = [] if newer else self._incident_changes(s, rule, evaluation, record.evaluation_id)
                deliveries = self._alert_deliveries(s, rule, evaluation, record.evaluation_id, events)
        except IntegrityError as exc:
            if not _evaluated_before(exc):
                raise
            return None  # this (rule, time) was applied by another evaluation
        return Applied(record.evaluation_id, events, deliveries)

    def _incident_changes(
        self, s: Session, rule: AlertRule, evaluation: Evaluation, evaluation_id: int
    ) -> builtins.list[AlertEvent]:
        if evaluation.error is not None:
            return []
        open_now = {
            i.subject: i
            for i in s.scalars(
                select(AlertIncident).where(AlertIncident.alert_id == rule.alert_id, AlertIncident.status == "open")
            )
        }
        events: list[AlertEvent] = []
        cooldown = timedelta(seconds=rule.cooldown_seconds)
        for outcome in evaluation.subjects:
            incident = open_now.get(outcome.subject)
            if outcome.firing and incident is None:
                if cooldown and self._resolved_since(s, rule.alert_id, outcome.subject, evaluation.at - cooldown):
                    continue
                incident = AlertIncident(
                    incident_id=new_id(),
                    alert_id=rule.alert_id,
                    alert_name=rule.name,
                    measure=rule.measure,
                    store_id=rule.store_id,
                    subject=outcome.subject,
                    status="open",
                    open_key=f"{rule.alert_id}:{outcome.subject}",
                    opened_at=evaluation.at,
                    value_at_open=outcome.value,
                    last_value=outcome.value,
                    last_evaluated_at=evaluation.at,
                    details=outcome.details,
                )
                s.add(incident)
                events.append(
                    self._event(s, rule, incident, "fired", evaluation, evaluation_id, outcome.value, outcome.details)
                )
            elif incident is not None and outcome.firing is not None:
                incident.last_value = outcome.value
                incident.last_evaluated_at = evaluation.at
                if outcome.firing is False:
                    incident.status, incident.open_key, incident.resolved_at = "resolved", None, evaluation.at
                    events.append(
                        self._event(
                            s, rule, incident, "resolved", evaluation, evaluation_id, outcome.value, outcome.details
                        )
                    )
        if MEASURES[rule.measure].per_product and evaluation.subjects:
            # A product no longer watched (deactivated, left the catalog or the rule's product_ids):
            # its incident resolves rather than staying open for ever.
            watched = {o.subject for o in evaluation.subjects}
            for subject, incident in open_now.items():
                if subject not in watched:
                    incident.status, incident.open_key, incident.resolved_at = "resolved", None, evaluation.at
                    incident.last_evaluated_at = evaluation.at
                    events.append(
                        self._event(
                            s,
                            rule,
                            incident,
                            "resolved",
                            evaluation,
                            evaluation_id,
                            None,
                            {"reason": "no longer watched"},
                        )
                    )
        return events

    @staticmethod
    def _resolved_since(s: Session, alert_id: str, subject: str, since: datetime) -> bool:
        return bool(
            s.scalar(
                select(func.count())
                .select_from(AlertIncident)
                .where(
                    AlertIncident.alert_id == alert_id,
                    AlertIncident.subject == subject,
                    AlertIncident.resolved_at > since,
                )
            )
        )

    @staticmethod
    def _event(
        s: Session,
        rule: AlertRule,
        incident: AlertIncident,
        kind: str,
        evaluation: Evaluation,
        evaluation_id: int,
        value: float | None,
        details: dict[str, Any],
    ) -> AlertEvent:
        payload = {
            "kind": kind,
            "incident_id": incident.incident_id,
            "alert_id": rule.alert_id,
            "alert_name": rule.name,
            "measure": rule.measure,
            "measure_label": MEASURES[rule.measure].label,
            "measure_kind": MEASURES[rule.measure].kind,  # money, count, rate (a fraction) or number
            "store_id": rule.store_id,
            "subject": incident.subject or None,
            "value": value,
            "condition": rule.condition,
            "window": {"start": iso(evaluation.window_start), "end": iso(evaluation.window_end)},
            "at": iso(evaluation.at),
            "opened_at": iso(incident.opened_at),
            **details,
        }
        event = AlertEvent(
            incident_id=incident.incident_id,
            alert_id=rule.alert_id,
            evaluation_id=evaluation_id,
            store_id=rule.store_id,
            kind=kind,
            at=evaluation.at,
            payload=payload,
        )
        s.add(event)
        s.flush()
        event.payload = {"event_id": event.event_id, **payload}
        return event

    def _alert_deliveries(
        self, s: Session, rule: AlertRule, evaluation: Evaluation, evaluation_id: int, events: Sequence[AlertEvent]
    ) -> builtins.list[Delivery]:
        if not events or self.muted(rule, evaluation.at):
            return []
        payload = {
            "type": "alert",
            "alert": {
                "alert_id": rule.alert_id,
                "name": rule.name,
                "measure": rule.measure,
                "window": rule.window,
                "condition": rule.condition,
                "filters": rule.filters,
            },
            "store_id": rule.store_id,
            "evaluated_at": iso(evaluation.at),
            "window": {"start": iso(evaluation.window_start), "end": iso(evaluation.window_end)},
            "events": [e.payload for e in events],
        }
        out = []
        for index, channel in enumerate(rule.channels or []):
            delivery = self._delivery(
                f"alert:{rule.alert_id}:{iso(evaluation.at)}:{index}",
                "alert",
                channel,
                payload,
                store_id=rule.store_id,
                alert_id=rule.alert_id,
                evaluation_id=evaluation_id,
            )
            s.add(delivery)
            out.append(delivery)
        return out

    def muted(self, rule: AlertRule, at: datetime) -> bool:
        return bool(rule.muted) and (rule.muted_until is None or rule.muted_until > at)

    def incidents(
        self, *, store_id: str | None, alert_id: str | None, status: str | None, page: int, page_size: int
    ) -> tuple[builtins.list[AlertIncident], int]:
        return filtered_page(
            self._session,
            AlertIncident,
            [(AlertIncident.store_id, store_id), (AlertIncident.alert_id, alert_id), (AlertIncident.status, status)],
            [AlertIncident.opened_at.desc(), AlertIncident.incident_id],
            page,
            page_size,
        )

    def evaluations(self, alert_id: str, limit: int = 100) -> builtins.list[AlertEvaluation]:
        query = (
            select(AlertEvaluation)
            .where(AlertEvaluation.alert_id == alert_id)
            .order_by(AlertEvaluation.at.desc())
            .limit(limit)
        )
        with self._session() as s:
            return builtins.list(s.scalars(query))

    def prune_evaluations(self, older_than: datetime) -> int:
        """Drop evaluation rows before `older_than` (incidents, events and deliveries stay)."""
        with self._session() as s, s.begin():
            result = s.execute(delete(AlertEvaluation).where(AlertEvaluation.at < older_than))
            return int(getattr(result, "rowcount", 0) or 0)

    def count_evaluations_before(self, older_than: datetime) -> int:
        """How many rows `prune_evaluations(older_than)` would delete (the retention's dry run)."""
        with self._session() as s:
            query = select(func.count()).select_from(AlertEvaluation).where(AlertEvaluation.at < older_than)
            return int(s.scalar(query) or 0)

    # History past ALERT_HISTORY_RETENTION_DAYS (retention.py): incidents that are over (resolved, or
    # closed with their rule) with their events, and deliveries that are over (delivered or failed).
    # Open incidents, pending or sending deliveries and rules are never touched; nor the deliveries of a
    # scheduled report that could be delivered again (`reports_to_deliver` would queue them anew): one that
    # failed, or that expires after the cutoff (the same run's expiry sweep may change its status, not this).

    @staticmethod
    def _incidents_over_before(older_than: datetime) -> ColumnElement[bool]:
        return and_(AlertIncident.status != "open", AlertIncident.resolved_at < older_than)

    @staticmethod
    def _deliveries_over_before(older_than: datetime) -> ColumnElement[bool]:
        deliverable = or_(
            Report.status == "failed",
            and_(Report.status.in_(("completed", "expired")), Report.expires_at >= older_than),
        )
        report_kept = exists().where(Report.report_id == Delivery.report_id, deliverable)
        return and_(Delivery.status.in_(("delivered", "failed")), Delivery.created_at < older_than, ~report_kept)

    def count_incidents_before(self, older_than: datetime) -> tuple[int, int]:
        """(incidents, events) that `prune_incidents(older_than)` would delete."""
        over = select(AlertIncident.incident_id).where(self._incidents_over_before(older_than))
        with self._session() as s:
            incidents = s.scalar(select(func.count()).select_from(over.subquery())) or 0
            events = s.scalar(select(func.count()).select_from(AlertEvent).where(AlertEvent.incident_id.in_(over)))
            return int(incidents), int(events or 0)

    def prune_incidents(self, older_than: datetime) -> tuple[int, int]:
        """Delete incidents over (resolved or closed) before `older_than`, and their events, in one
        transaction: (incidents, events) deleted. Event ids are never given again (the stream's cursor)."""
        over = select(AlertIncident.incident_id).where(self._incidents_over_before(older_than))
        with self._session() as s, s.begin():
            events = s.execute(
                delete(AlertEvent).where(AlertEvent.incident_id.in_(over)).execution_options(synchronize_session=False)
            )
            incidents = s.execute(
                delete(AlertIncident)
                .where(self._incidents_over_before(older_than))
                .execution_options(synchronize_session=False)
            )
            return int(getattr(incidents, "rowcount", 0) or 0), int(getattr(events, "rowcount", 0) or 0)

    def count_deliveries_before(self, older_than: datetime) -> int:
        """How many rows `prune_deliveries(older_than)` would delete."""
        with self._session() as s:
            query = select(func.count()).select_from(Delivery).where(self._deliveries_over_before(older_than))
            return int(s.scalar(query) or 0)

    def prune_deliveries(self, older_than: datetime) -> int:
        """Delete deliveries that are over (delivered or failed) and were queued before `older_than`."""
        with self._session() as s, s.begin():
            result = s.execute(
                delete(Delivery)
                .where(self._deliveries_over_before(older_than))
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def events_after(self, event_id: int, store_id: str | None, limit: int = 100) -> builtins.list[AlertEvent]:
        query = select(AlertEvent).where(AlertEvent.event_id > event_id).order_by(AlertEvent.event_id).limit(limit)
        if store_id is not None:
            query = query.where(AlertEvent.store_id == store_id)
        with self._session() as s:
            return builtins.list(s.scalars(query))

    def events_with_ids(self, ids: builtins.list[int], store_id: str | None) -> builtins.list[AlertEvent]:
        query = select(AlertEvent).where(AlertEvent.event_id.in_(ids)).order_by(AlertEvent.event_id)
        if store_id is not None:
            query = query.where(AlertEvent.store_id == store_id)
        with self._session() as s:
            return builtins.list(s.scalars(query))

    def last_event_id(self) -> int:
        with self._session() as s:
            return int(s.scalar(select(func.max(AlertEvent.event_id))) or 0)

    # -- schedules ---------------------------------------------------------------------------

    def create_schedule(self, schedule: ReportSchedule) -> ReportSchedule:
        with self._session() as s, s.begin():
            s.add(schedule)
        return schedule

    def get_schedule(self, schedule_id: str) -> ReportSchedule | None:
        with self._session() as s:
            return s.get(ReportSchedule, schedule_id)

    def list_schedules(self, store_id: str | None) -> builtins.list[ReportSchedule]:
        query = select(ReportSchedule).order_by(ReportSchedule.created_at, ReportSchedule.schedule_id)
        if store_id is not None:
            query = query.where(ReportSchedule.store_id == store_id)
        with self._session() as s:
            return builtins.list(s.scalars(query))

    def delete_schedule(self, schedule_id: str) -> bool:
        with self._session() as s, s.begin():
            return changed(s.execute(delete(ReportSchedule).where(ReportSchedule.schedule_id == schedule_id)))

    def claim_due_schedule(self, worker_id: str, lease_seconds: float) -> ReportSchedule | None:
        now = self.now()
        due = and_(ReportSchedule.next_run_at <= now, self._free(ReportSchedule.lease_until, now))
        return self._claim(
            ReportSchedule, ReportSchedule.schedule_id, due, worker_id, lease_seconds, ReportSchedule.next_run_at
        )

    def schedule_ran(
        self, schedule_id: str, worker_id: str, ran_at: datetime, report_id: str | None, next_run_at: datetime
    ) -> bool:
        with self._session() as s, s.begin():
            return changed(
                s.execute(
                    update(ReportSchedule)
                    .where(ReportSchedule.schedule_id == schedule_id, ReportSchedule.worker_id == worker_id)
                    .values(
                        last_run_at=ran_at,
                        last_report_id=report_id,
                        next_run_at=next_run_at,
                        lease_until=None,
                        worker_id=None,
                    )
                    .execution_options(synchronize_session=False)
                )
            )

    def release_schedule(self, schedule_id: str, worker_id: str, retry_at: datetime) -> None:
        """Give the schedule back without advancing it: the same run is tried from `retry_at` on."""
        with self._session() as s, s.begin():
            s.execute(
                update(ReportSchedule)
                .where(ReportSchedule.schedule_id == schedule_id, ReportSchedule.worker_id == worker_id)
                .values(lease_until=retry_at, worker_id=None)
                .execution_options(synchronize_session=False)
            )

    def queue_schedule_failure(self, schedule: ReportSchedule, at: datetime, error: str) -> builtins.list[Delivery]:
        """A run that could not even be requested: its recipients are told (once per run)."""
        payload: dict[str, Any] = {
            "type": "report_failed",
            "schedule_id": schedule.schedule_id,
            "store_id": schedule.store_id,
            "report": {
                "report_id": None,
                "report_name": f"{schedule.name} ({iso(at)})",
                "report_type": schedule.report_type,
                "format": schedule.format,
                "status": "failed",
                "period": {},
                "error": error,
                "download_url": None,
                "expires_at": None,
            },
            "kpis": [],
        }
        rows = [
            self._delivery(
                f"schedule:{schedule.schedule_id}:{iso(at)}:{index}",
                "report_failed",
                channel,
                payload,
                store_id=schedule.store_id,
                schedule_id=schedule.schedule_id,
            )
            for index, channel in enumerate(schedule.recipients or [])
        ]
        return self._add_once(rows)

    def reports_to_deliver(self, limit: int = 50) -> builtins.list[Report]:
        """Finished runs of schedules (completed or failed) with no delivery queued yet."""
        queued = exists().where(Delivery.report_id == Report.report_id)
        query = (
            select(Report)
            .where(Report.schedule_id.is_not(None), Report.status.in_(("completed", "failed")), ~queued)
            .order_by(Report.created_at)
            .limit(limit)
        )
        with self._session() as s:
            return builtins.list(s.scalars(query))

    def queue_report_deliveries(
        self, report: Report, schedule: ReportSchedule | None, payload: dict[str, Any]
    ) -> builtins.list[Delivery]:
        """One delivery per recipient of the run's schedule; [] when queued before (by anyone)."""
        kind = "report" if report.status == "completed" else "report_failed"
        recipients = schedule.recipients if schedule is not None else []  # a deleted schedule tells nobody
        rows = [
            self._delivery(
                f"report:{report.report_id}:{index}",
                kind,
                channel,
                payload,
                store_id=report.store_id,
                schedule_id=report.schedule_id,
                report_id=report.report_id,
            )
            for index, channel in enumerate(recipients or [])
        ]
        return self._add_once(rows)

    # -- deliveries --------------------------------------------------------------------------

    def _delivery(
        self, dedup_key: str, kind: str, channel: dict[str, Any], payload: dict[str, Any], **links: Any
    ) -> Delivery:
        now = self.now()
        options = {k: v for k, v in channel.items() if k not in ("type", "target")}
        return Delivery(
            delivery_id=new_id(),
            dedup_key=dedup_key,
            kind=kind,
            channel=channel["type"],
            target=channel["target"],
            options=options,
            payload=payload,
            status="pending",
            attempts=0,
            attempts_before_retry=0,
            history=[],
            created_at=now,
            next_attempt_at=now,
            **links,
        )

    def count_pending_deliveries(self) -> int:
        """Deliveries waiting to be sent or retried (GET /metrics: analytics_queue_depth{queue="deliveries"})."""
        with self._session() as s:
            query = select(func.count()).select_from(Delivery).where(Delivery.status.in_(("pending", "sending")))
            return int(s.scalar(query) or 0)

    def claim_due_delivery(self, worker_id: str, lease_seconds: float) -> Delivery | None:
        """A pending delivery whose next attempt is due, or one whose sender died (lease over)."""
        now = self.now()
        due = or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.lease_until <= now),
        )
        return self._claim(
            Delivery,
            Delivery.delivery_id,
            due,
            worker_id,
            lease_seconds,
            Delivery.created_at,
            extra={"status": "sending", "attempts": Delivery.attempts + 1},
        )

    def delivery_done(self, delivery_id: str, worker_id: str) -> bool:
        """Delivered; the error of an earlier failed attempt stays (what happened on the way)."""
        now = self.now()
        return self._finish(
            delivery_id,
            worker_id,
            {"outcome": "delivered", "error": None},
            status="delivered",
            delivered_at=now,
            next_attempt_at=None,
        )

    def delivery_failed(self, delivery_id: str, worker_id: str, error: str, retry_at: datetime | None) -> bool:
        """Back to pending for `retry_at`, or failed for good (None): the error kept either way."""
        status = "pending" if retry_at is not None else "failed"
        error = error[:MAX_ERROR_CHARS]
        return self._finish(
            delivery_id,
            worker_id,
            {"outcome": "retry" if retry_at else "failed", "error": error},
            status=status,
            error=error,
            next_attempt_at=retry_at,
        )

    def retry_delivery(self, delivery_id: str) -> Delivery | None:
        """failed -> pending now (an operator's retry, with a fresh attempt limit); None unless it had failed."""
        with self._session() as s, s.begin():
            return s.scalars(
                update(Delivery)
                .where(Delivery.delivery_id == delivery_id, Delivery.status == "failed")
                .values(status="pending", next_attempt_at=self.now(), attempts_before_retry=Delivery.attempts)
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            ).one_or_none()

    def _finish(self, delivery_id: str, worker_id: str, attempt: dict[str, Any], **values: Any) -> bool:
        """End the owner's attempt with `values`, and add it to the delivery's history."""
        with self._session() as s, s.begin():
            row = s.scalars(
                update(Delivery)
                .where(
                    Delivery.delivery_id == delivery_id, Delivery.worker_id == worker_id, Delivery.status == "sending"
                )
                .values(lease_until=None, **values)
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if row is None:
                return False
            entry = {"attempt": row.attempts, "at": iso(self.now()), **attempt}
            s.execute(
                update(Delivery)
                .where(Delivery.delivery_id == delivery_id)
                .values(history=[*(row.history or []), entry])
                .execution_options(synchronize_session=False)
            )
            return True

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        with self._session() as s:
            return s.get(Delivery, delivery_id)

    def deliveries(
        self,
        *,
        store_id: str | None,
        alert_id: str | None,
        schedule_id: str | None,
        report_id: str | None,
        status: str | None,
        page: int,
        page_size: int,
    ) -> tuple[builtins.list[Delivery], int]:
        return filtered_page(
            self._session,
            Delivery,
            [
                (Delivery.store_id, store_id),
                (Delivery.alert_id, alert_id),
                (Delivery.schedule_id, schedule_id),
                (Delivery.report_id, report_id),
                (Delivery.status, status),
            ],
            [Delivery.created_at.desc(), Delivery.delivery_id],
            page,
            page_size,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _add_once(self, rows: builtins.list[Delivery]) -> builtins.list[Delivery]:
        """Insert deliveries in one transaction; [] when their dedup keys were queued before (by anyone)."""
        try:
            with self._session() as s, s.begin():
                s.add_all(rows)
        except IntegrityError:
            return []
        return rows

    @staticmethod
    def _free(lease: Any, now: datetime) -> ColumnElement[bool]:
        return or_(lease.is_(None), lease <= now)

    def _claim(
        self,
        model: type[T],
        key: Any,
        due: ColumnElement[bool],
        worker_id: str,
        lease_seconds: float,
        order: Any,
        extra: dict[str, Any] | None = None,
    ) -> T | None:
        """The first due row that this worker manages to lease (another may take a row between the
        read and the UPDATE: the UPDATE repeats the condition, so then the next one is tried)."""
        now = self.now()
        with self._session() as s:
            candidates = builtins.list(s.scalars(select(key).where(due).order_by(order).limit(10)))
        for candidate in candidates:
            with self._session() as s, s.begin():
                row = s.scalars(
                    update(model)
                    .where(key == candidate, due)
                    .values(worker_id=worker_id, lease_until=now + timedelta(seconds=lease_seconds), **(extra or {}))
                    .returning(model)
                    .execution_options(synchronize_session=False)
                ).one_or_none()
            if row is not None:
                return row
        return None
