"""``python -m analytics_service seed`` (README.md "Sample data and real data")."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ...zones import zone_named
from .base import KINDS, SampleConfig
from .sinks import DirectSink, HttpSink, NdjsonSink, SinkError, ingest


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser(defaults: dict[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analytics_service seed",
        description="Generate a believable store (products, orders, payment events, user activity, expenses) "
        "and ingest it, or write it to NDJSON files with --out. Deterministic for a given "
        "--seed and --end.",
    )
    p.add_argument("--orders", type=_positive, default=1000, help="orders to generate (default 1000)")
    p.add_argument(
        "--activity",
        type=_positive,
        default=None,
        help="user-activity records (default 5000, or 5 per order above 1000 orders)",
    )
    p.add_argument("--days", type=int, default=365, help="length of the period in days (default 365)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument(
        "--end",
        type=_parse_date,
        default=None,
        help="end of the period, exclusive: 00:00 of this date in the store's time zone (default today there)",
    )
    p.add_argument(
        "--store-id", default=defaults["store_id"], help=f"store_id of every record (default {defaults['store_id']})"
    )
    p.add_argument(
        "--timezone",
        default=defaults["timezone"],
        help=f"the store's time zone, shaping hours of day (default {defaults['timezone']})",
    )
    p.add_argument(
        "--base-currency",
        default=defaults["base_currency"],
        help=f"the store's base currency (default BASE_CURRENCY, {defaults['base_currency']})",
    )
    p.add_argument(
        "--sink",
        choices=("direct", "http"),
        default="direct",
        help="direct: through the ingest service to Elasticsearch (default); http: POST to a running API",
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="API base URL for --sink http")
    p.add_argument(
        "--api-key",
        default=os.environ.get("ANALYTICS_API_KEY"),
        help="API key with the ingest scope for --sink http (default $ANALYTICS_API_KEY)",
    )
    p.add_argument("--if-empty", action="store_true", help="do nothing when the orders index already has documents")
    p.add_argument("--out", metavar="DIR", default=None, help="write <DIR>/<kind>.ndjson instead of ingesting")
    p.add_argument("--concurrency", type=int, default=2, help="batches in flight at once (default 2)")
    p.add_argument(
        "--refresh",
        choices=("wait_for", "true", "false"),
        default=None,
        help="refresh policy of each write (default: none; indices are refreshed at the end)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _defaults() -> tuple[dict[str, str], Any]:
    try:
        from ...config import Settings

        settings = Settings()
        return {
            "store_id": settings.default_store_id,
            "timezone": settings.default_timezone,
            "base_currency": settings.base_currency,
        }, settings
    except Exception as exc:  # a broken .env should not hide --help
        print(f"warning: settings not loaded ({exc}); using built-in defaults", file=sys.stderr)
        return {"store_id": "default", "timezone": "UTC", "base_currency": "USD"}, None


def main(argv: list[str] | None = None) -> int:
    defaults, settings = _defaults()
    args = build_parser(defaults).parse_args(argv if argv is not None else sys.argv[1:])
    try:
        zone_named(args.timezone)
    except ValueError:
        print(f"error: unknown time zone {args.timezone!r}", file=sys.stderr)
        return 2
    if args.days < 1:
        print("error: --days must be >= 1", file=sys.stderr)
        return 2
    if not (len(args.base_currency) == 3 and args.base_currency.isalpha() and args.base_currency.isupper()):
        print("error: --base-currency must be an ISO 4217 code such as USD", file=sys.stderr)
        return 2
    today = datetime.now(UTC).date()
    if args.end is not None and args.end > today + timedelta(days=1):
        print(f"error: --end {args.end} is in the future; records may be at most 2 days ahead", file=sys.stderr)
        return 2
    config = SampleConfig(
        seed=args.seed,
        orders=args.orders,
        activity=args.activity,
        days=args.days,
        end=args.end,
        store_id=args.store_id,
        timezone=args.timezone,
        base_currency=args.base_currency,
    )
    # Quiet the per-request logs of the Elasticsearch transport under the progress bar.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return asyncio.run(_run(config, args, settings))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


async def _run(config: SampleConfig, args: argparse.Namespace, settings: Any) -> int:
    if args.out:
        sink: Any = NdjsonSink(args.out)
    elif args.sink == "http":
        try:
            sink = HttpSink(args.url, args.api_key, concurrency=args.concurrency, refresh=args.refresh)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        sink = DirectSink(settings, concurrency=args.concurrency, refresh=args.refresh)
    where = (
        f"{args.out}"
        if args.out
        else (
            args.url
            if args.sink == "http"
            else f"{sink.settings.elasticsearch_url if sink.settings else 'Elasticsearch'} "
            f"(prefix {sink.settings.index_prefix if sink.settings else '?'})"
        )
    )
    try:
        await sink.open()
        if args.if_empty and not args.out:
            try:
                existing = await sink.existing_orders()
            except Exception as exc:
                print(f"warning: could not check for existing orders ({exc}); seeding anyway", file=sys.stderr)
                existing = 0
            if existing:
                print(f"sample data skipped: the orders index already has {existing:,} documents (--if-empty)")
                return 0
        print(
            f"generating {config.orders:,} orders, {config.activity_count:,} activity records over {config.days} "
            f"days to {config.end_date} (seed {config.seed}, store {config.store_id!r}, tz {config.timezone}) "
            f"-> {where}",
            flush=True,
        )
        stats: dict[str, Any] = {}
        totals = await ingest(config, sink, progress=not args.quiet, concurrency=args.concurrency, stats=stats)
    except Exception as exc:
        from elasticsearch import ApiError as ESApiError
        from elasticsearch import ConnectionError as ESConnectionError

        if isinstance(exc, (SinkError, ESConnectionError, ESApiError, OSError)) or type(exc).__module__.startswith(
            "httpx"
        ):
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        raise
    finally:
        await sink.close()
    seconds = max(stats.get("seconds", 0.0), 1e-9)
    errors = 0
    for kind in KINDS:
        t = totals[kind]
        n = stats["generated"][kind]
        errors += t["errors"]
        if args.out:
            print(f"  {kind:<11} {n:>10,} records  {n / seconds:>10,.0f}/s")
        else:
            print(
                f"  {kind:<11} {n:>10,} sent  {t['indexed']:>10,} indexed  {t['duplicates']:>8,} duplicates  "
                f"{t['stale']:>6,} stale  {t['errors']:>6,} errors  {n / seconds:>9,.0f}/s"
            )
    total = sum(stats["generated"].values())
    print(
        f"done in {seconds:.1f}s: {total:,} records ({config.orders / seconds:,.0f} orders/s)"
        + (f", written to {args.out}" if args.out else "")
    )
    for sample in getattr(sink, "error_samples", [])[:5]:
        print(f"  error: {sample}", file=sys.stderr)
    if errors:
        print(f"error: {errors:,} records were not stored", file=sys.stderr)
        return 1
    return 0
