"""`GET /api/v1/analytics/live`: server-sent events of today's KPIs and the last minutes
(analytics/live.py runs the stream and shows every request a snapshot sends)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ...auth import ReadKey
from ...dependencies import DataVersionsDep, SettingsDep
from .. import live
from ..params import ChannelQ, Period, StoreQ, TzQ, parse_common
from ..runner import Ctx

router = APIRouter(prefix="/api/v1/analytics", tags=["live"])

# The model of each `kpis` event's data, added to the OpenAPI components (openapi.py).
STREAMED_MODELS: dict[str, type[BaseModel]] = {"LiveResponse": live.LiveResponse}

_EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "an endless `text/event-stream` (ended after LIVE_STREAM_MAX_SECONDS; clients reconnect). "
        "Each `kpis` event's `data` is one LiveResponse as JSON; an `error` event says a snapshot failed "
        "(the stream goes on and tries again).",
        "content": {
            "text/event-stream": {
                # Each event (OpenAPI 3.2 calls this itemSchema; 3.1 tools read `schema` per event).
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["kpis", "error"]},
                        "id": {"type": "string"},
                        "retry": {"type": "integer"},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": "#/components/schemas/LiveResponse"},
                        },
                    },
                }
            }
        },
    },
}


@router.get(
    "/live",
    response_class=StreamingResponse,
    summary="Live KPIs: today so far and the last minutes, pushed on every ingest (server-sent events)",
    description="A `kpis` event at once and after every write for the store (within about 2 s of the "
    "ingest answer: the time the documents take to become searchable), and at least every 15 s. "
    "`kpis` are the dashboard's for today in `tz`; `recent` covers the last `minutes` minutes per minute "
    "and the sessions active in the last 5. Send the key as `X-API-Key` (browsers: read the stream "
    "with fetch, not EventSource, which cannot send headers; never put the key in the URL).",
    responses=_EVENT_STREAM,
)
async def live_stream(
    request: Request,
    principal: ReadKey,
    settings: SettingsDep,
    ctx: Ctx,
    versions: DataVersionsDep,
    tz: TzQ = None,
    store_id: StoreQ = None,
    channel: ChannelQ = None,
    minutes: Annotated[int, Query(ge=1, le=180, description="length of the recent window in minutes")] = 30,
) -> StreamingResponse:
    def snapshot() -> live.LiveSnapshot:
        now = datetime.now(UTC)
        checked = parse_common(  # validates tz, store_id and channel (422 naming the parameter)
            tz=tz, store_id=store_id, channel=channel, principal=principal, default_tz=settings.default_timezone
        )
        zone = checked.period.tz
        today = now.astimezone(zone).date()
        midnight = [datetime.combine(day, time(0), zone) for day in (today, today + timedelta(days=1))]
        params = replace(checked, period=Period(midnight[0], midnight[1], zone, "hour"), limit=5)
        return live.LiveSnapshot(params, now, minutes)

    snapshot()  # a bad parameter is a 422 now, before the stream starts
    return StreamingResponse(
        live.live_events(ctx, versions, snapshot, request.is_disconnected, settings.live_stream_max_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
