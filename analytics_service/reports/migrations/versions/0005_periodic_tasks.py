"""Periodic tasks: one row per task that exactly one worker runs per period (retention, daily).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "periodic_tasks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("next_run_at", ts, nullable=False),
        sa.Column("last_run_at", ts, nullable=True),
        sa.Column("last_outcome", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("worker_id", sa.String(128), nullable=True),
        sa.Column("lease_until", ts, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_periodic_tasks"),
    )


def downgrade() -> None:
    op.drop_table("periodic_tasks")
