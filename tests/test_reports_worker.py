"""The Redis path: `python -m analytics_service worker` processes, a real redis-server, SQLite.

A worker killed (SIGKILL) in the middle of a job: the job completes after a new worker
starts, once, and its row says so. Two workers given the same id twice run it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from analytics_service.app import create_app
from analytics_service.reports.queue import MemoryJobQueue, RedisJobQueue
from tests.conftest import ROOT, generate_records, headers, ingest_records, make_settings, report_row, request_report

END = date(2026, 11, 15)
PERIOD = {"start": "2026-10-01", "end": "2026-11-01"}
LEASE = 3  # seconds: heartbeat every second; a dead worker's job is free 3 s after its last heartbeat


@pytest.fixture(scope="module")
def redis_settings(es_connection, prefix, redis_url, tmp_path_factory):
    return make_settings(es_connection, prefix, tmp_path_factory.mktemp("reports-worker"), redis_url=redis_url)


@pytest.fixture(scope="module")
def api(redis_settings) -> Iterator[TestClient]:
    """The API with REDIS_URL: it writes rows and enqueues, never runs jobs itself."""
    with TestClient(create_app(redis_settings)) as client:
        assert client.app.state.reports.worker is None
        ingest_records(client, generate_records(seed=41, orders=120, activity=300, days=60, end=END))
        yield client


class WorkerProcess:
    """One `python -m analytics_service worker` with its log file."""

    def __init__(self, settings, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        environment = {
            **os.environ,
            "ELASTICSEARCH_URL": settings.elasticsearch_url,
            "ES_LOCAL_DIR": str(settings.es_local_dir),
            "INDEX_PREFIX": settings.index_prefix,
            "REDIS_URL": settings.redis_url,
            "DATABASE_URL": settings.database_url,
            "REPORTS_DIR": str(settings.reports_dir),
            "REPORT_LEASE_SECONDS": str(LEASE),
            "REPORT_REAPER_SECONDS": "0.5",
            "REPORT_POLL_SECONDS": "0.5",
            **env,
        }
        if settings.elasticsearch_username:
            environment["ELASTICSEARCH_USERNAME"] = settings.elasticsearch_username
        for name in ("elasticsearch_password", "elasticsearch_api_key"):
            if getattr(settings, name):
                environment[name.upper()] = getattr(settings, name).get_secret_value()
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop/kill)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "analytics_service", "worker"],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "report worker" not in self.log() or " started " not in self.log():
            assert self.proc.poll() is None, f"the worker exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"the worker did not start:\n{self.log()}"
            time.sleep(0.1)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code


@pytest.fixture
def workers(redis_settings, tmp_path) -> Iterator[callable]:
    started: list[WorkerProcess] = []

    def start(name: str, **env: str) -> WorkerProcess:
        worker = WorkerProcess(redis_settings, tmp_path / f"{name}.log", **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)


def generate(api: TestClient) -> str:
    return request_report(api, "daily_sales", "csv", PERIOD)


def wait_until(api: TestClient, report_id: str, check, timeout: float, what: str, *logs: WorkerProcess) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = report_row(api, report_id)
        if check(row):
            return row
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s: {row}\n" + "\n".join(w.log() for w in logs))


def report_files(settings) -> list[str]:
    """Every file under REPORTS_DIR, temporary (hidden) ones included."""
    return sorted(p.name for p in Path(settings.reports_dir).iterdir())


def redis_lists(settings) -> dict[str, int]:
    client = Redis.from_url(settings.redis_url)
    try:
        keys = client.keys(f"{settings.index_prefix}:reports:*")
        return {k.decode(): client.llen(k) for k in keys if client.type(k) == b"list"}
    finally:
        client.close()


def test_the_worker_command_needs_redis(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "analytics_service", "worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "REDIS_URL" in done.stderr and "in-process" in done.stderr


def test_a_job_of_a_killed_worker_completes_once_after_a_restart(api, redis_settings, workers):
    first = workers("first", REPORT_TEST_DELAY_SECONDS="60")
    report_id = generate(api)
    row = wait_until(api, report_id, lambda r: r["status"] == "processing", 60, "processing", first)
    assert row["attempts"] == 1
    first_started = row["started_at"]
    first.kill()  # SIGKILL: no goodbye, the lease just stops being renewed
    assert report_row(api, report_id)["status"] == "processing"

    second = workers("second", REPORT_TEST_DELAY_SECONDS="1")
    row = wait_until(api, report_id, lambda r: r["status"] in ("completed", "failed"), 90, "completion", second)
    assert row["status"] == "completed", row
    assert row["attempts"] == 2  # the killed attempt, then the one that finished
    assert row["started_at"] > first_started
    assert row["error"] is None
    # One file, the finishing attempt's own: nothing left of the killed attempt.
    assert report_files(redis_settings) == [f"{report_id}-2.csv"]
    data = (Path(redis_settings.reports_dir) / f"{report_id}-2.csv").read_bytes()
    assert hashlib.sha256(data).hexdigest() == row["checksum"] and len(data) == row["file_size"]
    assert second.stop() == 0  # SIGTERM: a clean exit
    # The first worker never completed it; the second ran it once, and its id is on the row.
    assert f"report {report_id}: completed" not in first.log()
    assert second.log().count(f"report {report_id}: completed") == 1
    assert f"report {report_id}: attempt 2" in second.log()
    assert "re-queued 1 report job" in second.log()
    engine_row = api.app.state.reports.service.repo.get(report_id)
    assert engine_row.worker_id.split(":")[1] == str(second.pid)
    assert sum(redis_lists(redis_settings).values()) == 0  # nothing queued or held any more


def test_a_worker_paused_past_its_lease_never_touches_the_file_of_the_one_that_took_over(api, redis_settings, workers):
    first = workers("paused", REPORT_TEST_DELAY_SECONDS="3")
    report_id = generate(api)
    wait_until(api, report_id, lambda r: r["status"] == "processing", 60, "processing", first)
    first.proc.send_signal(signal.SIGSTOP)  # frozen mid-job: its lease runs out
    try:
        second = workers("took-over", REPORT_TEST_DELAY_SECONDS="0")
        row = wait_until(api, report_id, lambda r: r["status"] == "completed", 90, "completion", second)
        assert row["attempts"] == 2
    finally:
        first.proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 30
    while "no longer ours" not in first.log():  # it wakes up, finds the job taken over, and drops its result
        assert time.monotonic() < deadline, first.log()
        time.sleep(0.2)
    published = api.app.state.reports.service.repo.get(report_id).file_name
    assert published == f"{report_id}-2.csv"
    assert [f for f in report_files(redis_settings) if report_id in f] == [published]
    data = (Path(redis_settings.reports_dir) / published).read_bytes()
    assert hashlib.sha256(data).hexdigest() == row["checksum"] and len(data) == row["file_size"]
    download = api.get(f"/api/v1/reports/{report_id}/download", headers=headers("reports"))
    assert download.status_code == 200 and download.content == data
    assert first.stop() == 0 and second.stop() == 0


def test_two_workers_never_run_one_job_twice(api, redis_settings, workers):
    one = workers("one", REPORT_TEST_DELAY_SECONDS="2")
    two = workers("two", REPORT_TEST_DELAY_SECONDS="2")
    one.wait_started()
    two.wait_started()  # both waiting on the queue
    report_id = generate(api)
    # The same id delivered again: both workers take one copy at about the same time.
    asyncio.run(_enqueue_again(redis_settings, report_id))
    row = wait_until(api, report_id, lambda r: r["status"] in ("completed", "failed"), 60, "completion", one, two)
    assert row["status"] == "completed" and row["attempts"] == 1
    time.sleep(1)
    logs = one.log() + two.log()
    assert logs.count(f"report {report_id}: attempt 1") == 1
    assert logs.count(f"report {report_id}: completed") == 1
    assert logs.count(f"report {report_id}: not claimable") == 1
    # Each worker took one copy: the one that did not run it found it claimed.
    _, other = (one, two) if f"report {report_id}: completed" in one.log() else (two, one)
    assert f"report {report_id}: not claimable" in other.log()
    assert f"{report_id}-1.csv" in report_files(redis_settings)
    assert one.stop() == 0 and two.stop() == 0


async def _enqueue_again(settings, report_id: str) -> None:
    from redis.asyncio import Redis as AsyncRedis

    redis = AsyncRedis.from_url(settings.redis_url)
    try:
        await RedisJobQueue(redis, settings.index_prefix).enqueue(report_id)
    finally:
        await redis.aclose()


def test_sigterm_in_the_middle_of_a_job_releases_it(api, redis_settings, workers):
    worker = workers("released", REPORT_TEST_DELAY_SECONDS="30", REPORT_SHUTDOWN_GRACE_SECONDS="1")
    report_id = generate(api)
    wait_until(api, report_id, lambda r: r["status"] == "processing", 60, "processing", worker)
    assert worker.stop(timeout=30) == 0
    row = report_row(api, report_id)
    assert row["status"] == "pending" and "interrupted" in row["error"]
    assert f"report {report_id}: released" in worker.log()
    # Given back to the queue: the next worker takes it at once, without waiting for a lease.
    follower = workers("follower")
    row = wait_until(api, report_id, lambda r: r["status"] == "completed", 60, "completion", follower)
    assert row["attempts"] == 2 and row["error"] is None
    assert follower.stop() == 0


# -- the queues on their own -------------------------------------------------------------------


def test_redis_queue_delivers_in_order_and_reaps_dead_workers_jobs(redis_url):
    async def scenario() -> None:
        from redis.asyncio import Redis as AsyncRedis

        redis = AsyncRedis.from_url(redis_url)
        queue = RedisJobQueue(redis, f"unit-{os.getpid()}-{time.monotonic_ns()}")
        try:
            for rid in ("a", "b", "c"):
                await queue.enqueue(rid)
            await queue.heartbeat("w1", 0.3)
            assert await queue.reserve("w1", 0.1) == "a"
            assert await queue.reserve("w1", 0.1) == "b"
            await queue.ack("a", "w1")
            # w1 is alive and holds b: b is not queued again even if the table says it is due.
            assert await queue.requeue_stale(["b"]) == 0
            # c is queued already: not twice.
            assert await queue.requeue_stale(["c"]) == 0
            await asyncio.sleep(0.4)  # w1's heartbeat lapses: it is dead
            assert await queue.requeue_stale(["b"]) == 1
            assert await queue.queued() == ["b", "c"]  # a job given back goes first: it waited longest
            assert await redis.exists(queue.processing_key("w1")) == 0  # the dead worker's list is gone
            assert await queue.reserve("w2", 0.1) == "b"
            assert await queue.reserve("w2", 0.1) == "c"
            assert await queue.reserve("w2", 0.1) is None
        finally:
            await redis.aclose()

    asyncio.run(scenario())


def test_memory_queue_requeues_only_what_nobody_holds():
    async def scenario() -> None:
        queue = MemoryJobQueue()
        await queue.enqueue("a")
        assert await queue.reserve("w", 0.05) == "a"
        assert await queue.reserve("w", 0.05) is None
        assert await queue.requeue_stale(["a", "b"]) == 1  # a is held; b was lost
        assert await queue.reserve("w", 0.05) == "b"
        await queue.ack("a", "w")
        assert await queue.requeue_stale(["a"]) == 1

    asyncio.run(scenario())
