"""User activity: active users and sessions, behaviour, engagement (METRICS.md "Activity").

Everything here reads the activity index (one record per page view, search, add to
cart, ...), placed in time by `timestamp`. The actor is `user_id`, else `anonymous_id`
(stored as `actor_id` at ingest); a session is a distinct `session_id`.

Distinct counts (actors, sessions; in total and per bucket) are exact: they come from
paged composite aggregations over (value, bucket) pairs, counted in Python. The
`cardinality` aggregation is not used for them: its "exact below the precision
threshold" mode still hashes values to about 25 bits, so two ids can collide (10,000
distinct ids counted as 9,999 on our node).
Definitions: docs/metrics.md "User activity".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from ..es.indices import ACTIVITY
from .params import CommonParams, Period, invalid
from .runner import AnalyticsResponse, BucketKey, PeriodOut, QueryContext, ratio
from .sales import comparison

# activity_type is validated at ingest to one of 11 values, so a terms aggregation of
# this size returns every type from every shard: the counts are exact.
TYPE_TERMS_SIZE = 100
# Top pages: each shard returns this many page URLs at least; when a shard had more
# (doc_count_error_upper_bound > 0) the pages are counted exactly by composite paging.
PAGES_SHARD_SIZE = 5000
UNKNOWN_DEVICE = "unknown"


def check_activity_params(params: CommonParams) -> CommonParams:
    """Activity records carry no sales channel: a `channel` filter cannot apply (422, not ignored)."""
    if params.channel is not None:
        raise invalid("channel", "user activity has no sales channel; remove the channel filter")
    return params


def activity_query(params: CommonParams, period: Period | None = None, *extra: dict[str, Any]) -> dict[str, Any]:
    """Activity of the requested store with `timestamp` in the period."""
    return {"bool": {"filter": [*params.filters("timestamp", channel_field=None, period=period), *extra]}}


def bucket_source(period: Period) -> dict[str, Any]:
    """A composite source naming each record's calendar bucket (local, in the period's zone)."""
    return {"b": {"date_histogram": {"field": "timestamp", "calendar_interval": period.interval,
                                     "time_zone": period.tz.key}}}


def types_agg() -> dict[str, Any]:
    return {"terms": {"field": "activity_type", "size": TYPE_TERMS_SIZE,
                      "order": [{"_count": "desc"}, {"_key": "asc"}]}}


# -- exact distinct counting -------------------------------------------------------------


@dataclass
class Group:
    """One distinct value (an actor, a session) and where it occurs."""

    value: str
    keys: set[str] = field(default_factory=set)  # API keys of the period's buckets it has activity in
    records: int = 0
    first_ms: float | None = None
    last_ms: float | None = None


async def groups(ctx: QueryContext, query: dict[str, Any], value_field: str, period: Period,
                 *, timings: bool = False) -> AsyncIterator[Group]:
    """Every distinct value of `value_field` with its buckets (and, with `timings`, its
    record count and first/last timestamp), exact for any number of values.

    A composite aggregation over (value, bucket) pairs is sorted by value first, so the
    pairs of one value arrive together, whatever page they are on.
    """
    aggs = {"first": {"min": {"field": "timestamp"}}, "last": {"max": {"field": "timestamp"}}} if timings else None
    current: Group | None = None
    async for bucket in ctx.composite(ACTIVITY, query, [{"v": {"terms": {"field": value_field}}},
                                                        bucket_source(period)], aggs):
        value = bucket["key"]["v"]
        if current is None or current.value != value:
            if current is not None:
                yield current
            current = Group(value)
        current.keys.add(period.key_of(bucket["key"]["b"]))
        current.records += bucket["doc_count"]
        if timings:
            first, last = bucket["first"]["value"], bucket["last"]["value"]
            current.first_ms = first if current.first_ms is None else min(current.first_ms, first)
            current.last_ms = last if current.last_ms is None else max(current.last_ms, last)
    if current is not None:
        yield current


@dataclass
class Distinct:
    """Distinct values in the period and in each of its buckets."""

    total: int = 0
    per_bucket: Counter[str] = field(default_factory=Counter)

    def add(self, group: Group) -> None:
        self.total += 1
        self.per_bucket.update(group.keys)


async def distinct(ctx: QueryContext, query: dict[str, Any], value_field: str, period: Period) -> Distinct:
    out = Distinct()
    async for group in groups(ctx, query, value_field, period):
        out.add(group)
    return out


# -- shared response parts ---------------------------------------------------------------


class TypeCount(BaseModel):
    key: str = Field(description="activity_type")
    count: int = Field(description="activity records of this type in the period")
    share: float | None = Field(description="count / all activity records in the period")


def type_counts(aggs: dict[str, Any], events: int) -> list[TypeCount]:
    return [TypeCount(key=b["key"], count=b["doc_count"], share=ratio(b["doc_count"], events))
            for b in aggs["by_type"]["buckets"]]


# -- users/activity ----------------------------------------------------------------------


class ActivityKpis(BaseModel):
    active_users: int = Field(description="distinct actors (user_id, else anonymous_id) with activity in the period")
    sessions: int = Field(description="distinct session_id with activity in the period")
    events: int = Field(description="activity records in the period")


class ActivityPoint(ActivityKpis):
    key: BucketKey


class UserActivityResponse(ActivityKpis, AnalyticsResponse):
    events_by_type: list[TypeCount] = Field(description="activity records by activity_type, count desc then key")
    series: list[ActivityPoint] = Field(description="every bucket of the period; an actor or session active in "
                                                    "several buckets counts in each")
    comparison: dict[str, float | int | None] | None = Field(
        None, description="with compare: the previous period's active_users, sessions, events and `<kpi>_growth_pct`")
    model_config = {"json_schema_extra": {"example": {
        "period": {"start": "2026-11-01T00:00:00-03:00", "end": "2026-11-03T00:00:00-03:00",
                   "tz": "America/Sao_Paulo", "interval": "day"},
        "cached": False, "active_users": 412, "sessions": 530, "events": 2210,
        "events_by_type": [{"key": "page_view", "count": 1020, "share": 0.4615},
                           {"key": "product_view", "count": 640, "share": 0.2896}],
        "series": [{"key": "2026-11-01", "active_users": 230, "sessions": 270, "events": 1150},
                   {"key": "2026-11-02", "active_users": 201, "sessions": 260, "events": 1060}],
        "comparison": {"active_users": 380, "active_users_growth_pct": 8.42}}}}


@dataclass(frozen=True)
class UserActivity:
    params: CommonParams
    response_model: ClassVar = UserActivityResponse

    def body(self, period: Period) -> dict[str, Any]:
        """Records by type and per bucket; the distinct counts come from `groups`."""
        return {"query": activity_query(self.params, period),
                "aggs": {"by_type": types_agg(), "series": period.date_histogram("timestamp")}}

    async def _measure(self, ctx: QueryContext, period: Period) -> tuple[dict[str, Any], Distinct, Distinct]:
        response = await ctx.search(ACTIVITY, self.body(period))
        query = activity_query(self.params, period)
        actors = await distinct(ctx, query, "actor_id", period)
        sessions = await distinct(ctx, query, "session_id", period)
        return response, actors, sessions

    async def run(self, ctx: QueryContext) -> UserActivityResponse:
        p = self.params
        response, actors, sessions = await self._measure(ctx, p.period)
        events = int(response["hits"]["total"]["value"])
        aggs = response.get("aggregations", {})
        per_bucket = {p.period.key_of(b["key"]): b["doc_count"] for b in aggs["series"]["buckets"]}
        series = [ActivityPoint(key=k, active_users=actors.per_bucket[k], sessions=sessions.per_bucket[k],
                                events=per_bucket.get(k, 0)) for k in p.period.keys()]
        current = ActivityKpis(active_users=actors.total, sessions=sessions.total, events=events)
        compared = None
        if p.compare != "none":
            prev_response, prev_actors, prev_sessions = await self._measure(ctx, p.period.previous(p.compare))
            previous = ActivityKpis(active_users=prev_actors.total, sessions=prev_sessions.total,
                                    events=int(prev_response["hits"]["total"]["value"]))
            compared = comparison(current, previous)
        return UserActivityResponse(period=PeriodOut.of(p.period), **current.model_dump(),
                                    events_by_type=type_counts(aggs, events), series=series, comparison=compared)


# -- users/behavior ----------------------------------------------------------------------


class HeatCell(BaseModel):
    weekday: int = Field(description="local weekday in `tz`, Monday=0 .. Sunday=6")
    hour: int = Field(description="local hour in `tz`, 0..23")
    count: int = Field(description="activity records in that local weekday and hour over the period")


class PageItem(BaseModel):
    key: str = Field(description="page_url")
    views: int = Field(description="page_view records of the page")
    share: float | None = Field(description="views / all page views in the period")


class DeviceItem(BaseModel):
    key: str = Field(description=f"device.type (`{UNKNOWN_DEVICE}` for records without one)")
    actors: int = Field(description="distinct actors with activity on this device type")
    share: float | None = Field(description="actors / active_users (an actor on two device types counts in both, "
                                            "so shares can add up to more than 1)")


class BehaviorResponse(AnalyticsResponse):
    events: int = Field(description="activity records in the period")
    active_users: int = Field(description="distinct actors with activity in the period")
    page_views: int = Field(description="page_view records in the period")
    events_by_type: list[TypeCount] = Field(description="activity records by activity_type, count desc then key")
    heatmap: list[HeatCell] = Field(description="all 7 x 24 cells, weekday then hour, zeros included")
    top_pages: list[PageItem] = Field(description="`limit` pages by page views, desc then page_url")
    devices: list[DeviceItem] = Field(description="device types by distinct actors, desc then key")
    model_config = {"json_schema_extra": {"example": {
        "period": {"start": "2026-10-01T00:00:00+00:00", "end": "2026-11-01T00:00:00+00:00", "tz": "UTC",
                   "interval": "day"},
        "cached": False, "events": 2210, "active_users": 412, "page_views": 1020,
        "events_by_type": [{"key": "page_view", "count": 1020, "share": 0.4615}],
        "heatmap": [{"weekday": 0, "hour": 0, "count": 3}, {"weekday": 0, "hour": 1, "count": 0}],
        "top_pages": [{"key": "/", "views": 610, "share": 0.598}, {"key": "/deals", "views": 190, "share": 0.1863}],
        "devices": [{"key": "desktop", "actors": 250, "share": 0.6068},
                    {"key": "mobile", "actors": 180, "share": 0.4369}]}}}


PAGE_VIEW = {"term": {"activity_type": "page_view"}}


@dataclass(frozen=True)
class Behavior:
    params: CommonParams
    response_model: ClassVar = BehaviorResponse

    def body(self) -> dict[str, Any]:
        """Records by type, and the top pages among page views (exact when no shard truncated its list)."""
        limit = self.params.limit
        return {"query": activity_query(self.params), "aggs": {
            "by_type": types_agg(),
            "page_views": {"filter": PAGE_VIEW, "aggs": {"pages": {"terms": {
                "field": "page_url", "size": limit, "shard_size": max(PAGES_SHARD_SIZE, limit),
                "order": [{"_count": "desc"}, {"_key": "asc"}]}}}},
        }}

    def hour_sources(self) -> list[dict[str, Any]]:
        """Local hours of the period's zone: the repeated hour of a DST fall-back is two buckets."""
        return [{"h": {"date_histogram": {"field": "timestamp", "calendar_interval": "hour",
                                          "time_zone": self.params.period.tz.key}}}]

    def device_sources(self) -> list[dict[str, Any]]:
        return [{"a": {"terms": {"field": "actor_id"}}},
                {"d": {"terms": {"field": "device.type", "missing_bucket": True}}}]

    async def heatmap(self, ctx: QueryContext) -> list[HeatCell]:
        tz = self.params.period.tz
        grid = [[0] * 24 for _ in range(7)]
        async for b in ctx.composite(ACTIVITY, activity_query(self.params), self.hour_sources()):
            local = datetime.fromtimestamp(b["key"]["h"] / 1000, timezone.utc).astimezone(tz)
            grid[local.weekday()][local.hour] += b["doc_count"]
        return [HeatCell(weekday=d, hour=h, count=grid[d][h]) for d in range(7) for h in range(24)]

    async def top_pages(self, ctx: QueryContext, aggs: dict[str, Any]) -> list[PageItem]:
        views = aggs["page_views"]["doc_count"]
        terms = aggs["page_views"]["pages"]
        if terms.get("doc_count_error_upper_bound", 0) == 0:
            counted = [(b["key"], b["doc_count"]) for b in terms["buckets"]]
        else:  # some shard had more pages than it returned: count every page
            query = activity_query(self.params, None, PAGE_VIEW)
            counted = [(b["key"]["p"], b["doc_count"])
                       async for b in ctx.composite(ACTIVITY, query, [{"p": {"terms": {"field": "page_url"}}}])]
            counted = sorted(counted, key=lambda kv: (-kv[1], kv[0]))[:self.params.limit]
        return [PageItem(key=k, views=n, share=ratio(n, views)) for k, n in counted]

    async def devices(self, ctx: QueryContext) -> tuple[int, list[DeviceItem]]:
        """(active actors, actors per device type), from every (actor, device type) pair."""
        actors: set[str] = set()
        per_device: Counter[str] = Counter()
        async for b in ctx.composite(ACTIVITY, activity_query(self.params), self.device_sources()):
            actors.add(b["key"]["a"])
            per_device[b["key"]["d"] or UNKNOWN_DEVICE] += 1
        items = [DeviceItem(key=k, actors=n, share=ratio(n, len(actors)))
                 for k, n in sorted(per_device.items(), key=lambda kv: (-kv[1], kv[0]))]
        return len(actors), items

    async def run(self, ctx: QueryContext) -> BehaviorResponse:
        response = await ctx.search(ACTIVITY, self.body())
        aggs = response.get("aggregations", {})
        events = int(response["hits"]["total"]["value"])
        active, devices = await self.devices(ctx)
        return BehaviorResponse(
            period=PeriodOut.of(self.params.period), events=events, active_users=active,
            page_views=aggs["page_views"]["doc_count"], events_by_type=type_counts(aggs, events),
            heatmap=await self.heatmap(ctx), top_pages=await self.top_pages(ctx, aggs), devices=devices)


# -- users/engagement --------------------------------------------------------------------


class EngagementKpis(BaseModel):
    dau: float = Field(description="mean distinct actors per local day, over every day of the period (empty "
                                   "days count as 0)")
    wau: float = Field(description="mean distinct actors per week (Monday) overlapping the period, counting only "
                                   "activity inside the period")
    mau: float = Field(description="mean distinct actors per calendar month overlapping the period, counting only "
                                   "activity inside the period")
    stickiness: float | None = Field(description="dau / mau")
    active_users: int = Field(description="distinct actors with activity in the period")
    sessions: int = Field(description="distinct session_id with activity in the period")
    events: int = Field(description="activity records in the period")
    avg_session_seconds: float | None = Field(description="mean of (last - first timestamp) per session, over "
                                                          "its activity inside the period")
    bounce_rate: float | None = Field(description="sessions with exactly one record in the period / sessions")
    events_per_session: float | None = Field(description="events / sessions")


class EngagementPoint(BaseModel):
    key: BucketKey
    active_users: int = Field(description="distinct actors with activity in the bucket")
    sessions: int = Field(description="distinct sessions with activity in the bucket")
    events: int = Field(description="activity records in the bucket")


class EngagementResponse(EngagementKpis, AnalyticsResponse):
    days: int = Field(description="local days the DAU mean is taken over")
    weeks: int = Field(description="weeks the WAU mean is taken over")
    months: int = Field(description="months the MAU mean is taken over")
    series: list[EngagementPoint] = Field(description="every bucket of `interval` in the period")
    comparison: dict[str, float | int | None] | None = Field(
        None, description="with compare: the previous period's value of every KPI and `<kpi>_growth_pct`")
    model_config = {"json_schema_extra": {"example": {
        "period": {"start": "2026-10-01T00:00:00+00:00", "end": "2026-11-01T00:00:00+00:00", "tz": "UTC",
                   "interval": "week"},
        "cached": False, "dau": 41.26, "wau": 210.4, "mau": 612.0, "stickiness": 0.0674, "active_users": 612,
        "sessions": 1480, "events": 6120, "avg_session_seconds": 184.52, "bounce_rate": 0.2311,
        "events_per_session": 4.14, "days": 31, "weeks": 5, "months": 1,
        "series": [{"key": "2026-09-28", "active_users": 120, "sessions": 190, "events": 790}],
        "comparison": {"dau": 38.9, "dau_growth_pct": 6.07}}}}


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month(day: date) -> date:
    return day.replace(day=1)


@dataclass
class SessionTotals:
    sessions: int = 0
    records: int = 0
    bounces: int = 0
    duration_ms: float = 0.0
    per_bucket: Counter[str] = field(default_factory=Counter)

    def add(self, group: Group) -> None:
        self.sessions += 1
        self.records += group.records
        self.bounces += int(group.records == 1)
        self.duration_ms += (group.last_ms or 0.0) - (group.first_ms or 0.0)
        self.per_bucket.update(group.keys)


@dataclass
class ActorDays:
    """Distinct actors per local day, week and month, and in all, from every (actor, day) pair."""

    daily: Counter[str] = field(default_factory=Counter)
    weekly: Counter[date] = field(default_factory=Counter)
    monthly: Counter[date] = field(default_factory=Counter)
    actors: int = 0

    def add(self, group: Group) -> None:
        days = [date.fromisoformat(k) for k in group.keys]
        self.actors += 1
        self.daily.update(group.keys)
        self.weekly.update({_week(d) for d in days})
        self.monthly.update({_month(d) for d in days})


@dataclass(frozen=True)
class Engagement:
    params: CommonParams
    response_model: ClassVar = EngagementResponse

    async def _actor_days(self, ctx: QueryContext, period: Period) -> ActorDays:
        out = ActorDays()
        days = replace(period, interval="day")
        async for actor in groups(ctx, activity_query(self.params, period), "actor_id", days):
            out.add(actor)
        return out

    async def _sessions(self, ctx: QueryContext, period: Period) -> SessionTotals:
        """Every session's records, first and last timestamp inside the period, and its buckets."""
        out = SessionTotals()
        async for session in groups(ctx, activity_query(self.params, period), "session_id", period, timings=True):
            out.add(session)
        return out

    @staticmethod
    def bucket_counts(period: Period) -> dict[str, int]:
        """How many days, weeks and months the means are taken over: every one overlapping the period."""
        days = [date.fromisoformat(k) for k in replace(period, interval="day").keys()]
        return {"days": len(days), "weeks": len({_week(d) for d in days}), "months": len({_month(d) for d in days})}

    async def measure(self, ctx: QueryContext, period: Period) -> tuple[EngagementKpis, ActorDays, SessionTotals]:
        a = await self._actor_days(ctx, period)
        s = await self._sessions(ctx, period)
        n = self.bucket_counts(period)
        dau = sum(a.daily.values()) / n["days"]
        wau = sum(a.weekly.values()) / n["weeks"]
        mau = sum(a.monthly.values()) / n["months"]
        kpis = EngagementKpis(
            dau=round(dau, 2), wau=round(wau, 2), mau=round(mau, 2), stickiness=ratio(dau, mau),
            active_users=a.actors, sessions=s.sessions, events=s.records,
            avg_session_seconds=round(s.duration_ms / 1000 / s.sessions, 2) if s.sessions else None,
            bounce_rate=ratio(s.bounces, s.sessions),
            events_per_session=round(s.records / s.sessions, 2) if s.sessions else None)
        return kpis, a, s

    def series_body(self) -> dict[str, Any]:
        """Records per bucket of `interval` (the distinct counts per bucket come from `groups`)."""
        return {"query": activity_query(self.params),
                "aggs": {"series": self.params.period.date_histogram("timestamp")}}

    async def run(self, ctx: QueryContext) -> EngagementResponse:
        p = self.params
        histogram = (await ctx.search(ACTIVITY, self.series_body()))["aggregations"]["series"]["buckets"]
        events = {p.period.key_of(b["key"]): b["doc_count"] for b in histogram}
        current, actor_days, sessions = await self.measure(ctx, p.period)
        if p.period.interval == "day":
            actors = actor_days.daily
        else:
            actors = (await distinct(ctx, activity_query(p), "actor_id", p.period)).per_bucket
        series = [EngagementPoint(key=k, active_users=actors[k], sessions=sessions.per_bucket[k],
                                  events=events.get(k, 0)) for k in p.period.keys()]
        compared = None
        if p.compare != "none":
            compared = comparison(current, (await self.measure(ctx, p.period.previous(p.compare)))[0])
        return EngagementResponse(period=PeriodOut.of(p.period), **current.model_dump(),
                                  **self.bucket_counts(p.period), series=series, comparison=compared)
