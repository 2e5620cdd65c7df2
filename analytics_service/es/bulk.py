"""The one way documents are written: chunked `_bulk` with retries and per-item results.

Items Elasticsearch rejects with 429 or 503 (queue full, shard not ready) are re-sent
with exponential backoff, as are whole requests that fail to connect or are answered
with 429/502/503/504. Every other item failure is returned to the caller, in the order
the actions were given: nothing is dropped silently.

A refusal is always per action, never for the batch: an `_id` longer than Elasticsearch
allows is refused before sending, and a whole request answered 400 or 413 (one bad
action makes Elasticsearch refuse them all) is split in halves until each bad action
stands alone and gets its own error result.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from elasticsearch import ApiError, AsyncElasticsearch, ConnectionError, ConnectionTimeout

from ..metrics import BULK_RETRIES

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
# An index made read-only for the moment (`setup` migrating a family): retried like back-pressure.
BLOCKED = "cluster_block_exception"
# A whole request refused for its content (one action's): split it to find that action.
SPLIT_STATUS = frozenset({400, 413})
MAX_ID_BYTES = 512  # Elasticsearch's limit on `_id`
ITEM_FIELDS = ["items.*.status", "items.*.result", "items.*.error"]
# "failed to parse field [items.quantity] of type [integer] ...", "[flattened] field [properties] exceeds ..."
_FIELD_IN_REASON = re.compile(r"field \[([^\]]+)\]")


@dataclass(frozen=True)
class BulkAction:
    op: Literal["index", "create", "update", "delete"]
    index: str
    id: str
    source: dict[str, Any] | None = None
    # e.g. {"version": 123, "version_type": "external"} for guarded writes
    meta: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[bytes]:
        header = orjson.dumps({self.op: {"_index": self.index, "_id": self.id, **self.meta}})
        if self.op == "delete":
            return [header]
        return [header, orjson.dumps(self.source)]


@dataclass(frozen=True)
class ItemResult:
    status: int
    result: str | None = None  # created | updated | noop | deleted | not_found
    error_type: str | None = None
    error_reason: str | None = None
    # The document field Elasticsearch named in its refusal (mapping path, e.g. `items.quantity`).
    field: str | None = None

    @classmethod
    def refused(cls, status: int, error: Any) -> ItemResult:
        """An error result from an Elasticsearch error object (or string)."""
        if not isinstance(error, dict):
            return cls(status=status, error_type=str(error) if error else "error")
        reasons = [error.get("reason") or ""]
        cause = error.get("caused_by")
        while isinstance(cause, dict) and len(reasons) < 5:
            reasons.append(cause.get("reason") or "")
            cause = cause.get("caused_by")
        match = next((m for m in map(_FIELD_IN_REASON.search, reasons) if m), None)
        return cls(
            status=status,
            error_type=error.get("type"),
            error_reason=error.get("reason"),
            field=match.group(1) if match else None,
        )

    @property
    def ok(self) -> bool:
        return self.status < 300

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUS or self.error_type == BLOCKED


@dataclass
class _Write:
    """One `write` call: its actions encoded, their results so far, its refresh policy."""

    encoded: list[list[bytes]]
    results: list[ItemResult | None]
    refresh: str | bool | None


class BulkWriter:
    def __init__(
        self,
        es: AsyncElasticsearch,
        *,
        chunk_actions: int = 1000,
        chunk_bytes: int = 5 * 1024 * 1024,
        max_retries: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.es = es
        self.chunk_actions = chunk_actions
        self.chunk_bytes = chunk_bytes
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff

    async def write(self, actions: Sequence[BulkAction], refresh: str | bool | None = None) -> list[ItemResult]:
        """Write every action; one result per action, in order.

        Raises the client's connection error (or ApiError) when Elasticsearch stays
        unreachable after the retries: the caller reports 503 and, since every write
        is idempotent, the sender can simply send the batch again.
        """
        job = _Write([action.lines() for action in actions], [None] * len(actions), refresh)
        for i, action in enumerate(actions):
            size = len(action.id.encode("utf-8", "surrogatepass"))
            if size > MAX_ID_BYTES:
                job.results[i] = ItemResult(
                    400,
                    error_type="id_too_long",
                    error_reason=(f"document id is {size} bytes; Elasticsearch allows at most {MAX_ID_BYTES}"),
                )
        for chunk in self._chunks(job):
            await self._write_chunk(chunk, job)
        return [r if r is not None else ItemResult(500, error_type="missing_result") for r in job.results]

    def _chunks(self, job: _Write) -> list[list[int]]:
        chunks: list[list[int]] = []
        current: list[int] = []
        size = 0
        for i, lines in enumerate(job.encoded):
            if job.results[i] is not None:  # already refused
                continue
            n = sum(len(line) + 1 for line in lines)
            if current and (len(current) >= self.chunk_actions or size + n > self.chunk_bytes):
                chunks.append(current)
                current, size = [], 0
            current.append(i)
            size += n
        if current:
            chunks.append(current)
        return chunks

    def _backoff(self, attempt: int) -> float:
        delay = min(self.max_backoff, self.initial_backoff * 2**attempt)
        return delay * (0.5 + random.random() / 2)

    async def _write_chunk(self, todo: list[int], job: _Write) -> None:
        attempt = 0
        while todo:
            body = b"\n".join(line for i in todo for line in job.encoded[i]) + b"\n"
            try:
                kwargs: dict[str, Any] = {"refresh": job.refresh} if job.refresh is not None else {}
                # The NDJSON body is sent as it is (encoded once, split by chunk); the client's
                # annotation only names the parsed form. Only what an ItemResult keeps comes
                # back: each item's `_index`, `_id`, `_version`, `_shards`, ... would be most of
                # the response to parse.
                response = await self.es.bulk(
                    operations=body,  # type: ignore[arg-type]
                    filter_path=ITEM_FIELDS,
                    **kwargs,
                )
            except (ConnectionError, ConnectionTimeout) as exc:
                if attempt >= self.max_retries:
                    raise
                log.warning("bulk request failed (%s); retry %d", type(exc).__name__, attempt + 1)
                BULK_RETRIES.labels(reason="connection").inc()
            except ApiError as exc:
                if exc.meta.status in SPLIT_STATUS:
                    await self._split(todo, job, exc)
                    return
                if exc.meta.status not in RETRYABLE_STATUS or attempt >= self.max_retries:
                    raise
                log.warning("bulk request answered %d; retry %d", exc.meta.status, attempt + 1)
                BULK_RETRIES.labels(reason=str(exc.meta.status)).inc()
            else:
                retry: list[int] = []
                for i, item in zip(todo, response["items"], strict=True):
                    outcome = next(iter(item.values()))
                    status = int(outcome.get("status", 500))
                    error = outcome.get("error")
                    blocked = isinstance(error, dict) and error.get("type") == BLOCKED
                    if (status in RETRYABLE_STATUS or blocked) and attempt < self.max_retries:
                        retry.append(i)
                        continue
                    # A delete of a missing document is a 404 with result `not_found` and no error.
                    job.results[i] = (
                        ItemResult.refused(status, error)
                        if error
                        else ItemResult(status=status, result=outcome.get("result"))
                    )
                todo = retry
                if not todo:
                    return
                BULK_RETRIES.labels(reason="items").inc(len(todo))
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    async def _split(self, todo: list[int], job: _Write, exc: ApiError) -> None:
        """A request refused as a whole: bisect until each refused action stands alone."""
        if len(todo) == 1:
            body = exc.body if isinstance(exc.body, dict) else {}
            error = body.get("error") or {"type": "bad_request", "reason": str(exc.message)}
            job.results[todo[0]] = ItemResult.refused(exc.meta.status, error)
            return
        log.warning("bulk request of %d actions refused with %d; splitting it", len(todo), exc.meta.status)
        half = len(todo) // 2
        await self._write_chunk(todo[:half], job)
        await self._write_chunk(todo[half:], job)
