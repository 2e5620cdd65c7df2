"""Start, stop and status of a node, its health and version: what the CLI and the tests call."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .account import _grant_traverse, _java_for_account, _service_account
from .config import _ensure_password, _prepare_node, read_password
from .distribution import ensure_distribution
from .java import find_java_home
from .layout import DEFAULT_USERNAME, ES_VERSION, _locked, _log, _node_dir, _resolve_data_dir, _url
from .process import (
    _abort_launch,
    _answers,
    _check_port_available,
    _failure,
    _launch,
    _node_pid,
    _request,
    _terminate,
    _wait_for_health,
    _wait_until_answering,
)


@dataclass
class NodeInfo:
    url: str
    port: int
    pid: int | None
    username: str
    password: str
    data_dir: Path
    running: bool


def status(port: int = 9200, data_dir: Path | None = None) -> NodeInfo:
    """Info about the node; ``running`` means its process lives and it answers."""
    data_dir = _resolve_data_dir(data_dir)
    password = read_password(data_dir) or ""
    pid = _node_pid(_node_dir(data_dir, port))
    running = pid is not None and _answers(port, password)
    return NodeInfo(_url(port), port, pid, DEFAULT_USERNAME, password, data_dir, running)


def cluster_health(info: NodeInfo) -> str | None:
    """Cluster health colour of a running node, or None."""
    result = _request(info.port, "/_cluster/health", info.password)
    return str(result[1].get("status")) if result and result[0] == 200 else None


def node_version(info: NodeInfo) -> str | None:
    """Elasticsearch version of the node (from ``_nodes/_local``, as ``GET /`` is missing)."""
    result = _request(info.port, "/_nodes/_local?filter_path=nodes.*.version", info.password)
    if not result or result[0] != 200:
        return None
    nodes = result[1].get("nodes") or {}
    return next((str(node.get("version")) for node in nodes.values()), None)


def start(port: int = 9200, data_dir: Path | None = None, heap: str = "2g", timeout: float = 180) -> NodeInfo:
    """Start the node (idempotent) and wait until it answers with health yellow/green."""
    data_dir = _resolve_data_dir(data_dir)
    node_dir = _node_dir(data_dir, port)
    account = _service_account()
    if account is not None:
        _grant_traverse(data_dir, account)
    data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir / "nodes" / f".{port}.lock"):
        password = _ensure_password(data_dir)
        deadline = time.monotonic() + timeout
        pid = _node_pid(node_dir)
        if pid is not None:
            _wait_until_answering(port, password, deadline, None, node_dir)
            _log(f"already running (pid {pid})")
            return NodeInfo(_url(port), port, pid, DEFAULT_USERNAME, password, data_dir, True)
        (node_dir / "es.pid").unlink(missing_ok=True)
        _check_port_available(port)

        home = ensure_distribution(data_dir)
        java_home = _java_for_account(find_java_home(), data_dir, account)
        _prepare_node(home, node_dir, port, heap, java_home, password, account)
        _log(f"starting Elasticsearch {ES_VERSION} on {_url(port)} (java {java_home}, heap {heap}) ...")
        launcher = _launch(home, node_dir, java_home, account)
        try:
            _wait_until_answering(port, password, deadline, launcher, node_dir)
            _wait_for_health(port, password, node_dir)
            try:  # the launcher exits once the daemonised node is up
                launcher.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise _failure("the Elasticsearch launcher did not exit", node_dir) from None
            pid = _node_pid(node_dir)
            if pid is None:
                raise _failure("Elasticsearch answers but its pid file is missing", node_dir)
        except BaseException:
            _abort_launch(launcher, node_dir)
            raise
        return NodeInfo(_url(port), port, pid, DEFAULT_USERNAME, password, data_dir, True)


def stop(port: int = 9200, data_dir: Path | None = None, timeout: float = 60) -> bool:
    """Stop the node started for ``port``/``data_dir`` (by its pid file only)."""
    data_dir = _resolve_data_dir(data_dir)
    node_dir = _node_dir(data_dir, port)
    if not node_dir.is_dir():
        print("not running", file=sys.stderr)
        return False
    with _locked(data_dir / "nodes" / f".{port}.lock"):
        pid = _node_pid(node_dir)
        if pid is None:
            (node_dir / "es.pid").unlink(missing_ok=True)
            print("not running", file=sys.stderr)
            return False
        _log(f"stopping Elasticsearch (pid {pid}) ...")
        _terminate(pid, timeout)
        (node_dir / "es.pid").unlink(missing_ok=True)
        return True
