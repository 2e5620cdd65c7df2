"""User activity: active users and sessions, behaviour, engagement (docs/metrics.md "Users and activity").

Everything here reads the activity index (one record per page view, search, add to
cart, ...), placed in time by `timestamp`. The actor is `user_id`, else `anonymous_id`
(stored as `actor_id` at ingest); a session is a distinct `session_id`.

Distinct counts (actors, sessions; in total and per bucket) are exact: they come from
paged composite aggregations over (value, bucket) pairs (`pairs`), read as they stream
(`groups`) and counted in Python. The `cardinality` aggregation is not used for them:
its "exact below the precision threshold" mode still hashes values to about 25 bits,
so two ids can collide (10,000 distinct ids counted as 9,999 on our node).
Every Elasticsearch body a query here sends is built in this module, in its query
object's `requests()` and `*_request` methods, from the pieces of analytics/shared.py.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from ..es.indices import ACTIVITY
from .comparison import comparison, comparison_period, previous_period
from .fields import AnalyticsResponse, BucketKey, ComparisonPeriod, PeriodOut, ResponsePart, TotalsComparison
from .params import CommonParams, Period, invalid
from .requests import Composite, Search, terms_source
from .runner import AnalyticsQuery, QueryContext, Reader
from .shared import (
    activity_query,
    aggregations,
    bucket_series,
    only,
    ranked,
    ratio,
    total_hits,
)

# activity_type is validated at ingest to one of 11 values, so a terms aggregation of
# this size returns every type from every shard: the counts are exact.
TYPE_TERMS_SIZE = 100
# Top pages: each shard returns this many page URLs at least; when a shard had more
# (doc_count_error_upper_bound > 0) the pages are counted exactly by composite paging.
PAGES_SHARD_SIZE = 5000
UNKNOWN_DEVICE = "unknown"
ACTOR = "actor_id"
SESSION = "session_id"


def check_activity_params(params: CommonParams) -> CommonParams:
    """Activity records carry no sales channel: a `channel` filter cannot apply (422, not ignored)."""
    if params.channel is not None:
        raise invalid("channel", "user activity has no sales channel; remove the channel filter")
    return params


def bucket_source(period: Period) -> dict[str, Any]:
    """A composite source naming each record's calendar bucket (local, in the period's zone)."""
    return {
        "b": {
            "date_histogram": {"field": "timestamp", "calendar_interval": period.interval, "time_zone": period.tz.key}
        }
    }


def types_agg() -> dict[str, Any]:
    return {
        "terms": {"field": "activity_type", "size": TYPE_TERMS_SIZE, "order": [{"_count": "desc"}, {"_key": "asc"}]}
    }


def _days(period: Period) -> Period:
    return replace(period, interval="day")


# -- exact distinct counting -------------------------------------------------------------


def pairs(query: dict[str, Any], value_field: str, buckets: Period | None, *, timings: bool = False) -> Composite:
    """Every (value, bucket) pair of `value_field` among the matching activity, with the bucket
    of `buckets` the records fall in (no bucket source when None: one pair per value), and with
    `timings` each pair's first and last timestamp. Read as it streams by `groups`."""
    sources = [terms_source("v", value_field), *([bucket_source(buckets)] if buckets is not None else [])]
    aggs = {"first": {"min": {"field": "timestamp"}}, "last": {"max": {"field": "timestamp"}}} if timings else None
    return Composite(ACTIVITY, query, sources, aggs)


@dataclass
class Group:
    """One distinct value (an actor, a session) and where it occurs."""

    value: str
    keys: set[str] = field(default_factory=set)  # API keys of the period's buckets it has activity in
    records: int = 0
    first_ms: float | None = None
    last_ms: float | None = None


async def groups(buckets: AsyncIterator[dict[str, Any]], period: Period) -> AsyncIterator[Group]:
    """The streamed buckets of a `pairs` request as one Group per value: its buckets (keys of
    `period`), record count and, with timings, first and last timestamp; exact for any number
    of values.

    A composite aggregation is sorted by its first source, the value, so the pairs of one
    value arrive together, whatever page they are on.
    """
    current: Group | None = None
    async for bucket in buckets:
        value = bucket["key"]["v"]
        if current is None or current.value != value:
            if current is not None:
                yield current
            current = Group(value)
        if "b" in bucket["key"]:
            current.keys.add(period.key_of(bucket["key"]["b"]))
        current.records += bucket["doc_count"]
        if "first" in bucket:
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


async def distinct(buckets: AsyncIterator[dict[str, Any]], period: Period) -> Distinct:
    """The distinct values of a streamed `pairs` request, in total and per bucket of `period`:
    each (value, bucket) pair is one value in that bucket, and the pairs of one value arrive
    together, so counting pairs per bucket and value changes needs no Group per value."""
    total, last = 0, None
    per_start: Counter[int] = Counter()
    async for bucket in buckets:
        key = bucket["key"]
        if key["v"] != last:
            total, last = total + 1, key["v"]
        per_start[key["b"]] += 1
    per_bucket: Counter[str] = Counter()
    for start, n in per_start.items():
        per_bucket[period.key_of(start)] += n
    return Distinct(total, per_bucket)


async def count(buckets: AsyncIterator[dict[str, Any]]) -> int:
    """The buckets of a stream, counted: the distinct values of a `pairs` request without buckets."""
    n = 0
    async for _ in buckets:
        n += 1
    return n


# -- shared response parts ---------------------------------------------------------------


class TypeCount(ResponsePart):
    key: str
    """activity_type"""
    count: int
    """activity records of this type in the period"""
    share: float | None
    """count / all activity records in the period"""


def type_counts(aggs: dict[str, Any], events: int) -> list[TypeCount]:
    return [
        TypeCount(key=b["key"], count=b["doc_count"], share=ratio(b["doc_count"], events))
        for b in aggs["by_type"]["buckets"]
    ]


# -- users/activity ----------------------------------------------------------------------


class ActivityKpis(ResponsePart):
    active_users: int
    """distinct actors (user_id, else anonymous_id) with activity in the period"""
    sessions: int
    """distinct session_id with activity in the period"""
    events: int
    """activity records in the period"""


class ActivityPoint(ActivityKpis):
    key: BucketKey


class UserActivityResponse(ActivityKpis, AnalyticsResponse):
    events_by_type: list[TypeCount]
    """activity records by activity_type, count desc then key"""
    series: list[ActivityPoint]
    """every bucket of the period; an actor or session active in several buckets counts in each"""
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


@dataclass(frozen=True)
class UserActivity(AnalyticsQuery[UserActivityResponse]):
    """Records, actors and sessions of the period, in total and per bucket; with `compare`,
    the totals of the comparison period (it needs no series)."""

    params: CommonParams
    name: ClassVar = "users/activity"

    def requests(self) -> dict[str, Search | Composite]:
        """Records by type and per bucket, and the (actor, bucket) and (session, bucket) pairs
        (streamed into `distinct`); with `compare`, the comparison period's records and its
        actors and sessions (one pair per value, streamed into `count`)."""
        p = self.params
        query = activity_query(p)
        previous = previous_period(p)
        before = previous and activity_query(p, period=previous)
        return only(
            {
                "records": Search(
                    ACTIVITY,
                    {"query": query, "aggs": {"by_type": types_agg(), "series": p.period.date_histogram("timestamp")}},
                ),
                "actors": pairs(query, ACTOR, p.period),
                "sessions": pairs(query, SESSION, p.period),
                "previous_records": before and Search(ACTIVITY, {"query": before}),
                "previous_actors": before and pairs(before, ACTOR, None),
                "previous_sessions": before and pairs(before, SESSION, None),
            }
        )

    async def run(self, ctx: QueryContext) -> UserActivityResponse:
        p = self.params
        a = await ctx.fetch_reading(
            self.requests(),
            {
                "actors": lambda buckets: distinct(buckets, p.period),
                "sessions": lambda buckets: distinct(buckets, p.period),
                "previous_actors": count,
                "previous_sessions": count,
            },
        )
        actors: Distinct = a["actors"]
        sessions: Distinct = a["sessions"]
        events = total_hits(a["records"])
        aggs = aggregations(a["records"])
        series = bucket_series(
            p.period,
            aggs,
            lambda k, b: ActivityPoint(
                key=k, active_users=actors.per_bucket[k], sessions=sessions.per_bucket[k], events=b["doc_count"]
            ),
        )
        current = ActivityKpis(active_users=actors.total, sessions=sessions.total, events=events)
        previous = None
        if "previous_records" in a:
            previous = ActivityKpis(
                active_users=a["previous_actors"],
                sessions=a["previous_sessions"],
                events=total_hits(a["previous_records"]),
            )
        return UserActivityResponse(
            period=PeriodOut.of(p.period),
            **current.model_dump(),
            events_by_type=type_counts(aggs, events),
            series=series,
            comparison=comparison(current, previous, has_data=bool(previous and previous.events)),
            comparison_period=comparison_period(p),
        )


# -- users/behavior ----------------------------------------------------------------------


class HeatCell(ResponsePart):
    weekday: int
    """local weekday in `tz`, Monday=0 .. Sunday=6"""
    hour: int
    """local hour in `tz`, 0..23"""
    count: int
    """activity records in that local weekday and hour over the period"""


class PageItem(ResponsePart):
    key: str
    """page_url"""
    views: int
    """page_view records of the page"""
    share: float | None
    """views / all page views in the period"""


class DeviceItem(ResponsePart):
    key: str = Field(description=f"device.type (`{UNKNOWN_DEVICE}` for records without one)")
    actors: int
    """distinct actors with activity on this device type"""
    share: float | None
    """actors / active_users (an actor on two device types counts in both, so shares can add up to more than 1)"""


class BehaviorResponse(AnalyticsResponse):
    events: int
    """activity records in the period"""
    active_users: int
    """distinct actors with activity in the period"""
    page_views: int
    """page_view records in the period"""
    events_by_type: list[TypeCount]
    """activity records by activity_type, count desc then key"""
    heatmap: list[HeatCell]
    """all 7 x 24 cells, weekday then hour, zeros included"""
    top_pages: list[PageItem]
    """`limit` pages by page views, desc then page_url"""
    devices: list[DeviceItem]
    """device types by distinct actors, desc then key"""


PAGE_VIEW = {"term": {"activity_type": "page_view"}}


@dataclass(frozen=True)
class Behavior(AnalyticsQuery[BehaviorResponse]):
    """Records by type, the weekday x hour heatmap, the top pages and the devices of the period,
    all requested at once."""

    params: CommonParams
    name: ClassVar = "users/behavior"

    def requests(self) -> dict[str, Search | Composite]:
        """Records by type and the top pages among page views (exact when no shard truncated its
        list: else `all_pages_request` follows); the records per local hour (streamed into
        `heatmap`) and every (actor, device type) pair (streamed into `devices`)."""
        limit = self.params.limit
        query = activity_query(self.params)
        # Local hours of the period's zone: the repeated hour of a DST fall-back is two buckets.
        hours = {
            "h": {
                "date_histogram": {
                    "field": "timestamp",
                    "calendar_interval": "hour",
                    "time_zone": self.params.period.tz.key,
                }
            }
        }
        return {
            "records": Search(
                ACTIVITY,
                {
                    "query": query,
                    "aggs": {
                        "by_type": types_agg(),
                        "page_views": {
                            "filter": PAGE_VIEW,
                            "aggs": {
                                "pages": {
                                    "terms": {
                                        "field": "page_url",
                                        "size": limit,
                                        "shard_size": max(PAGES_SHARD_SIZE, limit),
                                        "order": [{"_count": "desc"}, {"_key": "asc"}],
                                    }
                                }
                            },
                        },
                    },
                },
            ),
            "hours": Composite(ACTIVITY, query, [hours]),
            "devices": Composite(
                ACTIVITY, query, [terms_source("a", ACTOR), terms_source("d", "device.type", missing=True)]
            ),
        }

    def all_pages_request(self) -> Composite:
        """Page views of every page_url, when some shard returned fewer pages than it had."""
        return Composite(ACTIVITY, activity_query(self.params, PAGE_VIEW), [terms_source("p", "page_url")])

    async def heatmap(self, hours: AsyncIterator[dict[str, Any]]) -> list[HeatCell]:
        tz = self.params.period.tz
        grid = [[0] * 24 for _ in range(7)]
        async for b in hours:
            local = datetime.fromtimestamp(b["key"]["h"] / 1000, UTC).astimezone(tz)
            grid[local.weekday()][local.hour] += b["doc_count"]
        return [HeatCell(weekday=d, hour=h, count=grid[d][h]) for d in range(7) for h in range(24)]

    async def top_pages(self, ctx: QueryContext, aggs: dict[str, Any]) -> list[PageItem]:
        views = aggs["page_views"]["doc_count"]
        terms = aggs["page_views"]["pages"]
        if terms.get("doc_count_error_upper_bound", 0) == 0:
            counted = [(b["key"], b["doc_count"]) for b in terms["buckets"]]
        else:  # some shard had more pages than it returned: count every page
            every = [(b["key"]["p"], b["doc_count"]) async for b in ctx.stream(self.all_pages_request())]
            counted = ranked(every, lambda kv: kv[1], limit=self.params.limit, key=lambda kv: kv[0])
        return [PageItem(key=k, views=n, share=ratio(n, views)) for k, n in counted]

    @staticmethod
    async def devices(device_pairs: AsyncIterator[dict[str, Any]]) -> tuple[int, list[DeviceItem]]:
        """(active actors, actors per device type), from every (actor, device type) pair."""
        actors: set[str] = set()
        per_device: Counter[str] = Counter()
        async for b in device_pairs:
            actors.add(b["key"]["a"])
            per_device[b["key"]["d"] or UNKNOWN_DEVICE] += 1
        items = [DeviceItem(key=k, actors=n, share=ratio(n, len(actors))) for k, n in per_device.items()]
        return len(actors), ranked(items, lambda item: item.actors)

    async def records_and_pages(self, ctx: QueryContext, records: Search) -> tuple[dict[str, Any], list[PageItem]]:
        response = await ctx.send(records)
        return response, await self.top_pages(ctx, aggregations(response))

    async def run(self, ctx: QueryContext) -> BehaviorResponse:
        requests = self.requests()
        records, hours, device_pairs = requests["records"], requests["hours"], requests["devices"]
        assert isinstance(records, Search) and isinstance(hours, Composite) and isinstance(device_pairs, Composite)
        (response, top_pages), heatmap, (active, devices) = await asyncio.gather(
            self.records_and_pages(ctx, records),
            self.heatmap(ctx.stream(hours)),
            self.devices(ctx.stream(device_pairs)),
        )
        aggs = aggregations(response)
        events = total_hits(response)
        return BehaviorResponse(
            period=PeriodOut.of(self.params.period),
            events=events,
            active_users=active,
            page_views=aggs["page_views"]["doc_count"],
            events_by_type=type_counts(aggs, events),
            heatmap=heatmap,
            top_pages=top_pages,
            devices=devices,
        )


# -- users/engagement --------------------------------------------------------------------


class EngagementKpis(ResponsePart):
    dau: float
    """mean distinct actors per local day, over every day of the period (empty days count as 0)"""
    wau: float
    """mean distinct actors per week (Monday) overlapping the period, counting only activity inside the period"""
    mau: float
    """mean distinct actors per calendar month overlapping the period, counting only activity inside the period"""
    stickiness: float | None
    """dau / mau"""
    active_users: int
    """distinct actors with activity in the period"""
    sessions: int
    """distinct session_id with activity in the period"""
    events: int
    """activity records in the period"""
    avg_session_seconds: float | None
    """mean of (last - first timestamp) per session, over its activity inside the period"""
    bounce_rate: float | None
    """sessions with exactly one record in the period / sessions"""
    events_per_session: float | None
    """events / sessions"""


class EngagementPoint(ResponsePart):
    key: BucketKey
    active_users: int
    """distinct actors with activity in the bucket"""
    sessions: int
    """distinct sessions with activity in the bucket"""
    events: int
    """activity records in the bucket"""


class EngagementResponse(EngagementKpis, AnalyticsResponse):
    days: int
    """local days the DAU mean is taken over"""
    weeks: int
    """weeks the WAU mean is taken over"""
    months: int
    """months the MAU mean is taken over"""
    series: list[EngagementPoint]
    """every bucket of `interval` in the period"""
    comparison: TotalsComparison = None
    comparison_period: ComparisonPeriod = None


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month(day: date) -> date:
    return day.replace(day=1)


@functools.lru_cache(maxsize=1 << 14)
def _week_of(day_key: str) -> date:
    """The week (Monday) of a day's API key, remembered: asked once per (actor, day) pair."""
    return _week(date.fromisoformat(day_key))


@functools.lru_cache(maxsize=1 << 14)
def _month_of(day_key: str) -> date:
    return _month(date.fromisoformat(day_key))


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
        per_bucket = self.per_bucket
        for key in group.keys:
            per_bucket[key] += 1

    @classmethod
    async def read(cls, buckets: AsyncIterator[dict[str, Any]], period: Period) -> SessionTotals:
        """From the streamed (session, bucket) pairs with timings: every session's records, first and
        last timestamp inside the period, and its buckets."""
        out = cls()
        async for session in groups(buckets, period):
            out.add(session)
        return out


@dataclass
class ActorDays:
    """Distinct actors per local day, week and month, and in all, from every (actor, day) pair."""

    daily: Counter[str] = field(default_factory=Counter)
    weekly: Counter[date] = field(default_factory=Counter)
    monthly: Counter[date] = field(default_factory=Counter)
    actors: int = 0

    def add(self, group: Group) -> None:
        # Plain increments: Counter.update of a small set costs several times more per key.
        self.actors += 1
        daily, weekly, monthly = self.daily, self.weekly, self.monthly
        for key in group.keys:
            daily[key] += 1
        for week in {_week_of(k) for k in group.keys}:
            weekly[week] += 1
        for month in {_month_of(k) for k in group.keys}:
            monthly[month] += 1

    @classmethod
    async def read(cls, buckets: AsyncIterator[dict[str, Any]], period: Period) -> ActorDays:
        """From the streamed (actor, day) pairs of the period."""
        out = cls()
        async for actor in groups(buckets, _days(period)):
            out.add(actor)
        return out

    def per_bucket(self, interval: str) -> Counter[str] | None:
        """Distinct actors per bucket of a day, week or month `interval` (None for another)."""
        if interval == "day":
            return self.daily
        by_start = {"week": self.weekly, "month": self.monthly}.get(interval)
        return None if by_start is None else Counter({start.isoformat(): n for start, n in by_start.items()})


# `interval`s whose actors per bucket ActorDays gives (no (actor, bucket) pairs needed).
ACTOR_DAY_INTERVALS = ("day", "week", "month")


@dataclass(frozen=True)
class Engagement(AnalyticsQuery[EngagementResponse]):
    """DAU, WAU and MAU from the (actor, day) pairs, the session numbers from the (session,
    bucket) pairs, and the series; with `compare`, the KPIs of the comparison period (no series)."""

    params: CommonParams
    name: ClassVar = "users/engagement"

    def requests(self) -> dict[str, Search | Composite]:
        """Records per bucket of `interval`; the (actor, day) pairs (`ActorDays`), the (session,
        bucket) pairs with timings (`SessionTotals`) and, when `interval` is not a day, week or
        month, the (actor, bucket) pairs (`distinct`), all streamed; with `compare`, the comparison
        period's (actor, day) pairs and its sessions with timings (one pair per session)."""
        p = self.params
        query = activity_query(p)
        previous = previous_period(p)
        return only(
            {
                "series": Search(ACTIVITY, {"query": query, "aggs": {"series": p.period.date_histogram("timestamp")}}),
                "actor_days": pairs(query, ACTOR, _days(p.period)),
                "sessions": pairs(query, SESSION, p.period, timings=True),
                "actors": None if p.period.interval in ACTOR_DAY_INTERVALS else pairs(query, ACTOR, p.period),
                "previous_actor_days": previous and pairs(activity_query(p, period=previous), ACTOR, _days(previous)),
                "previous_sessions": previous
                and pairs(activity_query(p, period=previous), SESSION, None, timings=True),
            }
        )

    @staticmethod
    def bucket_counts(period: Period) -> dict[str, int]:
        """How many days, weeks and months the means are taken over: every one overlapping the period."""
        days = [date.fromisoformat(k) for k in _days(period).bucket_keys()]
        return {"days": len(days), "weeks": len({_week(d) for d in days}), "months": len({_month(d) for d in days})}

    def kpis(self, period: Period, a: ActorDays, s: SessionTotals) -> EngagementKpis:
        n = self.bucket_counts(period)
        dau = sum(a.daily.values()) / n["days"]
        wau = sum(a.weekly.values()) / n["weeks"]
        mau = sum(a.monthly.values()) / n["months"]
        return EngagementKpis(
            dau=round(dau, 2),
            wau=round(wau, 2),
            mau=round(mau, 2),
            stickiness=ratio(dau, mau),
            active_users=a.actors,
            sessions=s.sessions,
            events=s.records,
            avg_session_seconds=round(s.duration_ms / 1000 / s.sessions, 2) if s.sessions else None,
            bounce_rate=ratio(s.bounces, s.sessions),
            events_per_session=round(s.records / s.sessions, 2) if s.sessions else None,
        )

    async def run(self, ctx: QueryContext) -> EngagementResponse:
        p = self.params
        readers: dict[str, Reader] = {
            "actor_days": lambda buckets: ActorDays.read(buckets, p.period),
            "sessions": lambda buckets: SessionTotals.read(buckets, p.period),
            "actors": lambda buckets: distinct(buckets, p.period),
        }
        previous = previous_period(p)
        if previous is not None:
            readers["previous_actor_days"] = lambda buckets: ActorDays.read(buckets, previous)
            readers["previous_sessions"] = lambda buckets: SessionTotals.read(buckets, previous)
        a = await ctx.fetch_reading(self.requests(), readers)
        actor_days: ActorDays = a["actor_days"]
        sessions: SessionTotals = a["sessions"]
        current = self.kpis(p.period, actor_days, sessions)
        by_interval = actor_days.per_bucket(p.period.interval)
        actors: Counter[str] = a["actors"].per_bucket if by_interval is None else by_interval
        series = bucket_series(
            p.period,
            aggregations(a["series"]),
            lambda k, b: EngagementPoint(
                key=k, active_users=actors[k], sessions=sessions.per_bucket[k], events=b["doc_count"]
            ),
        )
        before = None
        if previous is not None:
            before = self.kpis(previous, a["previous_actor_days"], a["previous_sessions"])
        return EngagementResponse(
            period=PeriodOut.of(p.period),
            **current.model_dump(),
            **self.bucket_counts(p.period),
            series=series,
            comparison=comparison(current, before, has_data=bool(before and before.events)),
            comparison_period=comparison_period(p),
        )
