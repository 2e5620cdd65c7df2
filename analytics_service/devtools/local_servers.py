"""Throw-away local servers for tests and benchmarks: a free port, a private redis-server, a
private PostgreSQL cluster (Debian's binaries, installed by ./dev)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerMissing(RuntimeError):
    """The server's binaries are not installed (./dev installs them from Debian's packages)."""


@contextmanager
def redis_server(workdir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A redis-server of our own on a free port, without persistence: its URL and process;
    stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerMissing("redis-server is not installed (./dev installs it from Debian's packages)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() >= deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin",)


def pg_bin_dir() -> Path | None:
    """Debian's PostgreSQL server binaries (initdb, pg_ctl, createdb); PG_BIN overrides."""
    candidates = [os.environ["PG_BIN"]] if os.environ.get("PG_BIN") else list(PG_BIN_DIRS)
    for candidate in candidates:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


@contextmanager
def postgres_server(settings: str = "") -> Iterator[int]:
    """A throw-away PostgreSQL cluster on a free port of 127.0.0.1, never the package's own
    cluster or port 5432: yields the port (user `postgres`, trusted; database `postgres`).
    Without durability (fsync off: nothing here outlives the process). As root the server runs
    as the `postgres` system user in a /tmp folder it owns. `settings`: more `-c name=value`
    options. Stopped and deleted on exit."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise ServerMissing(
            "PostgreSQL server binaries are not installed (./dev installs postgresql from Debian's packages)"
        )
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    workdir = Path(tempfile.mkdtemp(prefix="analytics-pg-", dir="/tmp"))
    workdir.chmod(0o755)
    if as_postgres:
        shutil.chown(workdir, "postgres", "postgres")
    data_dir, log_file = workdir / "data", workdir / "server.log"
    port = free_port()

    def run(*args: str) -> None:
        result = subprocess.run([*as_postgres, *args], cwd=workdir, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            log = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr[-3000:]}\n{log}")

    options = f"-h 127.0.0.1 -p {port} -k {workdir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    try:
        # --auth=trust: pg_hba trusts local and 127.0.0.1 connections (a throw-away server).
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        run(*initdb, "--no-locale", "--no-sync")
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(log_file),
            "-w",
            "-t",
            "60",
            "-o",
            f"{options} {settings}",
            "start",
        )
        try:
            yield port
        finally:
            subprocess.run(
                [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
                cwd=workdir,
                capture_output=True,
                timeout=120,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
