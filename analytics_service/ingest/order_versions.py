"""Order versions converge to the newest, whatever the arrival order.

An order is two kinds of document: the order (orders index) and one per line
(order-items). Writing both in one bulk request, with external versions, is not enough:
a late older state (or an older state in the same batch) can still write lines the
newest state does not have. So a batch of orders is written in three steps:

1. **Resolve within the batch.** Per order, only the newest state of the batch goes on;
   the others are `stale` (older) or `duplicates` (the same state).
2. **Order documents, guarded.** Each remaining state is compared with the stored one
   (read with its sequence number): older -> `stale`, nothing is written at all; the same
   version -> `duplicate` (another content at the same version changes nothing either:
   the stored content digest tells a true resend from it); newer -> written with
   `if_seq_no` (or `create`), so two concurrent writers of one order are serialised: the
   loser reads again and decides again. The order document keeps `line_high_water`, the
   most lines any accepted state had.
3. **Lines and customers, only for accepted states** (written now, or already stored with
   the same content digest: a resend after a failure between steps 2 and 3 completes them).
   Every line write and delete carries the state's version (external): lines 1..n are
   written, lines n+1..high water deleted. A line of an older state that arrives late is
   refused by the line's version or by the delete's tombstone (kept for
   `index.gc_deletes`, 1 hour on order-items). The customer documents of the order's
   customer get the state's entry, those of every other customer it ever had a tombstone
   (ingest/customers.py: the higher version wins there too).

Between steps 2 and 3 a reader may see the new order document with the previous
state's lines, for the milliseconds the second bulk request takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import AsyncElasticsearch

from ..es.bulk import BulkAction, BulkWriter, ItemResult
from ..es.indices import ORDERS, IndexNames
from . import documents as docs
from .customers import CustomerWriter, changes_of
from .schemas import IngestError

# Rounds of read-decide-write when concurrent writers keep changing an order; each lost
# round means another writer's state was stored, so this is only reached under a storm.
MAX_ROUNDS = 8


@dataclass
class OrderState:
    """One order record of the batch, as documents, and what became of it."""

    index: int
    record_id: str
    store: str
    order_doc: dict[str, Any]
    line_docs: list[dict[str, Any]]
    outcome: str | None = None  # indexed | duplicate | stale
    error: IngestError | None = None
    high_water: int = 0
    customers_seen: tuple[str, ...] = ()  # every customer an accepted state of the order had
    wrote: bool = False  # a document of this order was written or deleted (the cache goes stale)
    superseded: list[OrderState] = field(default_factory=list)

    @property
    def doc_id(self) -> str:
        return docs.doc_id(self.store, self.order_doc["order_id"])

    @property
    def version(self) -> int:
        return int(self.order_doc["state_version"])

    def fail(self, result: ItemResult, what: str = "") -> None:
        self.error = IngestError(
            index=self.index,
            id=self.record_id,
            retryable=result.retryable,
            field=result.field,
            error=f"{what}{result.error_type}: {result.error_reason}",
        )


def newest_per_order(states: list[OrderState]) -> list[OrderState]:
    """Step 1: the newest state of each order in the batch; the others hang off it."""
    newest: dict[str, OrderState] = {}
    for state in states:
        current = newest.get(state.doc_id)
        if current is None:
            newest[state.doc_id] = state
        elif state.version > current.version:
            state.superseded = [*current.superseded, current]
            current.superseded = []
            newest[state.doc_id] = state
        else:
            current.superseded.append(state)
    return list(newest.values())


def settle_superseded(state: OrderState) -> list[OrderState]:
    """Outcomes of the batch's older copies of an order, once its newest is known."""
    for older in state.superseded:
        if state.error is not None and state.outcome is None:
            older.error = IngestError(
                index=older.index,
                id=older.record_id,
                retryable=state.error.retryable,
                error=f"not stored: record {state.index} (a newer state of this order) failed: {state.error.error}",
            )
        else:
            older.outcome = "duplicate" if older.version == state.version else "stale"
    return state.superseded


class OrderVersionWriter:
    """Steps 2 and 3 for the newest states of a batch."""

    def __init__(self, es: AsyncElasticsearch, writer: BulkWriter, names: IndexNames) -> None:
        self.es = es
        self.writer = writer
        self.names = names
        self.customers = CustomerWriter(es, writer, names)

    async def write(self, states: list[OrderState], refresh: str | None) -> None:
        accepted = await self._write_orders(states)
        await self._write_lines(accepted, refresh)
        await self._write_customers(accepted, refresh)
        if refresh in ("true", "wait_for") and any(s.wrote for s in states):
            # The lines' request waited for order-items; make the order documents searchable too.
            await self.es.indices.refresh(index=self.names.alias(ORDERS))

    async def _stored(self, states: list[OrderState]) -> dict[str, docs.StoredOrder]:
        found = await self.es.mget(
            index=self.names.alias(ORDERS),
            ids=sorted({s.doc_id for s in states}),
            source_includes=list(docs.StoredOrder.FIELDS),
        )
        return {d["_id"]: docs.StoredOrder.from_hit(d) for d in found["docs"] if d.get("found")}

    async def _write_orders(self, states: list[OrderState]) -> list[OrderState]:
        """Step 2; returns the states whose lines are to be written."""
        accepted: list[OrderState] = []
        pending = states
        for _ in range(MAX_ROUNDS):
            if not pending:
                return accepted
            stored = await self._stored(pending)
            planned: list[tuple[OrderState, BulkAction]] = []
            for state in pending:
                current = stored.get(state.doc_id)
                if current is not None and current.state_version > state.version:
                    state.outcome = "stale"
                elif current is not None and current.state_version == state.version:
                    state.outcome, state.high_water = "duplicate", current.line_high_water
                    state.customers_seen = current.customers_seen
                    if current.state_digest == state.order_doc["state_digest"]:
                        accepted.append(state)  # a true resend: complete the lines if they are not all there
                    # else another content at the same version: the stored state stays, nothing is written
                else:
                    action = docs.order_action(state.order_doc, self.names, current)
                    planned.append((state, action))
            results = await self.writer.write([action for _, action in planned]) if planned else []
            pending = []
            for (state, action), result in zip(planned, results, strict=True):
                if result.ok:
                    state.outcome, state.high_water = "indexed", int(action.source["line_high_water"])  # type: ignore[index]
                    state.customers_seen = tuple(action.source["customers_seen"])  # type: ignore[index]
                    state.wrote = True
                    accepted.append(state)
                elif result.conflict:
                    pending.append(state)  # another writer got there first: read again
                else:
                    state.fail(result)
        for state in pending:
            state.error = IngestError(
                index=state.index,
                id=state.record_id,
                retryable=True,
                error=f"order {state.record_id} kept changing under concurrent writes; send it again",
            )
        return accepted

    async def _write_lines(self, accepted: list[OrderState], refresh: str | None) -> None:
        """Step 3: lines and deletes at the state's version; a 409 means a newer state owns the line."""
        planned = [
            (state, action)
            for state in accepted
            for action in docs.line_actions(state.order_doc, state.line_docs, self.names, state.high_water)
        ]
        if not planned:
            return
        results = await self.writer.write([action for _, action in planned], refresh=refresh)
        for (state, action), result in zip(planned, results, strict=True):
            state.wrote = state.wrote or result.ok
            fine = result.ok or result.conflict or (action.op == "delete" and result.status == 404)
            if not fine and state.error is None:
                # The order document holds the new state already: a resend completes the lines.
                state.fail(result, f"order stored, line document {action.id} not (send the order again): ")
                assert state.error is not None
                state.error.retryable = True

    async def _write_customers(self, accepted: list[OrderState], refresh: str | None) -> None:
        """Step 3 for the customer documents (ingest/customers.py)."""
        changes = changes_of((s.order_doc, s.customers_seen, s) for s in accepted)
        for change, why in await self.customers.apply(changes, refresh):
            for state in change.sources:
                state.wrote = True
                if state.error is None:
                    state.error = IngestError(
                        index=state.index,
                        id=state.record_id,
                        retryable=True,
                        error=f"order stored, customer document {change.doc_id} not (send the order again): {why}",
                    )
