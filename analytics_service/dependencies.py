"""Typed dependency providers: what the app opened (app.py's lifespan), for routes to declare.

Routes never read `request.app.state` themselves; they ask for `SettingsDep`, `EsDep`, ...
so each route's signature says what it uses, and a test can override one provider
(`app.dependency_overrides`). Modules this one would import in a cycle (auth, reports)
declare their alias next to their type, from the provider here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from elasticsearch import AsyncElasticsearch
from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from .cache import ResponseCache
from .config import Settings
from .es.indices import IndexGuard, IndexNames
from .ingest.service import Ingestor
from .redis_client import CircuitBreaker

if TYPE_CHECKING:
    from .auth import KeyRing
    from .reports.service import ReportsService


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def keyring(request: Request) -> KeyRing:
    return request.app.state.keyring  # type: ignore[no-any-return]


def elasticsearch(request: Request) -> AsyncElasticsearch:
    return request.app.state.es  # type: ignore[no-any-return]


def index_names(request: Request) -> IndexNames:
    return request.app.state.names  # type: ignore[no-any-return]


def response_cache(request: Request) -> ResponseCache | None:
    return request.app.state.cache  # type: ignore[no-any-return]


async def ready_ingestor(request: Request) -> Ingestor:
    """The ingestor, once the index templates are checked (installed with AUTO_SETUP)."""
    guard: IndexGuard = request.app.state.index_guard
    await guard.ensure()
    return request.app.state.ingestor  # type: ignore[no-any-return]


def redis(request: Request) -> Any:
    """The Redis client, or None without REDIS_URL."""
    return request.app.state.redis


def redis_breaker(request: Request) -> CircuitBreaker:
    return request.app.state.redis_breaker  # type: ignore[no-any-return]


def database(request: Request) -> Engine:
    return request.app.state.db_engine  # type: ignore[no-any-return]


def reports_service(request: Request) -> ReportsService:
    return request.app.state.reports.service  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(settings)]
EsDep = Annotated[AsyncElasticsearch, Depends(elasticsearch)]
NamesDep = Annotated[IndexNames, Depends(index_names)]
CacheDep = Annotated[ResponseCache | None, Depends(response_cache)]
IngestorDep = Annotated[Ingestor, Depends(ready_ingestor)]
RedisDep = Annotated[Any, Depends(redis)]
BreakerDep = Annotated[CircuitBreaker, Depends(redis_breaker)]
DatabaseDep = Annotated[Engine, Depends(database)]
