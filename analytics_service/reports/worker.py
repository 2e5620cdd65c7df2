"""The report worker: take a job from the queue, claim it in the table, build, render, complete.

One job = `claim` (the table decides who runs it; an id delivered twice runs once at a
time) -> `build_report` (the analytics query objects) -> `render` (the file, written to a
temporary name and renamed) -> `complete`. While the job runs a heartbeat extends the
lease every lease/3 seconds; when the heartbeat finds the job is no longer this worker's
(cancelled, or taken over after the lease lapsed) the job is stopped and its file dropped.
A failed attempt (failures.py) is either transient (Elasticsearch or the database
unreachable, overloaded, timing out): the row goes back to pending with its error kept
and a not-before time (exponential backoff, REPORT_RETRY_*), up to `max_attempts`; or
permanent (bad parameters, a refused query, a bug): the row fails at once. A job waiting
for its retry is held by nobody (no lease that could lapse): the reaper of whichever
worker comes first queues it once its time has come, and the next claim is a new
attempt. A worker that dies leaves a processing row whose lease runs out; the reaper
queues such jobs again too, and the next claim counts one more attempt.

`python -m analytics_service worker` runs `serve()` with the Redis queue; without
REDIS_URL the API process runs the same `Worker` in-process (reports/service.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from elasticsearch import AsyncElasticsearch
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import OperationalError

from ..analytics.runner import QueryContext
from ..auth import Principal
from ..cache import RedisBackend, ResponseCache
from ..config import Settings
from ..es.client import index_names
from ..es.store_versions import StoredDataVersions
from ..metrics import REGISTRY, REPORT_JOBS, beat, instrument_transport
from ..redis_client import RedisUnavailable
from .builders import build_report
from .failures import backoff_seconds, classify, final_message, retry_message
from .model import ReportData
from .parameters import report_params
from .queue import JobQueue
from .renderers import TEMP_SUFFIX, RenderResult, render
from .renderers.json_file import summary_json
from .table import Report, ReportsRepo

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = Literal["completed", "retry", "failed", "skipped", "lost", "released"]


class ReportOptions(BaseSettings):
    """Tuning of the report queue and worker, from `REPORT_*` environment variables (or `.env`)."""

    model_config = SettingsConfigDict(env_prefix="REPORT_", env_file=".env", extra="ignore")

    lease_seconds: float = Field(60.0, gt=0, description="a job's lease; a dead worker's job runs again after it")
    reaper_seconds: float = Field(15.0, gt=0, description="how often each worker re-queues jobs whose lease lapsed")
    max_attempts: int = Field(10, ge=1, description="attempts before a job is marked failed")
    retry_initial_delay_seconds: float = Field(
        2.0, gt=0, description="wait after the first failed attempt; doubled after each further one"
    )
    retry_max_delay_seconds: float = Field(60.0, gt=0, description="longest wait between two attempts")
    sweep_seconds: float = Field(300.0, gt=0, description="how often expired report files are deleted")
    link_seconds: int = Field(3600, gt=0, description="lifetime of a signed download_url (capped by expires_at)")
    shutdown_grace_seconds: float = Field(30.0, ge=0, description="on SIGTERM, time the current job gets to finish")
    poll_seconds: float = Field(1.0, gt=0, description="longest wait for a job before the worker looks around")
    # TEST ONLY: sleep this long between building and rendering, so a test can kill a worker
    # in the middle of a job. Never set it in production.
    test_delay_seconds: float = Field(0.0, ge=0, description="test only: pause between build and render")

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease_seconds / 3


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def report_file_name(report: Report) -> str:
    """The server-generated file name of one attempt at a report (never anything from a request).

    Per attempt, so that a worker whose job was taken over only ever removes its own
    file, never the one the new owner published."""
    return f"{report.report_id}-{report.attempts}.{report.format}"


def job_principal(report: Report) -> Principal:
    """The requester as the builders need it: the row's key id, limited to the row's store."""
    return Principal(key_id=report.api_key_id or "worker", scopes=frozenset({"reports"}), store_id=report.store_id)


async def sweep_expired(repo: ReportsRepo, reports_dir: Path, now: datetime | None = None) -> int:
    """Mark completed reports past `expires_at` expired and delete their files; how many."""
    rows = await asyncio.to_thread(repo.expire_due, now or datetime.now(UTC))
    for row in rows:
        if row.file_name and Path(row.file_name).name == row.file_name:
            (reports_dir / row.file_name).unlink(missing_ok=True)
        log.info("report %s expired; file deleted", row.report_id)
    return len(rows)


class Worker:
    def __init__(
        self,
        settings: Settings,
        es: AsyncElasticsearch,
        repo: ReportsRepo,
        queue: JobQueue,
        reports_dir: Path,
        *,
        options: ReportOptions | None = None,
        worker_id: str | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.queue = queue
        self.reports_dir = Path(reports_dir)
        self.options = options or ReportOptions()
        self.worker_id = worker_id or new_worker_id()
        # The API's response cache when there is one: a report then reuses (and leaves) the
        # answers the endpoints give for the same parameters; writes invalidate it as usual.
        self.ctx = QueryContext(es=es, names=index_names(settings), settings=settings, cache=cache)
        self.current: str | None = None  # the report id being worked on
        self.next_reap = 0.0  # monotonic time of the next reaper run (sooner when a retry is due)

    # -- the loop --------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run jobs until `stop` is set; then let the current job finish (grace period) or release it."""
        log.info(
            "report worker %s started (lease %.0fs, reports in %s)",
            self.worker_id,
            self.options.lease_seconds,
            self.reports_dir,
        )
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        while not stop.is_set():
            if time.monotonic() >= self.next_reap:
                self.next_reap = time.monotonic() + self.options.reaper_seconds
                await self._logged("re-queue stale jobs", self.reap)
            if not await self._run_until_stopped(stop):
                # The queue failed (e.g. Redis is down): do not spin.
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(5.0, self.options.poll_seconds * 5))
        log.info("report worker %s stopped", self.worker_id)

    async def _run_until_stopped(self, stop: asyncio.Event) -> bool:
        """One `run_once`, cut short by `stop`. False when it failed."""
        job = asyncio.create_task(self.run_once(self.options.poll_seconds))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({job, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not job.done():
            await self._stop_job(job)
            return True
        try:
            job.result()
        except RedisUnavailable:
            log.warning("report worker %s: Redis is unavailable; waiting", self.worker_id)
            return False
        except Exception:
            log.exception("report worker %s: could not take a job", self.worker_id)
            return False
        return True

    async def _stop_job(self, job: asyncio.Task[Any]) -> None:
        """Shutdown: an idle wait is cancelled at once; a running job gets the grace period."""
        if self.current is not None:
            log.info(
                "stopping: waiting up to %.0fs for report %s to finish",
                self.options.shutdown_grace_seconds,
                self.current,
            )
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(job), timeout=self.options.shutdown_grace_seconds)
        if not job.done():
            job.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await job

    async def run_once(self, timeout: float | None = None) -> Outcome | None:
        """Take one job (waiting up to `timeout` seconds) and run it; None when none came."""
        await self.queue.heartbeat(self.worker_id, self.options.lease_seconds)
        beat("reports")
        report_id = await self.queue.reserve(self.worker_id, self.options.poll_seconds if timeout is None else timeout)
        if report_id is None:
            return None
        self.current = report_id
        try:
            outcome = await self.process(report_id)
            REPORT_JOBS.labels(status=outcome).inc()
            return outcome
        finally:
            self.current = None
            await self.queue.ack(report_id, self.worker_id)

    async def reap(self) -> int:
        """Queue again the jobs the table says are due (pending, or a lapsed lease) that nobody holds."""
        due = await self._db(self.repo.claimable_ids, 500)
        added = await self.queue.requeue_stale(due)
        if added:
            log.info("re-queued %d report job(s) nobody was running", added)
        return added

    # -- one job ---------------------------------------------------------------------------

    async def process(self, report_id: str) -> Outcome:
        """Claim and run one job, whatever happens to it."""
        report = await self._db(self.repo.claim, report_id, self.worker_id, self.options.lease_seconds)
        if report is None:
            log.info("report %s: not claimable (running elsewhere, finished or cancelled); skipped", report_id)
            return "skipped"
        log.info(
            "report %s: attempt %d of %s %s by %s",
            report_id,
            report.attempts,
            report.report_type,
            report.format,
            self.worker_id,
        )
        self._remove_partial_files(report)
        if report.attempts > self.options.max_attempts:
            await self._db(
                self.repo.fail,
                report_id,
                self.worker_id,
                f"gave up after {report.attempts - 1} attempts; last error: {report.error or 'none'}",
                retry=False,
            )
            return "failed"
        job = asyncio.create_task(self._produce(report))
        try:
            owned = await self._heartbeat_until_done(job, report)
        except asyncio.CancelledError:
            await _cancel_and_wait(job)
            await self._release(report)
            raise
        if not owned:
            await _cancel_and_wait(job)
            log.info("report %s: no longer ours (cancelled or taken over); stopped", report_id)
            return "lost"
        try:
            result = job.result()
        except Exception as exc:
            return await self._failed(report, exc)
        return await self._complete(report, *result)

    async def _produce(self, report: Report) -> tuple[RenderResult, dict[str, Any]]:
        started = time.monotonic()
        params, options = report_params(
            dict(report.parameters or {}),
            job_principal(report),
            report_type=report.report_type,
            default_tz=self.settings.default_timezone,
        )
        data = await build_report(report.report_type, params, self.ctx, options)
        self._log_tables(report, data)
        if self.options.test_delay_seconds:
            await asyncio.sleep(self.options.test_delay_seconds)
        path = self.reports_dir / report_file_name(report)
        result = await _render_to_the_end(data, report.format, path)
        log.info(
            "report %s: rendered %d rows to %s (%d bytes) in %.1fs",
            report.report_id,
            result.row_count,
            path.name,
            result.file_size,
            time.monotonic() - started,
        )
        return result, summary_json(data)

    def _log_tables(self, report: Report, data: ReportData) -> None:
        for table in data.tables:
            log.info("report %s: table %s: %d rows", report.report_id, table.name, len(table.rows))

    async def _heartbeat_until_done(self, job: asyncio.Task[Any], report: Report) -> bool:
        """Extend the lease until `job` ends. False as soon as the job is no longer this worker's."""
        while True:
            done, _ = await asyncio.wait({job}, timeout=self.options.heartbeat_seconds)
            if done:
                return True
            try:
                await self.queue.heartbeat(self.worker_id, self.options.lease_seconds)
                owned = await self._db(
                    self.repo.extend_lease, report.report_id, self.worker_id, self.options.lease_seconds
                )
            except Exception:
                # A database or Redis hiccup: keep working; `complete` checks ownership again.
                log.warning("report %s: heartbeat failed", report.report_id, exc_info=True)
                continue
            if not owned:
                return False

    async def _complete(self, report: Report, result: RenderResult, summary: dict[str, Any]) -> Outcome:
        name = report_file_name(report)
        done = await self._db_patiently(
            self.repo.complete,
            report.report_id,
            self.worker_id,
            file_name=name,
            file_size=result.file_size,
            row_count=result.row_count,
            checksum=result.checksum,
            summary=summary,
        )
        if done:
            log.info("report %s: completed (%d rows, %d bytes)", report.report_id, result.row_count, result.file_size)
            return "completed"
        # Cancelled or taken over meanwhile: this attempt's file is not published. The
        # worker that took over writes (and publishes) a file of its own attempt.
        row = await self._db(self.repo.get, report.report_id)
        if row is None or row.file_name != name:
            (self.reports_dir / name).unlink(missing_ok=True)
        log.info(
            "report %s: finished but no longer ours (%s); result dropped",
            report.report_id,
            row.status if row else "deleted",
        )
        return "lost"

    async def _failed(self, report: Report, exc: Exception) -> Outcome:
        """Retry later (transient failure, attempts left) or fail the row, with a clear sentence."""
        failure = classify(exc)
        retry = failure.transient and report.attempts < self.options.max_attempts
        (self.reports_dir / report_file_name(report)).unlink(missing_ok=True)
        now = datetime.now(UTC)
        if not retry:
            log.error("report %s: attempt %d failed; giving up", report.report_id, report.attempts, exc_info=exc)
            message = final_message(failure, report.attempts, now - report.created_at)
            await self._db_patiently(self.repo.fail, report.report_id, self.worker_id, message, retry=False)
            return "failed"
        delay = backoff_seconds(
            report.attempts, self.options.retry_initial_delay_seconds, self.options.retry_max_delay_seconds
        )
        not_before = now + timedelta(seconds=delay)
        log.warning(
            "report %s: attempt %d failed (%s: %s); next attempt in %.1fs",
            report.report_id,
            report.attempts,
            type(exc).__name__,
            exc,
            delay,
        )
        message = retry_message(failure, report.attempts, self.options.max_attempts, not_before)
        row = await self._db_patiently(
            self.repo.fail, report.report_id, self.worker_id, message, retry=True, not_before=not_before
        )
        if row is not None:
            # This worker's reaper queues it when it is due (any other worker's may come first).
            self.next_reap = min(self.next_reap, time.monotonic() + delay)
        return "retry"

    async def _release(self, report: Report) -> None:
        """Shutdown in the middle of a job: give it back (pending, queued) for another worker."""
        with suppress(Exception):
            row = await self._db(
                self.repo.fail,
                report.report_id,
                self.worker_id,
                "interrupted: the worker stopped before the job finished",
                retry=True,
            )
            if row is not None:
                await self.queue.enqueue(report.report_id)
                log.info("report %s: released for another worker", report.report_id)

    def _remove_partial_files(self, report: Report) -> None:
        """Temporary files an earlier attempt left when its worker died in the middle of rendering."""
        for leftover in self.reports_dir.glob(f".{report.report_id}-*{TEMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)
            log.info("report %s: removed %s left by an earlier attempt", report.report_id, leftover.name)

    # -- helpers ---------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _db_patiently(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`_db` for the writes that end an attempt (complete, fail): while the database is
        unreachable, try again with the retry backoff, `max_attempts` times, rather than lose
        the attempt's outcome. Safe to repeat: these writes only act for the row's owner."""
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                return await self._db(fn, *args, **kwargs)
            except OperationalError as exc:
                if attempt == self.options.max_attempts:
                    raise
                delay = backoff_seconds(
                    attempt, self.options.retry_initial_delay_seconds, self.options.retry_max_delay_seconds
                )
                log.warning("reports database unavailable (%s); trying again in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _logged(self, what: str, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            await fn()
        except Exception:
            log.warning("report worker %s: %s failed", self.worker_id, what, exc_info=True)


async def _cancel_and_wait(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError, Exception):
        await task


async def _render_to_the_end(data: ReportData, fmt: str, path: Path) -> RenderResult:
    """`render` in a thread. A thread cannot be stopped: when cancelled, wait for it to end,
    drop the file it wrote, then let the cancellation go on."""
    future = asyncio.ensure_future(asyncio.to_thread(render, data, fmt, path))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with suppress(BaseException):
            await future
        path.unlink(missing_ok=True)
        raise


# -- the `worker` command -------------------------------------------------------------------


async def serve(settings: Settings, options: ReportOptions | None = None) -> int:
    """`python -m analytics_service worker`: the Redis queue, until SIGTERM or SIGINT."""
    from prometheus_client import start_http_server

    from ..es.client import make_async_client
    from ..redis_client import make_breaker, make_redis
    from .queue import RedisJobQueue
    from .table import make_repo, migrate

    assert settings.redis_url, "the worker command needs REDIS_URL"
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per migration plugin is noise here
    options = options or ReportOptions()
    repo = make_repo(settings)
    await asyncio.to_thread(migrate, repo.engine)
    es = make_async_client(settings)
    instrument_transport(es)
    if settings.worker_metrics_port:
        # This process's jobs, evaluations, deliveries and heartbeats, for Prometheus to scrape.
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host, registry=REGISTRY)
        log.info("metrics on http://%s:%d/metrics", settings.worker_metrics_host, settings.worker_metrics_port)
    # The queue's client waits out a BLMOVE (REPORT_POLL_SECONDS); the cache's has the short timeout.
    queue_redis = make_redis(settings, read_timeout=options.poll_seconds + settings.redis_timeout_seconds)
    redis = make_redis(settings)
    breaker = make_breaker(settings)
    queue = RedisJobQueue(queue_redis, settings.index_prefix, breaker)
    cache = None
    if settings.cache_ttl_seconds > 0:
        cache = ResponseCache(
            RedisBackend(redis, breaker),
            namespace=settings.index_prefix,
            ttl=settings.cache_ttl_seconds,
            # The same versions as the API's (an import or seed publishes only these), so that both
            # read and write the same entries and a report never reuses an answer older than the data.
            stored_versions=StoredDataVersions(es, settings.index_prefix),
        )
    worker = Worker(settings, es, repo, queue, settings.reports_dir, options=options, cache=cache)
    # Alerts, schedules and deliveries run beside the report jobs (notifications/worker.py).
    from ..notifications.repo import NotificationsRepo
    from ..notifications.service import make_worker
    from .service import ReportsService

    reports_service = ReportsService(repo, queue, settings, options)
    notifier = make_worker(settings, es, NotificationsRepo(repo.engine), reports_service, worker_id=worker.worker_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stop)
    sweeper = asyncio.create_task(sweep_periodically(repo, settings.reports_dir, options.sweep_seconds, stop))
    notifications = asyncio.create_task(notifier.run_forever(stop), name="notifications")
    # Retention once a day, by one of the workers (retention.py: a lease on its periodic_tasks row).
    from ..retention import DailyRetention

    daily = DailyRetention(settings, es, repo.engine, worker_id=worker.worker_id)
    retention = asyncio.create_task(daily.run_forever(stop), name="retention")
    try:
        await worker.run_forever(stop)
    finally:
        stop.set()
        await _cancel_and_wait(sweeper)
        await _cancel_and_wait(notifications)
        await _cancel_and_wait(retention)
        await es.close()
        await redis.aclose()
        await queue_redis.aclose()
        repo.engine.dispose()
    return 0


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("%s received: finishing the current job, then stopping", sig.name)
    stop.set()


async def sweep_periodically(repo: ReportsRepo, reports_dir: Path, every: float, stop: asyncio.Event) -> None:
    """`sweep_expired` now and every `every` seconds until `stop`."""
    while not stop.is_set():
        try:
            await sweep_expired(repo, reports_dir)
        except Exception:
            log.warning("expiry sweep failed", exc_info=True)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
