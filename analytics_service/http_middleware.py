"""ASGI middleware of the HTTP contract: JSON request bodies only, and a 500 that keeps the connection.

Both are plain ASGI (no BaseHTTPMiddleware), so streamed responses pass through untouched.
"""

from __future__ import annotations

import logging

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: str) -> bool:
    """`application/json` or `application/<anything>+json`, parameters (charset=...) allowed."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


async def send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class JsonBodyOnlyMiddleware:
    """415 for a POST/PUT/PATCH that carries a body whose Content-Type is not JSON.

    Covers the ingest routes (which read the body by hand) and the FastAPI-parsed ones
    alike; a POST without a body (e.g. `cancel`) needs no Content-Type.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        raw = headers.get(b"content-type")
        sent = raw.decode("latin-1") if raw is not None else ""
        if is_json(sent):
            await self.app(scope, receive, send)
            return
        what = f"Content-Type {sent!r}" if sent else "no Content-Type"
        message = f"request bodies must be JSON (Content-Type: application/json); this request sent {what}"
        await send_json(
            send,
            415,
            error_body(
                "unsupported_media_type",
                message,
                [{"field": "header.content-type", "message": "must be application/json", "received": sent or None}],
            ),
        )


class CatchAllMiddleware:
    """Any exception no handler took: log it and answer the standard 500 body, without re-raising.

    Starlette's ServerErrorMiddleware re-raises after its 500, and the server then closes the
    keep-alive connection; this sits inside it, so the connection stays open. When the response
    has already started (a stream failing midway) nothing can be sent: the exception goes on
    and the server cuts the connection, which is the only honest end of a truncated body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await send_json(send, 500, error_body("internal_error", "internal error"))
