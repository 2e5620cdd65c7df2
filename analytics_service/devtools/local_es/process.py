"""The node's process and HTTP endpoint: launch, waits for answers and health, pid lookup, termination."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .account import _Account
from .config import _keystore_env, _port_free
from .layout import CLUSTER_NAME, DEFAULT_USERNAME, _log, _url


def _request(port: int, path: str, password: str | None, timeout: float = 10) -> tuple[int, dict] | None:
    """GET with basic auth; (status, json body) or None if nothing answers."""
    request = urllib.request.Request(_url(port) + path)
    if password is not None:
        token = base64.b64encode(f"{DEFAULT_USERNAME}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    return status, body if isinstance(body, dict) else {}


def _answers(port: int, password: str | None) -> bool:
    """True if the node serves authenticated requests.

    Not ``GET /``: that endpoint lives in the rest-root module, which the
    integ-test-zip does not ship (it answers 405 there).
    """
    result = _request(port, "/_cluster/health", password, timeout=5)
    return result is not None and result[0] == 200


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (PID 1 may not reap in containers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _is_our_node(pid: int, node_dir: Path) -> bool:
    """Guard against pid reuse: the process must be the ES server of this node.

    The server's command line has no config path, but jvm.options sets
    ``-Djava.io.tmpdir=${ES_TMPDIR}``, which is the node's own tmp dir.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    tmpdir = f"-Djava.io.tmpdir={node_dir / 'tmp'}".encode()
    return tmpdir in cmdline and b"org.elasticsearch.server/org.elasticsearch.bootstrap.Elasticsearch" in cmdline


def _node_pid(node_dir: Path) -> int | None:
    """PID of this node's live server process, or None.

    Normally from the pid file. A node whose pid file was lost (a second,
    failing launch on the same node deletes it on exit) is found in /proc, so
    it can still be stopped instead of blocking the port forever.
    """
    pid = _read_pid(node_dir / "es.pid")
    if pid is not None and _pid_alive(pid) and _is_our_node(pid, node_dir):
        return pid
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_our_node(int(entry.name), node_dir) and _pid_alive(int(entry.name)):
            return int(entry.name)
    return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} not readable)"
    return "\n".join(content[-lines:]) or "(empty)"


def _failure(message: str, node_dir: Path) -> RuntimeError:
    log = node_dir / "logs" / f"{CLUSTER_NAME}.log"
    out = node_dir / "es.out"
    return RuntimeError(
        f"{message}\n--- last lines of {log} ---\n{_tail(log)}\n--- last lines of {out} ---\n{_tail(out)}"
    )


def _wait_until_answering(
    port: int, password: str, deadline: float, launcher: subprocess.Popen | None, node_dir: Path
) -> None:
    last = None
    while time.monotonic() < deadline:
        last = _request(port, "/_cluster/health", password, timeout=5)
        if last is not None and last[0] == 200:
            return
        if launcher is not None and launcher.poll() not in (None, 0):
            raise _failure(f"Elasticsearch exited with code {launcher.returncode} during startup", node_dir)
        time.sleep(1)
    answer = f"last answer: HTTP {last[0]} {json.dumps(last[1])[:300]}" if last else "no answer"
    raise _failure(f"Elasticsearch did not answer on {_url(port)} in time ({answer})", node_dir)


def _wait_for_health(port: int, password: str, node_dir: Path, nodes: int = 1) -> str:
    """Health yellow or green with at least `nodes` nodes joined."""
    path = f"/_cluster/health?wait_for_status=yellow&wait_for_nodes=%3E%3D{nodes}&timeout=60s"
    result = _request(port, path, password, timeout=70)
    if result is None or result[0] != 200 or result[1].get("status") not in ("yellow", "green"):
        raise _failure(f"cluster health did not reach yellow: {result}", node_dir)
    return str(result[1]["status"])


def _launch(home: Path, node_dir: Path, java_home: Path, account: _Account | None) -> subprocess.Popen:
    """Start ``bin/elasticsearch -d`` in its own session, output to es.out."""
    env = _keystore_env(java_home, node_dir / "config")
    env["ES_TMPDIR"] = str(node_dir / "tmp")
    cmd = [str(home / "bin" / "elasticsearch"), "-d", "-p", str(node_dir / "es.pid")]
    if account is not None:
        cmd = [*account.prefix(), *cmd]
        env["HOME"] = str(node_dir / "tmp")
        env["USER"] = env["LOGNAME"] = account.name
    with open(node_dir / "es.out", "wb") as out:
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=node_dir / "logs",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _abort_launch(launcher: subprocess.Popen, node_dir: Path) -> None:
    """Clean up after a failed start: only the launcher's group and this node's pid."""
    if launcher.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    pid = _node_pid(node_dir)
    if pid is not None:
        _terminate(pid, 20)
    (node_dir / "es.pid").unlink(missing_ok=True)


# How long a process is waited for after SIGKILL before giving up on it.
KILL_WAIT_SECONDS = 10.0


def _wait_exited(pids: list[int], deadline: float) -> list[int]:
    """Wait until every process of `pids` has exited or `deadline` passes; the ones still alive."""
    left = list(pids)
    while True:
        left = [pid for pid in left if _pid_alive(pid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


def _terminate_all(pids: list[int], timeout: float) -> list[int]:
    """SIGTERM to each at once, wait up to ``timeout`` seconds for all of them, then SIGKILL
    the rest and wait KILL_WAIT_SECONDS more; returns the pids still alive after that."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    left = _wait_exited(pids, time.monotonic() + timeout)
    if left:
        _log(f"Elasticsearch (pid {', '.join(map(str, left))}) still runs {timeout:g} s after SIGTERM: sending SIGKILL")
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        left = _wait_exited(left, time.monotonic() + KILL_WAIT_SECONDS)
    return left


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; True once the process has exited."""
    return not _terminate_all([pid], timeout)


def _check_port_available(port: int) -> None:
    """Fail fast when something else (not our node) listens on the HTTP port."""
    if not _port_free(port):
        raise RuntimeError(
            f"port {port} on 127.0.0.1 is already in use by another process "
            f"(no Elasticsearch of this data dir runs there); pick another --port"
        )
