"""Ingest endpoints (scope `ingest`), README "Sending data".

Bodies are read and validated here record by record (not by FastAPI as a whole), so
that one bad record is reported by position while the rest of the batch is indexed.
The OpenAPI document still shows the full request schema (see `request_body`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ..auth import IngestKey, require
from ..config import Settings
from ..dependencies import IngestorDep, SettingsDep
from ..errors import ApiError
from ..metrics import INGEST_RECORDS
from .paths import PATHS, PREFIX
from .schemas import ActivityBatch, Event, EventBatch, ExpenseBatch, IngestResponse, OrderBatch, ProductBatch

router = APIRouter(prefix=PREFIX, tags=["ingest"], dependencies=[Depends(require("ingest"))])

# An Ingestor entry point: (records, the key's store, refresh) -> the batch's answer.
StoreRecords = Callable[[list[Any], str | None, str | None], Awaitable[IngestResponse]]

Refresh = Annotated[
    Literal["wait_for", "true", "false"] | None,
    Query(description="`wait_for`: respond once the records are searchable"),
]


def request_body(schema: str, example: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI requestBody pointing at a schema the app adds to components."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}, "example": example}},
        }
    }


async def read_json(request: Request, settings: Settings) -> Any:
    """The body as JSON; 413 past MAX_BODY_BYTES (checked before and while reading)."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body exceeds {limit} bytes")
    if not body:
        raise ApiError(400, "request body is empty", code="invalid_json")
    try:
        return orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from exc


def records_in(settings: Settings, body: Any, key: str) -> list[Any]:
    """The list under `key` in a `{"<key>": [...]}` envelope, checked for shape and size."""
    if not isinstance(body, dict):
        raise ApiError(
            422, f"body must be a JSON object with a '{key}' list", details=[{"field": key, "message": "required"}]
        )
    unknown = sorted(set(body) - {key})
    if unknown:
        raise ApiError(
            422,
            f"unknown field(s): {', '.join(unknown)}",
            details=[{"field": f, "message": "extra fields not permitted"} for f in unknown],
        )
    records = body.get(key)
    if not isinstance(records, list):
        raise ApiError(422, f"'{key}' must be a list", details=[{"field": key, "message": "must be a list"}])
    limit = settings.max_batch_records
    if len(records) > limit:
        raise ApiError(413, f"a batch may hold at most {limit} records; this one has {len(records)}")
    return records


def audit_stores(request: Request, records: list[Any], default: str) -> None:
    """The stores a batch writes to, for its audit row (request_context.py): the one store, or
    the list of them when a key bound to no store sends several."""
    stores = sorted(
        {str(r["store_id"]) if isinstance(r, dict) and isinstance(r.get("store_id"), str) else default for r in records}
    )
    if len(stores) == 1:
        request.state.audit_store = stores[0]
    elif stores:
        request.state.audit_params = {"stores": ",".join(stores[:20]) + (",..." if len(stores) > 20 else "")}


def answer(kind: str, result: IngestResponse) -> IngestResponse:
    """Counted in the metrics by outcome; 422 when no record of the batch could be stored because all were invalid."""
    for outcome, count in (
        ("indexed", result.indexed),
        ("duplicate", result.duplicates),
        ("stale", result.stale),
        ("error", len(result.errors)),
    ):
        if count:
            INGEST_RECORDS.labels(kind=kind, outcome=outcome).inc(count)
    stored = result.indexed + result.duplicates + result.stale
    if stored == 0 and result.errors and not any(e.retryable for e in result.errors):
        first = result.errors[0]
        raise ApiError(
            422,
            f"record {first.index}: {first.error}"
            if len(result.errors) == 1
            else f"none of the {len(result.errors)} records is valid; first: record {first.index}: {first.error}",
            details=[e.model_dump() for e in result.errors],
        )
    return result


ORDER_EXAMPLE = {
    "orders": [
        {
            "order_id": "o-1001",
            "store_id": "store-1",
            "channel": "web",
            "status": "paid",
            "created_at": "2026-11-20T14:03:00-03:00",
            "updated_at": "2026-11-20T14:05:00-03:00",
            "currency": "USD",
            "customer": {"customer_id": "c-42", "country": "BR", "state": "SP", "city": "Sao Paulo"},
            "items": [
                {
                    "product_id": "p-1",
                    "name": "Mug",
                    "category": "Kitchen",
                    "quantity": 2,
                    "unit_price": 12.5,
                    "discount": 1.0,
                    "unit_cost": 4.0,
                }
            ],
            "discount_amount": 2.0,
            "shipping_amount": 5.0,
            "tax_amount": 1.2,
            "payment": {"method": "card", "status": "captured", "installments": 1},
        }
    ]
}
EVENT_EXAMPLE = {
    "event_id": "e-1",
    "event_type": "payment_succeeded",
    "timestamp": "2026-11-20T14:05:00Z",
    "user_id": "c-42",
    "order_id": "o-1001",
    "value": 29.2,
    "properties": {"method": "card"},
}
ACTIVITY_EXAMPLE = {
    "activities": [
        {
            "activity_id": "a-1",
            "activity_type": "product_view",
            "timestamp": "2026-11-20T14:01:00Z",
            "user_id": "c-42",
            "session_id": "s-9",
            "product_id": "p-1",
            "device": {"type": "mobile", "os": "iOS", "browser": "Safari"},
        }
    ]
}
PRODUCT_EXAMPLE = {
    "products": [
        {
            "product_id": "p-1",
            "name": "Mug",
            "category": "Kitchen",
            "price": 12.5,
            "cost": 4.0,
            "stock_quantity": 140,
            "reorder_point": 30,
            "active": True,
        }
    ]
}
EXPENSE_EXAMPLE = {
    "expenses": [
        {
            "expense_id": "x-1",
            "date": "2026-11-20",
            "category": "marketing",
            "amount": 250.0,
            "channel": "paid_search",
            "campaign": "black-friday",
        }
    ]
}


@dataclass(frozen=True)
class IngestRoute:
    """One ingest endpoint: its kind of record and its OpenAPI entry."""

    kind: str  # the body's envelope key, the Ingestor method and the path (paths.PATHS)
    name: str  # the endpoint's name (and so its OpenAPI operationId)
    summary: str
    schema: str  # the request schema in the OpenAPI components (OPENAPI_MODELS)
    example: dict[str, Any]
    single: bool = False  # a body without the envelope is one record

    def records(self, settings: Settings, body: Any) -> list[Any]:
        if self.single and not (isinstance(body, dict) and self.kind in body):
            return [body]
        return records_in(settings, body, self.kind)


# In the order of paths.PATHS (the OpenAPI document's order).
INGEST_ROUTES = (
    IngestRoute(
        "orders",
        "index_orders",
        "Index orders (upsert; an older state never overwrites a newer one)",
        "OrderBatch",
        ORDER_EXAMPLE,
    ),
    IngestRoute(
        "events",
        "track_events",
        'Track one event, or a batch as {"events": [...]}',
        "EventOrEventBatch",
        EVENT_EXAMPLE,
        single=True,
    ),
    IngestRoute("activities", "index_activity", "Index user activity", "ActivityBatch", ACTIVITY_EXAMPLE),
    IngestRoute("products", "index_products", "Index catalog products (upsert)", "ProductBatch", PRODUCT_EXAMPLE),
    IngestRoute("expenses", "index_expenses", "Index expenses (upsert)", "ExpenseBatch", EXPENSE_EXAMPLE),
)


def add_ingest_route(route: IngestRoute) -> None:
    """Register `route` on the router: read the body, store its records, `answer`."""

    async def endpoint(
        request: Request, principal: IngestKey, ingestor: IngestorDep, settings: SettingsDep, refresh: Refresh = None
    ) -> IngestResponse:
        records = route.records(settings, await read_json(request, settings))
        audit_stores(request, records, principal.store_id or settings.default_store_id)
        store: StoreRecords = getattr(ingestor, route.kind)
        return answer(route.kind, await store(records, principal.store_id, refresh))

    router.add_api_route(
        PATHS[route.kind],
        endpoint,
        methods=["POST"],
        name=route.name,
        response_model=IngestResponse,
        openapi_extra=request_body(route.schema, route.example),
        summary=route.summary,
    )


for _route in INGEST_ROUTES:
    add_ingest_route(_route)


# Request schemas added to the OpenAPI components by the app (see app.custom_openapi).
OPENAPI_MODELS: dict[str, type[BaseModel]] = {
    "OrderBatch": OrderBatch,
    "EventBatch": EventBatch,
    "Event": Event,
    "ActivityBatch": ActivityBatch,
    "ProductBatch": ProductBatch,
    "ExpenseBatch": ExpenseBatch,
}
