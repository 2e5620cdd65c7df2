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


@cache
def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller's Principal, with `scope` (or admin).

    One dependency per scope (cached), so a router that declares `Depends(require(scope))`
    and a route parameter asking for the same Principal authenticate once per request.
    """

    async def dependency(
        ring: Annotated[KeyRing, Depends(keyring)], key: Annotated[str | None, Depends(api_key_header)]
    ) -> Principal:
        if not key:
            raise ApiError(401, "missing X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})
        principal = ring.authenticate(key)
        if principal is None:
            raise ApiError(401, "unknown API key", headers={"WWW-Authenticate": "ApiKey"})
        if not principal.has(scope):
            raise ApiError(403, f"this API key lacks the '{scope}' scope", code="missing_scope")
        return principal

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
