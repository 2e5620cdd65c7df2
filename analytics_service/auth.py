"""API keys from `API_KEYS` (parsed by config.Settings): scopes and store binding (README "Auth")."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from .config import ApiKeyConfig, Scope
from .errors import ApiError
from .metrics import RATE_LIMITED
from .rate_limits import ROUTE_CLASSES


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (a digest prefix, never the key), scopes, store."""

    key_id: str
    scopes: frozenset[str]
    store_id: str | None
    name: str | None = None

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


class KeyRing:
    """The keys of API_KEYS, as Settings parsed and validated them (`KeyRing(settings.api_keys)`)."""

    def __init__(self, keys: Iterable[ApiKeyConfig]) -> None:
        self._by_digest = {k.digest: k for k in keys}

    def __len__(self) -> int:
        return len(self._by_digest)

    def authenticate(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        match = None
        for known, cfg in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                match = cfg
        if match is None:
            return None
        return Principal(key_id=digest[:16], scopes=frozenset(match.scopes), store_id=match.store_id, name=match.name)


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (see API_KEYS)")


def keyring(request: Request) -> KeyRing:
    """The keys of API_KEYS, parsed once by app.create_app."""
    return request.app.state.keyring


async def authorize(request: Request, ring: KeyRing, key: str | None, scope: Scope) -> Principal:
    """The caller's Principal, with `scope` (or admin), counted against its rate limit.

    The Principal is kept on the request (`request.state.principal`) for the access log and the
    audit trail (request_context.py), which name the key by its id only.
    """
    if not key:
        raise ApiError(401, "missing X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})
    principal = ring.authenticate(key)
    if principal is None:
        raise ApiError(401, "unknown API key", headers={"WWW-Authenticate": "ApiKey"})
    request.state.principal = principal
    if not principal.has(scope):
        raise ApiError(403, f"this API key lacks the '{scope}' scope", code="missing_scope")
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None and scope in ROUTE_CLASSES:
        refusal = await limiter.hit(scope, principal.key_id)
        if refusal is not None:
            RATE_LIMITED.labels(route_class=scope).inc()
            raise ApiError(
                429,
                f"rate limit of {refusal.limit} for {scope} requests of this API key exceeded; "
                f"retry in {refusal.retry_after} s",
                code="rate_limited",
                headers={
                    "Retry-After": str(refusal.retry_after),
                    "RateLimit-Limit": refusal.limit,
                    "RateLimit-Reset": str(refusal.retry_after),
                },
            )
    return principal


@cache
def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller's Principal, with `scope` (or admin), within its rate limit.

    One dependency per scope (cached), so a router that declares `Depends(require(scope))`
    and a route parameter asking for the same Principal authenticate once per request.
    """

    async def dependency(
        request: Request,
        ring: Annotated[KeyRing, Depends(keyring)],
        key: Annotated[str | None, Depends(api_key_header)],
    ) -> Principal:
        return await authorize(request, ring, key, scope)

    return dependency


ReadKey = Annotated[Principal, Depends(require("read"))]
IngestKey = Annotated[Principal, Depends(require("ingest"))]
ReportsKey = Annotated[Principal, Depends(require("reports"))]


def resolve_store(principal: Principal, requested: str | None) -> str | None:
    """The store a read is limited to: the key's own, or the requested one, or all (None)."""
    if principal.store_id is not None:
        if requested is not None and requested != principal.store_id:
            raise ApiError(403, f"this API key may only read store '{principal.store_id}'", code="store_forbidden")
        return principal.store_id
    return requested
