"""`/health` (no key) and `/api/v1/analytics/health/elasticsearch` (scope `read`)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from elasticsearch import ApiError as ESApiError
from elasticsearch import AsyncElasticsearch, ConnectionTimeout
from elasticsearch import ConnectionError as ESConnectionError
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.engine import Engine

from .auth import ReadKey
from .dependencies import BreakerDep, DatabaseDep, EsDep, NamesDep, RedisDep
from .es.indices import template_status
from .redis_client import CircuitBreaker

router = APIRouter(tags=["health"])

CheckState = Literal["ok", "unavailable", "not_configured"]


class HealthChecks(BaseModel):
    elasticsearch: CheckState = Field(description="`ok` when cluster health answers within 2 s")
    redis: CheckState = Field(description="`not_configured` when REDIS_URL is unset (in-process cache and queue)")
    database: CheckState = Field(description="`ok` when the database answers SELECT 1 within 3 s")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="`ok` when every configured dependency answers")
    checks: HealthChecks = Field(description="state of each dependency")

    model_config = {
        "json_schema_extra": {
            "example": {"status": "ok", "checks": {"elasticsearch": "ok", "redis": "not_configured", "database": "ok"}}
        }
    }


class ElasticsearchHealth(BaseModel):
    status: Literal["green", "yellow", "red", "unavailable"] = Field(
        description="cluster health; `unavailable` when Elasticsearch does not answer (the other fields empty)"
    )
    cluster_name: str | None = Field(None, description="cluster name")
    version: str | None = Field(None, description="Elasticsearch version of the node the service is connected to")
    number_of_nodes: int | None = Field(None, description="nodes in the cluster")
    templates: dict[str, str] = Field(default_factory=dict, description="per index family: ok | missing | outdated")

    model_config = {
        "json_schema_extra": {
            "example": {
                "status": "green",
                "cluster_name": "analytics-local",
                "version": "8.19.21",
                "number_of_nodes": 1,
                "templates": {
                    "orders": "ok",
                    "order-items": "ok",
                    "events": "ok",
                    "activity": "ok",
                    "products": "ok",
                    "expenses": "ok",
                },
            }
        }
    }


_ES_DOWN = (ESConnectionError, ConnectionTimeout, ESApiError)
# A hung node must not hang the health checks for ELASTICSEARCH_TIMEOUT (30 s).
_ES_CHECK_TIMEOUT = 3.0


def _es(es: AsyncElasticsearch) -> AsyncElasticsearch:
    return es.options(request_timeout=_ES_CHECK_TIMEOUT)


async def _elasticsearch_state(es: AsyncElasticsearch) -> CheckState:
    try:
        await _es(es).cluster.health(timeout="2s")
        return "ok"
    except _ES_DOWN:
        return "unavailable"


async def _redis_state(redis: Any, breaker: CircuitBreaker) -> CheckState:
    """Through the breaker: while it is open the answer is `unavailable` at once; otherwise
    a PING that waits REDIS_TIMEOUT_SECONDS at most (and opens the breaker when it fails)."""
    if redis is None:
        return "not_configured"
    try:
        await asyncio.wait_for(breaker.call(redis.ping), timeout=2)
        return "ok"
    except Exception:  # any failure to answer means unavailable here
        return "unavailable"


def _database_ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def _database_state(engine: Engine) -> CheckState:
    try:
        await asyncio.wait_for(asyncio.to_thread(_database_ping, engine), timeout=3)
        return "ok"
    except Exception:
        return "unavailable"


@router.get(
    "/health",
    response_model=Health,
    summary="Liveness and dependency checks (no key needed)",
    responses={503: {"model": Health, "description": "a dependency is unavailable"}},
)
async def health(es: EsDep, redis: RedisDep, breaker: BreakerDep, engine: DatabaseDep) -> JSONResponse:
    es_state, redis_state, db_state = await asyncio.gather(
        _elasticsearch_state(es), _redis_state(redis, breaker), _database_state(engine)
    )
    checks = HealthChecks(elasticsearch=es_state, redis=redis_state, database=db_state)
    ok = all(state != "unavailable" for state in (es_state, redis_state, db_state))
    body = Health(status="ok" if ok else "degraded", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/api/v1/analytics/health/elasticsearch",
    response_model=ElasticsearchHealth,
    summary="Cluster status, version and index template state",
    responses={
        503: {
            "model": ElasticsearchHealth,
            "description": "Elasticsearch does not answer: the same body, status `unavailable`",
        }
    },
)
async def elasticsearch_health(_: ReadKey, client: EsDep, names: NamesDep) -> ElasticsearchHealth | JSONResponse:
    es = _es(client)
    try:
        # Not `GET /`: the minimal distribution has no root endpoint.
        cluster, nodes = await asyncio.gather(
            es.cluster.health(timeout="2s"), es.nodes.info(node_id="_local", filter_path="nodes.*.version")
        )
        templates = await template_status(es, names)
    except _ES_DOWN:
        return JSONResponse(ElasticsearchHealth(status="unavailable").model_dump(), status_code=503)
    versions = [node["version"] for node in nodes.get("nodes", {}).values()]
    return ElasticsearchHealth(
        status=cluster["status"],
        cluster_name=cluster["cluster_name"],
        version=versions[0] if versions else None,
        number_of_nodes=cluster["number_of_nodes"],
        templates=templates,
    )
