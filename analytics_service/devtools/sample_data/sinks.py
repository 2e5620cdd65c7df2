"""Where generated batches go: the ingest service directly, a running API over HTTP, or NDJSON files;
and `ingest()`, which streams a generation into one of them."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any, Self

import orjson

from ...ingest.paths import PATHS, ingest_path
from .base import KINDS, SampleConfig
from .generator import generate

# API paths and body keys per kind (README.md "Sending data"); a kind is its own body key.
HTTP_ROUTES = {kind: (ingest_path(kind), kind) for kind in PATHS}


class SinkError(RuntimeError):
    """A batch was refused or some of its records were not stored."""


class Sink:
    """A destination for generated batches; `async with sink:` opens and closes it."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _count_orders(es: Any, names: Any) -> int:
    """Documents in the orders index (0 when it does not exist yet)."""
    from ...es.indices import ORDERS

    found = await es.count(index=names.alias(ORDERS), ignore_unavailable=True, allow_no_indices=True)
    return int(found["count"])


def _zero() -> dict[str, int]:
    return {"indexed": 0, "duplicates": 0, "stale": 0, "errors": 0}


class DirectSink(Sink):
    """Writes through the project's own Ingestor and BulkWriter (no HTTP).

    Settings come from the environment unless given. Index templates and indices are
    installed (idempotently) when the sink opens.
    """

    def __init__(self, settings: Any = None, *, concurrency: int = 2, refresh: str | None = None) -> None:
        self.settings = settings
        self.concurrency = max(1, concurrency)
        self.refresh = refresh
        self.es: Any = None
        self.ingestor: Any = None
        self.error_samples: list[str] = []

    async def open(self) -> None:
        from ...config import Settings
        from ...es.client import make_async_client
        from ...es.indices import setup_indices
        from ...ingest.customers import ensure_customer_documents
        from ...ingest.service import Ingestor

        settings = self.settings = self.settings or Settings()
        self.es = make_async_client(settings)
        self.ingestor = Ingestor.for_settings(self.es, settings)
        self.names = self.ingestor.names
        await setup_indices(self.es, self.names)
        await ensure_customer_documents(self.es, self.names)

    async def close(self) -> None:
        if self.es is not None:
            try:
                if self.ingestor is not None:
                    await self.ingestor.finish()  # searchable, and every API process told (store_versions.py)
                await self.es.indices.refresh(
                    index=self.names.all_pattern(), allow_no_indices=True, ignore_unavailable=True
                )
            finally:
                await self.es.close()
                self.es = None

    @property
    def is_open(self) -> bool:
        return self.es is not None

    async def existing_orders(self) -> int:
        return await _count_orders(self.es, self.names)

    async def write(self, kind: str, records: list[dict[str, Any]]) -> dict[str, int]:
        result = await getattr(self.ingestor, kind)(records, None, self.refresh)
        for e in result.errors[: max(0, 5 - len(self.error_samples))]:
            self.error_samples.append(f"{kind}[{e.index}] {e.id}: {e.error}")
        return {
            "indexed": result.indexed,
            "duplicates": result.duplicates,
            "stale": result.stale,
            "errors": len(result.errors),
        }


class HttpSink(Sink):
    """POSTs batches to a running API with an `ingest` key; raises SinkError on any refusal."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        concurrency: int = 2,
        refresh: str | None = None,
        timeout: float = 300.0,
        max_body_bytes: int = 9 * 1024 * 1024,
        retries: int = 5,
    ) -> None:
        if not api_key:
            raise ValueError("an API key with the ingest scope is needed (--api-key or ANALYTICS_API_KEY)")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.concurrency = max(1, concurrency)
        self.refresh = refresh
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.retries = retries
        self.client: Any = None
        self.error_samples: list[str] = []

    async def open(self) -> None:
        import httpx

        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self.timeout,
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    @property
    def is_open(self) -> bool:
        return self.client is not None

    async def existing_orders(self) -> int:
        """Counted in Elasticsearch directly (the API's ingest key cannot read)."""
        from ...config import Settings
        from ...es.client import index_names, make_async_client

        settings = Settings()
        es = make_async_client(settings)
        try:
            return await _count_orders(es, index_names(settings))
        finally:
            await es.close()

    async def write(self, kind: str, records: list[dict[str, Any]]) -> dict[str, int]:
        path, key = HTTP_ROUTES[kind]
        body = orjson.dumps({key: records})
        if len(body) > self.max_body_bytes and len(records) > 1:
            half = len(records) // 2
            first = await self.write(kind, records[:half])
            second = await self.write(kind, records[half:])
            return {k: first[k] + second[k] for k in first}
        params = {"refresh": self.refresh} if self.refresh else None
        attempt = 0
        while True:
            response = await self.client.post(path, content=body, params=params)
            if response.status_code in (429, 502, 503, 504) and attempt < self.retries:
                delay = float(response.headers.get("Retry-After") or 0) or min(30.0, 0.5 * 2**attempt)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            break
        if response.status_code != 200:
            raise SinkError(f"POST {path} answered {response.status_code}: {response.text[:2000]}")
        data = response.json()
        if data.get("errors"):
            sample = "; ".join(f"[{e.get('index')}] {e.get('id')}: {e.get('error')}" for e in data["errors"][:5])
            raise SinkError(f"POST {path}: {len(data['errors'])} of {len(records)} {kind} not stored: {sample}")
        return {
            "indexed": int(data.get("indexed", 0)),
            "duplicates": int(data.get("duplicates", 0)),
            "stale": int(data.get("stale", 0)),
            "errors": 0,
        }


class NdjsonSink(Sink):
    """Writes `<dir>/<kind>.ndjson` instead of ingesting (to look at the data)."""

    concurrency = 1

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.files: dict[str, Any] = {}
        self.error_samples: list[str] = []

    async def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.files = {k: open(self.directory / f"{k}.ndjson", "wb") for k in KINDS}  # noqa: SIM115

    async def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files = {}

    @property
    def is_open(self) -> bool:
        return bool(self.files)

    def write_sync(self, kind: str, records: list[dict[str, Any]]) -> dict[str, int]:
        dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        self.files[kind].write(b"".join([dumps(rec, option=option) for rec in records]))
        return {"indexed": len(records), "duplicates": 0, "stale": 0, "errors": 0}

    async def write(self, kind: str, records: list[dict[str, Any]]) -> dict[str, int]:
        return self.write_sync(kind, records)


async def ingest(
    config: SampleConfig,
    sink: Any,
    progress: bool = True,
    *,
    concurrency: int | None = None,
    stats: dict[str, Any] | None = None,
) -> dict[str, dict[str, int]]:
    """Generate and write everything through `sink` (opened and closed here when it has open/close).

    Returns per kind: indexed, duplicates, stale, errors. `stats`, when given, receives
    `generated` (records per kind) and `seconds`.
    """
    from tqdm import tqdm

    limit = max(1, concurrency or getattr(sink, "concurrency", 2))
    totals = {k: _zero() for k in KINDS}
    generated = dict.fromkeys(KINDS, 0)
    bar = tqdm(total=config.orders, unit=" orders", disable=not progress, dynamic_ncols=True, file=sys.stderr)
    started = time.perf_counter()
    owns = not getattr(sink, "is_open", False)
    if owns:
        await sink.open()
    pending: set[asyncio.Task] = set()

    async def one(kind: str, batch: list[dict[str, Any]]) -> tuple[str, int, dict[str, int]]:
        return kind, len(batch), await sink.write(kind, batch)

    def collect(done: set[asyncio.Task]) -> None:
        for task in done:
            kind, n, result = task.result()
            for k, v in result.items():
                totals[kind][k] = totals[kind].get(k, 0) + v
            if kind == "orders":
                bar.update(n)

    try:
        batches = generate(config)
        inline = isinstance(sink, NdjsonSink)
        while True:
            # Generation is CPU work: run it beside the event loop so that writes progress.
            item = next(batches, None) if inline else await asyncio.to_thread(next, batches, None)
            if item is None:
                break
            kind, batch = item
            generated[kind] += len(batch)
            if inline:
                collect_result = sink.write_sync(kind, batch)
                for k, v in collect_result.items():
                    totals[kind][k] += v
                if kind == "orders":
                    bar.update(len(batch))
                continue
            while len(pending) >= limit:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                collect(done)
            pending.add(asyncio.create_task(one(kind, batch)))
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            collect(done)
    except BaseException:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise
    finally:
        bar.close()
        if owns:
            await sink.close()
    if stats is not None:
        stats["generated"] = generated
        stats["seconds"] = time.perf_counter() - started
    return totals
