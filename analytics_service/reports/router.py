"""Report routes (scope `reports`), docs/reports.md.

Generating writes a pending row and queues the job (a worker builds the file); the
status route shows the row and, once completed, a signed `download_url` that works
without a key. Files are found through the row (`<report_id>.<ext>` under REPORTS_DIR),
never through anything in a request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from ..auth import ReportsKey, require
from .model import FORMATS, MEDIA_TYPES, REPORT_TYPES
from .service import ReportsService, download_filename, reports_service
from .table import STATUSES, Report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], dependencies=[Depends(require("reports"))])
# Signed download links work without a key; included before `router`, whose `/{report_id}`
# would otherwise take `/download`.
signed_links = APIRouter(prefix="/api/v1/reports", tags=["reports"])

ReportType = Literal[REPORT_TYPES]  # type: ignore[valid-type]
Format = Literal[FORMATS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
MAX_PAGE_SIZE = 100
# Bounded so that the row offset ((page - 1) * page_size) stays a small SQL integer.
MAX_PAGE = 100_000


Service = Annotated[ReportsService, Depends(reports_service)]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "report_type": "monthly_business_review",
                "format": "pdf",
                "parameters": {
                    "start": "2026-10-01",
                    "end": "2026-11-01",
                    "tz": "America/New_York",
                    "compare": "previous_period",
                },
                "report_name": "October review",
            }
        },
    )

    report_type: ReportType = Field(description="what the report covers")
    format: Format = Field(description="file format: csv, xlsx, pdf or json")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "the analytics parameters: start, end, tz, interval, store_id, channel, compare, limit (as on the "
            "analytics endpoints) and report-specific options; the period and store are stored resolved"
        ),
    )
    report_name: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="a name for the report (default: `<type> <first day>..<last day>`)",
    )


class GenerateResponse(BaseModel):
    report_id: str = Field(description="the report's id (32 hex digits)")
    status: Literal["pending"] = Field(description="always `pending`: a worker builds the file")
    status_url: str = Field(description="where to follow the report's status")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "report_id": "3f2c9a7e1b4d4c6f8a0e5d7b9c1f2a3e",
                "status": "pending",
                "status_url": "http://127.0.0.1:8000/api/v1/reports/3f2c9a7e1b4d4c6f8a0e5d7b9c1f2a3e",
            }
        }
    )


class ReportOut(BaseModel):
    report_id: str = Field(description="32 hex digits")
    report_name: str = Field(description="the requested or default name; the download's file name derives from it")
    report_type: str = Field(description="one of the report types")
    format: str = Field(description="csv, xlsx, pdf or json")
    parameters: dict[str, Any] = Field(description="the parameters, with the period and store resolved")
    status: Status = Field(description="pending -> processing -> completed | failed; or cancelled, expired")
    store_id: str | None = Field(description="the store the report covers (null: every store)")
    file_size: int | None = Field(description="bytes of the file, once completed")
    row_count: int | None = Field(description="data rows in the report (every table), once completed")
    checksum: str | None = Field(description="sha256 (hex) of the file, once completed")
    error: str | None = Field(description="the last attempt's error (kept while it is retried)")
    attempts: int = Field(description="attempts started so far (a retry or a take-over after a worker died adds one)")
    created_at: datetime = Field(description="when it was requested (UTC)")
    started_at: datetime | None = Field(description="when the latest attempt started")
    completed_at: datetime | None = Field(description="when it completed, failed or was cancelled")
    expires_at: datetime = Field(description="when the file is deleted and the report becomes `expired`")
    schedule_id: str | None = Field(None, description="the schedule this report is a run of (null: requested)")
    download_url: str | None = Field(
        description="signed link (no key needed) while completed; expires within "
        "the hour or at expires_at; null otherwise"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "report_id": "3f2c9a7e1b4d4c6f8a0e5d7b9c1f2a3e",
                "report_name": "October review",
                "report_type": "monthly_business_review",
                "format": "pdf",
                "parameters": {
                    "start": "2026-10-01T00:00:00-04:00",
                    "end": "2026-11-01T00:00:00-04:00",
                    "tz": "America/New_York",
                },
                "status": "completed",
                "store_id": None,
                "file_size": 48213,
                "row_count": 61,
                "checksum": "9b74c9897bac770ffc029102a200c5de0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7",
                "error": None,
                "attempts": 1,
                "created_at": "2026-11-02T09:00:00Z",
                "started_at": "2026-11-02T09:00:01Z",
                "completed_at": "2026-11-02T09:00:04Z",
                "expires_at": "2026-11-09T09:00:00Z",
                "download_url": "http://127.0.0.1:8000/api/v1/reports/download?token=...",
            }
        }
    )


class HistoryResponse(BaseModel):
    items: list[ReportOut] = Field(description="newest first")
    total: int = Field(description="rows matching the filters")
    page: int = Field(description="page number, from 1")
    page_size: int = Field(description="rows per page")

    model_config = ConfigDict(json_schema_extra={"example": {"items": [], "total": 0, "page": 1, "page_size": 20}})


def report_out(request: Request, service: ReportsService, report: Report) -> ReportOut:
    token = service.download_token(report)
    url = f"{request.url_for('signed_download')}?token={token}" if token else None
    # Every field but the link is the row's column of the same name.
    columns = {name: getattr(report, name) for name in ReportOut.model_fields if name != "download_url"}
    return ReportOut.model_validate(
        {**columns, "parameters": report.parameters or {}, "attempts": report.attempts or 0, "download_url": url}
    )


def file_response(service: ReportsService, report: Report) -> FileResponse:
    path = service.file_of(report)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[report.format],
        filename=download_filename(report),
        headers={"X-Checksum-SHA256": report.checksum or "", "Cache-Control": "private, no-store"},
    )


@router.post(
    "/generate",
    status_code=202,
    response_model=GenerateResponse,
    summary="Request a report",
    responses={422: {"description": "unknown report_type or format, or a bad parameter (named)"}},
)
async def generate(
    body: GenerateRequest, request: Request, principal: ReportsKey, service: Service
) -> GenerateResponse:
    report = await service.generate(principal, body.report_type, body.format, body.parameters, body.report_name)
    return GenerateResponse(
        report_id=report.report_id,
        status="pending",
        status_url=str(request.url_for("report_status", report_id=report.report_id)),
    )


@router.get("/history", response_model=HistoryResponse, summary="Reports requested, newest first")
async def history(
    request: Request,
    principal: ReportsKey,
    service: Service,
    status: Annotated[Status | None, Query(description="only reports in this status")] = None,
    report_type: Annotated[ReportType | None, Query(description="only reports of this type")] = None,
    store_id: Annotated[
        str | None, Query(description="only this store's reports (store-bound keys: always theirs)")
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page number, 1..{MAX_PAGE}")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"rows per page, 1..{MAX_PAGE_SIZE}")] = 20,
) -> HistoryResponse:
    rows, total = await service.history(
        principal, status=status, report_type=report_type, store_id=store_id, page=page, page_size=page_size
    )
    return HistoryResponse(
        items=[report_out(request, service, r) for r in rows], total=total, page=page, page_size=page_size
    )


@signed_links.get(
    "/download",
    name="signed_download",
    summary="Download through a signed link (no key needed)",
    response_class=FileResponse,
    responses={403: {"description": "the link was altered"}, 410: {"description": "the link or report expired"}},
)
async def signed_download(
    request: Request,
    service: Service,
    token: Annotated[str, Query(description="the token of a `download_url`")],
) -> FileResponse:
    report = await service.report_for_token(token)
    request.state.audit_params = {"report_id": report.report_id}  # the token itself is never audited
    request.state.audit_store = report.store_id
    return file_response(service, report)


@router.get(
    "/{report_id}",
    name="report_status",
    response_model=ReportOut,
    summary="A report's status",
    responses={404: {"description": "no such report for this key"}},
)
async def report_status(report_id: str, request: Request, principal: ReportsKey, service: Service) -> ReportOut:
    return report_out(request, service, await service.visible(principal, report_id))


@router.get(
    "/{report_id}/download",
    summary="Download a completed report",
    response_class=FileResponse,
    responses={409: {"description": "not completed yet"}, 410: {"description": "expired"}},
)
async def download(report_id: str, principal: ReportsKey, service: Service) -> FileResponse:
    return file_response(service, await service.visible(principal, report_id))


@router.post(
    "/{report_id}/cancel",
    response_model=ReportOut,
    summary="Cancel a pending or processing report",
    responses={409: {"description": "the report is no longer pending or processing"}},
)
async def cancel(report_id: str, request: Request, principal: ReportsKey, service: Service) -> ReportOut:
    return report_out(request, service, await service.cancel(principal, report_id))
