"""Constants of the local node, its data-dir layout (see the package docstring) and the file lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
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


def _members(port: int, nodes: int) -> list[int]:
    """The HTTP ports of a local cluster of `nodes` nodes: `port`, `port + 1`, ..."""
    if not 1 <= nodes <= 9:
        raise ValueError(f"--nodes must be from 1 to 9, not {nodes}")
    return [port + i for i in range(nodes)]


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
