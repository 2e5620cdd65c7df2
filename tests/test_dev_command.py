"""A second `./dev up` (`python -m analytics_service dev`) while one runs: it says where the
first runs and changes nothing; another program on the API port is an error, before anything
is done (README "Quick start"; analytics_service/devtools/dev_instance.py)."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics_service import cli
from analytics_service.devtools import dev_instance, local_es
from analytics_service.devtools.local_servers import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def nothing_may_start(monkeypatch, tmp_path) -> Path:
    """Fail the test if `dev` goes as far as starting Elasticsearch or running setup; the
    working directory (and so ./data) is a fresh one."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("dev went on to start something")

    monkeypatch.setattr(local_es, "start", refuse)
    monkeypatch.setattr(cli, "cmd_setup", refuse)
    monkeypatch.setattr(cli, "cmd_serve", refuse)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    dev_instance.release()


def test_a_second_dev_in_the_same_checkout_says_where_the_first_runs(nothing_may_start, capsys):
    port = free_port()
    holder = f"""
import time
from analytics_service.devtools import dev_instance
assert dev_instance.claim("127.0.0.1", {port}) is None
print("claimed", flush=True)
time.sleep(120)
"""
    first = subprocess.Popen(
        [sys.executable, "-c", holder],
        cwd=nothing_may_start,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None and first.stdout.readline() == "claimed\n"
        # Even on another port: one Quick start per checkout (they share ./data).
        for args in ([], ["--port", str(free_port())]):
            assert cli.main(["dev", *args]) == 0
            out = capsys.readouterr().out
            assert f"the service is already running at http://127.0.0.1:{port} (pid {first.pid})" in out
            assert "still starting" in out and "nothing was changed" in out
    finally:
        first.kill()
        first.wait()
    assert not (nothing_may_start / "data" / "analytics.db").exists()


def test_this_service_already_on_the_port_is_reported_with_its_pid(nothing_may_start, served_api, capsys):
    port = int(served_api.rsplit(":", 1)[1])
    assert cli.main(["dev", "--port", str(port)]) == 0
    out = capsys.readouterr().out
    # The server runs in a thread of this process: its pid is ours.
    assert f"the service is already running at http://127.0.0.1:{port} (pid {os.getpid()})" in out
    assert "still starting" not in out
    assert not dev_instance._held  # nothing claimed: a later `dev` may start


class _NotThisService(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>another program</html>")

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def other_program() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotThisService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_another_program_on_the_port_is_an_error_before_anything_starts(nothing_may_start, other_program, capsys):
    assert cli.main(["dev", "--port", str(other_program)]) == 1
    err = capsys.readouterr().err
    assert f"error: port {other_program} on 127.0.0.1 is already in use by another program (pid {os.getpid()}" in err
    assert "not this service" in err and "./dev up --port N" in err
    assert not dev_instance._held


def test_a_port_that_only_listens_is_another_program_too(nothing_may_start, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert cli.main(["dev", "--port", str(port)]) == 1
    assert "is already in use by another program" in capsys.readouterr().err


def test_the_first_dev_claims_the_checkout_until_it_exits(nothing_may_start):
    port = free_port()
    assert dev_instance.claim("127.0.0.1", port) is None
    state = (nothing_may_start / "data" / "dev-instance.json").read_text()
    assert f'"pid": {os.getpid()}' in state and f"http://127.0.0.1:{port}" in state
    dev_instance.release()
    assert dev_instance.claim("127.0.0.1", port) is None  # released: claimed again
