"""Ingest throughput: the HTTP API versus the bulk writer alone, on the same records.

    python scripts/bench_ingest.py [--orders 20000] [--activity 50000] [--batch 1000] [--concurrency 2]

Generates one sample store (orders, payment events, activity), then writes it three
times into three fresh index prefixes of the same node:

1. through the HTTP API (a real uvicorn server in a subprocess, batches POSTed with httpx),
2. through the Ingestor in-process (validation + documents + bulk writer, no HTTP),
3. through the bulk writer alone, with the documents built beforehand (not timed): the same
   order, line, event, activity and customer documents the API writes, one bulk request a
   batch (the API needs five round trips for a batch of orders: read the stored versions,
   write the orders, write the lines, read and write the customer documents).

Each run sends the same batches with the same number in flight and ends with one
refresh, so the ratio shows what the API layer (HTTP, JSON, validation, document
building) costs over the raw bulk path. Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from typing import Any  # noqa: E402

import httpx  # noqa: E402
from bench_common import api_servers  # noqa: E402
from elasticsearch import AsyncElasticsearch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from analytics_service.config import Settings  # noqa: E402
from analytics_service.devtools.sample_data import SampleConfig, generate  # noqa: E402
from analytics_service.es.bulk import BulkAction, BulkWriter  # noqa: E402
from analytics_service.es.client import index_names, make_async_client  # noqa: E402
from analytics_service.es.indices import CUSTOMERS, setup_indices  # noqa: E402
from analytics_service.ingest import documents as docs  # noqa: E402
from analytics_service.ingest.customers import Entry, changes_of, customer_document  # noqa: E402
from analytics_service.ingest.paths import ingest_path  # noqa: E402
from analytics_service.ingest.schemas import Activity, Event, Order  # noqa: E402
from analytics_service.ingest.service import Ingestor  # noqa: E402

# generator kind (also the envelope key, see ingest.paths) -> (route, envelope key, model)
MODELS: dict[str, Any] = {"orders": Order, "events": Event, "activities": Activity}
KINDS: dict[str, tuple[str, str, Any]] = {kind: (ingest_path(kind), kind, model) for kind, model in MODELS.items()}
BENCH_KEY = "bench-ingest-key-" + uuid.uuid4().hex[:8]


def make_batches(orders: int, activity: int, size: int) -> list[tuple[str, list[dict]]]:
    config = SampleConfig(
        seed=7, orders=orders, activity=activity, days=365, end=datetime(2026, 11, 1, tzinfo=UTC).date()
    )
    batches: list[tuple[str, list[dict]]] = []
    for kind, records in generate(config):
        if kind in KINDS:
            batches += [(kind, records[i : i + size]) for i in range(0, len(records), size)]
    return batches


async def run_bounded(jobs, concurrency: int, progress: tqdm) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(job):
        async with gate:
            n = await job()
            progress.update(n)

    await asyncio.gather(*(one(j) for j in jobs))


async def timed(es: AsyncElasticsearch, prefix: str, desc: str, jobs, concurrency: int, total: int) -> float:
    """Seconds to run `jobs` (`concurrency` in flight, a progress bar `desc`) and then
    refresh the prefix's indices."""
    with tqdm(total=total, desc=desc, unit="rec") as bar:
        start = time.perf_counter()
        await run_bounded(jobs, concurrency, bar)
        await es.indices.refresh(index=f"{prefix}-*")
        return time.perf_counter() - start


async def bench_http(batches, prefix: str, concurrency: int, total: int) -> float:
    with api_servers(prefix, Path(tempfile.mkdtemp(prefix="bench-ingest-")), BENCH_KEY, ["ingest"]) as servers:
        base = servers[0][1]
        async with httpx.AsyncClient(base_url=base, timeout=120, headers={"X-API-Key": BENCH_KEY}) as client:

            def job(kind, records):
                route, key, _ = KINDS[kind]

                async def send() -> int:
                    r = await client.post(route, json={key: records})
                    body = r.json()
                    if r.status_code != 200 or body["errors"]:
                        raise RuntimeError(f"{route}: {r.status_code} {str(body)[:300]}")
                    return len(records)

                return send

            es = make_async_client(Settings(index_prefix=prefix))
            try:
                elapsed = await timed(es, prefix, "http", [job(k, r) for k, r in batches], concurrency, total)
            finally:
                await es.close()
    return elapsed


async def bench_ingestor(batches, settings: Settings, concurrency: int, total: int) -> float:
    es = make_async_client(settings)
    names = index_names(settings)
    await setup_indices(es, names)
    ingestor = Ingestor.for_settings(es, settings)
    methods = {"orders": ingestor.orders, "events": ingestor.events, "activities": ingestor.activities}

    def job(kind, records):
        async def send() -> int:
            result = await methods[kind](records, None)
            if result.errors:
                raise RuntimeError(result.errors[:3])
            return len(records)

        return send

    try:
        return await timed(es, settings.index_prefix, "ingestor", [job(k, r) for k, r in batches], concurrency, total)
    finally:
        await ingestor.finish()  # the last data versions, outside the timed part
        await es.close()


def prebuilt_actions(batches, settings: Settings) -> list[tuple[int, list[BulkAction]]]:
    """The documents the API would write for each batch, built outside the timed part: for a
    batch of orders, the order and line documents and the customer documents (in the store
    and across stores) as they stand after the batch, every earlier order of the customer in
    them, as the API's CustomerWriter writes them (ingest/customers.py)."""
    names = index_names(settings)
    tz = settings.store_timezone("default")
    base = settings.base_currency
    now = datetime.now(UTC)
    customer_orders: dict[str, dict[str, Entry]] = {}  # customer document id -> its entries so far
    out = []
    for kind, records in batches:
        model = KINDS[kind][2]
        actions: list[BulkAction] = []
        order_docs = []
        for raw in records:
            rec = model.model_validate(raw, strict=False)
            if kind == "orders":
                order_doc, lines = docs.order_documents(rec, "default", tz, base, now)
                order_docs.append((order_doc, (), None))
                actions += [
                    docs.order_action(order_doc, names, None),
                    *docs.line_actions(order_doc, lines, names, len(lines)),
                ]
            elif kind == "events":
                actions.append(docs.event_action(rec, rec.event_id, "default", tz, base, names, now))
            else:
                actions.append(docs.activity_action(rec, rec.activity_id, "default", tz, names, now))
        for change in changes_of(order_docs).values():
            entries = customer_orders.setdefault(change.doc_id, {})
            entries.update(change.entries)
            doc = customer_document(change.scope, change.customer_id, entries)
            actions.append(BulkAction("index", names.alias(CUSTOMERS), change.doc_id, doc))
        out.append((len(records), actions))
    return out


async def bench_bulk(prebuilt, settings: Settings, concurrency: int, total: int) -> float:
    es = make_async_client(settings)
    names = index_names(settings)
    await setup_indices(es, names)
    writer = BulkWriter(es)

    def job(n, actions):
        async def send() -> int:
            results = await writer.write(actions)
            failed = [r for r in results if not r.ok]
            if failed:
                raise RuntimeError(failed[:3])
            return n

        return send

    try:
        return await timed(
            es, settings.index_prefix, "bulk writer", [job(n, a) for n, a in prebuilt], concurrency, total
        )
    finally:
        await es.close()


async def drop(settings: Settings) -> None:
    es = make_async_client(settings)
    try:
        await es.options(ignore_status=404).indices.delete(index=f"{settings.index_prefix}-*")
        await es.options(ignore_status=404).indices.delete_index_template(name=f"{settings.index_prefix}-*")
    finally:
        await es.close()


async def main_async(args: argparse.Namespace) -> None:
    print(f"generating {args.orders} orders and {args.activity} activity records ...", file=sys.stderr)
    batches = make_batches(args.orders, args.activity, args.batch)
    total = sum(len(r) for _, r in batches)
    per_kind = {k: sum(len(r) for kk, r in batches if kk == k) for k in KINDS}
    run = uuid.uuid4().hex[:6]
    http_settings = Settings(index_prefix=f"bench-http-{run}")
    ingestor_settings = Settings(index_prefix=f"bench-ing-{run}")
    bulk_settings = Settings(index_prefix=f"bench-bulk-{run}")
    # Templates and indices exist before any timing starts.
    es_setup = make_async_client(http_settings)
    await setup_indices(es_setup, index_names(http_settings))
    await es_setup.close()
    prebuilt = prebuilt_actions(batches, bulk_settings)
    documents = sum(len(a) for _, a in prebuilt)
    warmup_settings = Settings(index_prefix=f"bench-warm-{run}")
    try:
        # Untimed: warms the node (JIT, caches) so the first timed path is not penalised.
        warm = batches[: max(1, len(batches) // 10)]
        await bench_ingestor(warm, warmup_settings, args.concurrency, sum(len(r) for _, r in warm))
        t_http = await bench_http(batches, http_settings.index_prefix, args.concurrency, total)
        t_ing = await bench_ingestor(batches, ingestor_settings, args.concurrency, total)
        t_bulk = await bench_bulk(prebuilt, bulk_settings, args.concurrency, total)
    finally:
        if not args.keep:
            for s in (warmup_settings, http_settings, ingestor_settings, bulk_settings):
                await drop(s)

    rows = [
        ("HTTP API (uvicorn + httpx)", t_http),
        ("Ingestor in-process (no HTTP)", t_ing),
        ("Bulk writer alone (documents prebuilt)", t_bulk),
    ]
    print()
    print(
        f"Records: {total:,} ({', '.join(f'{v:,} {k}' for k, v in per_kind.items())}) -> "
        f"{documents:,} documents; batches of {args.batch}, {args.concurrency} in flight; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Elasticsearch 8.19.21 single node on the same machine."
    )
    print()
    print("| path | seconds | records/s | documents/s | vs bulk writer |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, t in rows:
        print(f"| {name} | {t:.1f} | {total / t:,.0f} | {documents / t:,.0f} | {t_bulk / t:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--activity", type=int, default=50000)
    parser.add_argument("--batch", type=int, default=1000, help="records per request / bulk call")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    parser.add_argument("--keep", action="store_true", help="keep the bench indices")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
