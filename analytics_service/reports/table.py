"""The reports table: one row per requested report, and the job's lease.

SQLite by default, PostgreSQL via DATABASE_URL. The schema is owned by Alembic
(reports/migrations/): `migrate(engine)` upgrades any existing database to the
current revision and is safe to call at every start, also from several processes
at once.

A job is "owned" by the worker whose `claim` succeeded, until its lease runs out.
`claim` is one conditional UPDATE (pending, or processing with an expired lease ->
processing), so of two workers racing for the same row exactly one wins; that is
what keeps a job from running twice at once. A failed attempt that is retried goes
back to pending with `lease_until` set to the earliest time of the next attempt (the
backoff): nobody holds the job while it waits, and nobody can claim it before then.
`extend_lease`, `complete` and `fail` only act for the current owner, so a worker that
lost its lease (it was too slow and another worker took the job over) cannot overwrite the new owner's row.

Timestamps are timezone-aware UTC datetimes in Python on both databases.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ColumnElement,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    and_,
    create_engine,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .model import FORMATS, REPORT_TYPES

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

STATUSES = ("pending", "processing", "completed", "failed", "cancelled", "expired")
ACTIVE_STATUSES = ("pending", "processing")
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# Errors are tracebacks at worst; keep the row small.
MAX_ERROR_CHARS = 8000
# pg_advisory_xact_lock key serialising concurrent `migrate` calls (any constant bigint).
_MIGRATE_LOCK_KEY = 0x5245504F525453  # "REPORTS"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; `timestamptz` on PostgreSQL, naive UTC text on SQLite.

    Naive datetimes are refused on the way in, so a local wall-clock time can never be
    stored as if it were UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: reports timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Report(Base):
    """A requested report. Columns match migrations 0001..0003 (a test checks they agree)."""

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        Index(None, "created_at"),
        Index(None, "status", "created_at"),
        Index(None, "status", "expires_at"),
        Index(None, "schedule_id", "created_at"),
    )

    report_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    report_name: Mapped[str] = mapped_column(String(255))
    report_type: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(8))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    status: Mapped[str] = mapped_column(String(16))
    api_key_id: Mapped[str | None] = mapped_column(String(128))
    store_id: Mapped[str | None] = mapped_column(String(128))
    # Server-generated name of the file under REPORTS_DIR, never taken from a request.
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(64))  # sha256 hex of the file
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Migration 0002: the job's lease. `lease_until`: processing -> when the lease ends;
    # pending -> not claimable before it (a retry's backoff); None otherwise.
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Migration 0003: the schedule a run belongs to (notifications/), and the report's headline
    # figures (its KPIs, as the JSON format writes them) for the e-mail that delivers it.
    schedule_id: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))

    def __repr__(self) -> str:
        return f"Report({self.report_id!r}, {self.report_type!r}, {self.format!r}, status={self.status!r})"


# -- engine and migrations ---------------------------------------------------------------


def make_engine(url: str) -> Engine:
    """An engine for DATABASE_URL. SQLite: parent folder created, usable from any thread, WAL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL: the API reads while a worker writes. Switching needs a moment alone with the
    # file; when another process holds it, that one switches (the mode is stored in the file).
    try:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as e:  # database is locked
        log.debug("could not switch SQLite to WAL now: %s", e)


def make_repo(settings: Settings) -> ReportsRepo:
    """The repository on DATABASE_URL (call `migrate(repo.engine)` once at start-up)."""
    return ReportsRepo(make_engine(settings.database_url))


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code (no alembic.ini): our migrations dir and the database.

    With `connection`, migrations run on it (inside its transaction); otherwise env.py
    connects to `url`.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
        url = url or connection.engine.url.render_as_string(hide_password=False)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolation
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision`: idempotent, and safe when several processes start at once.

    The upgrade runs in one transaction that first takes a database-wide lock
    (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE), so a second process waits,
    then finds the schema current and does nothing.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK_KEY})
        elif conn.dialect.name == "sqlite":
            # pysqlite does not open a transaction before DDL by itself; this one covers
            # the version check and the DDL, and waits (busy timeout) for another migrator.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        command.upgrade(alembic_config(connection=conn), revision)
        conn.commit()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# -- repository ----------------------------------------------------------------------------

M = TypeVar("M", bound=Base)


def filtered_page(
    session: Callable[[], Session],
    model: type[M],
    equal_to: Sequence[tuple[Any, Any]],
    order_by: Sequence[Any],
    page: int,
    page_size: int,
    where: Sequence[ColumnElement[bool]] = (),
) -> tuple[builtins.list[M], int]:
    """One page of `model` rows whose columns equal the given values (a None value: no filter)
    and that meet `where`, in `order_by`, and how many rows match: what every history route of
    this database pages."""
    filters = [*(column == value for column, value in equal_to if value is not None), *where]
    query = select(model).where(*filters).order_by(*order_by).offset((page - 1) * page_size).limit(page_size)
    with session() as s:
        total = s.scalar(select(func.count()).select_from(model).where(*filters)) or 0
        return builtins.list(s.scalars(query)), total


class Repo:
    """The base of this database's repositories: the engine, a clock (tests move it) and sessions.
    Sync: call the methods via `asyncio.to_thread` from async code."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def now(self) -> datetime:
        # In UTC, so `now + lease` is elapsed time even when a clock answers in a DST zone.
        return self.clock().astimezone(UTC)

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


class ReportsRepo(Repo):
    """Reads and state changes of report rows. Sync: call it via `asyncio.to_thread` from async code.

    Returned `Report` objects are detached snapshots (every column loaded); change rows
    through the methods, not by setting attributes.
    """

    # reads

    def get(self, report_id: str) -> Report | None:
        with self._session() as s:
            return s.get(Report, report_id)

    def list(
        self,
        *,
        status: str | None = None,
        report_type: str | None = None,
        api_key_id: str | None = None,
        store_id: str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> tuple[builtins.list[Report], int]:
        """One page of rows, newest first, and the number of rows matching the filters."""
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        return filtered_page(
            self._session,
            Report,
            [
                (Report.status, status),
                (Report.report_type, report_type),
                (Report.api_key_id, api_key_id),
                (Report.store_id, store_id),
            ],
            [Report.created_at.desc(), Report.report_id.desc()],
            page,
            page_size,
        )

    def count_pending(self) -> int:
        """Reports waiting for a worker (GET /metrics: analytics_queue_depth{queue="reports"})."""
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(Report).where(Report.status == "pending")) or 0)

    def claimable_ids(self, limit: int = 100) -> builtins.list[str]:
        """Ids a worker could claim now (pending, or processing with an expired lease), oldest first.

        For re-enqueueing after a restart or when a queue lost a job.
        """
        query = select(Report.report_id).where(self._claimable(self.now())).order_by(Report.created_at).limit(limit)
        with self._session() as s:
            return builtins.list(s.scalars(query))

    # writes

    def create(
        self,
        *,
        report_type: str,
        format: str,
        parameters: dict[str, Any],
        report_name: str | None,
        api_key_id: str | None,
        store_id: str | None,
        expires_in: timedelta,
        schedule_id: str | None = None,
    ) -> Report:
        """A new pending row; `expires_at` = now + `expires_in` (when its file and links expire)."""
        if report_type not in REPORT_TYPES:
            raise ValueError(f"unknown report_type {report_type!r}")
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}")
        now = self.now()
        report = Report(
            report_id=uuid.uuid4().hex,
            report_name=report_name or report_type.replace("_", " ").capitalize(),
            report_type=report_type,
            format=format,
            parameters=dict(parameters),
            status="pending",
            api_key_id=api_key_id,
            store_id=store_id,
            created_at=now,
            expires_at=now + expires_in,
            attempts=0,
            schedule_id=schedule_id,
        )
        with self._session() as s, s.begin():
            s.add(report)
        return report

    def claim(self, report_id: str, worker_id: str, lease_seconds: float) -> Report | None:
        """Take the job: pending (or processing with an expired lease) -> processing; None if not claimable."""
        now = self.now()
        return self._update(
            report_id,
            self._claimable(now),
            {
                "status": "processing",
                "worker_id": worker_id,
                "started_at": now,
                "lease_until": now + timedelta(seconds=lease_seconds),
                "attempts": Report.attempts + 1,
            },
        )

    def extend_lease(self, report_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Heartbeat. False: the job is no longer this worker's (taken over, cancelled): stop working on it."""
        until = self.now() + timedelta(seconds=lease_seconds)
        return self._update(report_id, self._owned_by(worker_id), {"lease_until": until}) is not None

    def complete(
        self,
        report_id: str,
        worker_id: str,
        *,
        file_name: str,
        file_size: int,
        row_count: int,
        checksum: str,
        summary: dict[str, Any] | None = None,
    ) -> bool:
        """processing -> completed with the file's facts and the report's headline figures.
        False when the worker no longer owns the job."""
        if not file_name or Path(file_name).name != file_name or file_name in {".", ".."}:
            raise ValueError(f"file_name must be a bare file name, not {file_name!r}")
        return (
            self._update(
                report_id,
                self._owned_by(worker_id),
                {
                    "status": "completed",
                    "completed_at": self.now(),
                    "lease_until": None,
                    "error": None,
                    "file_name": file_name,
                    "file_size": file_size,
                    "row_count": row_count,
                    "checksum": checksum,
                    "summary": summary,
                },
            )
            is not None
        )

    def fail(
        self, report_id: str, worker_id: str, error: str, *, retry: bool, not_before: datetime | None = None
    ) -> Report | None:
        """A failed attempt: back to pending (retry; claimable from `not_before` on) or failed, the
        error kept. None when not the owner."""
        values: dict[str, Any] = {"error": error[:MAX_ERROR_CHARS], "lease_until": None}
        if retry:
            values.update(status="pending", worker_id=None, lease_until=not_before)
        else:
            values.update(status="failed", completed_at=self.now())
        return self._update(report_id, self._owned_by(worker_id), values)

    def cancel(self, report_id: str) -> Report | None:
        """pending/processing -> cancelled. Returns the row as it is afterwards (any status), None if unknown."""
        cancelled = self._update(
            report_id,
            [Report.status.in_(ACTIVE_STATUSES)],
            {"status": "cancelled", "completed_at": self.now(), "lease_until": None},
        )
        return cancelled or self.get(report_id)

    def expire_due(self, now: datetime | None = None) -> builtins.list[Report]:
        """completed rows whose expires_at has passed -> expired; returned (once) so their files get deleted."""
        now = now or self.now()
        stmt = (
            update(Report)
            .where(Report.status == "completed", Report.expires_at <= now)
            .values(status="expired")
            .returning(Report)
            .execution_options(synchronize_session=False)
        )
        with self._session() as s, s.begin():
            return builtins.list(s.scalars(stmt))

    def count_expire_due(self, now: datetime | None = None) -> int:
        """How many rows `expire_due(now)` would expire (the retention's dry run)."""
        due = and_(Report.status == "completed", Report.expires_at <= (now or self.now()))
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(Report).where(due)) or 0)

    # helpers

    @staticmethod
    def _claimable(now: datetime) -> ColumnElement[bool]:
        """pending or processing, and past `lease_until` (a lease, or a retry's not-before time)."""
        lease_over = or_(Report.lease_until.is_(None), Report.lease_until <= now)
        return and_(Report.status.in_(ACTIVE_STATUSES), lease_over)

    @staticmethod
    def _owned_by(worker_id: str) -> Sequence[ColumnElement[bool]]:
        return [Report.status == "processing", Report.worker_id == worker_id]

    def _update(
        self, report_id: str, where: ColumnElement[bool] | Sequence[ColumnElement[bool]], values: dict[str, Any]
    ) -> Report | None:
        """One conditional UPDATE ... RETURNING: the row if the condition held (atomically), else None.

        The UPDATE is the transaction's first statement: on SQLite it takes the write lock
        at once (waiting for the busy timeout) instead of upgrading a read lock, which could fail.
        """
        conditions = [where] if isinstance(where, ColumnElement) else builtins.list(where)
        stmt = (
            update(Report)
            .where(Report.report_id == report_id, *conditions)
            .values(**values)
            .returning(Report)
            .execution_options(synchronize_session=False)
        )
        with self._session() as s, s.begin():
            return s.scalars(stmt).one_or_none()


# The notification and audit tables share this database, its metadata and its migrations: registered
# here so that whoever reads `Base.metadata` (Alembic's env.py, the schema test) sees every table.
from .. import periodic as _periodic_tasks  # noqa: E402, F401 (periodic_tasks: retention's daily run)
from ..audit import table as _audit_table  # noqa: E402, F401
from ..notifications import tables as _notification_tables  # noqa: E402, F401
