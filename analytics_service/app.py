"""The FastAPI app: clients opened in the lifespan, routers, errors, OpenAPI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from elasticsearch import ApiError as ESApiError
from elasticsearch import ConnectionError as ESConnectionError
from fastapi import FastAPI

from . import __version__
from .analytics.routers import ANALYTICS_ROUTERS
from .audit.router import router as audit_router
from .audit.table import AuditRepo
from .audit.trail import AuditTrail
from .auth import KeyRing
from .cache import MemoryBackend, RedisBackend, ResponseCache
from .config import Settings
from .data_versions import DataVersions
from .errors import install_error_handlers
from .es.client import index_names, make_async_client
from .es.indices import IndexGuard, IndexNames
from .exports.router import router as exports_router
from .health import router as health_router
from .http_middleware import CatchAllMiddleware, JsonBodyOnlyMiddleware
from .ingest.customers import ensure_customer_documents
from .ingest.router import router as ingest_router
from .ingest.service import Ingestor
from .metrics import instrument_transport
from .metrics_route import router as metrics_router
from .notifications.router import alerts as alerts_router
from .notifications.router import deliveries as deliveries_router
from .notifications.router import schedules as schedules_router
from .notifications.service import start_notifications
from .openapi import custom_openapi, errors
from .pages import install_pages
from .rate_limits import RateLimiter
from .redis_client import make_breaker, make_redis
from .reports.router import router as reports_router
from .reports.router import signed_links
from .reports.service import start_reports
from .request_context import RequestContextMiddleware

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    es = make_async_client(settings)
    instrument_transport(es)
    names = index_names(settings)
    app.state.es = es
    app.state.names = names
    app.state.ingestor = Ingestor.for_settings(es, settings)
    app.state.index_guard = IndexGuard(es, names, settings.auto_setup)
    # Redis (cache, report queue): short timeouts, one circuit breaker for every use.
    app.state.redis = make_redis(settings) if settings.redis_url else None
    app.state.redis_breaker = make_breaker(settings)
    app.state.rate_limiter = RateLimiter.for_settings(settings, app.state.redis_breaker)
    app.state.cache = None
    if settings.cache_ttl_seconds > 0:
        backend = (
            RedisBackend(app.state.redis, app.state.redis_breaker) if app.state.redis is not None else MemoryBackend()
        )
        app.state.cache = ResponseCache(
            backend,
            namespace=settings.index_prefix,
            ttl=settings.cache_ttl_seconds,
            stored_versions=app.state.ingestor.publisher.stored,
        )
    app.state.data_versions = DataVersions(app.state.cache, app.state.ingestor.publisher.stored)
    app.state.ingestor.publisher.on_published = app.state.data_versions.bump
    try:
        # Check (and with AUTO_SETUP install) the index templates now; when
        # Elasticsearch is not reachable yet, the first write checks again.
        await app.state.index_guard.ensure()
    except (ESConnectionError, ESApiError) as exc:
        log.warning("Elasticsearch not ready at start-up (%s); index templates will be checked on first write", exc)
    # Customer documents of orders stored before the customers index existed: built in the
    # background (minutes for millions of orders), logged as it goes.
    app.state.customers_build = asyncio.ensure_future(_build_customer_documents(es, names))
    # Reports: table (migrated), queue, in-process worker without REDIS_URL, expiry sweep.
    app.state.reports = await start_reports(app.state, settings)
    app.state.db_engine = app.state.reports.service.repo.engine  # one engine: reports table and health
    # Alerts, schedules, deliveries: the same database; evaluated in this process without Redis.
    app.state.notifications = await start_notifications(app.state, settings)
    # The audit trail: the same database, written in batches (audit/trail.py).
    app.state.audit = AuditTrail(AuditRepo(app.state.db_engine))
    app.state.audit.start()
    try:
        yield
    finally:
        app.state.customers_build.cancel()
        with suppress(Exception):  # writes of the last second: searchable and published before exit
            await app.state.ingestor.finish()
        await app.state.audit.stop()
        await app.state.notifications.stop()
        await app.state.reports.stop()
        await es.close()
        if app.state.redis is not None:
            await app.state.redis.aclose()


async def _build_customer_documents(es: Any, names: IndexNames) -> None:
    try:
        built = await ensure_customer_documents(es, names)
    except (ESConnectionError, ESApiError) as exc:
        log.warning("customer documents not built now (%s); `python -m analytics_service setup` builds them", exc)
    except Exception:  # a background task: say it here, or nobody would
        log.exception("building the customer documents failed; `python -m analytics_service setup` builds them")
    else:
        if built:
            log.info(built)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Store analytics",
        version=__version__,
        description="Order and activity analytics for online stores, on Elasticsearch. "
        "Send `X-API-Key` on every call except /health, the docs and signed download links.",
        lifespan=lifespan,
        docs_url=None,  # served by pages.py from the packaged Swagger UI and ReDoc (no CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.keyring = KeyRing(settings.api_keys)  # parsed and validated by Settings
    if not len(app.state.keyring):
        log.warning("API_KEYS is empty: every endpoint that needs a key will answer 401")
    install_error_handlers(app)
    app.add_middleware(JsonBodyOnlyMiddleware)
    app.add_middleware(CatchAllMiddleware)
    # Added last: the outermost of ours (inside ServerErrorMiddleware), so it logs, counts and audits
    # every answer, the 500s of CatchAllMiddleware included.
    app.add_middleware(RequestContextMiddleware)
    # The error statuses of each router (400/401/403/404/415/422/500 follow from each operation's
    # shape: see openapi.document_errors).
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(audit_router, responses=errors(503))
    app.include_router(ingest_router, responses=errors(413, 502, 503))
    for router in ANALYTICS_ROUTERS:
        app.include_router(router, responses=errors(502, 503))
    app.include_router(signed_links, responses=errors(503))
    app.include_router(schedules_router, responses=errors(503))  # before reports: its /{report_id} would match
    app.include_router(reports_router, responses=errors(503))
    app.include_router(alerts_router, responses=errors(503))
    app.include_router(deliveries_router, responses=errors(503))
    app.include_router(exports_router, responses=errors(502, 503))
    install_pages(app)
    app.openapi = lambda: custom_openapi(app)  # type: ignore[method-assign]
    return app
