"""One error body for every failure: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from elasticsearch import ApiError as ESApiError
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error the API reports to the caller as-is."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "error")
        self.message = message
        self.details = details or []
        self.headers = headers


class ElasticsearchUnavailable(ApiError):
    def __init__(self, reason: str = "Elasticsearch is unavailable") -> None:
        super().__init__(503, reason, code="elasticsearch_unavailable", headers={"Retry-After": "5"})


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable error code, e.g. `validation_error`, `missing_scope`")
    message: str = Field(description="a sentence for people, naming the field or parameter at fault")
    details: list[Any] = Field(
        description="per-field problems (`{field, message, type}`), or per-record "
        "errors of an ingest batch; empty when there is nothing to add"
    )


class ErrorBody(BaseModel):
    """The body of every error answer (the OpenAPI documents it for each 4xx/5xx)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "error": {
                    "code": "validation_error",
                    "message": "limit: must be between 1 and 1000",
                    "details": [{"field": "query.limit", "message": "must be between 1 and 1000"}],
                }
            }
        }
    )

    error: ErrorDetail = Field(description="what went wrong")


class UncomputableResult(ApiError):
    """An analytics number that cannot be computed from the stored data (e.g. a sum that is not finite)."""

    def __init__(self, endpoint: str, fields: list[str]) -> None:
        named = ", ".join(fields[:10]) + (f" and {len(fields) - 10} more" if len(fields) > 10 else "")
        super().__init__(
            502,
            f"{endpoint}: the stored data does not give a finite number for {named}",
            code="uncomputable_result",
            details=[{"field": f, "message": "not a finite number"} for f in fields],
        )


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=exc.headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_details(errors: Sequence[Mapping[str, Any]], prefix: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """pydantic errors -> [{"field": "items.0.quantity", "message": "..."}].

    A model-level check names its field by raising a ValueError with `field_loc`
    (ingest.limits.FieldError); pydantic keeps that exception in `ctx["error"]`.
    """
    details = []
    for err in errors:
        loc, message = (*prefix, *err.get("loc", ())), err.get("msg", "invalid")
        raised = (err.get("ctx") or {}).get("error")
        field_loc = getattr(raised, "field_loc", None)
        if isinstance(field_loc, tuple):
            loc = (*loc, *field_loc)
        if isinstance(raised, ValueError):  # the validator's own sentence, without "Value error, "
            message = str(raised)
        details.append({"field": _field_path(loc), "message": message, "type": err.get("type")})
    return details


def _is_unavailable(exc: Exception) -> bool:
    """Unreachable, or still overloaded (429) after the bulk writer's retries: a 503 with Retry-After."""
    if isinstance(exc, (ESConnectionError, ESConnectionTimeout)):
        return True
    return isinstance(exc, ESApiError) and exc.meta.status in (429, 502, 503, 504)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        fields = ", ".join(d["field"] for d in details) or "request"
        return error_response(ApiError(422, f"invalid value for {fields}", details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else STATUS_CODES.get(exc.status_code, "error")
        return error_response(ApiError(exc.status_code, message, headers=getattr(exc, "headers", None)))

    @app.exception_handler(ESConnectionError)
    @app.exception_handler(ESConnectionTimeout)
    @app.exception_handler(ESApiError)
    async def _elasticsearch(_: Request, exc: Exception) -> JSONResponse:
        if _is_unavailable(exc):
            return error_response(ElasticsearchUnavailable())
        log.exception("Elasticsearch request failed")
        return error_response(ApiError(502, "Elasticsearch rejected the request", code="elasticsearch_error"))

    # Any other exception: http_middleware.CatchAllMiddleware answers the standard 500 body
    # without re-raising (Starlette's own last-resort handler re-raises and closes the connection).
