"""What the benchmark scripts share: an API server in a subprocess, and the node's version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics_service.config import Settings  # noqa: E402
from analytics_service.devtools.local_servers import free_port  # noqa: E402
from analytics_service.es.client import make_async_client  # noqa: E402


def start_server(
    prefix: str, workdir: Path, key: str, scopes: list[str], env: dict[str, str | None] | None = None
) -> tuple[subprocess.Popen, str]:
    """`python -m analytics_service serve` on a free port, with its own SQLite file and
    reports folder (a bench server never touches data/analytics.db) and no Redis.
    `env` entries set (or, with None, remove) variables."""
    port = free_port()
    environment = dict(
        os.environ,
        INDEX_PREFIX=prefix,
        API_KEYS=json.dumps([{"key": key, "scopes": scopes}]),
        DATABASE_URL=f"sqlite:///{workdir / f'bench-{port}.db'}",
        REPORTS_DIR=str(workdir / f"reports-{port}"),
    )
    environment.pop("REDIS_URL", None)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    server = subprocess.Popen(
        [sys.executable, "-m", "analytics_service", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=environment,
    )
    return server, f"http://127.0.0.1:{port}"


def wait_ready(base_url: str, server: subprocess.Popen) -> None:
    """Until /health answers (200, or 503 while a dependency is still coming up)."""
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"the API server exited with {server.returncode}")
        try:
            if httpx.get(f"{base_url}/health", timeout=5).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the API server did not start")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def api_servers(
    prefix: str, workdir: Path, key: str, scopes: list[str], envs: Sequence[dict[str, str | None] | None] = (None,)
) -> Iterator[list[tuple[subprocess.Popen, str]]]:
    """One API server per entry of `envs` (`start_server` with that env), each answering
    /health before this yields their (process, base URL); all stopped on exit, error or not."""
    servers: list[tuple[subprocess.Popen, str]] = []
    try:
        for env in envs:
            servers.append(start_server(prefix, workdir, key, scopes, env))
        for server, base_url in servers:
            wait_ready(base_url, server)
        yield servers
    finally:
        for server, _ in servers:
            stop_server(server)


async def es_version(settings: Settings) -> str:
    """For the header line of a result: version and heap of the node."""
    es = make_async_client(settings)
    try:
        info = await es.nodes.info(node_id="_local", metric="jvm")
        node = next(iter(info["nodes"].values()))
        heap = node["jvm"]["mem"]["heap_max_in_bytes"] / 2**30
        return f"Elasticsearch {node['version']} single node ({heap:.0f} GB heap)"
    except Exception:
        return "Elasticsearch (version unknown)"
    finally:
        await es.close()
