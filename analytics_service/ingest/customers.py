"""Customer documents: per customer and store scope, the customer's sales, kept at ingest.

A customer has two documents: one for the store of the order (`<store>:<customer_id>`)
and one across stores (`*:<customer_id>`, store_id `*`, which no store id can be), so a
question about one store and one about all stores each read one document per customer.
The questions that need a customer's whole history (first sale ever, the previous sale,
cohorts) read these documents instead of paging every order (docs/performance.md).

Each document holds `orders` (stored, not indexed): per order (`<store>:<order_id>`) the
version of the newest accepted state written into it and what the customer numbers need
(creation time, sale or not, order value, channel, place), or a tombstone (`gone`) once a
newer state of the order belongs to another customer. Applying an entry keeps the one of
the higher version, so a document converges to the same content whatever the order in
which states arrive, are repeated or are applied concurrently. The indexed fields are
derived from the live entries on every write: first and last sale, the number of sales,
and `sales` (nested): each sale with its value, channel, place and the time of the
customer's previous sale in the scope.

States come from order_versions once their order document is accepted (written now, or a
true resend), and tombstones go to every other customer the order ever had
(`customers_seen` on the order document). Writes are guarded by sequence number, as for
order documents: a concurrent writer makes it a 409 and this writer reads again and merges
again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import AsyncElasticsearch

from ..es.bulk import BulkAction, BulkWriter
from ..es.indices import CUSTOMERS, ORDERS, IndexNames
from ..es.scan import PitScan, with_tiebreaker
from . import documents as docs

log = logging.getLogger(__name__)

ALL_STORES = "*"
PLACE_FIELDS = ("country", "region", "state", "city")
# Rounds of read-merge-write when concurrent writers keep changing a customer's document.
MAX_ROUNDS = 8


def _ms(value: Any) -> int | None:
    """Epoch milliseconds of a datetime or an ISO 8601 string; without an offset, UTC (as
    Elasticsearch reads it)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


# An order's entry in a customer document, in the form it is stored (`orders.<key>`):
# {"v": version, "t": epoch ms, "sale", "value", "channel", "place": [PLACE_FIELDS]}, or a
# tombstone {"v": version, "gone": true} once a newer state of the order belongs to another
# customer. Entries stay plain dicts from the stored source to the written one: a customer's
# document is read and rewritten on every batch that has one of its orders, so no object is
# built per stored entry.
Entry = dict[str, Any]


def order_entry(order_doc: Mapping[str, Any]) -> Entry:
    """The entry of an order state in its customer's documents."""
    customer = order_doc["customer"]
    return {
        "v": int(order_doc["state_version"]),
        "t": _ms(order_doc["created_at"]),
        "sale": bool(order_doc["is_sale"]),
        "value": float(order_doc["order_value"]),
        "channel": order_doc.get("channel"),
        "place": [customer.get(f) for f in PLACE_FIELDS],
    }


def tombstone(version: int) -> Entry:
    return {"v": version, "gone": True}


def replaces(entry: Entry, stored: Entry | None) -> bool:
    """The higher version wins; at the same version the stored entry stays."""
    return stored is None or entry["v"] > stored["v"]


def customer_doc_id(scope: str, customer_id: str) -> str:
    return docs.doc_id(scope, customer_id)


def customer_document(scope: str, customer_id: str, orders: Mapping[str, Entry]) -> dict[str, Any]:
    """The document of a customer in a scope, derived from its order entries."""
    sales = sorted(
        (
            (e["t"], key, e)
            for key, e in orders.items()
            if e.get("sale") and e.get("t") is not None and not e.get("gone")
        ),
        key=lambda item: (item[0], item[1]),
    )
    nested, previous = [], None
    for t, _, e in sales:
        nested.append(
            {
                "created_at": t,
                "previous_sale_at": previous,
                "order_value": float(e.get("value") or 0.0),
                "channel": e.get("channel"),
                **dict(zip(PLACE_FIELDS, e.get("place") or (None,) * len(PLACE_FIELDS), strict=True)),
            }
        )
        previous = t
    return {
        "store_id": scope,
        "customer_id": customer_id,
        "first_sale_at": sales[0][0] if sales else None,
        "last_sale_at": sales[-1][0] if sales else None,
        "sales_count": len(sales),
        "sales": nested,
        "orders": dict(sorted(orders.items())),
    }


@dataclass
class CustomerChange:
    """The entries to merge into one customer document, and the order states they come from."""

    scope: str
    customer_id: str
    entries: dict[str, Entry] = field(default_factory=dict)
    sources: list[Any] = field(default_factory=list)  # the OrderStates (or anything) to blame on failure

    @property
    def doc_id(self) -> str:
        return customer_doc_id(self.scope, self.customer_id)

    def add(self, order_key: str, entry: Entry, source: Any) -> None:
        if replaces(entry, self.entries.get(order_key)):
            self.entries[order_key] = entry
        self.sources.append(source)


def changes_of(order_docs: Iterable[tuple[Mapping[str, Any], Iterable[str], Any]]) -> dict[str, CustomerChange]:
    """Per customer document, what the accepted states (order document, every customer the
    order ever had, source) change: the entry of the state in its customer's two documents,
    a tombstone in the documents of the order's other customers."""
    out: dict[str, CustomerChange] = {}

    def change(scope: str, customer_id: str) -> CustomerChange:
        key = customer_doc_id(scope, customer_id)
        if key not in out:
            out[key] = CustomerChange(scope, customer_id)
        return out[key]

    for order_doc, seen, source in order_docs:
        store, customer = order_doc["store_id"], order_doc["customer"]["customer_id"]
        order_key = docs.doc_id(store, order_doc["order_id"])
        entry = order_entry(order_doc)
        for scope in (store, ALL_STORES):
            change(scope, customer).add(order_key, entry, source)
            for other in seen:
                if other and other != customer:
                    change(scope, other).add(order_key, tombstone(entry["v"]), source)
    return out


@dataclass
class Stored:
    orders: dict[str, Entry]
    seq_no: int
    primary_term: int


class CustomerWriter:
    """Merges changes into customer documents: read (with sequence numbers), merge, write
    guarded; a 409 reads again. Returns the changes that could not be written, with why."""

    def __init__(self, es: AsyncElasticsearch, writer: BulkWriter, names: IndexNames) -> None:
        self.es = es
        self.writer = writer
        self.names = names

    async def _stored(self, ids: list[str]) -> dict[str, Stored]:
        found = await self.es.mget(
            index=self.names.alias(CUSTOMERS),
            ids=ids,
            source_includes=["orders"],
            filter_path=["docs._id", "docs.found", "docs._seq_no", "docs._primary_term", "docs._source"],
        )
        return {
            d["_id"]: Stored((d.get("_source") or {}).get("orders") or {}, int(d["_seq_no"]), int(d["_primary_term"]))
            for d in found["docs"]
            if d.get("found")
        }

    async def apply(
        self, changes: Mapping[str, CustomerChange], refresh: str | None = None
    ) -> list[tuple[CustomerChange, str]]:
        failed: list[tuple[CustomerChange, str]] = []
        pending = list(changes.values())
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            stored = await self._stored([c.doc_id for c in pending])
            planned: list[tuple[CustomerChange, BulkAction]] = []
            for change in pending:
                current = stored.get(change.doc_id)
                orders = dict(current.orders) if current else {}
                changed = False
                for key, entry in change.entries.items():
                    if replaces(entry, orders.get(key)):
                        orders[key] = entry
                        changed = True
                if not changed:
                    continue  # everything is in already (a resend, or a newer state won)
                doc = customer_document(change.scope, change.customer_id, orders)
                index = self.names.alias(CUSTOMERS)
                if current is None:
                    planned.append((change, BulkAction("create", index, change.doc_id, doc)))
                else:
                    meta = {"if_seq_no": current.seq_no, "if_primary_term": current.primary_term}
                    planned.append((change, BulkAction("index", index, change.doc_id, doc, meta)))
            results = await self.writer.write([a for _, a in planned], refresh=refresh) if planned else []
            pending = []
            for (change, _), result in zip(planned, results, strict=True):
                if result.conflict:
                    pending.append(change)  # another writer got there first: read and merge again
                elif not result.ok:
                    failed.append((change, f"{result.error_type}: {result.error_reason}"))
        failed += [(c, "the customer document kept changing under concurrent writes") for c in pending]
        return failed


# -- building the documents from the orders index ---------------------------------------------

BUILT_MARK = "built_from_orders"  # in the customers index's mapping `_meta` once a build finished
ORDER_FIELDS = [
    "store_id",
    "order_id",
    "state_version",
    "created_at",
    "is_sale",
    "order_value",
    "channel",
    "customer",
    "customers_seen",
]


async def customer_documents_built(es: AsyncElasticsearch, names: IndexNames) -> bool:
    """True once `build_customer_documents` finished for this index (or it was created empty)."""
    mapping = await es.indices.get_mapping(index=names.alias(CUSTOMERS))
    return any((m["mappings"].get("_meta") or {}).get(BUILT_MARK) for m in mapping.body.values())


async def build_customer_documents(
    es: AsyncElasticsearch,
    names: IndexNames,
    progress: Callable[[int, int], None] | None = None,
    batch_orders: int = 2000,
) -> int:
    """Merge every stored order into the customer documents (ordered by customer, so that a
    customer's orders mostly land in one write), then mark the index built. Safe while orders
    are ingested (the merge is the one ingest uses) and when run again. Returns the orders read."""
    writer = CustomerWriter(es, BulkWriter(es), names)
    total = int((await es.count(index=names.alias(ORDERS)))["count"])
    scan = PitScan(
        es, names.alias(ORDERS), None, with_tiebreaker(["customer.customer_id"]), ORDER_FIELDS, page_size=batch_orders
    )
    done = 0
    try:
        await scan.open()
        async with aclosing(scan.pages(await scan.page(None))) as pages:
            async for page in pages:
                changes = changes_of((o, o.get("customers_seen") or (), None) for o in page if o.get("customer"))
                failed = await writer.apply(changes)
                if failed:
                    change, why = failed[0]
                    raise RuntimeError(f"customer document {change.doc_id} not written: {why}")
                done += len(page)
                if progress is not None:
                    progress(done, total)
    finally:
        await scan.close()
    await es.indices.put_mapping(
        index=names.alias(CUSTOMERS), meta={"template_version": CUSTOMERS.version, BUILT_MARK: True}
    )
    return done


async def ensure_customer_documents(es: AsyncElasticsearch, names: IndexNames) -> str | None:
    """Build the customer documents when the index is not marked built yet (a new install, or
    an index created beside orders stored before it existed); what was done, or None."""
    if await customer_documents_built(es, names):
        return None
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if done == total or done % 100_000 < 2000:
            log.info("customer documents: %d of %d orders merged", done, total)

    orders = await build_customer_documents(es, names, report)
    return f"customer documents built from {orders} orders in {time.monotonic() - started:.0f} s"
