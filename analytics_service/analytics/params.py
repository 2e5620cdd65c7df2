"""The common query parameters of every analytics endpoint, parsed once (docs/metrics.md "Common parameters and time").

A period is half-open [start, end) in the requested time zone; a bare date means
00:00 of that date there. Buckets are calendar buckets in that zone (weeks start on
Monday), so DST days have 23 or 25 hours and every bucket key is a local start.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Depends, Query

from ..auth import Principal, ReadKey, resolve_store
from ..dependencies import SettingsDep
from ..errors import ApiError
from ..ingest.limits import check_store_id
from ..zones import zone_named

Interval = Literal["hour", "day", "week", "month", "quarter", "year"]
Compare = Literal["none", "previous_period", "previous_year"]
INTERVALS: tuple[str, ...] = ("hour", "day", "week", "month", "quarter", "year")
# The calendar units a period can be exactly, so that it compares with the previous whole one.
CALENDAR_UNITS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
MAX_BUCKETS = 5000
MAX_LIMIT = 1000
MAX_PAGE = 100_000  # the highest page number any paged analytics list accepts
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def invalid(param: str, message: str) -> ApiError:
    return ApiError(422, f"{param}: {message}", details=[{"field": f"query.{param}", "message": message}])


def _parse_instant(param: str, value: str, tz: ZoneInfo) -> datetime:
    """A bare date is 00:00 local; a datetime without offset is local; with offset as given."""
    text = value.strip()
    try:
        if _DATE.match(text):
            return datetime.combine(date.fromisoformat(text), time(0), tz)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(param, f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 datetime") from None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)


def _local_midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tz)


def _floor(local: datetime, interval: str) -> datetime:
    """The start of the calendar bucket holding `local` (a local wall-clock time)."""
    tz = local.tzinfo
    if interval == "hour":
        # Floor in UTC so the repeated hour of a DST fall-back stays two buckets.
        utc = local.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return utc.astimezone(tz)
    d = local.date()
    if interval == "week":
        d -= timedelta(days=d.weekday())
    elif interval == "month":
        d = d.replace(day=1)
    elif interval == "quarter":
        d = d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    elif interval == "year":
        d = d.replace(month=1, day=1)
    return _local_midnight(d, tz)  # type: ignore[arg-type]


def _next(start: datetime, interval: str) -> datetime:
    tz = start.tzinfo
    if interval == "hour":
        return (start.astimezone(UTC) + timedelta(hours=1)).astimezone(tz)
    d = start.date()
    if interval == "day":
        d += timedelta(days=1)
    elif interval == "week":
        d += timedelta(days=7)
    else:
        months = {"month": 1, "quarter": 3, "year": 12}[interval]
        total = d.year * 12 + d.month - 1 + months
        d = date(total // 12, total % 12 + 1, 1)
    return _local_midnight(d, tz)  # type: ignore[arg-type]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def bucket_key(local_start: datetime, interval: str) -> str:
    """`YYYY-MM-DD` for day and longer; an ISO datetime with offset for hours
    (docs/metrics.md "Common parameters and time")."""
    return local_start.isoformat() if interval == "hour" else local_start.date().isoformat()


@functools.lru_cache(maxsize=1 << 16)
def _key_of(epoch_ms: int, tz: ZoneInfo, interval: str) -> str:
    """Remembered: a period has few bucket starts, and a paged read names them once per pair
    (hundreds of thousands of times a year)."""
    return bucket_key(datetime.fromtimestamp(epoch_ms / 1000, UTC).astimezone(tz), interval)


@dataclass(frozen=True)
class Period:
    start: datetime  # aware, in tz
    end: datetime
    tz: ZoneInfo
    interval: str = "day"

    @property
    def start_utc(self) -> str:
        return self.start.astimezone(UTC).isoformat().replace("+00:00", "Z")

    @property
    def end_utc(self) -> str:
        return self.end.astimezone(UTC).isoformat().replace("+00:00", "Z")

    @property
    def days(self) -> float:
        """Length in local wall-clock days: a DST day counts as one day (aware datetimes in
        the same zone subtract as wall-clock times)."""
        return (self.end - self.start).total_seconds() / 86400

    def range_filter(self, field: str) -> dict[str, Any]:
        return {"range": {field: {"gte": self.start_utc, "lt": self.end_utc}}}

    def buckets(self) -> list[datetime]:
        """Local starts of every calendar bucket that overlaps the period."""
        out = []
        current = _floor(self.start, self.interval)
        while current < self.end:
            out.append(current)
            current = _next(current, self.interval)
        return out

    def bucket_keys(self) -> list[str]:
        return [bucket_key(b, self.interval) for b in self.buckets()]

    def bucket_spans(self) -> list[tuple[str, datetime, datetime]]:
        """(key, start, end) of every bucket, cut to the period: a first or last bucket that
        reaches outside it starts or ends where the period does."""
        return [
            (bucket_key(b, self.interval), max(b, self.start), min(_next(b, self.interval), self.end))
            for b in self.buckets()
        ]

    def check_bucket_count(self) -> None:
        """422 on `interval` when the period holds more than MAX_BUCKETS buckets of it."""
        buckets = _estimated_buckets(self)
        if buckets > MAX_BUCKETS:
            raise invalid(
                "interval", f"{self.interval} buckets over this period would be {buckets}; at most {MAX_BUCKETS}"
            )

    def date_histogram(self, field: str) -> dict[str, Any]:
        """A calendar date_histogram in the period's zone, every bucket present.

        The bucket count is checked here, where a series is asked for, so endpoints
        without a series accept long periods whatever the interval.
        """
        self.check_bucket_count()
        return {
            "date_histogram": {
                "field": field,
                "calendar_interval": self.interval,
                "time_zone": self.tz.key,
                "min_doc_count": 0,
                # Bounds are inclusive: the last bucket is the one holding the last instant.
                "extended_bounds": {"min": _ms(self.start), "max": _ms(self.end) - 1},
            }
        }

    def key_of(self, epoch_ms: int) -> str:
        """The API key of a date_histogram bucket (ES keys are the bucket start in UTC ms)."""
        return _key_of(epoch_ms, self.tz, self.interval)

    def calendar_unit(self) -> str | None:
        """The calendar unit in `tz` (day, week, month, quarter, year) that the period is exactly,
        if it is one (docs/metrics.md "Comparison periods")."""
        if self.start.time() != time(0) or self.end.time() != time(0):
            return None
        for unit in CALENDAR_UNITS:
            if _floor(self.start, unit) == self.start and _next(self.start, unit) == self.end:
                return unit
        return None

    def previous(self, compare: str) -> Period:
        """The period `compare` compares with: for a whole calendar unit the previous unit
        (`previous_period`) or the same unit a year earlier (`previous_year`); for any other
        period the same length ending where this one starts, or the same dates a year earlier."""
        unit = self.calendar_unit()
        if unit is not None:
            start = _unit_year_earlier(self.start, unit) if compare == "previous_year" else _previous_unit(self, unit)
            return replace(self, start=start, end=_next(start, unit))
        if compare == "previous_year":
            return replace(self, start=_shift_year(self.start), end=_shift_year(self.end))
        length = self.end - self.start
        if self.start.time() == time(0) and self.end.time() == time(0):
            # Whole local days: the same number of calendar days, ending where this starts.
            days = (self.end.date() - self.start.date()).days
            return replace(
                self, start=_local_midnight(self.start.date() - timedelta(days=days), self.tz), end=self.start
            )
        return replace(self, start=(self.start.astimezone(UTC) - length).astimezone(self.tz), end=self.start)

    def describe(self) -> dict[str, str]:
        """The `period` object of every response."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "tz": self.tz.key,
            "interval": self.interval,
        }


def _shift_year(moment: datetime) -> datetime:
    try:
        shifted = moment.replace(year=moment.year - 1)
    except ValueError:  # 29 February
        shifted = moment.replace(year=moment.year - 1, day=28)
    return datetime.combine(shifted.date(), shifted.time(), moment.tzinfo)


def _previous_unit(period: Period, unit: str) -> datetime:
    """The start of the whole `unit` before the one `period` is."""
    return _floor(_local_midnight(period.start.date() - timedelta(days=1), period.tz), unit)


def _unit_year_earlier(start: datetime, unit: str) -> datetime:
    """The start of the same calendar unit one year earlier: the same date (29 February: 28
    February), month, quarter or year; for an ISO week, the week of the same number in the
    previous ISO year (week 53: week 52 when that year has no week 53)."""
    if unit != "week":
        return _shift_year(start)
    year, week, _ = start.date().isocalendar()
    try:
        monday = date.fromisocalendar(year - 1, week, 1)
    except ValueError:  # week 53 of a year after a 52-week year
        monday = date.fromisocalendar(year - 1, 52, 1)
    return _local_midnight(monday, start.tzinfo)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CommonParams:
    period: Period
    store_id: str | None  # None: every store (keys bound to no store)
    channel: str | None = None
    compare: str = "none"
    limit: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    def filters(
        self, time_field: str | None, *, channel_field: str | None = "channel", period: Period | None = None
    ) -> list[dict[str, Any]]:
        """Store, channel and time filters for a bool query's `filter`."""
        out: list[dict[str, Any]] = []
        if time_field:
            out.append((period or self.period).range_filter(time_field))
        if self.store_id is not None:
            out.append({"term": {"store_id": self.store_id}})
        if self.channel is not None and channel_field:
            out.append({"term": {channel_field: self.channel}})
        return out

    def with_period(self, period: Period) -> CommonParams:
        return replace(self, period=period)

    def cache_parts(self) -> dict[str, Any]:
        return {
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "tz": self.period.tz.key,
            "interval": self.period.interval,
            "store": self.store_id,
            "channel": self.channel,
            "compare": self.compare,
            "limit": self.limit,
            **self.extra,
        }


def parse_common(
    *,
    principal: Principal,
    start: str | None = None,
    end: str | None = None,
    tz: str | None = None,
    interval: str | None = None,
    store_id: str | None = None,
    channel: str | None = None,
    compare: str | None = None,
    limit: int | None = None,
    default_tz: str = "UTC",
    default_interval: str = "day",
    now: datetime | None = None,
) -> CommonParams:
    zone_name = tz or default_tz
    try:
        zone = zone_named(zone_name)
    except ValueError:
        raise invalid("tz", f"unknown time zone {zone_name!r} (use an IANA name such as America/Sao_Paulo)") from None
    interval = interval or default_interval
    if interval not in INTERVALS:
        raise invalid("interval", f"must be one of {', '.join(INTERVALS)}")
    compare = compare or "none"
    if compare not in ("none", "previous_period", "previous_year"):
        raise invalid("compare", "must be one of none, previous_period, previous_year")
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    # No period: the 30 whole days before today. Only a start: through the end of today.
    default_end = today + timedelta(days=1) if start else today
    end_at = _parse_instant("end", end, zone) if end else _local_midnight(default_end, zone)
    start_at = (
        _parse_instant("start", start, zone) if start else _local_midnight(end_at.date() - timedelta(days=30), zone)
    )
    if start_at >= end_at:
        raise invalid("end", "must be after start")
    if end_at - start_at > timedelta(days=366 * 20):
        raise invalid("start", "a period may span at most 20 years")
    period = Period(start_at, end_at, zone, interval)
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    if store_id is not None:
        try:
            check_store_id(store_id)  # the syntax every stored store id has (ingest.limits)
        except ValueError as exc:
            raise invalid("store_id", str(exc)) from exc
    store = resolve_store(principal, store_id)
    return CommonParams(period=period, store_id=store, channel=channel or None, compare=compare, limit=limit or 10)


def _estimated_buckets(period: Period) -> int:
    seconds = (period.end - period.start).total_seconds()
    per = {
        "hour": 3600,
        "day": 86400,
        "week": 7 * 86400,
        "month": 28 * 86400,
        "quarter": 89 * 86400,
        "year": 365 * 86400,
    }[period.interval]
    return int(seconds // per) + 2


StartQ = Annotated[
    str | None,
    Query(
        description="period start: YYYY-MM-DD (00:00 in `tz`) or ISO 8601 datetime; default: 30 whole days before today"
    ),
]
EndQ = Annotated[str | None, Query(description="period end, exclusive; default: today 00:00 in `tz`")]
TzQ = Annotated[str | None, Query(description="IANA time zone of the period and buckets; default DEFAULT_TIMEZONE")]
IntervalQ = Annotated[str | None, Query(description="bucket size: hour, day, week (Monday), month, quarter, year")]
StoreQ = Annotated[str | None, Query(description="limit to one store (keys bound to a store always see only theirs)")]
ChannelQ = Annotated[str | None, Query(description="limit to one sales channel")]
CompareQ = Annotated[str | None, Query(description="none, previous_period or previous_year")]
LimitQ = Annotated[
    int | None, Query(ge=1, le=MAX_LIMIT, description=f"items in top-N lists, 1..{MAX_LIMIT} (default 10)")
]


async def common_params(
    principal: ReadKey,
    settings: SettingsDep,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    interval: IntervalQ = None,
    store_id: StoreQ = None,
    channel: ChannelQ = None,
    compare: CompareQ = None,
    limit: LimitQ = None,
) -> CommonParams:
    """The common query parameters, validated (422 naming the parameter)."""
    return parse_common(
        start=start,
        end=end,
        tz=tz,
        interval=interval,
        store_id=store_id,
        channel=channel,
        compare=compare,
        limit=limit,
        principal=principal,
        default_tz=settings.default_timezone,
    )


Common = Annotated[CommonParams, Depends(common_params)]
