"""One error body for every failure: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import ApiError as ESApiError
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
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


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=exc.headers
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_details(errors: list[dict[str, Any]], prefix: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
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
    if isinstance(exc, (ESConnectionError, ESConnectionTimeout)):
        return True
    return isinstance(exc, ESApiError) and exc.meta.status in (502, 503, 504)


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

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(ApiError(500, "internal error", code="internal_error"))
