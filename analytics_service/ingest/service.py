"""Ingest: validate each record, turn it into bulk actions, write, report per record.

Validation and document building run in a worker thread (`asyncio.to_thread`): the GIL
still serialises the Python work, but the event loop gets it back every switch interval,
so reads are answered while a large batch is validated instead of after it.

Outcomes per record: `indexed` (written), `duplicates` (the same id and state is
already stored), `stale` (an order or product update older than the stored state),
or an entry in `errors` naming the record's position, id and the field at fault.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from elasticsearch import AsyncElasticsearch
from pydantic import BaseModel, ValidationError

from ..config import Settings
from ..errors import ApiError, validation_details
from ..es.bulk import BulkAction, BulkWriter, ItemResult
from ..es.client import index_names
from ..es.indices import FAMILIES, IndexNames
from . import documents as docs
from . import limits
from .order_versions import OrderState, OrderVersionWriter, newest_per_order, settle_superseded
from .publisher import WritePublisher
from .schemas import Activity, Event, Expense, IngestError, IngestResponse, Order, Product

_VERSION_CONFLICT = re.compile(r"current version \[(\d+)\] is higher or equal to the one provided \[(\d+)\]")


@dataclass
class Planned:
    """A valid event, activity, product or expense and the action that stores it
    (orders take their own path: order_versions)."""

    index: int
    record_id: str | None
    store: str
    action: BulkAction


@dataclass
class Valid:
    """A record that passed validation, with the store it belongs to."""

    index: int
    record_id: str | None
    record: Any
    store: str


@dataclass
class Batch:
    valid: list[Valid] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)


def _record_id(raw: Any, id_field: str) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get(id_field), (str, int)) and not isinstance(raw.get(id_field), bool):
        return str(raw[id_field])
    return None


def _invalid(index: int, record_id: str | None, exc: ValidationError) -> IngestError:
    details = validation_details(list(exc.errors(include_url=False, include_input=False)))
    first = details[0] if details else {"field": None, "message": "invalid record"}
    return IngestError(
        index=index,
        id=record_id,
        field=first["field"] or None,
        error=f"{first['field']}: {first['message']}" if first["field"] else first["message"],
        details=details,
    )


def _field_error(index: int, record_id: str | None, exc: ValueError, kind: str = "value_error") -> IngestError:
    """A record's own error: a FieldError names its field, else the message reads 'field: message'."""
    if isinstance(exc, limits.FieldError):
        return IngestError(
            index=index,
            id=record_id,
            error=f"{exc.field}: {exc.message}",
            field=exc.field,
            details=[{"field": exc.field, "message": exc.message, "type": kind}],
        )
    message = str(exc)
    field_name = message.split(":", 1)[0] if ":" in message else None
    return IngestError(index=index, id=record_id, error=message, field=field_name)


def _outcome(action: BulkAction, result: ItemResult) -> str:
    """'indexed', 'duplicate', 'stale' or 'error' for one bulk item."""
    if result.ok:
        return "duplicate" if result.result == "noop" else "indexed"
    if result.conflict:
        if action.op == "create":
            return "duplicate"
        match = _VERSION_CONFLICT.search(result.error_reason or "")
        if match and match.group(1) == match.group(2):
            return "duplicate"
        return "stale"
    return "error"


class Ingestor:
    """Turns batches of API records into stored documents for one prefix."""

    def __init__(self, es: AsyncElasticsearch, writer: BulkWriter, names: IndexNames, settings: Settings) -> None:
        self.es = es
        self.writer = writer
        self.names = names
        self.settings = settings
        self.order_writer = OrderVersionWriter(es, writer, names)
        # Every writer publishes what it wrote, once searchable, for every process's cache.
        self.publisher = WritePublisher(es, names.prefix, ",".join(names.alias(f) for f in FAMILIES))

    @classmethod
    def for_settings(cls, es: AsyncElasticsearch, settings: Settings) -> Ingestor:
        """The Ingestor the API uses: bulk limits, retries and prefix from Settings."""
        writer = BulkWriter(
            es,
            chunk_actions=settings.bulk_chunk_actions,
            chunk_bytes=settings.bulk_chunk_bytes,
            max_retries=settings.bulk_max_retries,
            initial_backoff=settings.bulk_initial_backoff,
        )
        return cls(es, writer, index_names(settings), settings)

    async def finish(self) -> None:
        """Before a command that wrote through this Ingestor exits: make its writes searchable
        and publish their data versions now (instead of later, when it is gone)."""
        await self.publisher.settle()

    # -- one entry point per record kind -------------------------------------------------

    async def orders(self, records: list[Any], key_store: str | None, refresh: str | None = None) -> IngestResponse:
        """Orders converge to each one's newest state in any arrival order (see order_versions)."""
        batch, states = await asyncio.to_thread(self._order_states, records, key_store)
        newest = newest_per_order(states)
        if newest:
            await self.order_writer.write(newest, refresh)
        settled = [*newest, *(older for state in newest for older in settle_superseded(state))]
        errors = [*batch.errors, *(s.error for s in settled if s.error is not None)]
        outcomes = [s.outcome for s in settled if s.error is None and s.outcome is not None]
        return await self._respond(outcomes, errors, {s.store for s in newest if s.wrote}, refresh)

    def _order_states(self, records: list[Any], key_store: str | None) -> tuple[Batch, list[OrderState]]:
        """The batch's valid orders as documents (its errors in the Batch)."""
        batch = self._validate(records, Order, "order_id", key_store)
        received = datetime.now(UTC)
        states: list[OrderState] = []
        for v in batch.valid:
            order: Order = v.record
            try:
                order_doc, line_docs = docs.order_documents(
                    order, v.store, self.settings.store_timezone(v.store), self.settings.base_currency, received
                )
            except ValueError as exc:
                batch.errors.append(_field_error(v.index, v.record_id, exc))
                continue
            states.append(OrderState(v.index, v.record_id or order.order_id, v.store, order_doc, line_docs))
        return batch, states

    async def events(self, records: list[Any], key_store: str | None, refresh: str | None = None) -> IngestResponse:
        received = datetime.now(UTC)

        def build(event: Event, raw: dict[str, Any], store: str) -> BulkAction:
            if event.event_id:
                event_id = event.event_id
            elif event.timestamp is not None:
                event_id = docs.content_id("event", store, raw)
            else:
                # Neither an id nor a time: nothing tells two sends of it apart.
                event_id = "g" + uuid.uuid4().hex
            return docs.event_action(
                event,
                event_id,
                store,
                self.settings.store_timezone(store),
                self.settings.base_currency,
                self.names,
                received,
            )

        return await self._simple(records, Event, "event_id", key_store, refresh, build)

    async def activities(self, records: list[Any], key_store: str | None, refresh: str | None = None) -> IngestResponse:
        received = datetime.now(UTC)

        def build(activity: Activity, raw: dict[str, Any], store: str) -> BulkAction:
            activity_id = activity.activity_id or docs.content_id("activity", store, raw)
            return docs.activity_action(
                activity, activity_id, store, self.settings.store_timezone(store), self.names, received
            )

        return await self._simple(records, Activity, "activity_id", key_store, refresh, build)

    async def products(self, records: list[Any], key_store: str | None, refresh: str | None = None) -> IngestResponse:
        received = datetime.now(UTC)
        return await self._simple(
            records,
            Product,
            "product_id",
            key_store,
            refresh,
            lambda p, raw, store: docs.product_action(p, store, self.names, received),
        )

    async def expenses(self, records: list[Any], key_store: str | None, refresh: str | None = None) -> IngestResponse:
        received = datetime.now(UTC)
        base = self.settings.base_currency
        return await self._simple(
            records,
            Expense,
            "expense_id",
            key_store,
            refresh,
            lambda e, raw, store: docs.expense_action(e, store, base, self.names, received),
        )

    # -- the shared steps ---------------------------------------------------------------

    def _store(self, record_store: str | None, key_store: str | None) -> str:
        return record_store or key_store or self.settings.default_store_id

    def _validate(self, records: list[Any], model: type[BaseModel], id_field: str, key_store: str | None) -> Batch:
        """Validate every record; refuse the whole request when one is for another store."""
        batch = Batch()
        foreign: list[dict[str, Any]] = []
        for i, raw in enumerate(records):
            record_id = _record_id(raw, id_field)
            if not isinstance(raw, dict):
                batch.errors.append(IngestError(index=i, id=None, error="record must be a JSON object"))
                continue
            # Before serialising: orjson (and pydantic) recurse, and stop at 255 levels.
            deep = limits.too_deep(raw, limits.MAX_RECORD_DEPTH)
            if deep is not None:
                too_deep = limits.FieldError(deep, f"nested deeper than {limits.MAX_FREE_FORM_DEPTH} levels")
                batch.errors.append(_field_error(i, record_id, too_deep, "too_deep"))
                continue
            try:
                record = model.model_validate_json(orjson.dumps(raw))
            except ValidationError as exc:
                batch.errors.append(_invalid(i, record_id, exc))
                continue
            except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits (not from orjson.loads)
                batch.errors.append(IngestError(index=i, id=record_id, error=f"record cannot be encoded: {exc}"))
                continue
            store = getattr(record, "store_id", None)
            if key_store is not None and store is not None and store != key_store:
                foreign.append({"index": i, "id": record_id, "store_id": store})
                continue
            batch.valid.append(Valid(i, record_id, record, self._store(store, key_store)))
        if foreign:
            raise ApiError(
                403, f"this API key may only write store '{key_store}'", code="store_forbidden", details=foreign
            )
        return batch

    async def _simple(
        self,
        records: list[Any],
        model: type[BaseModel],
        id_field: str,
        key_store: str | None,
        refresh: str | None,
        build: Callable[[Any, dict[str, Any], str], BulkAction],
    ) -> IngestResponse:
        return await self._write(
            await asyncio.to_thread(self._plan, records, model, id_field, key_store, build), refresh
        )

    def _plan(
        self,
        records: list[Any],
        model: type[BaseModel],
        id_field: str,
        key_store: str | None,
        build: Callable[[Any, dict[str, Any], str], BulkAction],
    ) -> Batch:
        """The batch validated, with the action that stores each valid record."""
        batch = self._validate(records, model, id_field, key_store)
        for v in batch.valid:
            try:
                action = build(v.record, records[v.index], v.store)
            except ValueError as exc:
                batch.errors.append(_field_error(v.index, v.record_id, exc))
                continue
            batch.planned.append(Planned(v.index, v.record_id or action.id.split(":", 1)[1], v.store, action))
        return batch

    async def _write(self, batch: Batch, refresh: str | None) -> IngestResponse:
        actions = [p.action for p in batch.planned]
        results = await self.writer.write(actions, refresh=refresh) if actions else []
        outcomes: list[str] = []
        errors = list(batch.errors)
        touched: set[str] = set()
        for p, result in zip(batch.planned, results, strict=True):
            outcome = _outcome(p.action, result)
            if outcome == "error":
                errors.append(
                    IngestError(
                        index=p.index,
                        id=p.record_id,
                        retryable=result.retryable,
                        field=result.field,
                        error=f"{result.error_type}: {result.error_reason}",
                    )
                )
            else:
                outcomes.append(outcome)
            if result.ok and result.result != "noop":
                touched.add(p.store)
        return await self._respond(outcomes, errors, touched, refresh)

    async def _respond(
        self, outcomes: list[str], errors: list[IngestError], touched: set[str], refresh: str | None
    ) -> IngestResponse:
        """The batch's answer, once the publisher has the stores that got new documents (told
        to the caches now when written with refresh=true or wait_for, else once searchable)."""
        await self.publisher.written(touched, searchable=refresh in ("true", "wait_for"))
        return IngestResponse(
            indexed=outcomes.count("indexed"),
            duplicates=outcomes.count("duplicate"),
            stale=outcomes.count("stale"),
            errors=sorted(errors, key=lambda e: e.index),
        )
