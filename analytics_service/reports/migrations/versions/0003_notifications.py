"""Notifications: alert rules, evaluations, incidents, events, report schedules, deliveries;
reports.schedule_id and reports.summary.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCIDENT_STATUSES = ("open", "resolved", "closed")
EVENT_KINDS = ("fired", "resolved")
OUTCOMES = ("ok", "firing", "no_data", "error")
DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed")
DELIVERY_KINDS = ("alert", "report", "report_failed")
CHANNEL_TYPES = ("email", "webhook")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    key = sa.String(128)
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("schedule_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("summary", json, nullable=True))
    op.create_index("ix_reports_schedule_id_created_at", "reports", ["schedule_id", "created_at"])

    op.create_table(
        "alert_rules",
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("template", sa.String(64), nullable=True),
        sa.Column("measure", sa.String(64), nullable=False),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("condition", json, nullable=False),
        sa.Column("filters", json, nullable=False),
        sa.Column("channels", json, nullable=False),
        sa.Column("evaluate_every_seconds", sa.Integer(), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("muted_until", ts, nullable=True),
        sa.Column("api_key_id", key, nullable=True),
        sa.Column("store_id", key, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("next_evaluation_at", ts, nullable=False),
        sa.Column("last_evaluated_at", ts, nullable=True),
        sa.Column("worker_id", key, nullable=True),
        sa.Column("lease_until", ts, nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alert_rules"),
    )
    op.create_index("ix_alert_rules_next_evaluation_at", "alert_rules", ["next_evaluation_at"])
    op.create_index("ix_alert_rules_store_id", "alert_rules", ["store_id"])

    op.create_table(
        "alert_evaluations",
        sa.Column("evaluation_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("evaluated_at", ts, nullable=False),
        sa.Column("worker_id", key, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("details", json, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("evaluation_id", name="pk_alert_evaluations"),
        sa.UniqueConstraint("alert_id", "at", name="alert_evaluations_once"),
        sa.CheckConstraint(_in("outcome", OUTCOMES), name="ck_alert_evaluations_outcome"),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "alert_incidents",
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("alert_name", sa.String(200), nullable=False),
        sa.Column("measure", sa.String(64), nullable=False),
        sa.Column("store_id", key, nullable=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("open_key", sa.String(240), nullable=True),
        sa.Column("opened_at", ts, nullable=False),
        sa.Column("resolved_at", ts, nullable=True),
        sa.Column("value_at_open", sa.Float(), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_evaluated_at", ts, nullable=False),
        sa.Column("details", json, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name="pk_alert_incidents"),
        sa.UniqueConstraint("open_key", name="alert_incidents_one_open"),
        sa.CheckConstraint(_in("status", INCIDENT_STATUSES), name="ck_alert_incidents_status"),
    )
    op.create_index("ix_alert_incidents_alert_id_opened_at", "alert_incidents", ["alert_id", "opened_at"])
    op.create_index("ix_alert_incidents_store_id_opened_at", "alert_incidents", ["store_id", "opened_at"])

    op.create_table(
        "alert_events",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("store_id", key, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("payload", json, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_alert_events"),
        sa.CheckConstraint(_in("kind", EVENT_KINDS), name="ck_alert_events_kind"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_events_store_id_event_id", "alert_events", ["store_id", "event_id"])

    op.create_table(
        "report_schedules",
        sa.Column("schedule_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("report_type", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("parameters", json, nullable=False),
        sa.Column("cron", sa.String(120), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("recipients", json, nullable=False),
        sa.Column("api_key_id", key, nullable=True),
        sa.Column("store_id", key, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("next_run_at", ts, nullable=False),
        sa.Column("last_run_at", ts, nullable=True),
        sa.Column("last_report_id", sa.String(32), nullable=True),
        sa.Column("worker_id", key, nullable=True),
        sa.Column("lease_until", ts, nullable=True),
        sa.PrimaryKeyConstraint("schedule_id", name="pk_report_schedules"),
    )
    op.create_index("ix_report_schedules_next_run_at", "report_schedules", ["next_run_at"])
    op.create_index("ix_report_schedules_store_id", "report_schedules", ["store_id"])

    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=True),
        sa.Column("evaluation_id", sa.Integer(), nullable=True),
        sa.Column("schedule_id", sa.String(32), nullable=True),
        sa.Column("report_id", sa.String(32), nullable=True),
        sa.Column("store_id", key, nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("options", json, nullable=False),
        sa.Column("payload", json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempts_before_retry", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("history", json, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("next_attempt_at", ts, nullable=True),
        sa.Column("worker_id", key, nullable=True),
        sa.Column("lease_until", ts, nullable=True),
        sa.Column("delivered_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_deliveries"),
        sa.UniqueConstraint("dedup_key", name="deliveries_once"),
        sa.CheckConstraint(_in("status", DELIVERY_STATUSES), name="ck_deliveries_status"),
        sa.CheckConstraint(_in("kind", DELIVERY_KINDS), name="ck_deliveries_kind"),
        sa.CheckConstraint(_in("channel", CHANNEL_TYPES), name="ck_deliveries_channel"),
    )
    op.create_index("ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_alert_id_created_at", "deliveries", ["alert_id", "created_at"])
    op.create_index("ix_deliveries_schedule_id_created_at", "deliveries", ["schedule_id", "created_at"])


def downgrade() -> None:
    for table in ("deliveries", "report_schedules", "alert_events", "alert_incidents", "alert_evaluations"):
        op.drop_table(table)
    op.drop_index("ix_alert_rules_store_id", table_name="alert_rules")
    op.drop_index("ix_alert_rules_next_evaluation_at", table_name="alert_rules")
    op.drop_table("alert_rules")
    op.drop_index("ix_reports_schedule_id_created_at", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("summary")
        batch.drop_column("schedule_id")
