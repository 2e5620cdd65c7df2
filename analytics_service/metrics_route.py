"""`GET /metrics`: the Prometheus text of this process's registry (metrics.py), with the state
gauges (queue depths, live report workers) read at scrape time."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .auth import KeyRing, api_key_header, authorize, keyring
from .metrics import LIVE_REPORT_WORKERS, QUEUE_DEPTH, REGISTRY

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    description="Prometheus text format. Needs an admin key (`X-API-Key`, or `Authorization: Bearer <key>`), "
    "unless `METRICS_PUBLIC=true`.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(
    request: Request,
    ring: Annotated[KeyRing, Depends(keyring)],
    key: Annotated[str | None, Depends(api_key_header)],
) -> Response:
    if not request.app.state.settings.metrics_public:
        # Prometheus sends a key as `Authorization: Bearer <key>` (its `authorization` scrape option).
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        await authorize(request, ring, key or (bearer.strip() if scheme.lower() == "bearer" else None), "admin")
    await _read_state_gauges(request.app.state)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _read_state_gauges(state: Any) -> None:
    """Queue depths and live workers, as they are now (cheap counts; a failure leaves the last value)."""
    reports = getattr(state, "reports", None)
    notifications = getattr(state, "notifications", None)
    try:
        if reports is not None:
            QUEUE_DEPTH.labels(queue="reports").set(await asyncio.to_thread(reports.service.repo.count_pending))
            live_workers = getattr(reports.service.queue, "live_workers", None)
            if live_workers is not None:
                live, _ = await live_workers()
                LIVE_REPORT_WORKERS.set(len(live))
        if notifications is not None:
            QUEUE_DEPTH.labels(queue="deliveries").set(
                await asyncio.to_thread(notifications.service.repo.count_pending_deliveries)
            )
    except Exception:  # a scrape must still answer: the state gauges keep their last values
        log.warning("metrics: reading queue depths failed", exc_info=True)
