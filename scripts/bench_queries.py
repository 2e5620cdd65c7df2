"""Query latency: the API (uncached and cached) versus the same Elasticsearch requests sent directly.

    python scripts/bench_queries.py [--orders 1000000] [--requests 30] [--warmup 3] [--reload] [--drop]

Loads one generated store (seed 7, 1,000,000 orders over 730 days to 2026-11-01, their
payment events, 200,000 activity records) once into the index prefix `bench-queries`
with the DirectSink, and reuses it on later runs (`--reload` loads it again, `--drop`
deletes it and exits; a smaller `--orders N` goes to `bench-queries-<N>`). Then, for
the dashboard and a few other order-based endpoints:

1. direct: the Elasticsearch requests the endpoint sends, captured by running its query
   object in-process with a recording QueryContext, replayed in order with the async
   elasticsearch client (composite pages included) on the event loop uvicorn uses
   (uvloop when installed); one sample is one full replay;
2. API uncached: a uvicorn server (subprocess) with CACHE_TTL_SECONDS=0, requests
   sent one after the other with httpx;
3. API cached: a second server with the default in-process response cache; one
   priming request, then the timed ones (each must answer `cached: true`).

Each path gets `--warmup` untimed calls, then `--requests` timed ones, sequentially;
direct replays and uncached API calls alternate, so both see the same background load.
Elasticsearch's own shard request cache answers a repeated identical `size: 0` search
without computing it, until the next refresh that changes the shard; on a live store
that is every second. By default it is therefore emptied (untimed) before each direct
replay and each uncached API call, so those compute their aggregations every time
(`--es-request-cache keep` measures the warm case).
p50 and p95 are `statistics.quantiles(samples, n=100, method="inclusive")` (linear
interpolation between the closest ranks, as numpy.percentile's default). Prints the
Markdown tables for docs/performance.md: latencies with ratios, then where the direct
time goes (requests grouped by kind, with the Elasticsearch `took` of each group).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench_common import es_version, start_server, stop_server, wait_ready  # noqa: E402

from analytics_service.analytics import breakdowns, sales  # noqa: E402
from analytics_service.analytics.params import CommonParams, parse_common  # noqa: E402
from analytics_service.analytics.runner import QueryContext  # noqa: E402
from analytics_service.auth import Principal  # noqa: E402
from analytics_service.config import Settings  # noqa: E402
from analytics_service.devtools.sample_data import DirectSink, SampleConfig, ingest  # noqa: E402
from analytics_service.es.client import make_async_client  # noqa: E402
from analytics_service.es.indices import FAMILIES, IndexFamily, IndexNames  # noqa: E402

FULL_ORDERS = 1_000_000
BASE_PREFIX = "bench-queries"
BENCH_KEY = "bench-queries-key-" + uuid.uuid4().hex[:8]
READER = Principal(key_id="bench", scopes=frozenset({"read"}), store_id=None, name="bench")
MONTH = {"start": "2026-10-02", "end": "2026-11-01"}  # the dashboard's default 30 days before 2026-11-01
YEAR = {"start": "2025-11-01", "end": "2026-11-01"}  # 365 days


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    query: dict[str, str]
    build: Callable[[CommonParams], Any]  # the query object the route runs

    def params(self, settings: Settings) -> CommonParams:
        q = self.query
        return parse_common(
            start=q.get("start"),
            end=q.get("end"),
            tz=q.get("tz"),
            interval=q.get("interval"),
            store_id=None,
            channel=None,
            compare=q.get("compare"),
            limit=int(q["limit"]) if "limit" in q else None,
            principal=READER,
            default_tz=settings.default_timezone,
        )


# As the routes in analytics/routers/sales.py build them for these query strings.
ENDPOINTS = [
    Endpoint("dashboard", "/api/v1/analytics/dashboard", MONTH, sales.Dashboard),
    Endpoint("revenue/trends", "/api/v1/analytics/revenue/trends", {**YEAR, "interval": "day"}, sales.RevenueTrends),
    Endpoint(
        "products/top-selling",
        "/api/v1/analytics/products/top-selling",
        {**YEAR, "limit": "10"},
        lambda p: sales.TopSelling(p, "revenue"),
    ),
    Endpoint(
        "sales/categories",
        "/api/v1/analytics/sales/categories",
        YEAR,
        lambda p: breakdowns.SalesCategories(p, "category", None),
    ),
    Endpoint(
        "sales/geographic",
        "/api/v1/analytics/sales/geographic",
        YEAR,
        lambda p: breakdowns.SalesGeographic(p, "country", None),
    ),
]


# -- data --------------------------------------------------------------------------------


def prefix_for(orders: int) -> str:
    return BASE_PREFIX if orders == FULL_ORDERS else f"{BASE_PREFIX}-{orders}"


async def counts(settings: Settings) -> dict[str, int]:
    """Documents per index family under the prefix (0 when absent)."""
    es = make_async_client(settings)
    names = IndexNames(settings.index_prefix)
    try:
        out = {}
        for family in FAMILIES:
            r = await es.count(index=names.alias(family), ignore_unavailable=True, allow_no_indices=True)
            out[family.name] = int(r["count"])
        return out
    finally:
        await es.close()


async def drop(settings: Settings) -> None:
    """Delete this prefix's indices and templates, family by family (a bare `<prefix>-*`
    would also match `bench-queries-<N>-*`)."""
    es = make_async_client(settings)
    names = IndexNames(settings.index_prefix)
    try:
        for family in FAMILIES:
            await es.options(ignore_status=404).indices.delete(index=f"{names.alias(family)}-*", expand_wildcards="all")
            await es.options(ignore_status=404).indices.delete_index_template(name=names.template_name(family))
    finally:
        await es.close()


async def load(settings: Settings, config: SampleConfig, concurrency: int) -> None:
    print(
        f"loading {config.orders:,} orders and {config.activity_count:,} activity records over {config.days} days "
        f"to {config.end_date} into prefix {settings.index_prefix!r} ...",
        file=sys.stderr,
    )
    sink = DirectSink(settings, concurrency=concurrency)
    stats: dict[str, Any] = {}
    totals = await ingest(config, sink, progress=True, concurrency=concurrency, stats=stats)
    errors = sum(t["errors"] for t in totals.values())
    print(
        f"loaded in {stats['seconds']:.0f} s: " + ", ".join(f"{n:,} {k}" for k, n in stats["generated"].items()),
        file=sys.stderr,
    )
    if errors:
        raise SystemExit(f"{errors} records were not stored: {sink.error_samples[:3]}")


# -- capture and replay --------------------------------------------------------------------


@dataclass
class Recorded:
    family: IndexFamily
    body: dict[str, Any]

    def label(self) -> str:
        """What the request is: its index family and aggregations (metrics counted, bucket
        aggregations named with their type, composite sources listed)."""
        metrics, parts = 0, []
        for name, agg in (self.body.get("aggs") or {}).items():
            kind = next(k for k in agg if k != "aggs")
            subs = sorted({next(k for k in a if k != "aggs") for a in (agg.get("aggs") or {}).values()})
            subs_text = f" + {', '.join(subs)}" if subs else ""
            if kind == "composite":
                fields = [next(iter(s.values()))["terms"]["field"] for s in agg["composite"]["sources"]]
                parts.append(f"composite({', '.join(fields)}){subs_text}")
            elif kind in ("sum", "min", "max", "avg", "value_count", "cardinality") and not subs:
                metrics += 1 if kind != "cardinality" else 0
                if kind == "cardinality":
                    parts.append(f"{name} (cardinality)")
            else:
                parts.append(f"{name} ({kind}{subs_text})")
        if metrics:
            parts.insert(0, f"{metrics} sums" if metrics > 1 else "1 sum")
        return f"{self.family.name}: {', '.join(parts) or 'count'}"


@dataclass
class RecordingContext(QueryContext):
    """A QueryContext that records every search (family, body) before sending it."""

    recorded: list[Recorded] = field(default_factory=list)

    async def _search(self, family: IndexFamily, body: dict[str, Any]) -> dict[str, Any]:
        self.recorded.append(Recorded(family, copy.deepcopy(body)))
        return await super()._search(family, body)


async def capture(es, settings: Settings, endpoint: Endpoint) -> list[Recorded]:
    ctx = RecordingContext(es=es, names=IndexNames(settings.index_prefix), settings=settings, cache=None)
    await endpoint.build(endpoint.params(settings)).run(ctx)
    return ctx.recorded


async def replay(es, names: IndexNames, requests: list[Recorded]) -> tuple[float, list[float], list[int]]:
    """Send the recorded bodies in order, as QueryContext._search does.

    Returns (total s, per request s, per request took ms)."""
    each, took = [], []
    start = time.perf_counter()
    for rec in requests:
        t0 = time.perf_counter()
        r = await es.search(
            index=names.alias(rec.family),
            ignore_unavailable=True,
            allow_no_indices=True,
            **{"size": 0, "track_total_hits": True, **rec.body},
        )
        each.append(time.perf_counter() - t0)
        took.append(int(r.body.get("took", 0)))
    return time.perf_counter() - start, each, took


# -- API -------------------------------------------------------------------------------------


async def api_call(client: httpx.AsyncClient, endpoint: Endpoint, cached: bool) -> float:
    t0 = time.perf_counter()
    r = await client.get(endpoint.path, params=endpoint.query)
    elapsed = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"{endpoint.path}: {r.status_code} {r.text[:300]}")
    if r.json().get("cached") is not cached:
        raise RuntimeError(f"{endpoint.path}: expected cached={cached}, got {r.json().get('cached')}")
    return elapsed


# -- measuring -------------------------------------------------------------------------------


def pct(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in ms."""
    if len(samples) == 1:
        return samples[0] * 1000, samples[0] * 1000
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000


@dataclass
class Result:
    endpoint: Endpoint
    requests: list[Recorded]
    direct: list[float] = field(default_factory=list)
    uncached: list[float] = field(default_factory=list)
    cached: list[float] = field(default_factory=list)
    per_request: list[list[float]] = field(default_factory=list)  # per replay: seconds of each request
    per_took: list[list[int]] = field(default_factory=list)


async def measure(
    endpoint: Endpoint,
    es,
    settings: Settings,
    uncached: httpx.AsyncClient,
    cached: httpx.AsyncClient,
    n: int,
    warmup: int,
    clear: bool,
) -> Result:
    names = IndexNames(settings.index_prefix)
    indices = ",".join(names.alias(f) for f in FAMILIES)

    async def clear_request_cache() -> None:
        """Untimed: empty the shard request cache of the bench indices, so that every call
        computes its aggregations (as after a refresh that brought new data)."""
        if clear:
            await es.indices.clear_cache(index=indices, request=True, ignore_unavailable=True, allow_no_indices=True)

    requests = await capture(es, settings, endpoint)
    res = Result(endpoint, requests)
    print(f"{endpoint.name}: {len(requests)} Elasticsearch requests per call", file=sys.stderr)
    # Direct and uncached calls alternate, so that both see the same background load.
    for i in range(warmup + n):
        await clear_request_cache()
        total, each, took = await replay(es, names, requests)
        await clear_request_cache()
        t = await api_call(uncached, endpoint, cached=False)
        if i >= warmup:
            res.direct.append(total)
            res.per_request.append(each)
            res.per_took.append(took)
            res.uncached.append(t)
    print(f"  direct       p50 {pct(res.direct)[0]:9.1f} ms", file=sys.stderr)
    print(f"  API uncached p50 {pct(res.uncached)[0]:9.1f} ms", file=sys.stderr)
    await api_call(cached, endpoint, cached=False)  # primes the cache
    for _ in range(n):
        res.cached.append(await api_call(cached, endpoint, cached=True))
    print(f"  API cached   p50 {pct(res.cached)[0]:9.1f} ms", file=sys.stderr)
    return res


def breakdown(res: Result) -> list[tuple[str, int, float, float]]:
    """Consecutive requests of the same kind grouped: (label, count, median ms of the
    group's wall time per replay, median ms of its summed `took`)."""
    groups: list[tuple[str, list[int]]] = []
    for i, rec in enumerate(res.requests):
        label = rec.label()
        if groups and groups[-1][0] == label:
            groups[-1][1].append(i)
        else:
            groups.append((label, [i]))
    out = []
    for label, idx in groups:
        wall = [sum(run[i] for i in idx) for run in res.per_request]
        took = [sum(run[i] for i in idx) for run in res.per_took]
        out.append((label, len(idx), statistics.median(wall) * 1000, float(statistics.median(took))))
    return out


async def main_async(args: argparse.Namespace) -> int:
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    prefix = prefix_for(args.orders)
    settings = Settings(index_prefix=prefix)
    if args.drop:
        await drop(settings)
        print(f"dropped the indices and templates of prefix {prefix!r}", file=sys.stderr)
        return 0
    activity = args.activity if args.activity is not None else max(5000, args.orders // 5)
    config = SampleConfig(seed=7, orders=args.orders, activity=activity, days=730, end=date(2026, 11, 1))
    found = await counts(settings)
    if args.reload or found["orders"] != args.orders:
        if found["orders"] or args.reload:
            print(f"prefix {prefix!r} holds {found['orders']:,} orders; dropping it and loading again", file=sys.stderr)
            await drop(settings)
        await load(settings, config, args.concurrency)
        found = await counts(settings)
        if found["orders"] != args.orders:
            raise SystemExit(f"expected {args.orders:,} orders under {prefix!r}, found {found['orders']:,}")
    else:
        print(
            f"reusing prefix {prefix!r}: {found['orders']:,} orders already loaded (--reload to load again)",
            file=sys.stderr,
        )
    if args.load_only:
        return 0

    wanted = [e for e in ENDPOINTS if not args.endpoints or e.name in args.endpoints]
    workdir = tempfile.TemporaryDirectory(prefix="bench-queries-")
    # The uncached server with the response cache off, the cached one with the default (in-process).
    servers = [
        start_server(prefix, Path(workdir.name), BENCH_KEY, ["read"], {"CACHE_TTL_SECONDS": "0"}),
        start_server(prefix, Path(workdir.name), BENCH_KEY, ["read"], {"CACHE_TTL_SECONDS": None}),
    ]
    es = make_async_client(settings)
    results: list[Result] = []
    try:
        headers = {"X-API-Key": BENCH_KEY}
        async with (
            httpx.AsyncClient(base_url=servers[0][1], timeout=600, headers=headers) as uncached,
            httpx.AsyncClient(base_url=servers[1][1], timeout=600, headers=headers) as cached,
        ):
            for server, base_url in servers:
                await asyncio.to_thread(wait_ready, base_url, server)
            for endpoint in wanted:
                results.append(
                    await measure(
                        endpoint,
                        es,
                        settings,
                        uncached,
                        cached,
                        args.requests,
                        args.warmup,
                        args.es_request_cache == "clear",
                    )
                )
    finally:
        await es.close()
        for server, _ in servers:
            stop_server(server)
        workdir.cleanup()

    documents = sum(found.values())
    print()
    print(
        f"Data: {found['orders']:,} orders, {found['order-items']:,} order lines, {documents:,} documents "
        f"({', '.join(f'{n:,} {k}' for k, n in found.items() if n)}), prefix `{prefix}`; "
        f"{args.requests} timed calls per path after {args.warmup} warm-up (cached: 1 priming call), "
        f"sequential; Elasticsearch shard request cache "
        f"{'cleared before each direct and uncached call' if args.es_request_cache == 'clear' else 'kept (warm)'}; "
        f"event loop {type(asyncio.get_running_loop()).__module__.split('.')[0]} in both processes; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{await es_version(settings)} on the same machine."
    )
    print()
    print(
        "| endpoint | ES requests per call | direct p50 / p95 ms | API uncached p50 / p95 ms "
        "| API cached p50 / p95 ms | uncached / direct | uncached / cached |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        d, u, c = pct(r.direct), pct(r.uncached), pct(r.cached)
        query = "&".join(f"{k}={v}" for k, v in r.endpoint.query.items())
        print(
            f"| `{r.endpoint.name}?{query}` | {len(r.requests)} | {d[0]:,.1f} / {d[1]:,.1f} "
            f"| {u[0]:,.1f} / {u[1]:,.1f} | {c[0]:,.1f} / {c[1]:,.1f} | {u[0] / d[0]:.2f}x | {u[0] / c[0]:,.0f}x |"
        )
    print()
    print("Where the direct time goes (consecutive requests of one kind grouped; medians over the timed replays):")
    print()
    print("| endpoint | requests (index: aggregations) | count | wall ms | ES `took` ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in results:
        for label, count, wall, took in breakdown(r):
            print(f"| {r.endpoint.name} | {label} | {count} | {wall:,.1f} | {took:,.0f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--orders",
        type=int,
        default=FULL_ORDERS,
        help=f"orders to generate (default {FULL_ORDERS:,}; others go to {BASE_PREFIX}-<N>)",
    )
    parser.add_argument("--activity", type=int, default=None, help="activity records (default orders / 5)")
    parser.add_argument("--requests", type=int, default=30, help="timed calls per endpoint and path (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before them (default 3)")
    parser.add_argument("--concurrency", type=int, default=2, help="batches in flight while loading (default 2)")
    parser.add_argument(
        "--endpoints", nargs="*", choices=[e.name for e in ENDPOINTS], help="only these endpoints (default all)"
    )
    parser.add_argument(
        "--es-request-cache",
        choices=("clear", "keep"),
        default="clear",
        help="clear (default): empty Elasticsearch's shard request cache of the bench indices "
        "before each direct and uncached API call (not timed), so each call computes its "
        "aggregations; keep: repeated identical requests are answered from it",
    )
    parser.add_argument("--reload", action="store_true", help="drop and load the data again")
    parser.add_argument("--load-only", action="store_true", help="load (when needed) and stop")
    parser.add_argument("--drop", action="store_true", help="delete the bench indices of --orders and exit")
    args = parser.parse_args()
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be >= 1 and --warmup >= 0")
    try:  # the event loop uvicorn runs the API on (loop="auto"), so both paths use the same one
        import uvloop
    except ImportError:
        return asyncio.run(main_async(args))
    return uvloop.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
