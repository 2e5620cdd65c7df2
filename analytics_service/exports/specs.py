"""What each export kind reads and its columns (docs/reports.md "Exports")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ..analytics.params import CommonParams, invalid
from ..analytics.users import check_activity_params
from ..es.indices import ACTIVITY, ORDER_ITEMS, ORDERS, PRODUCTS, IndexFamily
from ..es.scan import with_tiebreaker

# text, int, number (a float as stored), money (rounded to 2 decimals), bool,
# datetime (an instant, shown in the request's tz), local_date (the date of `source`, an
# instant, in the request's tz).
ValueKind = Literal["text", "int", "number", "money", "bool", "datetime", "local_date"]


@dataclass(frozen=True)
class Col:
    """One exported column: its header, its kind, and where it comes from in `_source`."""

    name: str
    kind: ValueKind = "text"
    source: str = ""  # dotted path in the document; default: the column name
    description: str = ""

    @property
    def path(self) -> str:
        return self.source or self.name


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """doc -> the value at a dotted path (exported fields are at most one object deep)."""
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return lambda doc: doc.get(key)
    outer, inner = parts

    def nested(doc: dict[str, Any]) -> Any:
        obj = doc.get(outer)
        return obj.get(inner) if isinstance(obj, dict) else None

    return nested


def _instant(value: Any, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):  # epoch millis, should a document hold one
        return datetime.fromtimestamp(value / 1000, tz)
    return datetime.fromisoformat(value).astimezone(tz)


def _money(value: Any) -> float | None:
    return None if value is None else round(float(value), 2) + 0.0  # + 0.0: no "-0.00"


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


_PLAIN: dict[str, Callable[[Any], Any]] = {
    "money": _money,
    "int": lambda v: None if v is None else int(v),
    "number": lambda v: None if v is None else float(v),
    "bool": lambda v: None if v is None else bool(v),
    "text": _text,
}


def _converter(col: Col, tz: ZoneInfo) -> Callable[[dict[str, Any]], Any]:
    """doc -> the column's typed value (None when absent)."""
    get = _getter(col.path)
    if col.kind == "datetime":
        return lambda doc: _instant(get(doc), tz)
    if col.kind == "local_date":
        return lambda doc: None if (v := _instant(get(doc), tz)) is None else v.date()
    convert = _PLAIN[col.kind]
    return lambda doc: convert(get(doc))


def _customer(prefix: str = "customer") -> list[Col]:
    return [
        Col("customer_id", source=f"{prefix}.customer_id"),
        Col("segment", source=f"{prefix}.segment"),
        Col("country", source=f"{prefix}.country"),
        Col("region", source=f"{prefix}.region"),
        Col("state", source=f"{prefix}.state"),
        Col("city", source=f"{prefix}.city"),
    ]


_UTM = [
    Col("utm_source", source="utm.source"),
    Col("utm_medium", source="utm.medium"),
    Col("utm_campaign", source="utm.campaign"),
]


@dataclass(frozen=True)
class ExportSpec:
    """What one export reads: index family, time field, filters, order, columns."""

    kind: str
    family: IndexFamily
    title: str
    columns: tuple[Col, ...]
    time_field: str | None  # None: no period filter (the catalog)
    sort: tuple[str, ...]  # sort fields before the `_shard_doc` tiebreaker
    sales_only: bool = False
    has_channel: bool = True

    @property
    def source_fields(self) -> list[str]:
        return sorted({c.path for c in self.columns})

    def check(self, params: CommonParams) -> CommonParams:
        """422 for a filter this kind cannot apply (activity and the catalog have no channel)."""
        if self.family is ACTIVITY:
            return check_activity_params(params)
        if not self.has_channel and params.channel is not None:
            raise invalid("channel", f"{self.kind} have no sales channel; remove the channel filter")
        return params

    def query(self, params: CommonParams) -> dict[str, Any]:
        filters = params.filters(self.time_field, channel_field="channel" if self.has_channel else None)
        if self.sales_only:
            filters.append({"term": {"is_sale": True}})
        return {"bool": {"filter": filters}}

    def sort_clause(self) -> list[dict[str, Any]]:
        return with_tiebreaker(self.sort)

    def row_function(self, tz: ZoneInfo) -> Callable[[dict[str, Any]], list[Any]]:
        converters = [_converter(c, tz) for c in self.columns]
        return lambda doc: [convert(doc) for convert in converters]

    def describe(self) -> str:
        lines = [self.title, "", "Columns, in this order:", ""]
        lines += [f"- `{c.name}` ({c.kind}){': ' + c.description if c.description else ''}" for c in self.columns]
        return "\n".join(lines)


ORDERS_EXPORT = ExportSpec(
    kind="orders",
    family=ORDERS,
    time_field="created_at",
    sort=("created_at",),
    title="One row per order (every status) created in the period, latest state, sorted by `created_at`.",
    columns=(
        Col("order_id"),
        Col("store_id"),
        Col("status"),
        Col("created_at", "datetime", description="in `tz`"),
        Col("local_date", "local_date", source="created_at", description="date of created_at in `tz`"),
        Col("updated_at", "datetime"),
        Col("paid_at", "datetime"),
        Col("shipped_at", "datetime"),
        Col("delivered_at", "datetime"),
        Col("cancelled_at", "datetime"),
        Col("channel"),
        *_customer(),
        Col("postal_code", source="customer.postal_code"),
        Col("currency", description="the order's own currency; amounts are in the base currency"),
        Col("fx_rate", "number", description="order currency -> base currency"),
        Col("gross_revenue", "money", description="sum of line revenue"),
        Col("discount_amount", "money", description="order-level discount"),
        Col("order_value", "money", description="gross_revenue - discount_amount"),
        Col("refunded_amount", "money"),
        Col("net_revenue", "money", description="order_value - refunded_amount"),
        Col("shipping_amount", "money"),
        Col("tax_amount", "money"),
        Col("total_billed", "money", description="order_value + shipping_amount + tax_amount"),
        Col("cogs", "money", description="sum of line costs (lines with a cost)"),
        Col("units", "int"),
        Col("item_count", "int", description="order lines"),
        Col("payment_method", source="payment.method"),
        Col("payment_status", source="payment.status"),
        Col("installments", "int", source="payment.installments"),
        Col("coupon_code"),
        *_UTM,
    ),
)

SALES_EXPORT = ExportSpec(
    kind="sales",
    family=ORDER_ITEMS,
    time_field="created_at",
    sort=("created_at", "order_id", "line"),
    sales_only=True,
    title="One row per line of a sale (paid, processing, shipped, delivered, refunded) created in the period, "
    "sorted by `created_at`, `order_id`, `line`.",
    columns=(
        Col("order_id"),
        Col("line", "int", description="1-based line number in the order"),
        Col("store_id"),
        Col("status"),
        Col("created_at", "datetime", description="the order's, in `tz`"),
        Col("local_date", "local_date", source="created_at", description="date of created_at in `tz`"),
        Col("channel"),
        Col("product_id"),
        Col("sku"),
        Col("name"),
        Col("category"),
        Col("subcategory"),
        Col("brand"),
        Col("quantity", "int"),
        Col("unit_price", "money", description="in the base currency"),
        Col("discount", "money", description="line discount"),
        Col("line_revenue", "money", description="quantity x unit_price - discount, before rounding"),
        Col("unit_cost", "money"),
        Col("line_cogs", "money", description="quantity x unit_cost"),
        Col("currency"),
        Col("fx_rate", "number"),
        *_customer(),
        Col("payment_method", source="payment.method"),
        Col("coupon_code"),
        *_UTM,
    ),
)

USERS_EXPORT = ExportSpec(
    kind="users",
    family=ACTIVITY,
    time_field="timestamp",
    sort=("timestamp",),
    has_channel=False,
    title="One row per user activity record in the period, sorted by `timestamp`.",
    columns=(
        Col("activity_id"),
        Col("store_id"),
        Col("timestamp", "datetime", description="in `tz`"),
        Col("local_date", "local_date", source="timestamp", description="date of timestamp in `tz`"),
        Col("activity_type"),
        Col("actor_id", description="user_id, else anonymous_id"),
        Col("user_id"),
        Col("anonymous_id"),
        Col("session_id"),
        Col("page_url"),
        Col("referrer"),
        Col("product_id"),
        Col("category"),
        Col("search_query"),
        Col("results_count", "int"),
        Col("order_id"),
        Col("value", "money"),
        Col("rating", "int"),
        Col("review_text"),
        Col("duration_ms", "int"),
        Col("device_type", source="device.type"),
        Col("device_os", source="device.os"),
        Col("device_browser", source="device.browser"),
        Col("country", source="geo.country"),
        Col("region", source="geo.region"),
        Col("city", source="geo.city"),
        *_UTM,
    ),
)

PRODUCTS_EXPORT = ExportSpec(
    kind="products",
    family=PRODUCTS,
    time_field=None,
    sort=("product_id",),
    has_channel=False,
    title="The catalog: one row per product (its latest record), sorted by `product_id`. "
    "No period filter: `start`/`end` are ignored.",
    columns=(
        Col("product_id"),
        Col("store_id"),
        Col("sku"),
        Col("name"),
        Col("category"),
        Col("subcategory"),
        Col("brand"),
        Col("price", "money"),
        Col("cost", "money"),
        Col("stock_quantity", "int"),
        Col("reorder_point", "int"),
        Col("active", "bool"),
        Col("updated_at", "datetime", description="of the catalog record, in `tz`"),
    ),
)

EXPORTS: dict[str, ExportSpec] = {s.kind: s for s in (ORDERS_EXPORT, SALES_EXPORT, USERS_EXPORT, PRODUCTS_EXPORT)}
