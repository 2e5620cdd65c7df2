"""Retention: data deleted once it is older than its horizon (docs/operations.md "Retention").

`python -m analytics_service retention [--dry-run]` and the worker's daily run (`DailyRetention`)
both call `run_retention(horizons(settings, es, engine), now, dry_run=...)`.

A horizon is one kind of data with its own age limit, and has four members:

    name: str                                 # e.g. "monthly-indices", shown on every line
    policy: str                               # one line: what is kept how long, and the setting
    async def plan(now) -> list[Doomed]       # what is past the horizon now; deletes nothing
    async def apply(doomed: Doomed) -> int    # delete exactly that one planned item; how many records went

`run_retention` plans every horizon and, unless it is a dry run, applies each planned item: the
dry run lists exactly the plan and the real run deletes exactly the plan (an index by its name,
a group of rows by its condition and the cutoff time fixed when planning, never a newer one).
`apply` must be safe to repeat: another worker, or a run after a crash, may find the item gone
(0). A limit of 0 means "kept forever": such a horizon plans nothing. A horizon that fails
(Elasticsearch unreachable, ...) is reported and the others still run.

To add a horizon: a class with those members, or a `RowsHorizon` over a repository's
(count_before, prune) pair of functions of the cutoff time, added to the list in `horizons()`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError, TransportError
from sqlalchemy import Engine

from .audit.table import AuditRepo
from .config import Settings
from .es.indices import FAMILIES, IndexFamily, IndexNames
from .es.store_versions import StoredDataVersions
from .notifications.repo import NotificationsRepo
from .notifications.worker import NotificationOptions
from .periodic import PeriodicTasks
from .reports.table import ReportsRepo, utcnow
from .reports.worker import new_worker_id, sweep_expired

log = logging.getLogger(__name__)

MONTHLY_FAMILIES = tuple(f for f in FAMILIES if f.monthly)  # events, activity
TASK_NAME = "retention"  # its row in periodic_tasks


@dataclass(frozen=True)
class Doomed:
    """One item a horizon would drop: a whole index, or a group of rows."""

    horizon: str  # the horizon's name
    kind: Literal["index", "rows"]
    what: str  # one line, e.g. "index analytics-events-2025.01 (events of 2025-01; 1234 documents)"
    count: int  # documents (an index) or rows, when planned
    target: Any  # what `apply` acts on: the index name, or the cutoff time of the rows


class Horizon(Protocol):
    name: str

    @property
    def policy(self) -> str: ...

    async def plan(self, now: datetime) -> list[Doomed]: ...

    async def apply(self, doomed: Doomed) -> int: ...


class RetentionError(Exception):
    """A horizon could not be planned or applied; the message says why (no traceback needed)."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _days(days: float) -> str:
    return f"{days:g} day{'s' if days != 1 else ''}"


# -- monthly indices (Elasticsearch) -------------------------------------------------------------


def month_end(month: date) -> datetime:
    """The end (exclusive, UTC) of the month holding `month`: monthly indices are by the UTC month."""
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


class MonthlyIndices:
    """`<prefix>-events-YYYY.MM` and `<prefix>-activity-YYYY.MM` whose whole month ended before
    now - ANALYTICS_DATA_RETENTION_DAYS, deleted whole (the minimal distribution has no ILM or
    delete-by-query). Only names of exactly that pattern under this prefix are ever touched; a month
    that still holds one record inside the horizon stays."""

    name = "monthly-indices"

    def __init__(self, es: AsyncElasticsearch, names: IndexNames, days: int, es_url: str = "") -> None:
        self.es = es
        self.names = names
        self.days = days
        self.es_url = es_url
        families = "|".join(re.escape(f.name) for f in MONTHLY_FAMILIES)
        self._pattern = re.compile(rf"^{re.escape(names.prefix)}-({families})-(\d{{4}})\.(0[1-9]|1[0-2])$")

    @property
    def policy(self) -> str:
        families = " and ".join(f"{self.names.prefix}-{f.name}-YYYY.MM" for f in MONTHLY_FAMILIES)
        if not self.days:
            return f"{families}: kept forever (ANALYTICS_DATA_RETENTION_DAYS unset or 0)"
        return (
            f"{families}: a month is deleted once it ended more than {_days(self.days)} ago "
            "(ANALYTICS_DATA_RETENTION_DAYS)"
        )

    def month_of(self, index: str) -> tuple[IndexFamily, date] | None:
        """The family and month of one of our monthly index names; None for any other name."""
        found = self._pattern.match(index)
        if found is None:
            return None
        family = next(f for f in MONTHLY_FAMILIES if f.name == found.group(1))
        return family, date(int(found.group(2)), int(found.group(3)), 1)

    async def plan(self, now: datetime) -> list[Doomed]:
        if not self.days:
            return []
        cutoff = now - timedelta(days=self.days)
        patterns = ",".join(f"{self.names.prefix}-{f.name}-*" for f in MONTHLY_FAMILIES)
        rows = await self._call(
            self.es.cat.indices(
                index=patterns, format="json", h="index,status,docs.count", expand_wildcards="open,closed"
            )
        )
        doomed = []
        for row in sorted(rows.body, key=lambda r: r["index"]):
            parsed = self.month_of(row["index"])
            if parsed is None or month_end(parsed[1]) > cutoff:
                continue
            family, month = parsed
            count = int(row.get("docs.count") or 0)
            closed = ", closed" if row.get("status") == "close" else ""
            what = f"index {row['index']} ({family.name} of {month:%Y-%m}{closed}; {count} documents)"
            doomed.append(Doomed(self.name, "index", what, count, row["index"]))
        return doomed

    async def apply(self, doomed: Doomed) -> int:
        index = str(doomed.target)
        if self.month_of(index) is None:  # never anything but one of our monthly names
            raise RetentionError(f"refusing to delete {index!r}: not a monthly index of prefix {self.names.prefix}")
        try:
            await self._call(self.es.indices.delete(index=index, expand_wildcards="none"))
        except NotFoundError:
            return 0  # gone already (another worker's run)
        # Answers cached before (in any process, for any store) counted these documents.
        await StoredDataVersions(self.es, self.names.prefix).deleted()
        return doomed.count

    async def _call(self, request: Any) -> Any:
        try:
            return await request
        except NotFoundError:
            raise
        except TransportError as exc:
            raise RetentionError(
                f"Elasticsearch at {self.es_url} cannot be reached ({type(exc).__name__}: {exc})"
            ) from exc
        except ApiError as exc:
            raise RetentionError(f"Elasticsearch at {self.es_url} refused the request: {exc}") from exc


# -- rows in the reports database ---------------------------------------------------------------


class ReportFiles:
    """Report files past REPORT_TTL_HOURS: the reports' expiry sweep (reports/worker.py
    `sweep_expired`, also run every REPORT_SWEEP_SECONDS): files deleted, rows marked expired."""

    name = "report-files"

    def __init__(self, repo: ReportsRepo, reports_dir: Path, ttl_hours: float) -> None:
        self.repo = repo
        self.reports_dir = Path(reports_dir)
        self.ttl_hours = ttl_hours

    @property
    def policy(self) -> str:
        return (
            f"report files: deleted {self.ttl_hours:g} hours after the report was requested (REPORT_TTL_HOURS); "
            "the row stays in the history as expired"
        )

    async def plan(self, now: datetime) -> list[Doomed]:
        count = await asyncio.to_thread(self.repo.count_expire_due, now)
        if not count:
            return []
        what = f"{count} completed reports expired by {_iso(now)} (files deleted, rows marked expired)"
        return [Doomed(self.name, "rows", what, count, now)]

    async def apply(self, doomed: Doomed) -> int:
        return await sweep_expired(self.repo, self.reports_dir, doomed.target)


class RowsHorizon:
    """Rows older than `days` days, through a repository's pair of sync functions of the cutoff
    time: `count_before(cutoff)` (the plan) and `prune(cutoff)` (apply: delete, return how many)."""

    def __init__(
        self,
        name: str,
        rows: str,
        setting: str,
        days: float,
        count_before: Callable[[datetime], int],
        prune: Callable[[datetime], int],
    ) -> None:
        self.name = name
        self.rows = rows  # what the rows are, e.g. "alert evaluations"
        self.setting = setting
        self.days = days
        self.count_before = count_before
        self.prune = prune

    @property
    def policy(self) -> str:
        if not self.days:
            return f"{self.rows}: kept forever ({self.setting}=0)"
        return f"{self.rows}: kept {_days(self.days)} ({self.setting})"

    async def plan(self, now: datetime) -> list[Doomed]:
        if not self.days:
            return []
        cutoff = now - timedelta(days=self.days)
        count = await asyncio.to_thread(self.count_before, cutoff)
        if not count:
            return []
        return [Doomed(self.name, "rows", f"{count} rows: {self.rows} from before {_iso(cutoff)}", count, cutoff)]

    async def apply(self, doomed: Doomed) -> int:
        return await asyncio.to_thread(self.prune, doomed.target)


def horizons(settings: Settings, es: AsyncElasticsearch, engine: Engine) -> list[Horizon]:
    """Every horizon, in the order they run."""
    from .es.client import index_names

    reports = ReportsRepo(engine)
    alerts = NotificationsRepo(engine)
    audit = AuditRepo(engine)
    history = settings.alert_history_retention_days
    return [
        MonthlyIndices(es, index_names(settings), settings.analytics_data_retention_days, settings.elasticsearch_url),
        ReportFiles(reports, settings.reports_dir, settings.report_ttl_hours),
        RowsHorizon(
            "alert-evaluations",
            "alert evaluations",
            "NOTIFY_EVALUATION_RETENTION_DAYS",  # also pruned hourly by the notification worker
            NotificationOptions().evaluation_retention_days,
            alerts.count_evaluations_before,
            alerts.prune_evaluations,
        ),
        RowsHorizon(
            "alert-incidents",
            "alert incidents resolved or closed, and their events",
            "ALERT_HISTORY_RETENTION_DAYS",
            history,
            lambda cutoff: sum(alerts.count_incidents_before(cutoff)),
            lambda cutoff: sum(alerts.prune_incidents(cutoff)),
        ),
        RowsHorizon(
            "deliveries",
            "deliveries delivered or failed",
            "ALERT_HISTORY_RETENTION_DAYS",
            history,
            alerts.count_deliveries_before,
            alerts.prune_deliveries,
        ),
        RowsHorizon(
            "audit",
            "audit trail rows",
            "AUDIT_RETENTION_DAYS",
            settings.audit_retention_days,
            audit.count_before,
            audit.prune,
        ),
    ]


# -- a run ---------------------------------------------------------------------------------------


@dataclass
class RetentionRun:
    dry_run: bool
    now: datetime
    policies: list[str] = field(default_factory=list)
    planned: list[Doomed] = field(default_factory=list)
    dropped: list[tuple[Doomed, int]] = field(default_factory=list)  # (item, records deleted)
    errors: list[str] = field(default_factory=list)  # "<horizon>: <why>"

    @property
    def ok(self) -> bool:
        return not self.errors

    def item_lines(self) -> list[str]:
        """One line per index or row group dropped (or, in a dry run, that would be)."""
        if self.dry_run:
            return [f"would drop {d.horizon}: {d.what}" for d in self.planned]
        return [f"dropped {d.horizon}: {d.what}" + ("" if n == d.count else f" ({n} deleted)") for d, n in self.dropped]

    def summary(self) -> str:
        items = [d for d, _ in self.dropped] if not self.dry_run else self.planned
        indices = [d for d in items if d.kind == "index"]
        groups = [d for d in items if d.kind == "rows"]
        if self.dry_run:
            documents, rows = sum(d.count for d in indices), sum(d.count for d in groups)
        else:
            documents = sum(n for d, n in self.dropped if d.kind == "index")
            rows = sum(n for d, n in self.dropped if d.kind == "rows")
        verb = "would be dropped (dry run)" if self.dry_run else "dropped"
        text = (
            f"retention at {_iso(self.now)}: {len(indices)} indices ({documents} documents) and "
            f"{len(groups)} row groups ({rows} rows) {verb}"
        )
        if self.errors:
            text += f"; {len(self.errors)} failed"
        return text

    def outcome(self) -> dict[str, Any]:
        """What the daily run records in its periodic_tasks row."""
        return {
            "at": _iso(self.now),
            "dropped": [{"horizon": d.horizon, "what": d.what, "deleted": n} for d, n in self.dropped],
            "errors": self.errors,
        }


async def run_retention(horizons: list[Horizon], now: datetime, *, dry_run: bool = False) -> RetentionRun:
    """Plan every horizon at `now`; unless `dry_run`, delete exactly what was planned."""
    run = RetentionRun(dry_run=dry_run, now=now)
    plans: list[tuple[Horizon, list[Doomed]]] = []
    for horizon in horizons:  # the whole plan first: a real run's plan is the dry run's
        run.policies.append(horizon.policy)
        try:
            plans.append((horizon, await horizon.plan(now)))
        except Exception as exc:
            run.errors.append(f"{horizon.name}: {_reason(exc)}")
            log.debug("retention: planning %s failed", horizon.name, exc_info=True)
    run.planned = [doomed for _, plan in plans for doomed in plan]
    if dry_run:
        return run
    for horizon, plan in plans:
        for doomed in plan:
            try:
                run.dropped.append((doomed, await horizon.apply(doomed)))
            except Exception as exc:
                run.errors.append(f"{horizon.name}: could not drop {doomed.what}: {_reason(exc)}")
                log.debug("retention: dropping %s failed", doomed.what, exc_info=True)
    return run


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, RetentionError) else f"{type(exc).__name__}: {exc}"


async def run_command(settings: Settings, *, dry_run: bool) -> int:
    """`python -m analytics_service retention [--dry-run]`: the policies, one line per item, a
    summary; exit 1 (the reason on stderr) when a horizon failed, e.g. Elasticsearch unreachable."""
    from .es.client import make_async_client
    from .reports.table import make_engine, migrate

    engine = make_engine(settings.database_url)
    es = make_async_client(settings)
    try:
        await asyncio.to_thread(migrate, engine)
        run = await run_retention(horizons(settings, es, engine), datetime.now(UTC), dry_run=dry_run)
    finally:
        await es.close()
        engine.dispose()
    for policy in run.policies:
        print(f"keep {policy}")
    for line in run.item_lines():
        print(line)
    print(run.summary())
    for error in run.errors:
        print(f"error: {error}", file=sys.stderr)
    return 0 if run.ok else 1


# -- the worker's daily run ----------------------------------------------------------------------


class DailyRetention:
    """Retention once a day, by exactly one of the workers (in the API process without REDIS_URL, and
    in every `python -m analytics_service worker`): the `retention` row of periodic_tasks is taken with
    a lease (periodic.py); its winner runs `run_retention` and sets the next run a day later (an hour
    later when a horizon failed). Every worker looks every `check_seconds`."""

    def __init__(
        self,
        settings: Settings,
        es: AsyncElasticsearch,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
        every: timedelta = timedelta(days=1),
        retry: timedelta = timedelta(hours=1),
        check_seconds: float = 600.0,
        lease_seconds: float = 3600.0,
    ) -> None:
        self.settings = settings
        self.es = es
        self.engine = engine
        self.tasks = PeriodicTasks(engine, clock=clock)
        self.worker_id = worker_id or new_worker_id()
        self.every = every
        self.retry = retry
        self.check_seconds = check_seconds
        self.lease_seconds = lease_seconds

    async def run_if_due(self) -> RetentionRun | None:
        """The day's run when it is due and this worker wins it; None otherwise."""
        if not await asyncio.to_thread(self.tasks.claim, TASK_NAME, self.worker_id, self.lease_seconds):
            return None
        now = self.tasks.now()
        run = await run_retention(horizons(self.settings, self.es, self.engine), now)
        for line in run.item_lines():
            log.info("retention: %s", line)
        log.info("%s", run.summary())
        for error in run.errors:
            log.warning("retention: %s", error)
        following = now + (self.every if run.ok else self.retry)
        if not await asyncio.to_thread(self.tasks.finish, TASK_NAME, self.worker_id, following, run.outcome()):
            log.warning("retention: the run outlived its lease; another worker may have run it too")
        return run

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_if_due()
            except Exception:
                log.warning("retention: the daily run failed; trying again later", exc_info=True)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.check_seconds)
