"""Query latency: the API (uncached and cached) versus the same Elasticsearch requests sent directly.

    python scripts/bench_queries.py [--orders 1000000] [--shards 1] [--endpoints all | NAME ...]
                                    [--periods 30d 365d] [--requests 30] [--warmup 3] [--json PATH]
                                    [--reload] [--drop]

Loads one generated store (seed 7, 1,000,000 orders over 730 days to 2026-11-01, their
payment events, 200,000 activity records) once into the index prefix `bench-queries`
with the DirectSink, and reuses it on later runs (`--reload` loads it again, `--drop`
deletes it and exits; a smaller `--orders N` goes to `bench-queries-<N>`, `--shards S`
(INDEX_SHARDS for the load and the servers) to a prefix ending `-<S>shards`). Then, for
every analytics endpoint (the variants whose requests differ: retention basis, segment
type, geographic level), each over the 30 and the 365 days before 2026-11-01:

1. direct: the Elasticsearch requests the endpoint sends, recorded at the Elasticsearch
   transport of the app run in-process (every search, point-in-time and catalog read),
   replayed one after the other with the async client on the event loop uvicorn uses
   (uvloop when installed); one sample is one full replay. The API sends a query's
   independent requests concurrently, so it can be faster than this sequential replay;
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
time goes (requests grouped by kind, with the Elasticsearch `took` of each group);
`--json PATH` writes {"endpoints": [{"endpoint", "period", "query", "es_requests",
"direct": {"p50", "p95"}, "uncached": {...}, "cached": {...}}]} (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench_common import api_servers, es_version  # noqa: E402

from analytics_service.app import create_app  # noqa: E402
from analytics_service.config import Settings  # noqa: E402
from analytics_service.devtools.sample_data import DirectSink, SampleConfig, ingest  # noqa: E402
from analytics_service.es.client import index_names, make_async_client  # noqa: E402
from analytics_service.es.indices import FAMILIES, IndexNames  # noqa: E402

FULL_ORDERS = 1_000_000
BASE_PREFIX = "bench-queries"
BENCH_KEY = "bench-queries-key-" + uuid.uuid4().hex[:8]
MONTH = {"start": "2026-10-02", "end": "2026-11-01"}  # the default 30 days, before the data's end (2026-11-01)
YEAR = {"start": "2025-11-01", "end": "2026-11-01"}  # 365 days
PERIODS = {"30d": MONTH, "365d": YEAR}


@dataclass(frozen=True, eq=False)  # hashed by identity: one entry of ENDPOINTS
class Endpoint:
    """One GET of the API: its path, the parameters of the variant, and the period."""

    path: str
    variant: dict[str, str]
    period: str  # a key of PERIODS

    @property
    def query(self) -> dict[str, str]:
        return {**PERIODS[self.period], **self.variant}

    @property
    def name(self) -> str:
        extra = "&".join(f"{k}={v}" for k, v in self.variant.items())
        return self.path.removeprefix("/api/v1/analytics/") + (f"?{extra}" if extra else "")


# Every analytics and search endpoint with its default parameters, and the variants whose
# requests differ (basis, segment type, level); each for 30 and for 365 days.
VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("dashboard", {}),
    ("revenue/trends", {}),
    ("sales/revenue", {}),
    ("sales/orders", {}),
    ("sales/products", {}),
    ("sales/categories", {}),
    ("sales/geographic", {"level": "country"}),
    ("sales/geographic", {"level": "city"}),
    ("products/top-selling", {}),
    ("products/performance", {}),
    ("products/inventory", {}),
    ("products/reviews", {}),
    ("products/search", {}),
    ("users/activity", {}),
    ("users/behavior", {}),
    ("users/engagement", {}),
    ("users/conversion", {}),
    ("users/retention", {"basis": "orders"}),
    ("users/retention", {"basis": "activity"}),
    ("users/segments", {"type": "rfm"}),
    ("users/segments", {"type": "new_returning"}),
    ("users/segments", {"type": "device"}),
    ("financial/revenue", {}),
    ("financial/profit", {}),
    ("financial/expenses", {}),
    ("financial/payments", {}),
    ("search", {"query": "shirt"}),
]
ENDPOINTS = [Endpoint(f"/api/v1/analytics/{path}", variant, period) for path, variant in VARIANTS for period in PERIODS]


# -- data --------------------------------------------------------------------------------


def prefix_for(orders: int, shards: int = 1) -> str:
    """`bench-queries`, `-<N>` for another size, `-<S>shards` for another shard count."""
    prefix = BASE_PREFIX if orders == FULL_ORDERS else f"{BASE_PREFIX}-{orders}"
    return prefix if shards == 1 else f"{prefix}-{shards}shards"


async def counts(settings: Settings) -> dict[str, int]:
    """Documents per index family under the prefix (0 when absent)."""
    es = make_async_client(settings)
    names = index_names(settings)
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
    names = index_names(settings)
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
    """One request the API sent to Elasticsearch, as the transport saw it."""

    method: str
    target: str  # path and query string
    body: Any
    headers: dict[str, str]
    pit_id: str | None = None  # the id a point-in-time opening answered

    def label(self, names: IndexNames) -> str:
        """What the request is: its index family and aggregations (metrics counted, bucket
        aggregations named with their type, composite sources listed)."""
        path = self.target.split("?")[0].strip("/")
        index, _, api = path.rpartition("/")
        family = next((f.name for f in FAMILIES if index == names.alias(f)), index or "(pit)")
        if api != "_search":
            return f"{family}: {api}"
        body = self.body if isinstance(self.body, dict) else {}
        if "pit" in body:
            return f"{family}: pit page"
        metrics, parts = 0, []
        for name, agg in (body.get("aggs") or body.get("aggregations") or {}).items():
            kind = next(k for k in agg if k not in ("aggs", "aggregations"))
            subs = sorted({next(k for k in a if k != "aggs") for a in (agg.get("aggs") or {}).values()})
            subs_text = f" + {', '.join(subs)}" if subs else ""
            if kind == "composite":
                fields = [
                    src.get("terms", {}).get("field") or next(iter(src))
                    for s in agg["composite"]["sources"]
                    for src in s.values()
                ]
                parts.append(f"composite({', '.join(fields)}){subs_text}")
            elif kind in ("sum", "min", "max", "avg", "value_count") and not subs:
                metrics += 1
            else:
                parts.append(f"{name} ({kind}{subs_text})")
        if metrics:
            parts.insert(0, f"{metrics} sums" if metrics > 1 else "1 sum")
        return f"{family}: {', '.join(parts) or ('hits' if body.get('size') else 'count')}"


def api_settings(prefix: str, workdir: Path, cache: bool) -> Settings:
    """The settings of a bench server (bench_common.start_server), for the in-process app."""
    return Settings(
        index_prefix=prefix,
        api_keys=json.dumps([{"key": BENCH_KEY, "scopes": ["read"]}]),
        database_url=f"sqlite:///{workdir / 'capture.db'}",
        reports_dir=str(workdir / "capture-reports"),
        redis_url=None,
        cache_ttl_seconds=300 if cache else 0,
    )


async def capture(prefix: str, workdir: Path, endpoints: list[Endpoint]) -> dict[Endpoint, list[Recorded]]:
    """Every request each endpoint sends, recorded at the Elasticsearch transport of the app
    run in-process (so searches, point-in-time scans and catalog reads are all seen)."""
    app = create_app(api_settings(prefix, workdir, cache=False))
    out: dict[Endpoint, list[Recorded]] = {}
    async with app.router.lifespan_context(app):
        transport = app.state.es.transport
        original = transport.perform_request
        recorded: list[Recorded] = []

        async def recording(method: str, target: str, **kwargs: Any) -> Any:
            rec = Recorded(method, target, copy.deepcopy(kwargs.get("body")), dict(kwargs.get("headers") or {}))
            recorded.append(rec)
            response = await original(method, target, **kwargs)
            rec.pit_id = pit_of(response.body)
            return response

        transport.perform_request = recording
        asgi = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=asgi, base_url="http://bench", headers={"X-API-Key": BENCH_KEY}) as c:
            for endpoint in endpoints:
                recorded.clear()
                r = await c.get(endpoint.path, params=endpoint.query)
                if r.status_code != 200:
                    raise RuntimeError(f"{endpoint.name}: {r.status_code} {r.text[:300]}")
                out[endpoint] = list(recorded)
    return out


def pit_of(answer: Any) -> str | None:
    """The point-in-time id an answer gives (opening one, or a page read through one)."""
    if not isinstance(answer, dict):
        return None
    return answer.get("pit_id") or (answer.get("id") if set(answer) <= {"id", "_shards"} else None)


async def replay(es, requests: list[Recorded]) -> tuple[float, list[float], list[int]]:
    """Send the recorded requests in order through the transport, with point-in-time ids
    replaced by the ones this replay opened.

    Returns (total s, per request s, per request took ms)."""
    each, took = [], []
    pits: dict[str, str] = {}
    start = time.perf_counter()
    for rec in requests:
        body = rec.body
        if pits and body is not None:
            text = json.dumps(body)
            for old, new in pits.items():
                text = text.replace(old, new)
            body = json.loads(text)
        t0 = time.perf_counter()
        r = await es.transport.perform_request(rec.method, rec.target, body=body, headers=rec.headers)
        each.append(time.perf_counter() - t0)
        answer = r.body if isinstance(r.body, dict) else {}
        live = pit_of(answer)
        if rec.pit_id and live:
            pits[rec.pit_id] = live
        took.append(int(answer.get("took", 0)))
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
    requests: list[Recorded],
    es,
    settings: Settings,
    uncached: httpx.AsyncClient,
    cached: httpx.AsyncClient,
    n: int,
    warmup: int,
    clear: bool,
) -> Result:
    names = index_names(settings)
    indices = ",".join(names.alias(f) for f in FAMILIES)

    async def clear_request_cache() -> None:
        """Untimed: empty the shard request cache of the bench indices, so that every call
        computes its aggregations (as after a refresh that brought new data)."""
        if clear:
            await es.indices.clear_cache(index=indices, request=True, ignore_unavailable=True, allow_no_indices=True)

    res = Result(endpoint, requests)
    print(f"{endpoint.name}: {len(requests)} Elasticsearch requests per call", file=sys.stderr)
    # Direct and uncached calls alternate, so that both see the same background load.
    for i in range(warmup + n):
        await clear_request_cache()
        total, each, took = await replay(es, requests)
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


def breakdown(res: Result, names: IndexNames) -> list[tuple[str, int, float, float]]:
    """Consecutive requests of the same kind grouped: (label, count, median ms of the
    group's wall time per replay, median ms of its summed `took`)."""
    groups: list[tuple[str, list[int]]] = []
    for i, rec in enumerate(res.requests):
        label = rec.label(names)
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
    prefix = prefix_for(args.orders, args.shards)
    if args.shards != 1:
        # Every Settings here and the servers' environment: the indices' layout (README "Scaling out").
        os.environ["INDEX_SHARDS"] = str(args.shards)
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

    wanted = [
        e
        for e in ENDPOINTS
        if (not args.endpoints or "all" in args.endpoints or e.name in args.endpoints) and e.period in args.periods
    ]
    workdir = tempfile.TemporaryDirectory(prefix="bench-queries-")
    captured = await capture(prefix, Path(workdir.name), wanted)
    # The uncached server with the response cache off, the cached one with the default (in-process).
    envs: list[dict[str, str | None] | None] = [{"CACHE_TTL_SECONDS": "0"}, {"CACHE_TTL_SECONDS": None}]
    es = make_async_client(settings)
    results: list[Result] = []
    try:
        headers = {"X-API-Key": BENCH_KEY}
        with api_servers(prefix, Path(workdir.name), BENCH_KEY, ["read"], envs) as servers:
            uncached = httpx.AsyncClient(base_url=servers[0][1], timeout=600, headers=headers)
            cached = httpx.AsyncClient(base_url=servers[1][1], timeout=600, headers=headers)
            async with uncached, cached:
                for endpoint in wanted:
                    results.append(
                        await measure(
                            endpoint,
                            captured[endpoint],
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
        path = r.endpoint.path.removeprefix("/api/v1/analytics/")
        print(
            f"| `{path}?{query}` | {len(r.requests)} | {d[0]:,.1f} / {d[1]:,.1f} "
            f"| {u[0]:,.1f} / {u[1]:,.1f} | {c[0]:,.1f} / {c[1]:,.1f} | {u[0] / d[0]:.2f}x | {u[0] / c[0]:,.0f}x |"
        )
    print()
    print("Where the direct time goes (consecutive requests of one kind grouped; medians over the timed replays):")
    print()
    print("| endpoint | requests (index: aggregations) | count | wall ms | ES `took` ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in results:
        for label, count, wall, took in breakdown(r, IndexNames(prefix)):
            print(f"| {r.endpoint.name} | {label} | {count} | {wall:,.1f} | {took:,.0f} |")
    if args.json:
        write_json(Path(args.json), results)
    return 0


def write_json(path: Path, results: list[Result]) -> None:
    """The figures as data: per endpoint and period, p50 and p95 in ms of each path."""

    def figures(samples: list[float]) -> dict[str, float]:
        p50, p95 = pct(samples)
        return {"p50": round(p50, 1), "p95": round(p95, 1)}

    rows = [
        {
            "endpoint": r.endpoint.name,
            "period": r.endpoint.period,
            "query": r.endpoint.query,
            "es_requests": len(r.requests),
            "direct": figures(r.direct),
            "uncached": figures(r.uncached),
            "cached": figures(r.cached),
        }
        for r in results
    ]
    path.write_text(json.dumps({"endpoints": rows}, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--orders",
        type=int,
        default=FULL_ORDERS,
        help=f"orders to generate (default {FULL_ORDERS:,}; others go to {BASE_PREFIX}-<N>)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=1,
        help="primary shards per index (INDEX_SHARDS; default 1, others go to a prefix ending -<S>shards)",
    )
    parser.add_argument("--activity", type=int, default=None, help="activity records (default orders / 5)")
    parser.add_argument("--requests", type=int, default=30, help="timed calls per endpoint and path (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before them (default 3)")
    parser.add_argument("--concurrency", type=int, default=2, help="batches in flight while loading (default 2)")
    parser.add_argument(
        "--endpoints",
        nargs="*",
        choices=["all", *dict.fromkeys(e.name for e in ENDPOINTS)],
        help="these endpoints (names as in the tables; default: all)",
    )
    parser.add_argument(
        "--periods", nargs="*", choices=list(PERIODS), default=list(PERIODS), help="periods (default: both)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
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
