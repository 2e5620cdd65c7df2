"""Periodic tasks that exactly one worker runs per period (migration 0005: `periodic_tasks`).

One row per task (e.g. `retention`, run daily) in the reports database: when its
`next_run_at` has come, workers race for it with one conditional UPDATE that sets a lease
(the way report jobs and alert rules are taken, reports/table.py), so exactly one wins; it
runs the task and `finish` sets the next run time. A worker that dies mid-run lets the lease
lapse and another one runs the task again (a task must therefore be safe to repeat). The row
is created the first time a worker looks for it, due at once. Sync: call through
`asyncio.to_thread`; the clock is injectable (tests move time by hand).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, or_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .reports.table import Base, Repo, UTCDateTime


class PeriodicTask(Base):
    """A task run once per period by one worker; columns match migration 0005."""

    __tablename__ = "periodic_tasks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PeriodicTasks(Repo):
    def get(self, name: str) -> PeriodicTask | None:
        with self._session() as s:
            return s.get(PeriodicTask, name)

    def claim(self, name: str, worker_id: str, lease_seconds: float) -> bool:
        """Take the task's due run (creating its row, due now, on first sight): True for exactly
        one of the workers that try while it is due and nobody's lease runs."""
        now = self.now()
        if self.get(name) is None:
            try:
                with self._session() as s, s.begin():
                    s.add(PeriodicTask(name=name, next_run_at=now))
            except IntegrityError:
                pass  # another worker created it meanwhile
        with self._session() as s, s.begin():
            result = s.execute(
                update(PeriodicTask)
                .where(
                    PeriodicTask.name == name,
                    PeriodicTask.next_run_at <= now,
                    or_(PeriodicTask.lease_until.is_(None), PeriodicTask.lease_until <= now),
                )
                .values(worker_id=worker_id, lease_until=now + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    def finish(self, name: str, worker_id: str, next_run_at: datetime, outcome: dict[str, Any]) -> bool:
        """The owner's run is over: the next one is due at `next_run_at`. False when the run was
        not this worker's any more (its lease lapsed and another worker took it)."""
        with self._session() as s, s.begin():
            result = s.execute(
                update(PeriodicTask)
                .where(PeriodicTask.name == name, PeriodicTask.worker_id == worker_id)
                .values(
                    next_run_at=next_run_at,
                    last_run_at=self.now(),
                    last_outcome=outcome,
                    worker_id=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))
