"""Typed dependency providers: what the app opened (app.py's lifespan), for routes to declare.

Routes never read `request.app.state` themselves; they ask for `SettingsDep`, `EsDep`, ...
so each route's signature says what it uses, and a test can override one provider
(`app.dependency_overrides`). The key ring's provider is auth.keyring and the reports
service's is reports.service.reports_service: next to their types, which import from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from elasticsearch import AsyncElasticsearch
from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from .cache import ResponseCache
from .config import Settings
from .data_versions import DataVersions
from .es.indices import IndexGuard, IndexNames
from .ingest.service import Ingestor
from .redis_client import CircuitBreaker


def app_state(attribute: str) -> Callable[[Request], Any]:
    """A provider of what the lifespan stored as `app.state.<attribute>`."""

    def provide(request: Request) -> Any:
        return getattr(request.app.state, attribute)

    provide.__name__ = provide.__qualname__ = attribute
    return provide


# provider -> the app.state attribute it reads
settings = app_state("settings")
elasticsearch = app_state("es")
index_names = app_state("names")
response_cache = app_state("cache")
redis = app_state("redis")  # the Redis client, or None without REDIS_URL
redis_breaker = app_state("redis_breaker")
database = app_state("db_engine")
data_versions = app_state("data_versions")


async def ready_ingestor(request: Request) -> Ingestor:
    """The ingestor, once the index templates are checked (installed with AUTO_SETUP)."""
    guard: IndexGuard = request.app.state.index_guard
    await guard.ensure()
    return request.app.state.ingestor


SettingsDep = Annotated[Settings, Depends(settings)]
EsDep = Annotated[AsyncElasticsearch, Depends(elasticsearch)]
NamesDep = Annotated[IndexNames, Depends(index_names)]
CacheDep = Annotated[ResponseCache | None, Depends(response_cache)]
IngestorDep = Annotated[Ingestor, Depends(ready_ingestor)]
RedisDep = Annotated[Any, Depends(redis)]
BreakerDep = Annotated[CircuitBreaker, Depends(redis_breaker)]
DatabaseDep = Annotated[Engine, Depends(database)]
DataVersionsDep = Annotated[DataVersions, Depends(data_versions)]
