"""Validated records -> Elasticsearch documents and bulk actions.

Everything a query would otherwise need a script for is computed here and stored:
line revenue and cost, order value and net revenue, base-currency amounts (the
original ones are kept beside them), the actor, and local date / hour / weekday in
the store's time zone.

Document ids are scoped by store (`<store_id>:<id>`), so two stores that number their
orders alike can never overwrite each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..es.bulk import BulkAction
from ..es.indices import ACTIVITY, EVENTS, EXPENSES, ORDER_ITEMS, ORDERS, PRODUCTS, IndexNames
from . import limits
from .schemas import SALE_STATUSES, Activity, Event, Expense, Order, Product, normalise_query

# Among states stamped with the same time, the later status in the lifecycle wins.
STATUS_RANK = {"pending": 0, "paid": 1, "processing": 2, "shipped": 3, "delivered": 4, "cancelled": 5, "refunded": 6}


def doc_id(store_id: str, record_id: str) -> str:
    return f"{store_id}:{record_id}"


def local_fields(ts: datetime, tz: ZoneInfo) -> dict[str, Any]:
    local = ts.astimezone(tz)
    return {
        "date": local.strftime("%Y-%m-%d"),
        "month": local.strftime("%Y-%m"),
        "hour": local.hour,
        "weekday": local.weekday(),  # Monday = 0
        "timezone": tz.key,
    }


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _to_base(amount: float | None, fx_rate: float) -> float | None:
    return None if amount is None else amount * fx_rate


def order_state_version(order: Order) -> int:
    """External version of an order's state: newer time first, then status progression.

    The state's time is `updated_at`, or else the latest lifecycle timestamp it carries.
    """
    stamps = [order.created_at, order.paid_at, order.shipped_at, order.delivered_at, order.cancelled_at]
    when = order.updated_at or max(s for s in stamps if s is not None)
    return _ms(when) * 8 + STATUS_RANK[order.status]


def fx_rate_for(currency: str | None, fx_rate: float | None, base: str) -> tuple[str, float]:
    """(currency, rate to base). Raises ValueError naming the field when a rate is missing."""
    currency = currency or base
    if currency == base:
        if fx_rate not in (None, 1, 1.0):
            raise ValueError(f"fx_rate: must be 1 (or absent) for the base currency {base}")
        return currency, 1.0
    if fx_rate is None:
        raise ValueError(f"fx_rate: required when currency ({currency}) is not the base currency ({base})")
    return currency, fx_rate


def order_documents(
    order: Order, store_id: str, tz: ZoneInfo, base: str, received_at: datetime
) -> tuple[dict, list[dict]]:
    """(order document, line documents)."""
    currency, fx = fx_rate_for(order.currency, order.fx_rate, base)
    version = order_state_version(order)
    is_sale = order.status in SALE_STATUSES
    common = {
        "order_id": order.order_id,
        "store_id": store_id,
        "channel": order.channel,
        "status": order.status,
        "is_sale": is_sale,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "received_at": received_at,
        "state_version": version,
        "currency": currency,
        "fx_rate": fx,
        "customer": order.customer.model_dump(),
        "payment": order.payment.model_dump() if order.payment else None,
        "coupon_code": order.coupon_code,
        "utm": order.utm.model_dump() if order.utm else None,
        "local": local_fields(order.created_at, tz),
    }
    lines: list[dict[str, Any]] = []
    for n, item in enumerate(order.items, start=1):
        unit_price = item.unit_price * fx
        discount = item.discount * fx
        unit_cost = _to_base(item.unit_cost, fx)
        lines.append(
            {
                "line": n,
                "product_id": item.product_id,
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "subcategory": item.subcategory,
                "brand": item.brand,
                "quantity": item.quantity,
                "unit_price": unit_price,
                "unit_price_original": item.unit_price,
                "discount": discount,
                "unit_cost": unit_cost,
                "line_revenue": item.quantity * unit_price - discount,
                "line_cogs": None if unit_cost is None else item.quantity * unit_cost,
                "has_cost": unit_cost is not None,
            }
        )
        # Bounded in the base currency, after fx, and so are the totals below (limits.MAX_AMOUNT).
        at = ("items", n - 1)
        limits.check_amount((*at, "unit_price"), item.quantity * unit_price, "(quantity * unit_price, base currency)")
        limits.check_amount((*at, "discount"), discount)
        limits.check_amount((*at, "unit_cost"), lines[-1]["line_cogs"], "(quantity * unit_cost, base currency)")

    gross = sum(line["line_revenue"] for line in lines)
    discount_amount = order.discount_amount * fx
    order_value = gross - discount_amount
    if order.refunded_amount is not None:
        refunded = order.refunded_amount * fx
    else:
        # A refunded order without an amount counts its whole order value (docs/metrics.md).
        refunded = order_value if order.status == "refunded" else 0.0
    shipping = order.shipping_amount * fx
    tax = order.tax_amount * fx
    cogs = sum(line["line_cogs"] for line in lines if line["line_cogs"] is not None)
    total_billed = order_value + shipping + tax
    limits.check_amount("items", gross, "(the order's line revenue, base currency)")
    limits.check_amount("items", cogs, "(the order's cost of goods, base currency)")
    limits.check_amount("discount_amount", discount_amount)
    limits.check_amount("refunded_amount", refunded)
    limits.check_amount("shipping_amount", order_value + shipping, "(the order's total so far, base currency)")
    limits.check_amount("tax_amount", total_billed, "(the order's total billed, base currency)")
    order_doc = {
        **common,
        "paid_at": order.paid_at,
        "shipped_at": order.shipped_at,
        "delivered_at": order.delivered_at,
        "cancelled_at": order.cancelled_at,
        "items": lines,
        "item_count": len(lines),
        "units": sum(line["quantity"] for line in lines),
        "gross_revenue": gross,
        "discount_amount": discount_amount,
        "order_value": order_value,
        "refunded_amount": refunded,
        "has_refund": refunded > 0,
        "net_revenue": order_value - refunded,
        "shipping_amount": shipping,
        "tax_amount": tax,
        "total_billed": total_billed,
        "cogs": cogs,
        "lines_without_cost": sum(1 for line in lines if not line["has_cost"]),
        "original": {
            "currency": currency,
            "gross_revenue": gross / fx,
            "discount_amount": order.discount_amount,
            "shipping_amount": order.shipping_amount,
            "tax_amount": order.tax_amount,
            "refunded_amount": refunded / fx,
        },
        "attributes": order.attributes,
    }
    order_doc["state_digest"] = state_digest(order_doc)
    line_docs = [{**common, **line} for line in lines]
    return order_doc, line_docs


# What the writer adds to an order document, besides the state's own content.
NOT_STATE_CONTENT = ("received_at", "state_digest", "line_high_water", "customers_seen")


def state_digest(order_doc: dict) -> str:
    """A digest of an order state's content (arrival time aside): tells a true resend of the
    stored state from a different state that happens to carry the same version."""
    content = {k: v for k, v in order_doc.items() if k not in NOT_STATE_CONTENT}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


@dataclass(frozen=True)
class StoredOrder:
    """What the orders index holds for one order: its state version and content digest, how
    many lines any accepted state ever had, every customer any accepted state had, and the
    sequence number that guards the next write."""

    state_version: int
    state_digest: str | None  # None for documents written before digests were kept
    line_high_water: int
    customers_seen: tuple[str, ...]
    seq_no: int
    primary_term: int

    FIELDS = (
        "state_version",
        "state_digest",
        "item_count",
        "line_high_water",
        "customers_seen",
        "customer.customer_id",
    )

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> StoredOrder:
        source = hit.get("_source") or {}
        count = int(source.get("item_count") or 0)
        return cls(
            state_version=int(source.get("state_version") or 0),
            state_digest=source.get("state_digest"),
            line_high_water=max(count, int(source.get("line_high_water") or 0)),
            # documents written before customers were tracked: the one they hold
            customers_seen=tuple(source.get("customers_seen") or [(source.get("customer") or {}).get("customer_id")]),
            seq_no=int(hit["_seq_no"]),
            primary_term=int(hit["_primary_term"]),
        )


def order_action(order_doc: dict, names: IndexNames, stored: StoredOrder | None) -> BulkAction:
    """Write the order document only if the stored one is still the one that was read.

    `create` when no state is stored yet, else `index` guarded by `if_seq_no`: a
    concurrent writer makes this a 409, and the caller reads again and decides again.
    The stored `line_high_water` and `customers_seen` only grow, so a newer state knows
    every line an older accepted state may write and can delete it, and every customer
    whose document may hold this order (ingest/customers.py).
    """
    store_id, order_id = order_doc["store_id"], order_doc["order_id"]
    high_water = max(len(order_doc["items"]), stored.line_high_water if stored else 0)
    seen = {order_doc["customer"]["customer_id"], *(c for c in (stored.customers_seen if stored else ()) if c)}
    doc = {**order_doc, "line_high_water": high_water, "customers_seen": sorted(seen)}
    if stored is None:
        return BulkAction("create", names.alias(ORDERS), doc_id(store_id, order_id), doc)
    meta = {"if_seq_no": stored.seq_no, "if_primary_term": stored.primary_term}
    return BulkAction("index", names.alias(ORDERS), doc_id(store_id, order_id), doc, meta)


def line_actions(order_doc: dict, line_docs: list[dict], names: IndexNames, high_water: int) -> list[BulkAction]:
    """The state's lines, and deletes of lines 1..high_water that this state does not have.

    Sent only for a state the orders index accepted. Each carries the state's version
    (external versioning): a line of an older state that lands later is refused, and
    so is one that lands after this state deleted it, for as long as Elasticsearch
    keeps the delete's tombstone (`index.gc_deletes` on order-items: 1 hour).
    """
    store_id, order_id = order_doc["store_id"], order_doc["order_id"]
    meta = {"version": order_doc["state_version"], "version_type": "external"}
    actions = [
        BulkAction("index", names.alias(ORDER_ITEMS), doc_id(store_id, f"{order_id}:{line['line']}"), line, meta)
        for line in line_docs
    ]
    for n in range(len(line_docs) + 1, high_water + 1):
        actions.append(BulkAction("delete", names.alias(ORDER_ITEMS), doc_id(store_id, f"{order_id}:{n}"), None, meta))
    return actions


def content_id(kind: str, store_id: str, raw: dict[str, Any]) -> str:
    """A stable id for a record sent without one: the same record always gets the same id."""
    digest = hashlib.sha256(orjson.dumps({"k": kind, "s": store_id, "r": raw}, option=orjson.OPT_SORT_KEYS))
    return "h" + digest.hexdigest()[:31]


def event_action(
    event: Event, event_id: str, store_id: str, tz: ZoneInfo, base: str, names: IndexNames, received_at: datetime
) -> BulkAction:
    timestamp = event.timestamp or received_at
    currency, fx = (
        (None, None)
        if event.currency is None and event.fx_rate is None
        else fx_rate_for(event.currency, event.fx_rate, base)
    )
    if event.value is not None:
        limits.check_amount("value", event.value * (fx or 1.0))
    props = event.properties
    method = props.get("method") if isinstance(props.get("method"), str) else None
    doc = {
        "event_id": event_id,
        "event_type": event.event_type,
        "timestamp": timestamp,
        "received_at": received_at,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "actor_id": event.user_id or event.anonymous_id,
        "session_id": event.session_id,
        "store_id": store_id,
        "source": event.source,
        "order_id": event.order_id,
        "product_id": event.product_id,
        "category": event.category,
        "value": None if event.value is None else event.value * (fx or 1.0),
        "value_original": event.value,
        "currency": currency or (base if event.value is not None else None),
        "fx_rate": fx,
        "payment_method": method,
        "properties": props,
        "local": local_fields(timestamp, tz),
    }
    return BulkAction("create", names.monthly(EVENTS, timestamp), doc_id(store_id, event_id), doc)


def activity_action(
    activity: Activity, activity_id: str, store_id: str, tz: ZoneInfo, names: IndexNames, received_at: datetime
) -> BulkAction:
    doc = activity.model_dump(exclude={"activity_id", "store_id"})
    doc.update(
        {
            "activity_id": activity_id,
            "store_id": store_id,
            "received_at": received_at,
            "actor_id": activity.user_id or activity.anonymous_id,
            "search_query_normalized": normalise_query(activity.search_query) if activity.search_query else None,
            "local": local_fields(activity.timestamp, tz),
        }
    )
    return BulkAction("create", names.monthly(ACTIVITY, activity.timestamp), doc_id(store_id, activity_id), doc)


def product_action(product: Product, store_id: str, names: IndexNames, received_at: datetime) -> BulkAction:
    """Newest catalog record wins, by `updated_at` (or arrival time when it has none)."""
    updated_at = product.updated_at or received_at
    version = _ms(updated_at)
    doc = product.model_dump(exclude={"store_id", "updated_at"})
    doc.update({"store_id": store_id, "updated_at": updated_at, "received_at": received_at, "state_version": version})
    meta = {"version": version, "version_type": "external"}
    return BulkAction("index", names.alias(PRODUCTS), doc_id(store_id, product.product_id), doc, meta)


def expense_action(expense: Expense, store_id: str, base: str, names: IndexNames, received_at: datetime) -> BulkAction:
    """An upsert that Elasticsearch reports as `noop` when the stored expense is identical."""
    currency, fx = fx_rate_for(expense.currency, expense.fx_rate, base)
    limits.check_amount("amount", expense.amount * fx)
    doc = {
        "expense_id": expense.expense_id,
        "store_id": store_id,
        "date": expense.date.isoformat(),
        "category": expense.category,
        "amount": expense.amount * fx,
        "amount_original": expense.amount,
        "currency": currency,
        "fx_rate": fx,
        "channel": expense.channel,
        "campaign": expense.campaign,
        "description": expense.description,
    }
    # received_at is left out of the compared document so a resend stays a no-op.
    return BulkAction(
        "update",
        names.alias(EXPENSES),
        doc_id(store_id, expense.expense_id),
        {"doc": doc, "doc_as_upsert": True, "detect_noop": True},
    )
