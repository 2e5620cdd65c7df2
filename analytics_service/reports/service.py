"""Between the report routes and the table/queue: who may see what, links, files; start-up wiring.

`start_reports` (called by the app's lifespan) opens the reports table (migrating it),
picks the queue (Redis when REDIS_URL is set, else in-process) and, without Redis, runs
a `Worker` inside the API process. Both modes run the periodic expiry sweep.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.exc import OperationalError

from ..analytics.params import CommonParams
from ..auth import Principal, resolve_store
from ..config import Settings
from ..errors import ApiError
from . import signing
from .parameters import report_params, resolved_parameters
from .periods import last_day
from .queue import JobQueue, MemoryJobQueue, RedisJobQueue
from .table import ACTIVE_STATUSES, Report, ReportsRepo, make_repo, migrate
from .worker import ReportOptions, Worker, sweep_expired, sweep_periodically

log = logging.getLogger(__name__)

T = TypeVar("T")
_REPORT_ID = re.compile(r"^[0-9a-f]{32}$")


def check_report_id(report_id: str) -> str:
    """A report id is 32 lower-case hex digits (uuid4); anything else never reaches the table."""
    if not _REPORT_ID.match(report_id):
        raise ApiError(
            422,
            "report_id: must be 32 hexadecimal characters",
            details=[{"field": "path.report_id", "message": "must be 32 hexadecimal characters"}],
        )
    return report_id


def not_found() -> ApiError:
    return ApiError(404, "report not found")


def default_report_name(report_type: str, params: CommonParams) -> str:
    """`<type> <first day>..<last day>` of the period (its end is exclusive)."""
    return f"{report_type} {params.period.start.date().isoformat()}..{last_day(params.period).isoformat()}"


def download_filename(report: Report) -> str:
    """A file name safe in any Content-Disposition and file system: the report's name, tamed."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", report.report_name)
    stem = re.sub(r"\.{2,}", "_", stem).strip("._-")[:120] or report.report_id
    return f"{stem}.{report.format}"


class ReportsService:
    def __init__(self, repo: ReportsRepo, queue: JobQueue, settings: Settings, options: ReportOptions) -> None:
        self.repo = repo
        self.queue = queue
        self.settings = settings
        self.options = options
        self.reports_dir = Path(settings.reports_dir)

    # -- requests ----------------------------------------------------------------------------

    async def generate(
        self,
        principal: Principal,
        report_type: str,
        fmt: str,
        parameters: dict[str, Any],
        report_name: str | None,
        *,
        schedule_id: str | None = None,
        now: datetime | None = None,
    ) -> Report:
        """Validate the parameters, write the pending row, enqueue the job (a schedule's run: linked to it)."""
        # 422 naming parameters.<name>; the stored parameters have the period resolved, so a
        # retry hours later (or a "yesterday" report run after midnight) builds the same report.
        params, options = report_params(
            parameters, principal, report_type=report_type, default_tz=self.settings.default_timezone, now=now
        )
        report = await self._db(
            self.repo.create,
            report_type=report_type,
            format=fmt,
            parameters=resolved_parameters(params, options),
            report_name=report_name or default_report_name(report_type, params),
            api_key_id=principal.key_id,
            store_id=params.store_id,
            expires_in=timedelta(hours=self.settings.report_ttl_hours),
            schedule_id=schedule_id,
        )
        try:
            await self.queue.enqueue(report.report_id)
        except Exception:
            # The row is the truth: the reaper of any worker queues pending rows nobody holds.
            log.warning(
                "report %s: could not enqueue; a worker's reaper will pick it up", report.report_id, exc_info=True
            )
        log.info("report %s requested: %s %s by key %s", report.report_id, report_type, fmt, principal.key_id)
        return report

    async def visible(self, principal: Principal, report_id: str) -> Report:
        """The row, if this key may see it: a store-bound key sees its store's rows only (else 404)."""
        report = await self._db(self.repo.get, check_report_id(report_id))
        if report is None or (principal.store_id is not None and report.store_id != principal.store_id):
            raise not_found()
        return report

    async def history(
        self,
        principal: Principal,
        *,
        status: str | None,
        report_type: str | None,
        store_id: str | None,
        page: int,
        page_size: int,
    ) -> tuple[list[Report], int]:
        store = resolve_store(principal, store_id)
        return await self._db(
            self.repo.list, status=status, report_type=report_type, store_id=store, page=page, page_size=page_size
        )

    async def cancel(self, principal: Principal, report_id: str) -> Report:
        report = await self.visible(principal, report_id)
        if report.status not in ACTIVE_STATUSES:
            raise ApiError(
                409,
                f"report is {report.status}; only pending or processing reports can be cancelled",
                code="not_cancellable",
            )
        after = await self._db(self.repo.cancel, report.report_id)
        if after is None or after.status != "cancelled":
            status = after.status if after else "gone"
            raise ApiError(
                409, f"report is {status}; only pending or processing reports can be cancelled", code="not_cancellable"
            )
        log.info("report %s cancelled by key %s", report.report_id, principal.key_id)
        return after

    # -- files and links ---------------------------------------------------------------------

    def download_token(self, report: Report, now: float | None = None) -> str | None:
        """A signed token for a completed, unexpired report; None otherwise."""
        if report.status != "completed" or self._past_expiry(report):
            return None
        expires = signing.link_expiry(report.expires_at, now=now, lifetime=self.options.link_seconds)
        return signing.make_token(self.settings.signing_secret.get_secret_value(), report.report_id, expires)

    def file_of(self, report: Report) -> Path:
        """The file of a downloadable report: 409 while not completed, 410 once expired or gone."""
        if report.status == "expired" or (report.status == "completed" and self._past_expiry(report)):
            raise ApiError(410, "report has expired; its file was deleted", code="report_expired")
        if report.status != "completed":
            raise ApiError(
                409,
                f"report is {report.status}; the file is available once it is completed",
                code="report_not_ready",
                details=[{"status": report.status}],
            )
        name = report.file_name or ""
        path = self.reports_dir / name
        if not name or Path(name).name != name or not path.is_file():
            raise ApiError(410, "the report file is no longer available", code="report_file_missing")
        return path

    async def report_for_token(self, token: str) -> Report:
        """The report a signed link names: 403 when altered, 410 when expired."""
        try:
            claims = signing.verify_token(self.settings.signing_secret.get_secret_value(), token)
        except signing.ExpiredLink as exc:
            raise ApiError(410, f"{exc}; ask for the report's status to get a new link", code="link_expired") from exc
        except signing.InvalidLink as exc:
            raise ApiError(403, f"invalid download link: {exc}", code="invalid_link") from exc
        report = await self._db(self.repo.get, claims.report_id)
        if report is None:
            raise not_found()
        return report

    async def sweep(self) -> int:
        return await sweep_expired(self.repo, self.reports_dir)

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _past_expiry(report: Report) -> bool:
        return report.expires_at is not None and report.expires_at <= datetime.now(UTC)

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await database_call(fn, *args, **kwargs)


async def database_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A repository call in a thread; an unreachable database is a 503 with Retry-After (the
    reports table and the notification tables share the database)."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except OperationalError as exc:
        log.warning("reports database unavailable: %s", exc)
        raise ApiError(
            503, "the reports database is unavailable", code="database_unavailable", headers={"Retry-After": "5"}
        ) from exc


# -- wiring ------------------------------------------------------------------------------------


@dataclass
class ReportsRuntime:
    """What the app's lifespan starts for reports, and stops at shutdown."""

    service: ReportsService
    worker: Worker | None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop the sweep and the in-process worker (its current job finishes or is released)."""
        self.stop_event.set()
        if self.tasks:
            grace = self.service.options.shutdown_grace_seconds + 5
            _, pending = await asyncio.wait(self.tasks, timeout=grace)
            for task in pending:
                task.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await task
        self.service.repo.engine.dispose()


async def start_reports(state: Any, settings: Settings) -> ReportsRuntime:
    """Reports table (migrated), queue, the in-process worker (without REDIS_URL), the expiry sweep.

    `state` is the app's state: `.es`, `.redis` (None without REDIS_URL) and `.redis_breaker` are used.
    """
    options = ReportOptions()
    repo = make_repo(settings)
    try:
        await asyncio.to_thread(migrate, repo.engine)
    except OperationalError:
        log.exception("could not migrate the reports table; report routes answer 503 until the database answers")
    Path(settings.reports_dir).mkdir(parents=True, exist_ok=True)
    queue: JobQueue = (
        RedisJobQueue(state.redis, settings.index_prefix, getattr(state, "redis_breaker", None))
        if state.redis is not None
        else MemoryJobQueue()
    )
    service = ReportsService(repo, queue, settings, options)
    worker = None
    if state.redis is None:
        worker = Worker(settings, state.es, repo, queue, settings.reports_dir, options=options, cache=state.cache)
    runtime = ReportsRuntime(service=service, worker=worker)
    if worker is not None:
        runtime.tasks.append(asyncio.create_task(worker.run_forever(runtime.stop_event), name="report-worker"))
    runtime.tasks.append(
        asyncio.create_task(
            sweep_periodically(repo, Path(settings.reports_dir), options.sweep_seconds, runtime.stop_event),
            name="report-expiry-sweep",
        )
    )
    return runtime


def reports_service(request: Request) -> ReportsService:
    """The reports service the app started (`start_reports`), for the report routes."""
    return request.app.state.reports.service
