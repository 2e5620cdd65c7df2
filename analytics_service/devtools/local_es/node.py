"""Start, stop and status of a node, its health and version: what the CLI and the tests call."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .account import _Account, _grant_traverse, _java_for_account, _service_account
from .config import _ensure_password, _prepare_node, read_password
from .distribution import ensure_distribution
from .java import find_java_home
from .layout import DEFAULT_USERNAME, ES_VERSION, _locked, _log, _members, _node_dir, _resolve_data_dir, _url
from .process import (
    _abort_launch,
    _answers,
    _check_port_available,
    _failure,
    _launch,
    _node_pid,
    _request,
    _terminate_all,
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
    """Cluster health colour of a running node and the cluster's node count ("green, 3 nodes"), or None."""
    result = _request(info.port, "/_cluster/health", info.password)
    if not result or result[0] != 200:
        return None
    nodes = result[1].get("number_of_nodes", 1)
    return f"{result[1].get('status')}, {nodes} node{'s' if nodes != 1 else ''}"


def node_version(info: NodeInfo) -> str | None:
    """Elasticsearch version of the node (from ``_nodes/_local``, as ``GET /`` is missing)."""
    result = _request(info.port, "/_nodes/_local?filter_path=nodes.*.version", info.password)
    if not result or result[0] != 200:
        return None
    nodes = result[1].get("nodes") or {}
    return next((str(node.get("version")) for node in nodes.values()), None)


CLUSTER_FILE = "cluster.json"  # in a node's dir: the HTTP ports of its cluster's nodes


def _claim_membership(node_dir: Path, members: list[int]) -> None:
    """Refuse to run a node's data in another cluster than the one it was started in: a node of
    a three-node cluster cannot elect itself alone, and a single node's data would be adopted
    by the others."""
    marker = node_dir / CLUSTER_FILE
    try:
        recorded = json.loads(marker.read_text())["members"]
    except FileNotFoundError:
        recorded = [int(node_dir.name)] if (node_dir / "data").is_dir() else None
    if recorded is not None and recorded != members:
        size = len(recorded)
        raise RuntimeError(
            f"the node data in {node_dir} belongs to a {size}-node cluster on ports {recorded}: "
            f"start it with --port {recorded[0]} --nodes {size}, or use another --port"
        )
    node_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"members": members}) + "\n")


@contextlib.contextmanager
def _starting(data_dir: Path, port: int) -> Iterator[tuple[_Account | None, str]]:
    """What a start of the node (or cluster) on `port` holds: the service account (with
    traverse permission on the data dir), the start lock of `port`, and the password."""
    account = _service_account()
    if account is not None:
        _grant_traverse(data_dir, account)
    data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir / "nodes" / f".{port}.lock"):
        yield account, _ensure_password(data_dir)


def start(
    port: int = 9200, data_dir: Path | None = None, heap: str = "2g", timeout: float = 180, nodes: int = 1
) -> NodeInfo:
    """Start the node, or the `nodes` nodes of a local cluster on `port`, `port + 1`, ...
    (idempotent), and wait until it answers with health yellow/green (every node joined)."""
    if nodes > 1:
        return _start_cluster(port, _resolve_data_dir(data_dir), heap, timeout, _members(port, nodes))
    data_dir = _resolve_data_dir(data_dir)
    node_dir = _node_dir(data_dir, port)
    with _starting(data_dir, port) as (account, password):
        deadline = time.monotonic() + timeout
        pid = _node_pid(node_dir)
        if pid is not None:
            _wait_until_answering(port, password, deadline, None, node_dir)
            _log(f"already running (pid {pid})")
            return NodeInfo(_url(port), port, pid, DEFAULT_USERNAME, password, data_dir, True)
        (node_dir / "es.pid").unlink(missing_ok=True)
        _check_port_available(port)
        _claim_membership(node_dir, [port])

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


def _start_cluster(port: int, data_dir: Path, heap: str, timeout: float, members: list[int]) -> NodeInfo:
    """Launch every node of the cluster that is not running (all at once: a master-eligible
    node waits for a quorum before its launcher returns), then wait for all of them to join."""
    with _starting(data_dir, port) as (account, password):
        deadline = time.monotonic() + timeout
        launchers: dict[int, subprocess.Popen] = {}
        try:
            for member in members:
                node_dir = _node_dir(data_dir, member)
                _claim_membership(node_dir, members)
                if _node_pid(node_dir) is not None:
                    continue
                (node_dir / "es.pid").unlink(missing_ok=True)
                _check_port_available(member)
                home = ensure_distribution(data_dir)
                java_home = _java_for_account(find_java_home(), data_dir, account)
                _prepare_node(home, node_dir, member, heap, java_home, password, account, members)
                _log(f"starting Elasticsearch {ES_VERSION} node {member} of {members} (heap {heap}) ...")
                launchers[member] = _launch(home, node_dir, java_home, account)
            for member in members:
                _wait_until_answering(member, password, deadline, launchers.get(member), _node_dir(data_dir, member))
            first = _node_dir(data_dir, port)
            _wait_for_health(port, password, first, nodes=len(members))
            for member, launcher in launchers.items():
                try:
                    launcher.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise _failure("the Elasticsearch launcher did not exit", _node_dir(data_dir, member)) from None
        except BaseException:
            for member, launcher in launchers.items():
                _abort_launch(launcher, _node_dir(data_dir, member))
            raise
        if not launchers:
            _log(f"already running ({len(members)} nodes)")
        pid = _node_pid(_node_dir(data_dir, port))
        return NodeInfo(_url(port), port, pid, DEFAULT_USERNAME, password, data_dir, True)


def stop(port: int = 9200, data_dir: Path | None = None, timeout: float = 60, nodes: int = 1) -> bool:
    """Stop the node started for ``port``/``data_dir`` (by its pid file only), or each of the
    `nodes` nodes of the cluster on `port`, `port + 1`, ...: all are sent SIGTERM at once, and
    this returns once every one of them has exited (SIGKILL after `timeout` seconds). False
    when none was running; RuntimeError when one is still there after SIGKILL (process.KILL_WAIT_SECONDS)."""
    data_dir = _resolve_data_dir(data_dir)
    with contextlib.ExitStack() as locks:
        pids: dict[int, int] = {}
        for member in _members(port, nodes):
            node_dir = _node_dir(data_dir, member)
            if not node_dir.is_dir():
                continue
            locks.enter_context(_locked(data_dir / "nodes" / f".{member}.lock"))
            pid = _node_pid(node_dir)
            if pid is None:
                (node_dir / "es.pid").unlink(missing_ok=True)
            else:
                pids[member] = pid
        if not pids:
            print("not running", file=sys.stderr)
            return False
        where = ", ".join(f"{_url(member)} (pid {pid})" for member, pid in pids.items())
        _log(f"stopping Elasticsearch on {where} ...")
        started = time.monotonic()
        left = _terminate_all(list(pids.values()), timeout)
        if left:
            dirs = ", ".join(str(_node_dir(data_dir, m)) for m, pid in pids.items() if pid in left)
            raise RuntimeError(
                f"Elasticsearch (pid {', '.join(map(str, left))}) is still running after SIGTERM ({timeout:g} s) "
                f"and SIGKILL; see the logs under {dirs} and end it by hand"
            )
        for member in pids:
            (_node_dir(data_dir, member) / "es.pid").unlink(missing_ok=True)
        exited = "every node has exited" if len(pids) > 1 else "the node has exited"
        _log(f"Elasticsearch stopped: {exited} ({time.monotonic() - started:.1f} s)")
        return True
