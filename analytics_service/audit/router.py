"""`GET /api/v1/audit` (admin): the audit trail, newest first, filtered by key, store, route, status, time."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..auth import require
from .trail import AuditTrail

router = APIRouter(prefix="/api/v1/audit", tags=["operations"], dependencies=[Depends(require("admin"))])


class AuditItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    time: datetime = Field(description="when the request ended (UTC)")
    request_id: str = Field(description="the X-Request-ID of the request (also in its log line)")
    key_id: str | None = Field(description="the API key's id (never the key); null for a signed download link")
    key_name: str | None
    store_id: str | None = Field(description="the key's store, else the store_id asked for")
    method: str
    route: str = Field(description="the route template, e.g. /api/v1/reports/{report_id}")
    params: dict[str, Any] = Field(description="path and query parameters, without credentials")
    status: int
    result_bytes: int = Field(description="size of the response body sent")
    duration_ms: float


class AuditPage(BaseModel):
    items: list[AuditItem] = Field(description="newest first")
    total: int = Field(description="rows matching the filters")
    page: int
    page_size: int


def audit_trail(request: Request) -> AuditTrail:
    return request.app.state.audit


@router.get("", response_model=AuditPage, summary="The audit trail: every data access and write")
async def audit(
    trail: Annotated[AuditTrail, Depends(audit_trail)],
    key_id: Annotated[str | None, Query(max_length=128, description="only this key id")] = None,
    store_id: Annotated[str | None, Query(max_length=128, description="only this store")] = None,
    route: Annotated[str | None, Query(max_length=300, description="only this route template")] = None,
    status: Annotated[int | None, Query(ge=100, le=599, description="only this HTTP status")] = None,
    since: Annotated[AwareDatetime | None, Query(alias="from", description="from this time (inclusive)")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to", description="until this time (exclusive)")] = None,
    page: Annotated[int, Query(ge=1, le=100_000, description="page number, from 1")] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000, description="rows per page")] = 100,
) -> AuditPage:
    await trail.flush()  # this process's latest requests are part of the answer
    rows, total = await asyncio.to_thread(
        trail.repo.page,
        key_id=key_id,
        store_id=store_id,
        route=route,
        status=status,
        since=since,
        until=until,
        page=page,
        page_size=page_size,
    )
    return AuditPage(items=[AuditItem.model_validate(r) for r in rows], total=total, page=page, page_size=page_size)
