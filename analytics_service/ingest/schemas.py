"""Ingest payloads (README "Sending data"), validated strictly, one record at a time.

Each record is validated on its own (JSON mode, strict types) so that one bad record
in a batch is reported by position while the others are indexed. Unknown fields are
rejected everywhere except inside the free-form `properties` / `attributes` objects.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from . import limits
from .limits import FieldError

ORDER_STATUSES = ("pending", "paid", "processing", "shipped", "delivered", "cancelled", "refunded")
# A sale is a counted order (docs/metrics.md): pending and cancelled orders are not sales.
SALE_STATUSES = frozenset({"paid", "processing", "shipped", "delivered", "refunded"})
ACTIVITY_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "purchase",
    "login",
    "signup",
    "wishlist_add",
    "review",
)
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
# Clocks drift; a timestamp more than this far ahead of the server is a mistake.
MAX_FUTURE = timedelta(days=2)
# Expenses may be booked ahead (a planned campaign), but not further than this.
MAX_EXPENSE_AHEAD = timedelta(days=366)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, str_strip_whitespace=True)


def _id_from_number(v: Any) -> Any:
    # Shop platforms often number their orders; accept 1001 as "1001".
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


Id = Annotated[
    str,
    BeforeValidator(_id_from_number),
    Field(
        min_length=1,
        max_length=limits.MAX_ID_BYTES,
        description=f"at most {limits.MAX_ID_BYTES} bytes of UTF-8, no control or format characters",
    ),
    AfterValidator(limits.check_id),
]
# Document ids are `<store>:<id>`: a store id never holds ':' (see limits.check_store_id).
StoreId = Annotated[
    str,
    BeforeValidator(_id_from_number),
    Field(pattern=limits.STORE_ID_PATTERN, description="letters, digits, '.', '_', '-'; 1-64 long"),
]
Text = Annotated[str, Field(max_length=1024)]
LongText = Annotated[str, Field(max_length=20000)]
Money = Annotated[float, Field(ge=0, le=limits.MAX_AMOUNT)]
SignedAmount = Annotated[float, Field(ge=-limits.MAX_AMOUNT, le=limits.MAX_AMOUNT)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")]
FxRate = Annotated[
    float, Field(ge=limits.MIN_FX_RATE, le=limits.MAX_FX_RATE, description="base-currency units per unit of `currency`")
]
Count = Annotated[int, Field(ge=0, le=limits.MAX_COUNT)]
# Free-form objects (ES `flattened`): bounded depth, keys and values (limits.check_free_form).
FreeForm = Annotated[dict[str, Any], AfterValidator(limits.check_free_form)]


def _in_range(v: datetime) -> datetime:
    if v < EARLIEST:
        raise ValueError("must not be before 1990-01-01")
    if v > datetime.now(UTC) + MAX_FUTURE:
        raise ValueError("must not be more than 2 days in the future")
    return v.astimezone(UTC)


def _expense_date(v: date) -> date:
    if v < EARLIEST.date():
        raise ValueError("must not be before 1990-01-01")
    if v > (datetime.now(UTC) + MAX_EXPENSE_AHEAD).date():
        raise ValueError("must not be more than one year (366 days) in the future")
    return v


Timestamp = Annotated[
    AwareDatetime,
    AfterValidator(_in_range),
    Field(description="ISO 8601 with a UTC offset, e.g. 2026-11-20T14:03:00-03:00"),
]


class Customer(Strict):
    customer_id: Id
    email: Text | None = None
    name: Text | None = None
    segment: Text | None = None
    country: Text | None = None
    region: Text | None = None
    state: Text | None = None
    city: Text | None = None
    postal_code: Text | None = None


class OrderItem(Strict):
    product_id: Id
    sku: Text | None = None
    name: Text | None = None
    category: Text | None = None
    subcategory: Text | None = None
    brand: Text | None = None
    quantity: int = Field(gt=0, le=limits.MAX_QUANTITY)
    unit_price: Money
    discount: Money = Field(0.0, description="line discount, an amount (not a rate)")
    unit_cost: Money | None = None

    @model_validator(mode="after")
    def _discount_within_line(self) -> OrderItem:
        if self.discount > self.quantity * self.unit_price + 1e-9:
            raise FieldError("discount", "exceeds quantity * unit_price")
        return self


class Payment(Strict):
    method: Text | None = None
    status: Text | None = None
    installments: int | None = Field(None, ge=1, le=limits.MAX_INSTALLMENTS)


class Utm(Strict):
    source: Text | None = None
    medium: Text | None = None
    campaign: Text | None = None


class Order(Strict):
    order_id: Id
    store_id: StoreId | None = None
    channel: Text | None = None
    status: Literal[ORDER_STATUSES]  # type: ignore[valid-type]
    created_at: Timestamp
    updated_at: Timestamp | None = None
    paid_at: Timestamp | None = None
    shipped_at: Timestamp | None = None
    delivered_at: Timestamp | None = None
    cancelled_at: Timestamp | None = None
    currency: Currency | None = None
    fx_rate: FxRate | None = None
    customer: Customer
    items: list[OrderItem] = Field(min_length=1, max_length=limits.MAX_ORDER_LINES)
    discount_amount: Money = 0.0
    shipping_amount: Money = 0.0
    tax_amount: Money = 0.0
    refunded_amount: Money | None = None
    payment: Payment | None = None
    coupon_code: Text | None = None
    utm: Utm | None = None
    attributes: FreeForm = Field(default_factory=dict)

    @model_validator(mode="after")
    def _amounts_consistent(self) -> Order:
        lines = sum(i.quantity * i.unit_price - i.discount for i in self.items)
        if self.discount_amount > lines + 1e-6:
            raise FieldError("discount_amount", "exceeds the order's line revenue")
        billed = lines - self.discount_amount + self.shipping_amount + self.tax_amount
        if self.refunded_amount is not None and self.refunded_amount > billed + 1e-6:
            raise FieldError("refunded_amount", "exceeds the order's total billed")
        return self


class Event(Strict):
    event_id: Id | None = Field(None, description="recommended: makes retries exactly-once")
    event_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="snake_case")
    timestamp: Timestamp | None = Field(None, description="default: when received")
    user_id: Id | None = None
    anonymous_id: Id | None = None
    session_id: Id | None = None
    store_id: StoreId | None = None
    source: Literal["web", "mobile", "api", "server"] | None = None
    order_id: Id | None = None
    product_id: Id | None = None
    category: Text | None = None
    value: SignedAmount | None = None
    currency: Currency | None = None
    fx_rate: FxRate | None = None
    properties: FreeForm = Field(default_factory=dict)


class Device(Strict):
    type: Text | None = None
    os: Text | None = None
    browser: Text | None = None


class Geo(Strict):
    country: Text | None = None
    region: Text | None = None
    city: Text | None = None


class Activity(Strict):
    activity_id: Id | None = None
    activity_type: Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
    timestamp: Timestamp
    user_id: Id | None = None
    anonymous_id: Id | None = None
    session_id: Id
    store_id: StoreId | None = None
    page_url: Annotated[str, Field(max_length=4096)] | None = None
    referrer: Annotated[str, Field(max_length=4096)] | None = None
    product_id: Id | None = None
    category: Text | None = None
    search_query: Text | None = None
    results_count: Count | None = None
    rating: int | None = Field(None, ge=1, le=5)
    review_text: LongText | None = None
    order_id: Id | None = None
    value: SignedAmount | None = None
    duration_ms: int | None = Field(None, ge=0, le=limits.MAX_DURATION_MS)
    device: Device | None = None
    geo: Geo | None = None
    utm: Utm | None = None


class Product(Strict):
    product_id: Id
    store_id: StoreId | None = None
    name: Text | None = None
    sku: Text | None = None
    category: Text | None = None
    subcategory: Text | None = None
    brand: Text | None = None
    price: Money | None = None
    cost: Money | None = None
    stock_quantity: Count | None = None
    reorder_point: Count | None = None
    active: bool | None = None
    updated_at: Timestamp | None = Field(None, description="newest wins; default: when received")


class Expense(Strict):
    expense_id: Id
    store_id: StoreId | None = None
    date: Annotated[date, AfterValidator(_expense_date)]
    category: Text
    amount: Money
    currency: Currency | None = None
    fx_rate: FxRate | None = None
    channel: Text | None = None
    campaign: Text | None = None
    description: LongText | None = None


def normalise_query(text: str) -> str:
    """Search queries are compared trimmed, lower case, with single spaces (docs/metrics.md)."""
    return re.sub(r"\s+", " ", text).strip().lower()


# Envelopes, for the OpenAPI document (the routes validate record by record).
class OrderBatch(Strict):
    orders: list[Order]


class EventBatch(Strict):
    events: list[Event]


class ActivityBatch(Strict):
    activities: list[Activity]


class ProductBatch(Strict):
    products: list[Product]


class ExpenseBatch(Strict):
    expenses: list[Expense]


class IngestError(BaseModel):
    index: int = Field(description="position of the record in the batch")
    id: str | None = Field(None, description="the record's id, when it has one")
    error: str
    field: str | None = Field(None, description="the first invalid field, dotted")
    details: list[dict[str, Any]] = Field(default_factory=list)
    retryable: bool = Field(False, description="true when re-sending the record may succeed")


class IngestResponse(BaseModel):
    indexed: int = Field(description="records written (new or newer state)")
    duplicates: int = Field(description="records already stored with the same id and state")
    stale: int = Field(0, description="order/product updates older than the stored state, ignored")
    errors: list[IngestError] = Field(default_factory=list)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "indexed": 2,
                "duplicates": 1,
                "stale": 0,
                "errors": [
                    {
                        "index": 3,
                        "id": "o-1004",
                        "error": "items.0.quantity: Input should be greater than 0",
                        "field": "items.0.quantity",
                        "details": [],
                        "retryable": False,
                    }
                ],
            }
        }
    )
