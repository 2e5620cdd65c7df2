"""The API beside DuckDB and PostgreSQL on the same rows: five questions, every number compared.

    python scripts/bench_peers.py [--orders 1000000] [--requests 5] [--warmup 1] [--json PATH]

Uses the benchmark store of scripts/bench_queries.py (seed 7, prefix `bench-queries`, loaded
first when absent, as `bench_queries.py --load-only` does). Its stored order and order-line
documents are exported once (a point-in-time scan) to CSV files under
data/bench-peers/<prefix>/ and loaded into

- DuckDB (embedded, in memory, 2 threads), and
- PostgreSQL: a private server this script starts (Debian's binaries, a temporary data
  folder, a free port; shared_buffers 2 GB, work_mem 256 MB, 2 parallel workers), with the
  indexes a competent engineer would add for these questions: partial covering indexes over
  the sales by time (orders and lines) and one over each customer's sales by time (first
  sale), then VACUUM ANALYZE so the covering indexes answer with index-only scans.

Both get the layout our indices have (order fields copied onto lines, line revenue stored at
load), so the comparison is between engines, not layouts. The questions (UTC periods):

1. dashboard KPIs, the 30 days before 2026-11-01 (`/dashboard`: kpis);
2. daily revenue trend, 365 days (`/revenue/trends`: series);
3. top 10 products by line revenue, 365 days (`/products/top-selling`);
4. revenue by category, 365 days (`/sales/categories`);
5. revenue, orders and customers by country, 365 days (`/sales/geographic?level=country`).

Each answer of each engine is compared value by value with the API's (money within 0.01,
counts exactly, keys and their order exactly): `equal` says whether every value matched.
Timings: `--warmup` untimed runs, then `--requests` timed ones; the median is reported. API
uncached is a server with CACHE_TTL_SECONDS=0 and Elasticsearch's shard request cache emptied
before each call (as bench_queries.py does); API cached is a server with the default
in-process cache, primed once. Prints a Markdown table for docs/performance.md; `--json PATH`
writes {"rows": [{"query", "api_uncached_ms", "api_cached_ms", "duckdb_ms", "postgres_ms",
"equal"}]} (medians, ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import httpx  # noqa: E402
from bench_common import api_servers, es_version  # noqa: E402
from bench_queries import BENCH_KEY, FULL_ORDERS, MONTH, YEAR, counts, load, prefix_for  # noqa: E402

from analytics_service.config import Settings  # noqa: E402
from analytics_service.devtools.local_servers import ServerMissing, postgres_server  # noqa: E402
from analytics_service.devtools.sample_data import SampleConfig  # noqa: E402
from analytics_service.es.client import index_names, make_async_client  # noqa: E402
from analytics_service.es.indices import FAMILIES, ORDER_ITEMS, ORDERS  # noqa: E402

EXPORTS = ROOT / "data" / "bench-peers"
NONE_KEY = "(none)"  # as the API names a missing category or country
ORDER_COLUMNS = [
    "order_id",
    "created_at",
    "is_sale",
    "gross_revenue",
    "discount_amount",
    "net_revenue",
    "units",
    "cogs",
    "customer_id",
    "country",
]
LINE_COLUMNS = ["order_id", "created_at", "is_sale", "product_id", "category", "line_revenue", "quantity"]


# -- export: the stored documents as CSV ---------------------------------------------------


def order_row(s: dict[str, Any]) -> list[Any]:
    customer = s.get("customer") or {}
    return [
        s["order_id"],
        utc(s["created_at"]),
        bool(s.get("is_sale")),
        s.get("gross_revenue") or 0,
        s.get("discount_amount") or 0,
        s.get("net_revenue") or 0,
        s.get("units") or 0,
        s.get("cogs") or 0,
        customer.get("customer_id"),
        customer.get("country"),
    ]


def line_row(s: dict[str, Any]) -> list[Any]:
    return [
        s["order_id"],
        utc(s["created_at"]),
        bool(s.get("is_sale")),
        s["product_id"],
        s.get("category"),
        s.get("line_revenue") or 0,
        s.get("quantity") or 0,
    ]


def utc(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).isoformat()


async def export_family(es: Any, index: str, fields: list[str], row: Callable, path: Path) -> int:
    """Every document of `index` (a point-in-time scan, 10,000 a page) as CSV rows."""
    pit = (await es.open_point_in_time(index=index, keep_alive="5m"))["id"]
    written = 0
    tmp = path.with_suffix(".part")
    try:
        with tmp.open("w", newline="") as out:
            w = csv.writer(out)
            after = None
            while True:
                body: dict[str, Any] = {
                    "size": 10_000,
                    "pit": {"id": pit, "keep_alive": "5m"},
                    "sort": ["_shard_doc"],
                    "_source": fields,
                    "track_total_hits": False,
                }
                if after is not None:
                    body["search_after"] = after
                r = (await es.search(**body)).body
                hits = r["hits"]["hits"]
                if not hits:
                    break
                pit = r.get("pit_id", pit)
                w.writerows(row(h["_source"]) for h in hits)
                written += len(hits)
                after = hits[-1]["sort"]
                print(f"\r  {path.name}: {written:,} rows", end="", file=sys.stderr)
        print(file=sys.stderr)
        tmp.rename(path)
    finally:
        await es.close_point_in_time(id=pit)
    return written


async def export(settings: Settings, found: dict[str, int]) -> Path:
    """The store's orders and lines as CSV (reused while the document counts match)."""
    folder = EXPORTS / settings.index_prefix
    stamp = folder / "counts.json"
    wanted = {"orders": found["orders"], "order-items": found["order-items"]}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        print(f"reusing the export in {folder}", file=sys.stderr)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    es = make_async_client(settings)
    names = index_names(settings)
    try:
        print(f"exporting the stored orders and lines to {folder} ...", file=sys.stderr)
        order_fields = [*(c for c in ORDER_COLUMNS if c not in ("customer_id", "country")), "customer"]
        await export_family(es, names.alias(ORDERS), order_fields, order_row, folder / "orders.csv")
        line_fields = [*LINE_COLUMNS]
        await export_family(es, names.alias(ORDER_ITEMS), line_fields, line_row, folder / "lines.csv")
    finally:
        await es.close()
    stamp.write_text(json.dumps(wanted))
    return folder


# -- the questions, in SQL ----------------------------------------------------------------

# Both engines run the same statements (DuckDB and PostgreSQL both accept them); :start and
# :end are the period's bounds, inlined as timestamptz literals.
SQL = {
    "dashboard KPIs (30 days)": """
        WITH s AS (SELECT * FROM orders WHERE is_sale AND created_at >= :start AND created_at < :end),
        earlier AS (
            SELECT DISTINCT customer_id FROM orders
            WHERE is_sale AND created_at < :start AND customer_id IN (SELECT customer_id FROM s)
        )
        SELECT sum(gross_revenue) AS gross_revenue, sum(net_revenue) AS net_revenue, count(*) AS orders,
               (sum(gross_revenue) - sum(discount_amount)) / count(*) AS aov, sum(units) AS units,
               count(DISTINCT customer_id) AS customers,
               count(DISTINCT customer_id) - (SELECT count(*) FROM earlier) AS new_customers,
               sum(net_revenue) - sum(cogs) AS gross_profit
        FROM s""",
    "daily revenue trend (365 days)": """
        SELECT CAST(date_trunc('day', created_at AT TIME ZONE 'UTC') AS DATE) AS key,
               sum(gross_revenue) AS gross_revenue, sum(net_revenue) AS net_revenue, count(*) AS orders,
               (sum(gross_revenue) - sum(discount_amount)) / count(*) AS aov, sum(units) AS units
        FROM orders WHERE is_sale AND created_at >= :start AND created_at < :end
        GROUP BY 1 ORDER BY 1""",
    "top 10 products (365 days)": """
        SELECT product_id AS key, sum(line_revenue) AS gross_revenue, sum(quantity) AS units,
               count(DISTINCT order_id) AS orders
        FROM lines WHERE is_sale AND created_at >= :start AND created_at < :end
        GROUP BY product_id ORDER BY CAST(sum(line_revenue) AS DECIMAL(38, 6)) DESC, product_id LIMIT 10""",
    "revenue by category (365 days)": """
        SELECT coalesce(category, '(none)') AS key, sum(line_revenue) AS gross_revenue, sum(quantity) AS units,
               count(DISTINCT order_id) AS orders
        FROM lines WHERE is_sale AND created_at >= :start AND created_at < :end
        GROUP BY 1 ORDER BY CAST(sum(line_revenue) AS DECIMAL(38, 6)) DESC, 1""",
    "revenue, orders, customers by country (365 days)": """
        SELECT coalesce(country, '(none)') AS key, sum(gross_revenue) AS gross_revenue, count(*) AS orders,
               count(DISTINCT customer_id) AS customers
        FROM orders WHERE is_sale AND created_at >= :start AND created_at < :end
        GROUP BY 1 ORDER BY CAST(sum(gross_revenue) AS DECIMAL(38, 6)) DESC, 1""",
}


@dataclass(frozen=True)
class Question:
    name: str
    period: dict[str, str]
    path: str
    params: dict[str, str]
    rows: Callable[[dict[str, Any]], list[dict[str, Any]]]  # the API answer as rows like the SQL's


QUESTIONS = [
    Question("dashboard KPIs (30 days)", MONTH, "dashboard", {}, lambda a: [a["kpis"]]),
    Question(
        "daily revenue trend (365 days)",
        YEAR,
        "revenue/trends",
        {"interval": "day"},
        lambda a: [{**p, "key": p["key"][:10]} for p in a["series"] if p["orders"]],
    ),
    Question("top 10 products (365 days)", YEAR, "products/top-selling", {"limit": "10"}, lambda a: a["items"]),
    Question("revenue by category (365 days)", YEAR, "sales/categories", {}, lambda a: a["items"]),
    Question(
        "revenue, orders, customers by country (365 days)",
        YEAR,
        "sales/geographic",
        {"level": "country"},
        lambda a: a["items"],
    ),
]


def statement(name: str, period: dict[str, str]) -> str:
    sql = SQL[name]
    for bound in ("start", "end"):
        sql = sql.replace(f":{bound}", f"TIMESTAMPTZ '{period[bound]} 00:00:00+00'")
    return sql


def same(api: list[dict[str, Any]], sql: list[dict[str, Any]]) -> tuple[bool, int, list[str]]:
    """(every value equal, values compared, the first differences) of two answers as rows."""
    diffs: list[str] = []
    compared = 0
    keyed = bool(sql) and "key" in sql[0]
    if keyed and [str(r["key"]) for r in api] != [str(r["key"]) for r in sql]:
        diffs.append(f"keys differ: {[r['key'] for r in api][:5]} / {[r['key'] for r in sql][:5]}")
    for a, s in zip(api, sql, strict=False):
        for column, value in s.items():
            if column == "key":
                continue
            compared += 1
            got = a.get(column)
            if isinstance(value, int) and not isinstance(value, bool):
                ok = got == value
            else:
                ok = got is not None and value is not None and abs(float(got) - float(value)) <= 0.01
            if not ok and len(diffs) < 5:
                diffs.append(f"{s.get('key', '')}.{column}: API {got} / SQL {value}")
    return not diffs and len(api) == len(sql), compared, diffs


# -- the engines -----------------------------------------------------------------------------


def as_rows(columns: list[str], records: list[tuple]) -> list[dict[str, Any]]:
    out = []
    for record in records:
        row = {}
        for c, v in zip(columns, record, strict=True):
            if isinstance(v, date):
                v = v.isoformat()
            elif v is not None and not isinstance(v, (int, float, str)):
                v = float(v)  # Decimal
            row[c] = v
        out.append(row)
    return out


class DuckDb:
    name = "DuckDB"

    def __init__(self, folder: Path) -> None:
        import duckdb

        self.db = duckdb.connect(config={"threads": 2})
        t0 = time.perf_counter()
        self.db.execute(
            f"""CREATE TABLE orders AS SELECT * FROM read_csv('{folder / "orders.csv"}', header=false,
            columns={{'order_id': 'VARCHAR', 'created_at': 'TIMESTAMPTZ', 'is_sale': 'BOOLEAN',
            'gross_revenue': 'DOUBLE', 'discount_amount': 'DOUBLE', 'net_revenue': 'DOUBLE', 'units': 'BIGINT',
            'cogs': 'DOUBLE', 'customer_id': 'VARCHAR', 'country': 'VARCHAR'}})"""
        )
        self.db.execute(
            f"""CREATE TABLE lines AS SELECT * FROM read_csv('{folder / "lines.csv"}', header=false,
            columns={{'order_id': 'VARCHAR', 'created_at': 'TIMESTAMPTZ', 'is_sale': 'BOOLEAN',
            'product_id': 'VARCHAR', 'category': 'VARCHAR', 'line_revenue': 'DOUBLE', 'quantity': 'BIGINT'}})"""
        )
        self.db.execute("SET TimeZone = 'UTC'")
        print(f"DuckDB loaded in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    def query(self, sql: str) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql)
        return as_rows([d[0] for d in cursor.description], cursor.fetchall())

    def close(self) -> None:
        self.db.close()


PG_INDEXES = [
    "CREATE INDEX orders_sales ON orders (created_at) INCLUDE (gross_revenue, net_revenue, discount_amount, "
    "units, cogs, customer_id, country) WHERE is_sale",
    "CREATE INDEX orders_customer_sales ON orders (customer_id, created_at) WHERE is_sale",
    "CREATE INDEX lines_sales ON lines (created_at) INCLUDE (product_id, category, line_revenue, quantity, order_id) "
    "WHERE is_sale",
]


# Tuned as one would for analytics on this machine (the durability settings are off in any case).
PG_SETTINGS = (
    "-c shared_buffers=2GB -c work_mem=256MB -c maintenance_work_mem=1GB -c max_parallel_workers_per_gather=2 "
    "-c effective_cache_size=8GB -c jit=off"
)


@contextlib.contextmanager
def private_postgres() -> Iterator[str]:
    """A throw-away PostgreSQL server (devtools/local_servers.py) with PG_SETTINGS: its
    connection string. Stopped and deleted on exit."""
    try:
        with postgres_server(PG_SETTINGS) as port:
            yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    except ServerMissing as exc:
        raise SystemExit(f"{exc} (PG_BIN=... names another folder)") from exc


class Postgres:
    name = "PostgreSQL"

    def __init__(self, dsn: str, folder: Path) -> None:
        import psycopg

        self.db = psycopg.connect(dsn, autocommit=True)
        t0 = time.perf_counter()
        with self.db.cursor() as c:
            c.execute("SET TimeZone = 'UTC'")
            c.execute(
                "CREATE TABLE orders (order_id text, created_at timestamptz, is_sale boolean, gross_revenue float8, "
                "discount_amount float8, net_revenue float8, units bigint, cogs float8, customer_id text, "
                "country text)"
            )
            c.execute(
                "CREATE TABLE lines (order_id text, created_at timestamptz, is_sale boolean, product_id text, "
                "category text, line_revenue float8, quantity bigint)"
            )
            for table in ("orders", "lines"):
                with (folder / f"{table}.csv").open("rb") as f, c.copy(f"COPY {table} FROM STDIN (FORMAT csv)") as cp:
                    while chunk := f.read(1 << 20):
                        cp.write(chunk)
            for index in PG_INDEXES:
                c.execute(index)
            c.execute("VACUUM ANALYZE")
        print(f"PostgreSQL loaded and indexed in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self.db.cursor() as c:
            c.execute(sql)
            return as_rows([d.name for d in c.description or []], c.fetchall())

    def close(self) -> None:
        self.db.close()


# -- measuring -----------------------------------------------------------------------------


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


@dataclass
class Row:
    question: Question
    api_uncached: list[float] = field(default_factory=list)
    api_cached: list[float] = field(default_factory=list)
    engines: dict[str, list[float]] = field(default_factory=dict)
    equal: dict[str, bool] = field(default_factory=dict)
    compared: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "query": self.question.name,
            "api_uncached_ms": round(median_ms(self.api_uncached), 1),
            "api_cached_ms": round(median_ms(self.api_cached), 1),
            "duckdb_ms": round(median_ms(self.engines["DuckDB"]), 1),
            "postgres_ms": round(median_ms(self.engines["PostgreSQL"]), 1),
            "equal": all(self.equal.values()),
        }


async def api_answers(
    settings: Settings, base_urls: tuple[str, str], rows: list[Row], n: int, warmup: int
) -> dict[str, list[dict[str, Any]]]:
    """Times every question on the uncached and the cached server; the API's answers as rows."""
    es = make_async_client(settings)
    names = index_names(settings)
    indices = ",".join(names.alias(f) for f in FAMILIES)
    answers: dict[str, list[dict[str, Any]]] = {}
    headers = {"X-API-Key": BENCH_KEY}
    try:
        async with (
            httpx.AsyncClient(base_url=base_urls[0], timeout=600, headers=headers) as uncached,
            httpx.AsyncClient(base_url=base_urls[1], timeout=600, headers=headers) as cached,
        ):

            async def call(client: httpx.AsyncClient, q: Question, want_cached: bool) -> tuple[float, Any]:
                t0 = time.perf_counter()
                r = await client.get(f"/api/v1/analytics/{q.path}", params={**q.period, **q.params})
                elapsed = time.perf_counter() - t0
                if r.status_code != 200 or r.json().get("cached") is not want_cached:
                    raise SystemExit(f"{q.path}: {r.status_code} cached={r.json().get('cached')} {r.text[:300]}")
                return elapsed, r.json()

            for row in rows:
                q = row.question
                for i in range(warmup + n):
                    await es.indices.clear_cache(index=indices, request=True, ignore_unavailable=True)
                    t, body = await call(uncached, q, False)
                    if i >= warmup:
                        row.api_uncached.append(t)
                    answers[q.name] = q.rows(body)
                await call(cached, q, False)
                for _ in range(n):
                    row.api_cached.append((await call(cached, q, True))[0])
                print(
                    f"  API {q.name}: uncached {median_ms(row.api_uncached):.0f} ms, "
                    f"cached {median_ms(row.api_cached):.1f} ms",
                    file=sys.stderr,
                )
    finally:
        await es.close()
    return answers


def time_engine(engine: Any, rows: list[Row], api: dict[str, list[dict[str, Any]]], n: int, warmup: int) -> None:
    for row in rows:
        q = row.question
        sql = statement(q.name, q.period)
        samples = []
        answer: list[dict[str, Any]] = []
        for i in range(warmup + n):
            t0 = time.perf_counter()
            answer = engine.query(sql)
            if i >= warmup:
                samples.append(time.perf_counter() - t0)
        row.engines[engine.name] = samples
        ok, compared, diffs = same(api[q.name], answer)
        row.equal[engine.name] = ok
        row.compared = compared
        print(
            f"  {engine.name} {q.name}: {median_ms(samples):.0f} ms, {compared:,} values, "
            + ("all equal" if ok else "DIFFERENT: " + "; ".join(diffs)),
            file=sys.stderr,
        )


def table(rows: list[Row]) -> str:
    lines = [
        "| query | API uncached ms | API cached ms | DuckDB ms | PostgreSQL ms | uncached / DuckDB "
        "| uncached / PostgreSQL | values compared | equal |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        j = r.as_json()
        lines.append(
            f"| {j['query']} | {j['api_uncached_ms']:,.1f} | {j['api_cached_ms']:,.1f} | {j['duckdb_ms']:,.1f} "
            f"| {j['postgres_ms']:,.1f} | {j['api_uncached_ms'] / j['duckdb_ms']:.2f}x "
            f"| {j['api_uncached_ms'] / j['postgres_ms']:.2f}x | {r.compared:,} | {'yes' if j['equal'] else 'NO'} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    prefix = prefix_for(args.orders)
    settings = Settings(index_prefix=prefix)
    found = await counts(settings)
    if found["orders"] != args.orders:
        activity = max(5000, args.orders // 5)
        config = SampleConfig(seed=7, orders=args.orders, activity=activity, days=730, end=date(2026, 11, 1))
        await load(settings, config, concurrency=2)
        found = await counts(settings)
    folder = await export(settings, found)
    rows = [Row(q) for q in QUESTIONS]
    workdir = tempfile.TemporaryDirectory(prefix="bench-peers-")
    envs: list[dict[str, str | None] | None] = [
        {"CACHE_TTL_SECONDS": "0"},
        {"CACHE_TTL_SECONDS": None},
    ]  # uncached, cached
    try:
        with api_servers(prefix, Path(workdir.name), BENCH_KEY, ["read"], envs) as servers:
            api = await api_answers(settings, (servers[0][1], servers[1][1]), rows, args.requests, args.warmup)
    finally:
        workdir.cleanup()
    duck = DuckDb(folder)
    try:
        time_engine(duck, rows, api, args.requests, args.warmup)
    finally:
        duck.close()
    with private_postgres() as dsn:
        pg = Postgres(dsn, folder)
        try:
            server_version = pg.query("SHOW server_version")[0]["server_version"]
            time_engine(pg, rows, api, args.requests, args.warmup)
        finally:
            pg.close()

    import duckdb

    print()
    print(
        f"Data: {found['orders']:,} orders and {found['order-items']:,} order lines (prefix `{prefix}`); "
        f"{args.requests} timed runs per engine and question after {args.warmup} warm-up, medians; "
        f"{await es_version(settings)}, DuckDB {duckdb.__version__}, PostgreSQL {server_version}; "
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}."
    )
    print()
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": [r.as_json() for r in rows]}, indent=2) + "\n")
    return 0 if all(all(r.equal.values()) for r in rows) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=FULL_ORDERS, help="the benchmark store's size (bench_queries)")
    parser.add_argument("--requests", type=int, default=5, help="timed runs per engine and question")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--json", metavar="PATH", help="write the medians as JSON")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
