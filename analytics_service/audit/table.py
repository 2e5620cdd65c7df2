"""The audit trail's table (migration 0004) and its reads, in the reports database.

Append-only: rows are inserted (in batches, by trail.AuditTrail) and read; the only delete
is the retention of AUDIT_RETENTION_DAYS (`prune`). On PostgreSQL an operator can enforce
that by granting the service's role INSERT, SELECT and DELETE only (docs/operations.md).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String, delete, func, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..reports.table import Base, Repo, UTCDateTime, filtered_page

Json = JSON().with_variant(JSONB(), "postgresql")


class AuditRow(Base):
    """One data access or write: when, who (key id, never the key), which store, route, result."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_time", "time"),
        Index("ix_audit_log_key_id_time", "key_id", "time"),
        Index("ix_audit_log_store_id_time", "store_id", "time"),
        {"sqlite_autoincrement": True},
    )

    audit_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(128))
    key_name: Mapped[str | None] = mapped_column(String(200))
    store_id: Mapped[str | None] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(300))
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    status: Mapped[int] = mapped_column(Integer)
    result_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[float] = mapped_column(Float)


class AuditRepo(Repo):
    """Appends, pages and prunes audit rows (sync, like every Repo)."""

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        rows = builtins.list(rows)
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(AuditRow), rows)
        return len(rows)

    def page(
        self,
        *,
        key_id: str | None = None,
        store_id: str | None = None,
        route: str | None = None,
        status: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 100,
    ) -> tuple[builtins.list[AuditRow], int]:
        """Newest first; `since` inclusive, `until` exclusive."""
        window = [
            *([AuditRow.time >= since] if since is not None else []),
            *([AuditRow.time < until] if until is not None else []),
        ]
        return filtered_page(
            self._session,
            AuditRow,
            [
                (AuditRow.key_id, key_id),
                (AuditRow.store_id, store_id),
                (AuditRow.route, route),
                (AuditRow.status, status),
            ],
            [AuditRow.time.desc(), AuditRow.audit_id.desc()],
            page,
            page_size,
            where=window,
        )

    def prune(self, older_than: datetime) -> int:
        """Delete the rows before `older_than` (retention); how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(AuditRow).where(AuditRow.time < older_than)).rowcount or 0)

    def count_before(self, older_than: datetime) -> int:
        """How many rows `prune(older_than)` would delete (the retention's dry run)."""
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.time < older_than)) or 0)
