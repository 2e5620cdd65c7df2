"""The audit trail of this process: rows buffered as requests end, written in batches.

request_context.py hands every audited request to `AuditTrail.record` (no I/O on the
request's path); a background task inserts what has accumulated every FLUSH_SECONDS, and
`flush()` runs at shutdown and before every audit read, so an admin reading the trail sees
this process's requests up to the read. A database that does not answer keeps the rows
buffered (up to MAX_BUFFERED, logged) and retried on the next flush; a process that is
killed loses at most the last FLUSH_SECONDS of rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import suppress
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from .table import AuditRepo

log = logging.getLogger(__name__)


class AuditTrail:
    FLUSH_SECONDS = 1.0
    MAX_BUFFERED = 100_000

    def __init__(self, repo: AuditRepo) -> None:
        self.repo = repo
        self._rows: deque[dict[str, Any]] = deque()
        self._lock = asyncio.Lock()
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def record(self, row: dict[str, Any]) -> None:
        if len(self._rows) >= self.MAX_BUFFERED:
            self._rows.popleft()
            self._dropped += 1
            if self._dropped in (1, 1000) or self._dropped % 100_000 == 0:
                log.error("audit buffer full (the database does not answer): %d oldest rows dropped", self._dropped)
        self._rows.append(row)

    async def flush(self) -> int:
        """Insert every buffered row; how many. Rows stay buffered when the database does not
        answer; a batch the database refuses is inserted row by row, and a row it still refuses
        (which no retry would change) is logged and dropped, so one row never stops the trail."""
        async with self._lock:
            batch, self._rows = self._rows, deque()  # rows recorded meanwhile go to the new buffer
            if not batch:
                return 0
            try:
                await asyncio.to_thread(self.repo.append, batch)
            except (DataError, IntegrityError):
                return await asyncio.to_thread(self._one_by_one, list(batch))
            except SQLAlchemyError as exc:
                log.warning("audit rows not written yet (%s); retried in %.0f s", exc, self.FLUSH_SECONDS)
                batch.extend(self._rows)
                self._rows = batch
                return 0
            return len(batch)

    def _one_by_one(self, rows: list[dict[str, Any]]) -> int:
        written = 0
        for row in rows:
            try:
                written += self.repo.append([row])
            except (DataError, IntegrityError) as exc:
                log.error("audit row of request %s refused by the database, dropped: %s", row.get("request_id"), exc)
        return written

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-flush")

    async def _run(self) -> None:
        while not self._stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:  # a background task: say it here, or nobody would
                log.exception("audit flush failed")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.flush()
