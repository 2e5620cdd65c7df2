"""Typed dependency providers: what the app opened (app.py's lifespan), for routes to declare.

Routes never read `request.app.state` themselves; they ask for `SettingsDep`, `EsDep`, ...
so each route's signature says what it uses, and a test can override one provider
(`app.dependency_overrides`). The key ring's provider is auth.keyring and the reports
service's is reports.service.reports_service: next to their types, which import from here.
"""

from __future__ import annotations

from typing import Annotated, Any

from elasticsearch import AsyncElasticsearch
from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from .cache import ResponseCache
from .config import Settings
from .es.indices import IndexGuard, IndexNames
from .ingest.service import Ingestor
from .redis_client import CircuitBreaker


def settings(request: Request) -> Settings:
    return request.app.state.settings


def elasticsearch(request: Request) -> AsyncElasticsearch:
    return request.app.state.es


def index_names(request: Request) -> IndexNames:
    return request.app.state.names


def response_cache(request: Request) -> ResponseCache | None:
    return request.app.state.cache


async def ready_ingestor(request: Request) -> Ingestor:
    """The ingestor, once the index templates are checked (installed with AUTO_SETUP)."""
    guard: IndexGuard = request.app.state.index_guard
    await guard.ensure()
    return request.app.state.ingestor


def redis(request: Request) -> Any:
    """The Redis client, or None without REDIS_URL."""
    return request.app.state.redis


def redis_breaker(request: Request) -> CircuitBreaker:
    return request.app.state.redis_breaker


def database(request: Request) -> Engine:
    return request.app.state.db_engine


SettingsDep = Annotated[Settings, Depends(settings)]
EsDep = Annotated[AsyncElasticsearch, Depends(elasticsearch)]
NamesDep = Annotated[IndexNames, Depends(index_names)]
CacheDep = Annotated[ResponseCache | None, Depends(response_cache)]
IngestorDep = Annotated[Ingestor, Depends(ready_ingestor)]
RedisDep = Annotated[Any, Depends(redis)]
BreakerDep = Annotated[CircuitBreaker, Depends(redis_breaker)]
DatabaseDep = Annotated[Engine, Depends(database)]
