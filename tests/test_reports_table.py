"""The reports table on a real SQLite file and a real PostgreSQL server: migrations, reads, job leases."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from analytics_service.config import Settings
from analytics_service.reports.table import (
    Base,
    Report,
    ReportsRepo,
    current_revision,
    make_engine,
    make_repo,
    migrate,
)

HEAD = "0005"
T0 = datetime(2024, 3, 10, 6, 30, 15, 123456, tzinfo=UTC)


class Clock:
    """A clock the tests move by hand (leases without sleeping)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """An empty database of each kind: a SQLite file, or a fresh schema on the test PostgreSQL server.

    (A schema, set as the search_path in the URL, isolates like a database and is made in
    milliseconds instead of a second.)
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'reports.db'}"
        return
    server_url = make_url(request.getfixturevalue("postgres_url"))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield server_url.update_query_dict({"options": f"-c search_path={schema}"}).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture
def engine(db_url) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo(engine, clock) -> ReportsRepo:
    migrate(engine)
    return ReportsRepo(engine, clock=clock)


def finish(repo: ReportsRepo, report_id: str, worker_id: str, file_name: str | None = None) -> bool:
    """`complete` with small file facts."""
    return repo.complete(
        report_id,
        worker_id,
        file_name=f"{report_id}.csv" if file_name is None else file_name,
        file_size=1,
        row_count=1,
        checksum="0" * 64,
    )


def new_report(repo: ReportsRepo, **overrides) -> Report:
    values = {
        "report_type": "daily_sales",
        "format": "csv",
        "parameters": {"start": "2024-01-01", "end": "2024-01-31"},
        "report_name": "January sales",
        "api_key_id": "key-a",
        "store_id": "s1",
        "expires_in": timedelta(days=7),
    }
    values.update(overrides)
    return repo.create(**values)


# -- migrations ------------------------------------------------------------------------------


def test_migrate_creates_the_schema_and_is_idempotent(engine):
    assert current_revision(engine) is None
    migrate(engine)
    migrate(engine)
    assert current_revision(engine) == HEAD
    # The model and the migrations describe the same table (columns, types, indexes).
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_concurrent_starts_migrate_once(db_url):
    """Several processes starting at once on an empty database: all succeed, the schema is created once."""
    engines = [make_engine(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(eng: Engine) -> None:
        barrier.wait()
        try:
            migrate(eng)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start, args=(eng,)) for eng in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert current_revision(engines[0]) == HEAD
    for eng in engines:
        eng.dispose()


def test_existing_database_upgrades_and_keeps_its_rows(engine):
    """A database created at 0001 (before job leases) with reports in it upgrades to head intact."""
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    old = sa.Table("reports", sa.MetaData(), autoload_with=engine)
    assert "attempts" not in old.c
    created = datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    rows = [
        {
            "report_id": uuid.uuid4().hex,
            "report_name": "Old completed",
            "report_type": "inventory",
            "format": "pdf",
            "parameters": {"store_id": "s1", "nested": {"k": [1, 2.5, None]}},
            "status": "completed",
            "api_key_id": "key-old",
            "store_id": "s1",
            "file_name": "old.pdf",
            "file_size": 1234,
            "row_count": 56,
            "checksum": "ab" * 32,
            "created_at": created,
            "started_at": created + timedelta(seconds=1),
            "completed_at": created + timedelta(seconds=5),
            "expires_at": created + timedelta(days=7),
        },
        {
            "report_id": uuid.uuid4().hex,
            "report_name": "Old pending",
            "report_type": "daily_sales",
            "format": "csv",
            "parameters": {},
            "status": "pending",
            "api_key_id": "key-old",
            "store_id": None,
            "created_at": created + timedelta(minutes=1),
            "expires_at": created + timedelta(days=7),
        },
    ]
    with engine.begin() as conn:
        for row in rows:
            conn.execute(old.insert().values(**row))

    migrate(engine)

    assert current_revision(engine) == HEAD
    repo = ReportsRepo(engine, clock=Clock(created + timedelta(minutes=2)))
    items, total = repo.list(api_key_id="key-old")
    assert total == 2
    assert [r.report_id for r in items] == [rows[1]["report_id"], rows[0]["report_id"]]
    done = repo.get(rows[0]["report_id"])
    assert (done.status, done.file_name, done.file_size, done.row_count, done.checksum) == (
        "completed",
        "old.pdf",
        1234,
        56,
        "ab" * 32,
    )
    assert done.parameters == rows[0]["parameters"]
    assert (done.created_at, done.completed_at, done.expires_at) == (
        rows[0]["created_at"],
        rows[0]["completed_at"],
        rows[0]["expires_at"],
    )
    assert (done.attempts, done.worker_id, done.lease_until) == (0, None, None)
    # The old pending row is a normal job for the new code.
    claimed = repo.claim(rows[1]["report_id"], "w1", 30)
    assert claimed is not None and claimed.attempts == 1


def test_downgrade_to_0001_and_back(engine):
    from alembic import command

    from analytics_service.reports.table import alembic_config

    migrate(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "0001")
    assert current_revision(engine) == "0001"
    migrate(engine)
    assert current_revision(engine) == HEAD


# -- create, get, list -------------------------------------------------------------------------


def test_create_and_get(repo, clock):
    report = new_report(repo)
    assert len(report.report_id) == 32 and int(report.report_id, 16) >= 0
    row = repo.get(report.report_id)
    assert row is not None
    assert (row.report_name, row.report_type, row.format, row.status) == (
        "January sales",
        "daily_sales",
        "csv",
        "pending",
    )
    assert (row.api_key_id, row.store_id, row.attempts, row.worker_id) == ("key-a", "s1", 0, None)
    assert row.created_at == clock.now and row.expires_at == clock.now + timedelta(days=7)
    assert row.started_at is row.completed_at is row.lease_until is row.file_name is row.error is None
    assert repo.get(uuid.uuid4().hex) is None


def test_create_refuses_unknown_type_or_format_and_names_a_default(repo):
    with pytest.raises(ValueError, match="report_type"):
        new_report(repo, report_type="nope")
    with pytest.raises(ValueError, match="format"):
        new_report(repo, format="docx")
    assert new_report(repo, report_name=None).report_name == "Daily sales"


def test_json_parameters_round_trip(repo):
    params = {
        "start": "2024-01-01T00:00:00+01:00",
        "tz": "Europe/Paris",
        "limit": 25,
        "rate": 0.125,
        "compare": True,
        "channel": None,
        "stores": ["s1", "s2"],
        "nested": {"ünï": "çödé ✓", "n": [1, [2]]},
    }
    report = new_report(repo, parameters=params)
    assert repo.get(report.report_id).parameters == params
    assert repo.list(page_size=1)[0][0].parameters == params


def test_list_filters_and_pagination(repo, clock):
    made = []
    for i in range(23):
        clock.advance(1)
        made.append(
            new_report(
                repo,
                report_type=("daily_sales", "inventory")[i % 2],
                api_key_id=("key-a", "key-b")[i % 3 == 0],
                store_id=("s1", "s2", None)[i % 3],
            )
        )
    newest_first = [r.report_id for r in reversed(made)]

    page1, total = repo.list(page=1, page_size=10)
    page3, total3 = repo.list(page=3, page_size=10)
    assert total == total3 == 23
    assert [r.report_id for r in page1] == newest_first[:10]
    assert [r.report_id for r in page3] == newest_first[20:]
    assert repo.list(page=4, page_size=10) == ([], 23)

    inventory, n = repo.list(report_type="inventory", page_size=100)
    assert n == 11 and all(r.report_type == "inventory" for r in inventory)
    by_key, n = repo.list(api_key_id="key-b", store_id="s1", page_size=100)
    expected = [r.report_id for r in reversed(made) if r.api_key_id == "key-b" and r.store_id == "s1"]
    assert n == len(expected) > 0 and [r.report_id for r in by_key] == expected

    assert repo.claim(made[0].report_id, "w1", 30) is not None
    processing, n = repo.list(status="processing")
    assert n == 1 and processing[0].report_id == made[0].report_id
    assert repo.list(status="pending")[1] == 22
    with pytest.raises(ValueError):
        repo.list(page=0)


# -- claims and leases -------------------------------------------------------------------------


def test_claim_sets_the_lease(repo, clock):
    report = new_report(repo)
    claimed = repo.claim(report.report_id, "w1", 30)
    assert claimed is not None
    assert (claimed.status, claimed.worker_id, claimed.attempts) == ("processing", "w1", 1)
    assert claimed.started_at == clock.now and claimed.lease_until == clock.now + timedelta(seconds=30)
    assert repo.get(report.report_id).lease_until == claimed.lease_until
    assert repo.claim(uuid.uuid4().hex, "w1", 30) is None


def test_only_one_of_two_concurrent_claimers_wins(repo):
    for _ in range(25):
        report = new_report(repo)
        barrier = threading.Barrier(2)
        results: dict[str, Report | None] = {}

        def claim(
            worker: str,
            report_id: str = report.report_id,
            barrier: threading.Barrier = barrier,
            results: dict[str, Report | None] = results,
        ) -> None:
            barrier.wait()
            results[worker] = repo.claim(report_id, worker, 30)

        threads = [threading.Thread(target=claim, args=(w,)) for w in ("w1", "w2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [w for w, r in results.items() if r is not None]
        assert len(results) == 2 and len(winners) == 1, results
        row = repo.get(report.report_id)
        assert (row.worker_id, row.attempts) == (winners[0], 1)


def test_a_live_lease_cannot_be_taken_an_expired_one_can(repo, clock):
    report = new_report(repo)
    assert repo.claim(report.report_id, "w1", 30) is not None
    clock.advance(29)
    assert repo.claim(report.report_id, "w2", 30) is None
    assert repo.claimable_ids() == []
    clock.advance(2)  # w1 died: its lease ran out
    assert repo.claimable_ids() == [report.report_id]
    taken = repo.claim(report.report_id, "w2", 30)
    assert taken is not None
    assert (taken.worker_id, taken.attempts, taken.started_at) == ("w2", 2, clock.now)
    # The old owner has lost the job: it can neither extend, complete nor fail it.
    assert repo.extend_lease(report.report_id, "w1", 30) is False
    assert finish(repo, report.report_id, "w1") is False
    assert repo.fail(report.report_id, "w1", "boom", retry=True) is None
    assert repo.get(report.report_id).worker_id == "w2"


def test_expired_lease_with_the_real_clock(engine):
    migrate(engine)
    repo = ReportsRepo(engine)
    report = new_report(repo)
    assert repo.claim(report.report_id, "w1", 0.3) is not None
    assert repo.claim(report.report_id, "w2", 30) is None
    time.sleep(0.5)
    taken = repo.claim(report.report_id, "w2", 30)
    assert taken is not None and taken.attempts == 2


def test_extend_lease_only_by_the_owner(repo, clock):
    report = new_report(repo)
    assert repo.extend_lease(report.report_id, "w1", 30) is False  # pending: nobody owns it
    repo.claim(report.report_id, "w1", 30)
    clock.advance(20)
    assert repo.extend_lease(report.report_id, "w2", 30) is False
    assert repo.extend_lease(report.report_id, "w1", 30) is True
    clock.advance(20)  # past the first lease, within the extended one
    assert repo.claim(report.report_id, "w2", 30) is None
    assert repo.get(report.report_id).lease_until == clock.now + timedelta(seconds=10)


def test_complete_only_by_the_owner(repo, clock):
    report = new_report(repo)
    facts = {"file_name": f"{report.report_id}.csv", "file_size": 2048, "row_count": 31, "checksum": "f" * 64}
    assert repo.complete(report.report_id, "w1", **facts) is False  # not claimed
    repo.claim(report.report_id, "w1", 30)
    assert repo.complete(report.report_id, "w2", **facts) is False
    clock.advance(5)
    assert repo.complete(report.report_id, "w1", **facts) is True
    row = repo.get(report.report_id)
    assert (row.status, row.file_name, row.file_size, row.row_count, row.checksum) == (
        "completed",
        facts["file_name"],
        2048,
        31,
        "f" * 64,
    )
    assert row.completed_at == clock.now and row.lease_until is None and row.error is None
    assert repo.complete(report.report_id, "w1", **facts) is False  # once
    assert repo.claim(report.report_id, "w2", 30) is None


def test_complete_refuses_a_path_as_file_name(repo):
    report = new_report(repo)
    repo.claim(report.report_id, "w1", 30)
    for name in ("../x.csv", "/etc/passwd", "a/b.csv", "", ".."):
        with pytest.raises(ValueError):
            finish(repo, report.report_id, "w1", name)
    assert repo.get(report.report_id).status == "processing"


def test_fail_with_retry_goes_back_to_pending_with_the_error(repo, clock):
    report = new_report(repo)
    repo.claim(report.report_id, "w1", 30)
    row = repo.fail(report.report_id, "w1", "ConnectionError: ES went away", retry=True)
    assert row is not None
    assert (row.status, row.error, row.worker_id, row.lease_until, row.attempts) == (
        "pending",
        "ConnectionError: ES went away",
        None,
        None,
        1,
    )
    # The next attempt keeps the previous error visible until it succeeds.
    again = repo.claim(report.report_id, "w2", 30)
    assert (again.attempts, again.error) == (2, "ConnectionError: ES went away")
    assert finish(repo, report.report_id, "w2")
    assert repo.get(report.report_id).error is None


def test_a_retry_waits_for_its_not_before_time_held_by_nobody(repo, clock):
    report = new_report(repo)
    repo.claim(report.report_id, "w1", 30)
    not_before = clock.now + timedelta(seconds=8)
    row = repo.fail(report.report_id, "w1", "attempt 1 of 10 failed", retry=True, not_before=not_before)
    assert (row.status, row.worker_id, row.lease_until) == ("pending", None, not_before)
    # Nobody may take it before its time, and the reaper does not see it as due.
    clock.advance(7)
    assert repo.claim(report.report_id, "w2", 30) is None
    assert report.report_id not in repo.claimable_ids()
    clock.advance(1)
    assert repo.claimable_ids() == [report.report_id]
    again = repo.claim(report.report_id, "w2", 30)
    assert (again.status, again.worker_id, again.attempts) == ("processing", "w2", 2)
    assert again.lease_until == clock.now + timedelta(seconds=30)
    # A waiting job can still be cancelled.
    other = new_report(repo)
    repo.claim(other.report_id, "w1", 30)
    repo.fail(other.report_id, "w1", "x", retry=True, not_before=clock.now + timedelta(hours=1))
    assert repo.cancel(other.report_id).status == "cancelled"


def test_fail_without_retry_is_final(repo, clock):
    report = new_report(repo)
    repo.claim(report.report_id, "w1", 30)
    assert repo.fail(report.report_id, "w2", "not mine", retry=False) is None
    clock.advance(3)
    row = repo.fail(report.report_id, "w1", "x" * 20000, retry=False)
    assert (row.status, row.completed_at, row.lease_until) == ("failed", clock.now, None)
    assert row.error == "x" * 8000  # capped
    assert repo.claim(report.report_id, "w1", 30) is None
    assert repo.cancel(report.report_id).status == "failed"


def test_cancel(repo, clock):
    pending, running, done = new_report(repo), new_report(repo), new_report(repo)
    repo.claim(running.report_id, "w1", 30)
    repo.claim(done.report_id, "w1", 30)
    finish(repo, done.report_id, "w1")

    for report in (pending, running):
        row = repo.cancel(report.report_id)
        assert (row.status, row.completed_at, row.lease_until) == ("cancelled", clock.now, None)
    # A cancelled job is over for its worker and cannot be claimed again.
    assert repo.extend_lease(running.report_id, "w1", 30) is False
    assert finish(repo, running.report_id, "w1") is False
    assert repo.claim(pending.report_id, "w2", 30) is None
    assert repo.cancel(done.report_id).status == "completed"  # too late: unchanged
    assert repo.cancel(pending.report_id).status == "cancelled"  # again: unchanged
    assert repo.cancel(uuid.uuid4().hex) is None


def test_expire_due(repo, clock):
    short = new_report(repo, expires_in=timedelta(hours=1))
    long = new_report(repo, expires_in=timedelta(days=1))
    waiting = new_report(repo, expires_in=timedelta(hours=1))
    for report in (short, long):
        repo.claim(report.report_id, "w1", 30)
        finish(repo, report.report_id, "w1")
    assert repo.expire_due(clock.now + timedelta(minutes=59)) == []
    expired = repo.expire_due(clock.now + timedelta(hours=2))
    assert [(r.report_id, r.status, r.file_name) for r in expired] == [
        (short.report_id, "expired", f"{short.report_id}.csv")
    ]
    assert repo.expire_due(clock.now + timedelta(hours=2)) == []  # each row is returned once
    assert repo.get(waiting.report_id).status == "pending"  # only completed reports expire
    clock.advance(2 * 86400)
    assert [r.report_id for r in repo.expire_due()] == [long.report_id]


# -- timestamps --------------------------------------------------------------------------------


def test_timezone_aware_timestamps_round_trip(db_url, engine):
    """Aware datetimes in any zone come back as the same instant in UTC, whatever the session's zone."""
    if engine.dialect.name == "postgresql":
        sa.event.listen(engine, "connect", _new_york_session)
        engine.dispose()
    migrate(engine)
    start = datetime(2024, 3, 10, 1, 59, 59, 999999, tzinfo=ZoneInfo("America/New_York"))  # just before DST
    repo = ReportsRepo(engine, clock=lambda: start)
    report = new_report(repo, expires_in=timedelta(hours=2))  # crosses the DST change: 2 real hours
    row = repo.get(report.report_id)
    assert row.created_at == start and row.created_at.tzinfo is UTC
    assert row.created_at == datetime(2024, 3, 10, 6, 59, 59, 999999, tzinfo=UTC)
    assert row.expires_at == datetime(2024, 3, 10, 8, 59, 59, 999999, tzinfo=UTC)
    repo.clock = lambda: datetime(2024, 3, 10, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    claimed = repo.claim(report.report_id, "w1", 60)
    assert repo.get(report.report_id).started_at == datetime(2024, 3, 10, 6, 30, tzinfo=UTC) == claimed.started_at
    assert claimed.lease_until.tzinfo is UTC
    with pytest.raises(sa.exc.StatementError, match="naive"):
        repo.expire_due(datetime(2024, 3, 10, 12, 0))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW TIME ZONE").scalar() == "America/New_York"
            assert (
                conn.execute(sa.text("SELECT created_at::text FROM reports")).scalar()
                == "2024-03-10 01:59:59.999999-05"
            )


def _new_york_session(dbapi_connection, _record) -> None:
    dbapi_connection.execute("SET TIME ZONE 'America/New_York'")
    dbapi_connection.commit()


# -- make_repo ---------------------------------------------------------------------------------


def test_make_repo_creates_the_sqlite_folder(tmp_path):
    path = tmp_path / "deep" / "er" / "analytics.db"
    repo = make_repo(Settings(database_url=f"sqlite:///{path}"))
    migrate(repo.engine)
    assert path.is_file()
    report = new_report(repo)
    seen: list[Report | None] = []
    t = threading.Thread(target=lambda: seen.append(repo.get(report.report_id)))
    t.start()
    t.join()
    assert seen[0] is not None and seen[0].report_id == report.report_id
    repo.engine.dispose()
