"""The Elasticsearch distribution: the integ-test-zip fetched with Maven, cached and unpacked once."""

from __future__ import annotations

import codecs
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .layout import ES_ARTIFACT, ES_VERSION, _dist_dir, _locked, _log, _resolve_data_dir

# Only files below these top-level dirs get their executable bits restored.
_EXEC_DIRS = ("bin", "lib", "modules")


def _fetch_zip(dist_dir: Path) -> Path:
    """Download the distribution zip with Maven unless it is already cached."""
    zip_path = dist_dir / f"elasticsearch-{ES_VERSION}.zip"
    if zip_path.is_file():
        return zip_path
    if shutil.which("mvn") is None:
        raise RuntimeError(f"Maven (mvn) is needed to fetch {ES_ARTIFACT}; install it or put the zip at {zip_path}")
    dist_dir.mkdir(parents=True, exist_ok=True)
    _log(f"fetching {ES_ARTIFACT} with Maven (about 110 MB, once; then cached in {dist_dir}) ...")
    returncode, output = _run_maven(
        ["dependency:copy", f"-Dartifact={ES_ARTIFACT}", f"-DoutputDirectory={dist_dir}"], dist_dir
    )
    if returncode != 0 or not zip_path.is_file():
        tail = "\n".join(output.replace("\r", "\n").splitlines()[-30:])
        raise RuntimeError(f"mvn could not fetch {ES_ARTIFACT} (exit {returncode}):\n{tail}")
    return zip_path


def _run_maven(goal: list[str], cwd: Path) -> tuple[int, str]:
    """Run mvn with its output shown on stderr as it comes, and return (exit code, the output's end).

    On a terminal (and not in CI) Maven runs interactively, so it shows its own download
    progress ("Progress (1): 12/110 MB"); otherwise in batch mode (-B), which prints a
    line when each download starts and one with its size and speed when it ends.
    """
    interactive = sys.stderr.isatty() and os.environ.get("CI") != "true"
    command = ["mvn", *([] if interactive else ["-B"]), "-Dstyle.color=never", *goal]
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail = ""
    # cwd: a pom.xml in the caller's CWD must not be picked up; no stdin: never a prompt.
    with subprocess.Popen(
        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as proc:
        assert proc.stdout is not None
        while chunk := os.read(proc.stdout.fileno(), 65536):
            text = decoder.decode(chunk)
            sys.stderr.write(text)
            sys.stderr.flush()
            tail = (tail + text)[-20000:]
    return proc.returncode, tail + decoder.decode(b"", final=True)


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
