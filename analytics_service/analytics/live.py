"""The live view (`GET /api/v1/analytics/live`, server-sent events): today's KPIs so far and
the last minutes, recomputed whenever new data for the store arrives.

A snapshot is one query object (`LiveSnapshot`): today's KPIs are the dashboard's own
(`sales.Dashboard` over today in `tz`, so they equal `/analytics/dashboard` for that
period), and beside them the last `minutes` minutes per minute (sales and their gross
revenue) and the sessions active in the last ACTIVE_SESSION_MINUTES minutes (distinct
`session_id` with activity, as on the users endpoints). The stream (`live_events`) watches
the store's data version (data_versions.py) and sends a new snapshot when it changes,
and at least every REFRESH_SECONDS so that the minute window moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson

from ..data_versions import DataVersions
from ..es.indices import ACTIVITY, ORDERS
from .fields import AnalyticsResponse, GrossRevenue, ResponsePart, SaleCount
from .params import CommonParams, Period
from .requests import Composite, Search
from .runner import AnalyticsQuery, QueryContext, all_or_none
from .sales import Dashboard, Kpis
from .shared import activity_query, agg_value, aggregations, distinct, money, order_sums, sales_query, values

ACTIVE_SESSION_MINUTES = 5
# The stream looks at the data version this often, and sends a snapshot at least this often.
POLL_SECONDS = 0.2
REFRESH_SECONDS = 15.0
# An SSE comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 10.0
# After a failed snapshot (and the client's reconnection delay, sent as the stream's `retry`).
RETRY_SECONDS = 2.0

log = logging.getLogger(__name__)


class LiveMinute(ResponsePart):
    minute: str
    """start of the minute, UTC ISO 8601"""
    orders: SaleCount
    gross_revenue: GrossRevenue


class RecentActivity(ResponsePart):
    minutes: int
    """length of the window: the last `minutes` whole minutes and the current one"""
    start: str
    """window start, UTC ISO 8601"""
    orders: SaleCount
    gross_revenue: GrossRevenue
    active_sessions: int
    """distinct session_id with activity in the last 5 minutes"""
    series: list[LiveMinute]
    """every minute of the window, oldest first, zeros when it has no sales"""


class LiveResponse(AnalyticsResponse):
    store_id: str | None
    """the store the figures are for (null: every store the key may read)"""
    kpis: Kpis
    """today so far in `tz` (the period): the dashboard's KPIs for that period"""
    recent: RecentActivity
    """the last minutes"""


def minute_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class LiveSnapshot(AnalyticsQuery[LiveResponse]):
    """Today's KPIs (params.period is today in tz) and the window of `minutes` up to `now`."""

    params: CommonParams
    now: datetime
    minutes: int = 30
    name: ClassVar = "live"

    def window(self) -> Period:
        start = minute_floor(self.now) - timedelta(minutes=self.minutes)
        return Period(start, self.now, self.params.period.tz, "hour")

    def sessions_window(self) -> Period:
        return Period(self.now - timedelta(minutes=ACTIVE_SESSION_MINUTES), self.now, self.params.period.tz, "hour")

    def recent_sales_request(self) -> Search:
        """Sales of the window per minute (every minute, empty ones too) and their totals."""
        window = self.window()
        per_minute = {
            "date_histogram": {
                "field": "created_at",
                "fixed_interval": "1m",
                "min_doc_count": 0,
                "extended_bounds": {"min": window.start_utc, "max": utc_text(minute_floor(self.now))},
            },
            "aggs": order_sums("gross_revenue"),
        }
        return Search(
            ORDERS,
            {
                "query": sales_query(self.params, window),
                "aggs": {**order_sums("gross_revenue"), "minutes": per_minute},
                "track_total_hits": True,
            },
        )

    def active_sessions_request(self) -> Composite:
        return distinct(ACTIVITY, activity_query(self.params, period=self.sessions_window()), "session_id")

    def requests(self) -> dict[str, Search | Composite]:
        return {"recent": self.recent_sales_request(), "sessions": self.active_sessions_request()}

    async def run(self, ctx: QueryContext) -> LiveResponse:
        today, answers = await all_or_none(Dashboard(self.params).run(ctx), ctx.fetch(self.requests()))
        recent = answers["recent"]
        aggs = aggregations(recent)
        series = [
            LiveMinute(
                minute=utc_text(datetime.fromtimestamp(b["key"] / 1000, UTC)),
                orders=int(b["doc_count"]),
                gross_revenue=money(agg_value(b, "gross_revenue")),
            )
            for b in aggs.get("minutes", {}).get("buckets", [])
        ]
        return LiveResponse(
            period=today.period,
            store_id=self.params.store_id,
            kpis=today.kpis,
            recent=RecentActivity(
                minutes=self.minutes,
                start=self.window().start_utc,
                orders=sum(m.orders for m in series),
                gross_revenue=money(agg_value(aggs, "gross_revenue")),
                active_sessions=len(values(answers["sessions"])),
                series=series,
            ),
        )


def sse_event(event: str, data: bytes, event_id: int) -> bytes:
    """One server-sent event (orjson output holds no newline, so `data` is one line)."""
    return b"event: %s\nid: %d\ndata: %s\n\n" % (event.encode(), event_id, data)


async def live_events(
    ctx: QueryContext,
    versions: DataVersions,
    snapshot: Callable[[], LiveSnapshot],
    disconnected: Callable[[], Any],
    max_seconds: float,
) -> AsyncIterator[bytes]:
    """The stream: a `kpis` event at once, then one whenever the store's data version changes
    (at most one per POLL_SECONDS) or REFRESH_SECONDS have passed; a comment line to keep an
    idle connection open; an `error` event when a snapshot fails (tried again RETRY_SECONDS
    later). It ends after `max_seconds` (LIVE_STREAM_MAX_SECONDS); clients reconnect."""
    store = snapshot().params.store_id
    seen: str | None = None
    sent_at = kept_at = 0.0
    ends_at = time.monotonic() + max_seconds
    event_id = 0
    yield b"retry: %d\n\n" % int(RETRY_SECONDS * 1000)
    while time.monotonic() < ends_at and not await disconnected():
        version = await versions.current(store)
        clock = time.monotonic()
        if version != seen or clock - sent_at >= REFRESH_SECONDS:
            event_id += 1
            try:
                computed = await ctx.computed(snapshot())
            except Exception as exc:  # the node is down, ...: say so on the stream and try again
                log.warning("live snapshot failed: %s", exc)
                body = {"error": {"code": "live_unavailable", "message": "the live figures cannot be computed now"}}
                yield sse_event("error", orjson.dumps(body), event_id)
                sent_at = kept_at = clock
                await asyncio.sleep(RETRY_SECONDS)
                continue
            yield sse_event("kpis", computed[1], event_id)
            seen = version
            sent_at = kept_at = clock
        elif clock - kept_at >= KEEPALIVE_SECONDS:
            yield b": keep-alive\n\n"
            kept_at = clock
        await asyncio.sleep(POLL_SECONDS)
