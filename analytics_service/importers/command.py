"""The `import-csv` command: options, exit status and output as in docs/importing.md "The command"."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..config import Settings
from .mapping import Mapping, MappingError, builtin_mappings, load_mapping
from .report import ImportReport
from .runner import import_csv

if TYPE_CHECKING:
    from ..ingest.service import Ingestor


def _store_id_argument(value: str) -> str:
    """--store-id follows the records' store_id rule (ingest.limits.check_store_id)."""
    from ..ingest.limits import check_store_id

    try:
        return check_store_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"store id {value!r} {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analytics_service import-csv",
        description="Import orders from a CSV export using a column mapping (see docs/importing.md).",
    )
    parser.add_argument("file", help="the CSV file")
    parser.add_argument(
        "--mapping",
        required=True,
        help=f"a built-in mapping ({', '.join(builtin_mappings())}) or a path to a JSON mapping",
    )
    parser.add_argument(
        "--store-id",
        type=_store_id_argument,
        help="store of every imported order and product (default: DEFAULT_STORE_ID)",
    )
    parser.add_argument("--batch-size", type=int, default=2000, help="orders per ingest batch (default 2000, max 5000)")
    parser.add_argument("--limit", type=int, help="import only the first N orders of the file")
    parser.add_argument("--dry-run", action="store_true", help="read and validate everything, write nothing")
    parser.add_argument("--errors-csv", metavar="PATH", help="write every error and warning to this CSV file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


async def _run(args: argparse.Namespace, mapping: Mapping, settings: Settings) -> ImportReport:
    def run(ingestor: Ingestor | None) -> Awaitable[ImportReport]:
        progress = not args.no_progress
        return import_csv(
            args.file, mapping, ingestor, args.store_id, args.batch_size, progress, limit=args.limit, settings=settings
        )

    if args.dry_run:
        return await run(None)
    from ..es.client import make_async_client
    from ..es.indices import IndexGuard
    from ..ingest.service import Ingestor

    es = make_async_client(settings)
    ingestor = Ingestor.for_settings(es, settings)
    try:
        await IndexGuard(es, ingestor.names, auto_setup=True).ensure()
        return await run(ingestor)
    finally:
        # Searchable, and every API process told at once (ingest/publisher.py); after a failed
        # or interrupted import too, for what it did write.
        with suppress(Exception):
            await ingestor.finish()
        await es.close()


def destination(store_id: str | None, mapping: Mapping, settings: Settings, report: ImportReport) -> list[str]:
    """The lines that say which store the import wrote to (or would, in a dry run), and where."""
    verb = "dry run: would import" if report.dry_run else "imported"
    where = f"(index prefix {settings.index_prefix}, Elasticsearch {settings.elasticsearch_url})"
    orders = f"{report.orders:,} order{'' if report.orders == 1 else 's'}"
    source = next((s for s in mapping.order if s.target == "store_id"), None)
    if store_id is None and source is not None and source.constant and source.value is not None:
        store_id = str(source.value)
    if store_id is not None:
        return [f"{verb} {orders} into store {store_id!r} {where}"]
    default = settings.default_store_id
    if source is not None:
        return [
            f"{verb} {orders} into the stores of column {source.column!r} "
            f"(store {default!r}, DEFAULT_STORE_ID, for lines without one) {where}"
        ]
    return [
        f"{verb} {orders} into store {default!r} {where}",
        f"  no --store-id given: {default!r} is the default store (DEFAULT_STORE_ID), the one ./dev up loads its "
        "sample data into; pass --store-id S to import into a store of its own (and read it with store_id=S)",
    ]


def main(argv: list[str] | None = None) -> int:
    """The `import-csv` command: 0 when every line was imported, 1 when some were not, 2 on usage errors."""
    parser = build_parser()
    # One line per bulk request would bury the progress bar and the summary.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not 1 <= args.batch_size <= 5000:
        parser.print_usage(sys.stderr)
        print("error: --batch-size must be between 1 and 5000", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    if not Path(args.file).is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    try:
        mapping = load_mapping(args.mapping)
        settings = Settings()
    except (MappingError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_run(args, mapping, settings))
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Elasticsearch unreachable, refused credentials...
        from elasticsearch import ApiError as ESApiError
        from elasticsearch import ConnectionError as ESConnectionError

        from ..errors import ApiError

        if isinstance(exc, (ESConnectionError, ESApiError, ApiError)):
            print(f"error: Elasticsearch at {settings.elasticsearch_url}: {exc}", file=sys.stderr)
            print("nothing was lost: every write is idempotent, run the same import again", file=sys.stderr)
            return 1
        raise
    print(report.summary())
    print("\n".join(destination(args.store_id, mapping, settings, report)))
    if args.errors_csv:
        report.write_problems(args.errors_csv)
        print(f"all errors and warnings written to {args.errors_csv}")
    return 0 if report.ok else 1
