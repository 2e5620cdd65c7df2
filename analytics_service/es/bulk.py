"""The one way documents are written: chunked `_bulk` with retries and per-item results.

Items Elasticsearch rejects with 429 or 503 (queue full, shard not ready) are re-sent
with exponential backoff, as are whole requests that fail to connect or are answered
with 429/502/503/504. Every other item failure is returned to the caller, in the order
the actions were given: nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from elasticsearch import ApiError, AsyncElasticsearch, ConnectionError, ConnectionTimeout

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


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

    @property
    def ok(self) -> bool:
        return self.status < 300

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUS


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
        encoded = [action.lines() for action in actions]
        results: list[ItemResult | None] = [None] * len(actions)
        for chunk in self._chunks(encoded):
            await self._write_chunk(chunk, encoded, results, refresh)
        return [r if r is not None else ItemResult(500, error_type="missing_result") for r in results]

    def _chunks(self, encoded: list[list[bytes]]) -> list[list[int]]:
        chunks: list[list[int]] = []
        current: list[int] = []
        size = 0
        for i, lines in enumerate(encoded):
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

    async def _write_chunk(
        self,
        todo: list[int],
        encoded: list[list[bytes]],
        results: list[ItemResult | None],
        refresh: str | bool | None,
    ) -> None:
        attempt = 0
        while todo:
            body = b"\n".join(line for i in todo for line in encoded[i]) + b"\n"
            try:
                kwargs: dict[str, Any] = {"refresh": refresh} if refresh is not None else {}
                response = await self.es.bulk(operations=body, **kwargs)
            except (ConnectionError, ConnectionTimeout) as exc:
                if attempt >= self.max_retries:
                    raise
                log.warning("bulk request failed (%s); retry %d", type(exc).__name__, attempt + 1)
            except ApiError as exc:
                if exc.meta.status not in RETRYABLE_STATUS or attempt >= self.max_retries:
                    raise
                log.warning("bulk request answered %d; retry %d", exc.meta.status, attempt + 1)
            else:
                retry: list[int] = []
                for i, item in zip(todo, response["items"], strict=True):
                    outcome = next(iter(item.values()))
                    status = int(outcome.get("status", 500))
                    if status in RETRYABLE_STATUS and attempt < self.max_retries:
                        retry.append(i)
                        continue
                    error = outcome.get("error") or {}
                    results[i] = ItemResult(
                        status=status,
                        result=outcome.get("result"),
                        error_type=error.get("type") if isinstance(error, dict) else str(error),
                        error_reason=error.get("reason") if isinstance(error, dict) else None,
                    )
                todo = retry
                if not todo:
                    return
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1
