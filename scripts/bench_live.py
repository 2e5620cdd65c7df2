"""Reads while data flows in: API latency with the freshness budget during a sustained ingest.

    python scripts/bench_live.py [--orders 1000000] [--ingest-clients 4] [--read-clients 4]
                                 [--seconds 120] [--staleness 5] [--periods 30d 365d]
                                 [--endpoints NAME ...] [--split-servers] [--json PATH]

Runs on the benchmark store of scripts/bench_queries.py (load it first with
`python scripts/bench_queries.py --load-only`). One API server (a uvicorn subprocess,
default settings: the in-process response cache, CACHE_MAX_STALENESS_SECONDS from
`--staleness`) serves both sides for `--seconds`:

- `--ingest-clients` clients post batches of 500 generated orders (with their payment
  events and activity records) through the HTTP API, one batch after the other each.
  They belong to a store of their own, `live`, with customer ids of their own, so that
  the benchmark store is unchanged once the run deletes them again (it does, at the end,
  by id: orders, lines, events, activity and customer documents);
- `--read-clients` clients read with a key of all stores (whose answers every ingest
  for any store makes out of date) the endpoints of bench_queries' list for the 30 and
  the 365 days before 2026-11-01, in turn, each client starting at another place.

With `--split-servers` the ingest clients post to one API process and the read clients read
from a second one, both with REDIS_URL set to a private redis-server this script starts (the
response cache and the stores' data versions shared, as in a deployment with several
processes): the reads no longer share a Python process, and its GIL, with the ingest's
validation and document building.

Every endpoint is read once before the clock starts (the first answer of a key is always
computed). Prints, per endpoint and overall, the reads' p50 and p95 and how they were
served (computed, cached and current, cached and stale), and the orders per second
ingested; `--json PATH` writes the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import httpx  # noqa: E402
from bench_common import api_servers, es_version  # noqa: E402
from bench_queries import ENDPOINTS, FULL_ORDERS, Endpoint, counts, pct, prefix_for  # noqa: E402

from analytics_service.config import Settings  # noqa: E402
from analytics_service.devtools.local_servers import redis_server  # noqa: E402
from analytics_service.devtools.sample_data import SampleConfig  # noqa: E402
from analytics_service.devtools.sample_data.generator import generate  # noqa: E402
from analytics_service.es.client import index_names, make_async_client  # noqa: E402
from analytics_service.es.indices import CUSTOMERS, FAMILIES  # noqa: E402
from analytics_service.ingest.customers import ALL_STORES  # noqa: E402
from analytics_service.ingest.paths import ingest_path  # noqa: E402

LIVE_STORE = "live"
LIVE_CUSTOMER = "live-"  # prefix of the live store's customer ids
BATCH = 500
KEY = "bench-live-key-" + uuid.uuid4().hex[:8]
INGESTED_KINDS = ("orders", "events", "activities")


def live_batches(orders: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Generated records of the `live` store in the 30 days before 2026-11-01 (inside the
    periods read), orders first, with customer ids that no benchmark customer has."""
    config = SampleConfig(seed=11, orders=orders, days=30, end=date(2026, 11, 1), store_id=LIVE_STORE)
    batches = []
    for kind, records in generate(config):
        if kind not in INGESTED_KINDS:
            continue
        for record in records:
            customer = record.get("customer")
            if isinstance(customer, dict) and customer.get("customer_id"):
                customer["customer_id"] = LIVE_CUSTOMER + str(customer["customer_id"])
        batches += [(kind, records[i : i + BATCH]) for i in range(0, len(records), BATCH)]
    return batches


async def ingest_client(client: httpx.AsyncClient, jobs, deadline: float, sent: Counter) -> None:
    for kind, records in jobs:
        if time.monotonic() >= deadline:
            return
        r = await client.post(ingest_path(kind), json={kind: records})
        body = r.json()
        if r.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"{kind}: {r.status_code} {str(body)[:300]}")
        sent[kind] += len(records)


async def read_client(
    client: httpx.AsyncClient, endpoints: list[Endpoint], start: int, deadline: float, samples: dict
) -> None:
    for endpoint in itertools.islice(itertools.cycle(endpoints), start, None):
        if time.monotonic() >= deadline:
            return
        t0 = time.perf_counter()
        r = await client.get(endpoint.path, params=endpoint.query)
        elapsed = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"{endpoint.name}: {r.status_code} {r.text[:300]}")
        body = r.json()
        served = "stale" if body.get("stale") else "cached" if body.get("cached") else "computed"
        samples[(endpoint.name, endpoint.period)].append((elapsed, served))


async def delete_matching(es, alias: str, query: dict[str, Any]) -> int:
    """Delete the documents of `alias` matching `query`, read from one point in time."""
    if not await es.indices.exists_alias(name=alias):
        return 0
    pit = (await es.open_point_in_time(index=alias, keep_alive="2m"))["id"]
    deleted, after = 0, None
    try:
        while True:
            r = await es.search(
                pit={"id": pit, "keep_alive": "2m"},
                size=5000,
                query=query,
                sort=["_shard_doc"],
                search_after=after,
                source=False,
                track_total_hits=False,
            )
            pit, hits = r.get("pit_id", pit), r["hits"]["hits"]
            if not hits:
                return deleted
            await es.bulk(operations=[{"delete": {"_index": h["_index"], "_id": h["_id"]}} for h in hits])
            deleted, after = deleted + len(hits), hits[-1]["sort"]
    finally:
        await es.close_point_in_time(id=pit)


async def remove_live_store(settings: Settings) -> int:
    """Delete every document of the live store, and the all-stores customer documents of
    its customers, by id (the minimal distribution has no delete-by-query)."""
    es = make_async_client(settings)
    names = index_names(settings)
    removed = 0
    try:
        await es.indices.refresh(index=",".join(names.alias(f) for f in FAMILIES), ignore_unavailable=True)
        for family in FAMILIES:
            query: dict[str, Any] = {"term": {"store_id": LIVE_STORE}}
            if family is CUSTOMERS:
                theirs = {"term": {"store_id": ALL_STORES}}, {"prefix": {"customer_id": LIVE_CUSTOMER}}
                query = {"bool": {"should": [query, {"bool": {"filter": list(theirs)}}], "minimum_should_match": 1}}
            removed += await delete_matching(es, names.alias(family), query)
        await es.indices.refresh(index=",".join(names.alias(f) for f in FAMILIES), ignore_unavailable=True)
    finally:
        await es.close()
    return removed


async def main_async(args: argparse.Namespace) -> int:
    prefix = prefix_for(args.orders)
    settings = Settings(index_prefix=prefix)
    found = await counts(settings)
    if found["orders"] < args.orders:
        raise SystemExit(
            f"the benchmark store {prefix!r} holds {found['orders']:,} orders: "
            f"load it with `python scripts/bench_queries.py --orders {args.orders} --load-only`"
        )
    print(f"generating {args.live_orders:,} live orders ...", file=sys.stderr)
    batches = live_batches(args.live_orders)
    workdir = Path(tempfile.mkdtemp(prefix="bench-live-"))
    endpoints = [e for e in ENDPOINTS if e.period in args.periods and (not args.endpoints or e.name in args.endpoints)]
    samples: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    sent: Counter = Counter()
    env: dict[str, str | None] = {"CACHE_MAX_STALENESS_SECONDS": str(args.staleness), "DEFAULT_STORE_ID": LIVE_STORE}
    with ExitStack() as stack:
        if args.split_servers:
            # Two API processes sharing a private redis-server (response cache and data versions).
            env["REDIS_URL"] = stack.enter_context(redis_server(workdir))[0]
        try:
            servers = stack.enter_context(
                api_servers(prefix, workdir, KEY, ["read", "ingest"], [env] * (1 + args.split_servers))
            )
            ingest_base, read_base = servers[0][1], servers[-1][1]
            headers = {"X-API-Key": KEY}
            async with (
                httpx.AsyncClient(base_url=ingest_base, timeout=600, headers=headers) as ingest,
                httpx.AsyncClient(base_url=read_base, timeout=600, headers=headers) as reader,
            ):
                print(f"priming {len(endpoints)} endpoint reads ...", file=sys.stderr)
                for endpoint in endpoints:
                    (await reader.get(endpoint.path, params=endpoint.query)).raise_for_status()
                print(
                    f"{args.ingest_clients} ingest and {args.read_clients} read clients for {args.seconds} s "
                    f"({'ingest and reads in two API processes' if args.split_servers else 'one API process'}) ...",
                    file=sys.stderr,
                )
                deadline = time.monotonic() + args.seconds
                lanes = [batches[i :: args.ingest_clients] for i in range(args.ingest_clients)]
                started = time.perf_counter()
                step = max(1, len(endpoints) // args.read_clients)
                await asyncio.gather(
                    *(ingest_client(ingest, lane, deadline, sent) for lane in lanes),
                    *(read_client(reader, endpoints, i * step, deadline, samples) for i in range(args.read_clients)),
                )
                wall = time.perf_counter() - started
        finally:
            stack.close()  # the servers, then Redis
            print(f"removing the live store ({sum(sent.values()):,} records sent) ...", file=sys.stderr)
            print(f"  {await remove_live_store(settings):,} documents deleted", file=sys.stderr)

    everything = [s for runs in samples.values() for s in runs]
    served = Counter(how for _, how in everything)
    p50, p95 = pct([t for t, _ in everything])
    print(
        f"\n{platform.node()}, {await es_version(settings)}, {date.today()}: {found['orders']:,} orders, "
        f"{args.ingest_clients} ingest + {args.read_clients} read clients, {wall:.0f} s, "
        f"CACHE_MAX_STALENESS_SECONDS={args.staleness}, "
        f"{'ingest and reads in two API processes sharing Redis' if args.split_servers else 'one API process'}"
    )
    print(
        f"ingested {sent['orders']:,} orders ({sent['orders'] / wall:,.0f}/s), {sent['events']:,} events, "
        f"{sent['activities']:,} activity records"
    )
    print(
        f"reads: {len(everything):,}, p50 {p50:,.0f} ms, p95 {p95:,.0f} ms; computed {served['computed']:,}, "
        f"cached {served['cached']:,}, stale {served['stale']:,}\n"
    )
    print("| endpoint | period | reads | p50 ms | p95 ms | computed | cached | stale |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    for (name, period), runs in sorted(samples.items()):
        e50, e95 = pct([t for t, _ in runs])
        how = Counter(h for _, h in runs)
        rows.append(
            {"endpoint": name, "period": period, "reads": len(runs), "p50": round(e50, 1), "p95": round(e95, 1), **how}
        )
        print(
            f"| {name} | {period} | {len(runs)} | {e50:,.0f} | {e95:,.0f} | "
            f"{how['computed']} | {how['cached']} | {how['stale']} |"
        )
    if args.json:
        summary = {
            "orders_in_store": found["orders"],
            "seconds": round(wall, 1),
            "staleness_seconds": args.staleness,
            "split_servers": args.split_servers,
            "ingested": dict(sent),
            "orders_per_second": round(sent["orders"] / wall, 1),
            "reads": {"count": len(everything), "p50": round(p50, 1), "p95": round(p95, 1), **served},
            "endpoints": rows,
        }
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--orders", type=int, default=FULL_ORDERS, help="the benchmark store's size (default 1,000,000)"
    )
    parser.add_argument("--live-orders", type=int, default=300_000, help="orders generated to ingest (default 300,000)")
    parser.add_argument("--ingest-clients", type=int, default=4)
    parser.add_argument("--read-clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120, help="how long both sides run (default 120)")
    parser.add_argument("--staleness", type=float, default=5, help="CACHE_MAX_STALENESS_SECONDS (default 5)")
    parser.add_argument("--periods", nargs="+", default=["30d", "365d"], choices=["30d", "365d"])
    parser.add_argument("--endpoints", nargs="+", metavar="NAME", help="only these (bench_queries' names); default all")
    parser.add_argument(
        "--split-servers",
        action="store_true",
        help="ingest through one API process and read through another, both with a private redis-server",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
