"""The notification tables (migration 0003): alert rules, their evaluations, incidents and
incident events, report schedules, and deliveries; one row per thing, in the reports database.

Work is shared between workers the way report jobs are (reports/table.py): a rule, a
schedule or a delivery is taken with one conditional UPDATE that sets a lease, so of two
workers racing for it exactly one wins, and a worker that dies lets its lease lapse. On top
of the lease, `alert_evaluations` has one row per (rule, evaluation time) under a unique
constraint, written in the same transaction as the incidents, events and deliveries that
evaluation causes: an evaluation is applied once or not at all, whatever the workers do.
Deliveries carry a unique `dedup_key` (the evaluation or report and the channel), so a
notification is queued once however often its cause is looked at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..reports.table import Base, UTCDateTime

Json = JSON().with_variant(JSONB(), "postgresql")

INCIDENT_STATUSES = ("open", "resolved", "closed")  # closed: its rule was deleted while it was open
EVENT_KINDS = ("fired", "resolved")
DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed")
DELIVERY_KINDS = ("alert", "report", "report_failed")
CHANNEL_TYPES = ("email", "webhook")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values)


class AlertRule(Base):
    """An alert rule: a measure over a window, a condition, where to tell, how often to look."""

    __tablename__ = "alert_rules"
    __table_args__ = (Index(None, "next_evaluation_at"), Index(None, "store_id"))

    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str | None] = mapped_column(String(64))
    measure: Mapped[str] = mapped_column(String(64))
    window: Mapped[str] = mapped_column(String(16))
    condition: Mapped[dict[str, Any]] = mapped_column(Json)
    filters: Mapped[dict[str, Any]] = mapped_column(Json)
    channels: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    evaluate_every_seconds: Mapped[int] = mapped_column(Integer)
    cooldown_seconds: Mapped[int] = mapped_column(Integer)
    tz: Mapped[str] = mapped_column(String(64))
    muted: Mapped[bool] = mapped_column(Boolean)
    muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    api_key_id: Mapped[str | None] = mapped_column(String(128))
    store_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The next evaluation time (a multiple of evaluate_every since the epoch): the end of its window.
    next_evaluation_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertEvaluation(Base):
    """One evaluation of a rule at one time; unique per (rule, time): see the module docstring."""

    __tablename__ = "alert_evaluations"
    __table_args__ = (
        UniqueConstraint("alert_id", "at", name="alert_evaluations_once"),
        CheckConstraint(f"outcome IN ({_in(('ok', 'firing', 'no_data', 'error'))})", name="outcome"),
        {"sqlite_autoincrement": True},  # ids are never reused, also after old rows are pruned
    )

    evaluation_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # the evaluation time: the window's end
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime())  # when it ran
    worker_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)  # the whole-store value (per-product rules: None)
    details: Mapped[dict[str, Any]] = mapped_column(Json)
    error: Mapped[str | None] = mapped_column(Text)


class AlertIncident(Base):
    """A rule firing for one subject (the store, or a product) from the evaluation that found
    the condition true to the one that found it false. `open_key` is set while open and unique:
    one open incident per rule and subject."""

    __tablename__ = "alert_incidents"
    __table_args__ = (
        UniqueConstraint("open_key", name="alert_incidents_one_open"),
        CheckConstraint(f"status IN ({_in(INCIDENT_STATUSES)})", name="status"),
        Index(None, "alert_id", "opened_at"),
        Index(None, "store_id", "opened_at"),
    )

    incident_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(32))
    alert_name: Mapped[str] = mapped_column(String(200))
    measure: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(200))  # "" for the whole store, else a product id
    status: Mapped[str] = mapped_column(String(16))
    open_key: Mapped[str | None] = mapped_column(String(240))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    value_at_open: Mapped[float | None] = mapped_column(Float)
    last_value: Mapped[float | None] = mapped_column(Float)
    last_evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    details: Mapped[dict[str, Any]] = mapped_column(Json)  # what the condition compared, at opening


class AlertEvent(Base):
    """An incident opening or resolving: what the stream sends and deliveries tell."""

    __tablename__ = "alert_events"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(EVENT_KINDS)})", name="kind"),
        Index(None, "store_id", "event_id"),
        {"sqlite_autoincrement": True},  # the stream's cursor: an id is never given twice
    )

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[str] = mapped_column(String(32))
    evaluation_id: Mapped[int] = mapped_column(Integer)
    store_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # the evaluation time
    payload: Mapped[dict[str, Any]] = mapped_column(Json)


class ReportSchedule(Base):
    """A report generated on a cron schedule and sent to its recipients."""

    __tablename__ = "report_schedules"
    __table_args__ = (Index(None, "next_run_at"), Index(None, "store_id"))

    schedule_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    report_type: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(8))
    parameters: Mapped[dict[str, Any]] = mapped_column(Json)  # with `range` instead of start and end
    cron: Mapped[str] = mapped_column(String(120))
    tz: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    api_key_id: Mapped[str | None] = mapped_column(String(128))
    store_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_report_id: Mapped[str | None] = mapped_column(String(32))
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Delivery(Base):
    """One notification to one channel, with every attempt's outcome."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("dedup_key", name="deliveries_once"),
        CheckConstraint(f"status IN ({_in(DELIVERY_STATUSES)})", name="status"),
        CheckConstraint(f"kind IN ({_in(DELIVERY_KINDS)})", name="kind"),
        CheckConstraint(f"channel IN ({_in(CHANNEL_TYPES)})", name="channel"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "alert_id", "created_at"),
        Index(None, "schedule_id", "created_at"),
    )

    delivery_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    alert_id: Mapped[str | None] = mapped_column(String(32))
    evaluation_id: Mapped[int | None] = mapped_column(Integer)
    schedule_id: Mapped[str | None] = mapped_column(String(32))
    report_id: Mapped[str | None] = mapped_column(String(32))
    store_id: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2000))
    options: Mapped[dict[str, Any]] = mapped_column(Json)  # e.g. {"format": "slack"}
    payload: Mapped[dict[str, Any]] = mapped_column(Json)  # what is sent (the channel renders it)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    # `attempts` when an operator last asked for a retry: the attempt limit counts from there.
    attempts_before_retry: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[dict[str, Any]]] = mapped_column(Json)  # every attempt: {attempt, at, outcome, error}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
