"""Job leases and queue indexes: attempts, worker_id, lease_until; (status, created_at), (status, expires_at).

A worker owns a job while its lease runs; an expired lease lets another worker take
the job over (the first one died). The indexes serve "what can be claimed, oldest
first" and "which completed reports are past their expiry".

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows get attempts = 0 from the server default.
    op.add_column("reports", sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("reports", sa.Column("worker_id", sa.String(128), nullable=True))
    op.add_column("reports", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_reports_status_created_at", "reports", ["status", "created_at"])
    op.create_index("ix_reports_status_expires_at", "reports", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_reports_status_expires_at", table_name="reports")
    op.drop_index("ix_reports_status_created_at", table_name="reports")
    with op.batch_alter_table("reports") as batch:  # SQLite: table copy where DROP COLUMN falls short
        batch.drop_column("lease_until")
        batch.drop_column("worker_id")
        batch.drop_column("attempts")
