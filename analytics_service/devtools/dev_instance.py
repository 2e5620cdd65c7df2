"""One Quick start per checkout: a second `./dev up` (`python -m analytics_service dev`) says
where the first one runs and changes nothing (README "Quick start").

The first instance holds an exclusive lock on `data/dev-instance.json` (relative to the
working directory, like the SQLite database) for as long as its process lives, and writes
its pid and URL into it. A second one that cannot take the lock reads them and stops
before setup, seeding or starting anything. With the lock taken, the API port is checked
too: this service already answering `/health` there (`serve`, or the Quick start of
another checkout) is reported the same way; any other program on it is an error, also
before anything is done.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STATE_FILE = Path("data") / "dev-instance.json"

# The lock of this process's instance: held (open) until the process exits.
_held: list[IO[str]] = []


class PortTaken(RuntimeError):
    """The API port is held by a program that is not this service."""


@dataclass
class Running:
    """The instance that already runs: where, its pid (None when it cannot be told) and
    whether its API answers yet (it may still be setting up or seeding)."""

    url: str
    pid: int | None
    serving: bool

    def message(self) -> str:
        pid = f"pid {self.pid}" if self.pid is not None else "pid unknown"
        text = f"the service is already running at {self.url} ({pid})"
        if not self.serving:
            text += ", still starting (Elasticsearch, setup, sample data)"
        kill = f", or kill {self.pid}" if self.pid is not None else ""
        return f"{text}; nothing was changed. To start it anew, stop it first (Ctrl-C in its terminal{kill})."


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)


def _url(host: str, port: int) -> str:
    shown = _probe_host(host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def is_this_service(url: str, timeout: float = 3) -> bool:
    """True when `url` answers `/health` as this service does (`status` and `checks`, 200 or 503)."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            return False
        raw = exc.read()
    except (OSError, ValueError):
        return False
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("checks"), dict) and "elasticsearch" in body["checks"]


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in _probe_host(host) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on TCP `port` (Linux /proc; None when it cannot be told)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        return int(entry.name)
    return None


def _describe(pid: int | None) -> str:
    if pid is None:
        return ""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = ""
    return f" (pid {pid}{': ' + cmdline[:120] if cmdline else ''})"


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def claim(host: str, port: int, state_file: Path = STATE_FILE) -> Running | None:
    """Make this process the checkout's Quick start, or say which one already runs.

    None: this process now holds the lock (until it exits) and the API port is free.
    A `Running`: another instance (of this checkout, or this service on the port) runs;
    nothing was changed. Raises PortTaken when another program holds the port.
    """
    state_file.parent.mkdir(parents=True, exist_ok=True)
    url = _url(host, port)
    handle = open(state_file, "a+")  # noqa: SIM115 - kept open (locked) for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        state = _read_state(state_file)
        other_url = str(state.get("url") or url)
        pid = state.get("pid")
        return Running(other_url, pid if isinstance(pid, int) else None, is_this_service(other_url))
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "url": url}) + "\n")
        handle.flush()
        if not _port_free(host, port):
            pid = listener_pid(port)
            if is_this_service(url):
                handle.close()
                return Running(url, pid, True)
            raise PortTaken(
                f"port {port} on {_probe_host(host)} is already in use by another program{_describe(pid)}, "
                f"not this service: stop it, or start the Quick start on another port (./dev up --port N)"
            )
    except BaseException:
        handle.close()
        raise
    _held.append(handle)
    return None


def release() -> None:
    """Give up this process's claim (tests; a process that exits releases it anyway)."""
    while _held:
        _held.pop().close()
