"""Running the node as the unprivileged ``elasticsearch`` user when invoked as root."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .java import _java_major
from .layout import SERVICE_USER, _log


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
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"could not create user {SERVICE_USER}: {proc.stderr.strip()}") from None
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
