"""``python -m analytics_service es start|stop|status`` (README.md "Commands")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .layout import DEFAULT_DATA_DIR, ES_VERSION, PASSWORD_FILE
from .node import cluster_health, start, status, stop


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", type=int, default=9200, help="HTTP port (default 9200)")
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"data dir (default $ES_LOCAL_DIR or {DEFAULT_DATA_DIR})",
    )
    parser = argparse.ArgumentParser(
        prog="analytics_service es", description=f"Local Elasticsearch {ES_VERSION}: one node or a small cluster"
    )
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="nodes of a local cluster on --port, --port + 1, ... (default 1: a single node)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start_cmd = commands.add_parser("start", parents=[common, cluster], help="start the node (idempotent)")
    start_cmd.add_argument("--heap", default="2g", help="JVM heap, -Xms/-Xmx (default 2g)")
    start_cmd.add_argument("--timeout", type=float, default=180, help="seconds to wait for startup")
    stop_cmd = commands.add_parser("stop", parents=[common, cluster], help="stop the node")
    stop_cmd.add_argument("--timeout", type=float, default=60, help="seconds before SIGKILL")
    commands.add_parser("status", parents=[common], help="show whether the node runs; exit 3 if not")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``es start|stop|status``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "start":
            info = start(args.port, args.data_dir, args.heap, args.timeout, args.nodes)
            nodes = f" ({args.nodes} nodes, ports {args.port}-{args.port + args.nodes - 1})" if args.nodes > 1 else ""
            print(
                f"Elasticsearch {ES_VERSION} running at {info.url}{nodes} "
                f"(user {info.username}, password in {info.data_dir / PASSWORD_FILE})"
            )
            return 0
        if args.command == "stop":
            stop(args.port, args.data_dir, args.timeout, args.nodes)
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
