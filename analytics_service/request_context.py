"""Per request: the request id, the access log line, the HTTP metrics and the audit row.

Plain ASGI (no BaseHTTPMiddleware), so streamed responses pass through untouched; the
line, the metrics and the audit row are written when the last byte has been sent, with
the size of the body that was sent.

- Request id: `X-Request-ID` when the client sends a sane one (1-128 of `A-Za-z0-9._:-`),
  else a new one; returned in `X-Request-ID` on every response, bound to every log line
  logged while the request is handled, and kept in its audit row.
- Who: the Principal that auth.authorize put on the request: its key id (a digest prefix,
  never the key), name and store. The store logged is the key's, else the one store the route
  says it wrote to or served (`request.state.audit_store`: an ingest batch, a signed download),
  else the `store_id` asked for.
- Audited values are cleaned (`clean`: no NUL, bounded lengths), so no request can make the
  database refuse its row.
- Route: the route's template (`/api/v1/reports/{report_id}`), never the raw path, so the
  metrics have one series per route; requests that match no route are `unmatched`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("analytics_service.access")

_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Query parameters that are credentials (the signed download link's token): never logged or audited.
SECRET_PARAMS = frozenset({"token", "sig", "signature", "api_key", "key"})
# Downloads through a signed link carry no key: audited with the report they served.
SIGNED_DOWNLOAD_ROUTE = "/api/v1/reports/download"
# Routes that are not data access: not audited (they are still logged and counted).
UNAUDITED_ROUTES = frozenset(
    {"/health", "/metrics", "/docs", "/redoc", "/openapi.json", "/dashboard", "/static/{path}", "/favicon.ico"}
)


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            if _SANE_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


MAX_PARAMS = 50
MAX_VALUE = 300  # characters of a parameter value kept (a longer one is cut, with an ellipsis)


def clean(value: str, limit: int = MAX_VALUE) -> str:
    """A value as the audit table can store it: no NUL (PostgreSQL refuses it), at most `limit` characters."""
    value = value.replace("\x00", "")
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


def public_params(scope: Scope) -> dict[str, Any]:
    """Path and query parameters of a request, without credentials (repeated names: a list),
    cleaned (`clean`) and at most MAX_PARAMS of them."""
    params: dict[str, Any] = {}
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    for name, value in pairs:
        name, value = clean(name, 100), clean(value)
        if name.lower() in SECRET_PARAMS or (name not in params and len(params) >= MAX_PARAMS):
            continue
        if name in params:
            params[name] = [*params[name], value] if isinstance(params[name], list) else [params[name], value]
        else:
            params[name] = value
    for name, value in (scope.get("path_params") or {}).items():
        params.setdefault(name, clean(str(value)))
    return params


def route_template(scope: Scope) -> str:
    """The route that served the request: its template, `<mount>/{path}` for a mounted app
    (the static assets), `unmatched` when nothing matched (a 404 of no route)."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return str(path)
    if scope.get("endpoint") is not None and scope.get("root_path"):
        return f"{scope['root_path']}/{{path}}"
    return "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        status = 500
        sent = 0
        header_value = request_id.encode()

        async def tracking_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", header_value)]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, tracking_send)
            finally:
                self._finish(scope, request_id, status, sent, time.perf_counter() - started)

    def _finish(self, scope: Scope, request_id: str, status: int, sent: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope["method"]
        HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
        HTTP_LATENCY.labels(method=method, route=route, status=str(status)).observe(seconds)
        state = scope.get("state") or {}
        principal = state.get("principal")
        params = {**public_params(scope), **state.get("audit_params", {})}
        # The key's store, else the one store the request wrote to or served (an ingest batch, a
        # signed download: set by the route), else the store_id asked for.
        store = getattr(principal, "store_id", None) or state.get("audit_store") or params.get("store_id")
        store = clean(store, 128) if isinstance(store, str) else None
        key_id = getattr(principal, "key_id", None)
        level = logging.ERROR if status >= 500 else logging.INFO
        log.log(
            level,
            "request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 1),
            bytes=sent,
            key_id=key_id,
            store_id=store,
            client=(scope.get("client") or ("", 0))[0],
        )
        trail = getattr(getattr(scope.get("app"), "state", None), "audit", None)
        if trail is None or route in UNAUDITED_ROUTES or route == "unmatched":
            return
        if principal is None and route != SIGNED_DOWNLOAD_ROUTE:
            return  # 401s have no key to record (they are counted in the metrics)
        trail.record(
            {
                "time": datetime.now(UTC),
                "request_id": request_id,
                "key_id": key_id,
                "key_name": clean(principal.name, 200) if principal is not None and principal.name else None,
                "store_id": store,
                "method": method,
                "route": route,
                "params": params,
                "status": status,
                "result_bytes": sent,
                "duration_ms": round(seconds * 1000, 1),
            }
        )
