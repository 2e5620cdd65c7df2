"""Streamed exports: rows/s and the server's peak memory, per format, large and small.

    python scripts/bench_exports.py [--orders 1000000] [--formats csv,ndjson,xlsx] [--small 10000,100000]

Data: one generated store of 1,000,000 orders. The `bench-queries` prefix of
scripts/bench_queries.py is reused (only read) when it holds all of them; otherwise
`--orders N` orders (seed 7, 730 days to 2026-11-01) are loaded once with the
DirectSink into `bench-exports` (or `bench-exports-<N>`) and reused on later runs.

For each format, `GET /api/v1/export/orders` is run through a real uvicorn server (a
subprocess of its own for every run, so each peak is that run's alone): over the last
days that hold about each of the `--small` numbers of orders, then over the whole
period (every order), to show whether the peak grows with the number of rows. The
client (httpx, streaming, in this process) counts the bytes and checks the row count
(lines for CSV / NDJSON, `<row>` elements of the sheets for XLSX) against
Elasticsearch's count for the period. Measured: wall time from the request to the last
byte (rows/s), time to the first byte, and the server's resident memory: after a
warm-up export (modules loaded, connection pool open) and its peak during the run
(`VmHWM` of /proc/<pid>/status, reset before the run by writing 5 to
/proc/<pid>/clear_refs; where that is refused, VmRSS sampled every 20 ms).
Prints the Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import re
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import openpyxl  # noqa: E402
from bench_common import api_servers, es_version  # noqa: E402

from analytics_service.config import Settings  # noqa: E402
from analytics_service.devtools.sample_data import DirectSink, SampleConfig, ingest  # noqa: E402
from analytics_service.es.client import index_names, make_async_client  # noqa: E402
from analytics_service.es.indices import ORDERS  # noqa: E402
from analytics_service.exports.stream import PAGE_SIZE  # noqa: E402

FULL_ORDERS = 1_000_000
SHARED_PREFIX = "bench-queries"  # scripts/bench_queries.py's data: read, never written
OWN_PREFIX = "bench-exports"
KEY = "bench-exports-key-" + uuid.uuid4().hex[:8]


# -- data ------------------------------------------------------------------------------------


async def order_count(settings: Settings, start: str | None = None, end: str | None = None) -> int:
    es = make_async_client(settings)
    try:
        query = {"range": {"created_at": {"gte": start, "lt": end}}} if start else {"match_all": {}}
        r = await es.count(
            index=index_names(settings).alias(ORDERS),
            query=query,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        return int(r["count"])
    finally:
        await es.close()


async def choose_prefix(orders: int) -> str:
    """bench-queries when it holds every order, else our own prefix (loaded when needed)."""
    if orders == FULL_ORDERS and await order_count(Settings(index_prefix=SHARED_PREFIX)) == FULL_ORDERS:
        print(f"reusing {SHARED_PREFIX!r} ({FULL_ORDERS:,} orders), read only", file=sys.stderr)
        return SHARED_PREFIX
    prefix = OWN_PREFIX if orders == FULL_ORDERS else f"{OWN_PREFIX}-{orders}"
    settings = Settings(index_prefix=prefix)
    found = await order_count(settings)
    if found == orders:
        print(f"reusing {prefix!r} ({found:,} orders)", file=sys.stderr)
        return prefix
    if found:
        raise SystemExit(f"{prefix!r} holds {found:,} orders, not {orders:,}: delete its indices first")
    config = SampleConfig(seed=7, orders=orders, activity=max(5000, orders // 5), days=730, end=date(2026, 11, 1))
    print(f"loading {orders:,} orders into {prefix!r} ...", file=sys.stderr)
    totals = await ingest(config, DirectSink(settings, concurrency=2), progress=True)
    if sum(t["errors"] for t in totals.values()):
        raise SystemExit(f"some records were not stored: {totals}")
    return prefix


async def whole_period(settings: Settings) -> tuple[str, str]:
    """[first day, last day + 1) of the orders, in UTC."""
    es = make_async_client(settings)
    try:
        r = await es.search(
            index=index_names(settings).alias(ORDERS),
            size=0,
            aggs={"first": {"min": {"field": "created_at"}}, "last": {"max": {"field": "created_at"}}},
        )
    finally:
        await es.close()
    first = datetime.fromtimestamp(r["aggregations"]["first"]["value"] / 1000, UTC).date()
    last = datetime.fromtimestamp(r["aggregations"]["last"]["value"] / 1000, UTC).date()
    return first.isoformat(), (last + timedelta(days=1)).isoformat()


async def small_period(settings: Settings, end: str, rows: int) -> tuple[str, str]:
    """The last whole days before `end` that hold at least `rows` orders."""
    end_day = date.fromisoformat(end)
    days = 1
    while True:
        start = (end_day - timedelta(days=days)).isoformat()
        if await order_count(settings, start, end) >= rows or days > 3650:
            return start, end
        days += 1


# -- the server and its memory -----------------------------------------------------------------


def status_kb(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]


class PeakRss:
    """The peak resident memory of a process over a stretch of time."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.method = "VmHWM"
        except OSError:
            self.method = "VmRSS sampled every 20 ms"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.sampled = max(self.sampled, status_kb(self.pid, "VmRSS"))
            time.sleep(0.02)

    def stop(self) -> int:
        """Peak in kB."""
        if self._thread is None:
            return status_kb(self.pid, "VmHWM")
        self._stop.set()
        self._thread.join()
        return self.sampled


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    fmt: str
    rows: int
    seconds: float
    first_byte: float
    size: int
    rss_before_kb: int
    rss_peak_kb: int
    method: str


class RowCounter:
    """Data rows of a download (header excluded): newlines of CSV / NDJSON as they stream
    by; XLSX is kept in a file and its sheets' `<row` elements counted afterwards."""

    def __init__(self, fmt: str, path: Path) -> None:
        self.fmt = fmt
        self.path = path
        self.newlines = 0
        self.out = path.open("wb") if fmt == "xlsx" else None

    def feed(self, chunk: bytes) -> None:
        if self.out is not None:
            self.out.write(chunk)
        else:
            self.newlines += chunk.count(b"\n")

    def rows(self) -> int:
        if self.out is None:
            return self.newlines - (1 if self.fmt == "csv" else 0)
        self.out.close()
        rows = 0
        with zipfile.ZipFile(self.path) as zf:
            for name in zf.namelist():
                if name.startswith("xl/worksheets/sheet"):
                    with zf.open(name) as sheet:
                        tail = b""
                        while chunk := sheet.read(1 << 20):
                            rows += (tail + chunk).count(b"<row ")
                            tail = chunk[-4:]  # a match across chunks, never one counted twice
                    rows -= 1  # each sheet's header row
        return rows


def run_export(prefix: str, fmt: str, start: str, end: str, label: str, workdir: Path) -> Run:
    target = workdir / f"export.{fmt}"
    with api_servers(prefix, workdir, KEY, ["read"]) as [(server, base_url)]:
        with httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=3600) as http:
            # Warm-up: every module loaded, the Elasticsearch connection pool open.
            warm = http.get(
                "/api/v1/export/orders",
                params={
                    "format": fmt,
                    "start": start,
                    "end": (date.fromisoformat(start) + timedelta(days=1)).isoformat(),
                },
            )
            warm.raise_for_status()
            rss_before = status_kb(server.pid, "VmRSS")
            peak = PeakRss(server.pid)
            t0 = time.perf_counter()
            first_byte = None
            size = 0
            counter = RowCounter(fmt, target)
            with http.stream("GET", "/api/v1/export/orders", params={"format": fmt, "start": start, "end": end}) as r:
                r.raise_for_status()
                for chunk in r.iter_raw(1 << 16):
                    if first_byte is None:
                        first_byte = time.perf_counter() - t0
                    size += len(chunk)
                    counter.feed(chunk)
            seconds = time.perf_counter() - t0
            rss_peak = peak.stop()
        rows = counter.rows()
        target.unlink(missing_ok=True)
        return Run(label, fmt, rows, seconds, first_byte or seconds, size, rss_before, rss_peak, peak.method)


# -- report ------------------------------------------------------------------------------------


def mb(kb: int) -> str:
    return f"{kb / 1024:,.0f}"


def table(runs: list[Run]) -> str:
    lines = [
        (
            "| export | format | rows | seconds | rows/s | first byte s | MB sent | server RSS before MB "
            "| peak RSS MB | peak - before MB |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(
            f"| {r.label} | {r.fmt} | {r.rows:,} | {r.seconds:,.1f} | {r.rows / r.seconds:,.0f} "
            f"| {r.first_byte:,.2f} | {r.size / 2**20:,.1f} | {mb(r.rss_before_kb)} | {mb(r.rss_peak_kb)} "
            f"| {mb(r.rss_peak_kb - r.rss_before_kb)} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    prefix = args.prefix or await choose_prefix(args.orders)
    settings = Settings(index_prefix=prefix)
    start, end = await whole_period(settings)
    periods = []
    for rows in sorted(args.small):
        lo, hi = await small_period(settings, end, rows)
        periods.append((f"last days ({lo} to {hi})", lo, hi))
    periods.append((f"all orders ({start} to {end})", start, end))
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        for fmt in args.formats:
            for label, lo, hi in periods:
                expected = await order_count(settings, lo, hi)
                print(f"{fmt}: {label}, {expected:,} orders ...", file=sys.stderr, flush=True)
                run = run_export(prefix, fmt, lo, hi, label, Path(tmp))
                if run.rows != expected:
                    raise SystemExit(f"{fmt} {label}: {run.rows:,} rows in the file, {expected:,} orders in the period")
                print(
                    f"  {run.rows / run.seconds:,.0f} rows/s, peak RSS {mb(run.rss_peak_kb)} MB "
                    f"(before {mb(run.rss_before_kb)} MB)",
                    file=sys.stderr,
                    flush=True,
                )
                runs.append(run)
    print()
    print(
        f"Data: prefix `{prefix}`, {await order_count(settings):,} orders; `GET /api/v1/export/orders` "
        f"(38 columns), page size {PAGE_SIZE:,}; peak RSS by {runs[0].method}; "
        f"openpyxl {openpyxl.__version__} with{'' if openpyxl.LXML else 'out'} lxml; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{await es_version(settings)} on the same machine."
    )
    print()
    print(table(runs))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--orders", type=int, default=FULL_ORDERS, help=f"orders in the store (default {FULL_ORDERS:,})"
    )
    parser.add_argument(
        "--formats",
        type=lambda s: s.split(","),
        default=["csv", "ndjson", "xlsx"],
        help="comma-separated formats (default csv,ndjson,xlsx)",
    )
    parser.add_argument("--prefix", help="export from this existing index prefix instead (only read)")
    parser.add_argument(
        "--small",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[10_000, 100_000],
        help="about how many orders the smaller runs export (default 10000,100000)",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
