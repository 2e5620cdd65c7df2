"""`python -m analytics_service <command>` (README "Commands" and "Settings")."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from pydantic import ValidationError

from .config import Settings
from .log_setup import configure_logging

# Keys the `dev` command uses when API_KEYS is not set: local development only.
DEV_API_KEYS = [
    {"key": "dev-admin-key", "scopes": ["admin"], "name": "local admin"},
    {"key": "dev-ingest-key", "scopes": ["ingest"], "name": "local ingest"},
    {"key": "dev-read-key", "scopes": ["read", "reports"], "name": "local analyst"},
]


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    Settings()  # fail here, with main's message, on bad settings (the app factory builds its own)
    uvicorn.run(
        "analytics_service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=None,  # keep log_setup's handler: uvicorn's lines in the same format as ours
        access_log=False,  # request_context.py logs one line per request, with the request id and key id
    )
    return 0


def cmd_setup(_: argparse.Namespace) -> int:
    from .es.client import index_names, make_async_client
    from .es.indices import setup_indices
    from .ingest.customers import ensure_customer_documents

    settings = Settings()

    async def run() -> list[str]:
        es = make_async_client(settings)
        names = index_names(settings)
        try:
            changes = await setup_indices(es, names)
            built = await ensure_customer_documents(es, names)
            return [*changes, *([built] if built else [])]
        finally:
            await es.close()

    changes = asyncio.run(run())
    print("\n".join(f"created {c}" for c in changes) if changes else "index templates and indices already up to date")
    from .reports.table import current_revision, make_repo, migrate

    repo = make_repo(settings)
    try:
        migrate(repo.engine)
        print(f"reports table at revision {current_revision(repo.engine)}")
    finally:
        repo.engine.dispose()
    return 0


def cmd_worker(_: argparse.Namespace) -> int:
    """Run report jobs from the Redis queue, and alerts, schedules and deliveries (docs/alerts.md), until
    SIGTERM/SIGINT (the current job finishes or is released)."""
    settings = Settings()
    if not settings.redis_url:
        print(
            "REDIS_URL is not set: without Redis the API process runs report jobs, alerts and schedules in-process, "
            "so no separate worker is needed. Set REDIS_URL to run workers.",
            file=sys.stderr,
        )
        return 2
    from .reports.worker import serve

    return asyncio.run(serve(settings))


def cmd_retention(args: argparse.Namespace) -> int:
    """Delete what is past its horizon (docs/operations.md "Retention"); `--dry-run` lists it only."""
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per migration plugin is noise here
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)  # an unreachable node: our one error line
    from .retention import run_command

    return asyncio.run(run_command(Settings(), dry_run=args.dry_run))


def cmd_es(args: argparse.Namespace) -> int:
    from .devtools import local_es

    return local_es.main(args.rest)


def cmd_seed(args: argparse.Namespace) -> int:
    from .devtools import sample_data

    return sample_data.main(args.rest)


def cmd_import_csv(args: argparse.Namespace) -> int:
    from .importers import csv_import

    return csv_import.main(args.rest)


def cmd_dev(args: argparse.Namespace) -> int:
    """Quick start: local Elasticsearch, indices, sample data, API on 127.0.0.1:8000.

    A second one while one runs (in this checkout, or this service on the port) says where
    and exits 0 before doing anything; another program on the port is an error (exit 1)."""
    from .devtools import dev_instance, local_es

    try:
        running = dev_instance.claim(args.host, args.port)
    except dev_instance.PortTaken as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if running is not None:
        print(running.message(), flush=True)
        return 0
    node = local_es.start(port=args.es_port)
    print(f"Elasticsearch at {node.url}", flush=True)
    os.environ.setdefault("ELASTICSEARCH_URL", node.url)
    # The Quick start is local development: the default SIGNING_SECRET is accepted (README "Settings").
    os.environ.setdefault("APP_ENV", "development")
    if not os.environ.get("API_KEYS"):
        os.environ["API_KEYS"] = json.dumps(DEV_API_KEYS)
        keys = ", ".join(f"{k['key']} ({'/'.join(k['scopes'])})" for k in DEV_API_KEYS)
        print(f"API keys (local development): {keys}")
    cmd_setup(args)
    from .devtools import sample_data

    if sample_data.main(["--if-empty", "--sink", "direct"]) != 0:
        return 1
    print(f"API on http://{args.host}:{args.port}  (docs: http://{args.host}:{args.port}/docs)", flush=True)
    return cmd_serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics_service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    for name, func, help_text in (
        ("serve", cmd_serve, "run the API"),
        ("dev", cmd_dev, "local ES + setup + sample data + API (the Quick start)"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--log-level", default="info")
        if name == "dev":
            p.add_argument("--es-port", type=int, default=9200, help="port of the local Elasticsearch node")
        p.set_defaults(func=func)

    sub.add_parser("setup", help="index templates, indices and the reports table (idempotent)").set_defaults(
        func=cmd_setup
    )
    sub.add_parser("worker", help="run report jobs, alerts, schedules and deliveries (needs REDIS_URL)").set_defaults(
        func=cmd_worker
    )
    retention = sub.add_parser(
        "retention", help="delete monthly indices, report files and alert history past their horizons"
    )
    retention.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    retention.set_defaults(func=cmd_retention)

    from .kibana.command import add_parser as add_kibana_parser

    add_kibana_parser(sub)

    for name, help_text in PASSTHROUGH_HELP.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


# Commands whose own parser takes every argument after the command name.
PASSTHROUGH = {"es": cmd_es, "seed": cmd_seed, "import-csv": cmd_import_csv}
PASSTHROUGH_HELP = {
    "es": "start|stop|status a local Elasticsearch node (or a small cluster: --nodes N)",
    "seed": "generate and ingest sample data",
    "import-csv": "import orders from a CSV file with a column mapping",
}


# The Quick start's command logs readable lines; every other one JSON lines, for a collector.
CONSOLE_COMMANDS = frozenset({"dev"})


def main(argv: list[str] | None = None) -> int:
    argv = list(argv if argv is not None else sys.argv[1:])
    # LOG_FORMAT and LOG_LEVEL from the environment or .env, read here: the logs must work before
    # (and when) the other settings fail to validate.
    fmt = log_setting("LOG_FORMAT").lower()
    if fmt not in ("json", "console"):
        fmt = "console" if argv[:1] and argv[0] in CONSOLE_COMMANDS else "json"
    configure_logging(fmt, log_setting("LOG_LEVEL") or "INFO")
    try:
        if argv and argv[0] in PASSTHROUGH:
            return int(PASSTHROUGH[argv[0]](argparse.Namespace(rest=argv[1:])) or 0)
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        print(settings_error(exc), file=sys.stderr)
        return 2


def log_setting(name: str) -> str:
    """A logging setting as Settings would read it: the environment first, then `.env`."""
    from dotenv import dotenv_values

    value = os.environ.get(name)
    if value is None:
        value = dotenv_values(".env").get(name) if os.path.exists(".env") else None
    return (value or "").strip()


def settings_error(exc: ValidationError) -> str:
    """Settings that failed validation, one line each, named as in the environment; never their values."""
    lines = ['invalid settings (see README "Settings"):']
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {message}" if not name or message.startswith(name) else f"  {name}: {message}")
    return "\n".join(lines)
