"""API keys from `API_KEYS`: scopes and store binding (API.md "Auth")."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, TypeAdapter, field_validator

from .errors import ApiError
from .ingest.limits import check_store_id

Scope = Literal["ingest", "read", "reports", "admin"]


class ApiKeyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    scopes: list[Scope]
    store_id: str | None = None
    name: str | None = None

    @field_validator("key")
    @classmethod
    def _key_format(cls, v: str) -> str:
        if v.startswith("sha256:"):
            digest = v.removeprefix("sha256:")
            if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise ValueError("a sha256: key must carry 64 hex digits")
        elif len(v) < 8:
            raise ValueError("keys must be at least 8 characters")
        return v

    @field_validator("store_id")
    @classmethod
    def _store_id_syntax(cls, v: str | None) -> str | None:
        # The same rule as a record's store_id: a key bound to `acme:eu` could write ids that collide.
        return None if v is None else check_store_id(v)

    @property
    def digest(self) -> str:
        if self.key.startswith("sha256:"):
            return self.key.removeprefix("sha256:").lower()
        return hashlib.sha256(self.key.encode()).hexdigest()


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
    def __init__(self, keys: list[ApiKeyConfig]) -> None:
        self._by_digest = {k.digest: k for k in keys}

    @classmethod
    def from_setting(cls, value: str | None) -> KeyRing:
        """Parse API_KEYS: a JSON list, or `@path` to a file holding one."""
        if not value:
            return cls([])
        text = Path(value[1:]).read_text() if value.startswith("@") else value
        keys = TypeAdapter(list[ApiKeyConfig]).validate_python(json.loads(text))
        return cls(keys)

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


def require(scope: Scope):
    """Dependency: the caller's Principal, with `scope` (or admin)."""

    async def dependency(request: Request, key: Annotated[str | None, Depends(api_key_header)]) -> Principal:
        if not key:
            raise ApiError(401, "missing X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})
        principal = request.app.state.keyring.authenticate(key)
        if principal is None:
            raise ApiError(401, "unknown API key", headers={"WWW-Authenticate": "ApiKey"})
        if not principal.has(scope):
            raise ApiError(403, f"this API key lacks the '{scope}' scope", code="missing_scope")
        return principal

    return dependency


def resolve_store(principal: Principal, requested: str | None) -> str | None:
    """The store a read is limited to: the key's own, or the requested one, or all (None)."""
    if principal.store_id is not None:
        if requested is not None and requested != principal.store_id:
            raise ApiError(403, f"this API key may only read store '{principal.store_id}'", code="store_forbidden")
        return principal.store_id
    return requested
