"""What an alert rule and a report schedule are, as requests give them: validated here (a 422
names the field at fault), with the built-in alert templates, windows and durations.

A rule's evaluation times are the multiples of `evaluate_every` since the Unix epoch (UTC); an
evaluation at time T looks at its window ending at T: `[T - window, T)`, or for `today` the
local day (in the rule's `tz`) up to T. docs/alerts.md says the same for users.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ..ingest.limits import FieldError, check_store_id
from ..zones import zone_named
from .measures import MEASURES

ConditionType = Literal["threshold", "change", "anomaly"]
Operator = Literal[">", "<", ">=", "<="]
_DURATION = re.compile(r"^(\d{1,6})(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_EVERY_SECONDS = 60
MAX_WINDOW_SECONDS = 90 * 86400
MAX_EVERY_SECONDS = 7 * 86400
MAX_COOLDOWN_SECONDS = 90 * 86400
# A name goes into e-mail subjects: printable text on one line.
NAME = r"^[^\x00-\x1f\x7f]+$"
_EMAIL = TypeAdapter(EmailStr)


def duration_seconds(text: str) -> int:
    """ "90s", "5m", "1h", "2d", "1w" -> seconds; ValueError otherwise."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError("must be a duration such as 5m, 1h, 7d (a number and one of s, m, h, d, w)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def window_bounds(window: str, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The [start, end) of a rule's window for the evaluation at `at`, in `tz`."""
    end = at.astimezone(tz)  # `at` minus the window below is on instants (UTC), not wall times
    if window == "today":
        day = (at - timedelta(microseconds=1)).astimezone(tz).date()
        return datetime.combine(day, time(0), tz), end
    return (at.astimezone(UTC) - timedelta(seconds=duration_seconds(window))).astimezone(tz), end


def week_earlier(moment: datetime, tz: ZoneInfo, weeks: int = 1) -> datetime:
    """The same local wall-clock time `weeks` weeks before (the same hour of the week across a DST
    change: aware datetimes in one zone subtract as wall-clock times), as UTC."""
    return (moment.astimezone(tz) - timedelta(weeks=weeks)).astimezone(UTC)


def first_evaluation(after: datetime, every_seconds: int) -> datetime:
    """The first evaluation time (a multiple of `every_seconds` since the epoch) after `after`."""
    epoch = int(after.timestamp())
    return datetime.fromtimestamp((epoch // every_seconds + 1) * every_seconds, UTC)


# -- channels --------------------------------------------------------------------------------


class Channel(BaseModel):
    """Where a notification goes: an e-mail address, or a webhook URL (`format` json or slack)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["email", "webhook"] = Field(description="email or webhook")
    target: str = Field(min_length=1, max_length=2000, description="an e-mail address, or an http(s) URL")
    format: Literal["json", "slack"] = Field(
        "json", description="webhooks: our JSON payload, or a Slack-compatible message (`text` and `blocks`)"
    )

    @model_validator(mode="after")
    def _target(self) -> Channel:
        if self.type == "email":
            try:
                self.target = str(_EMAIL.validate_python(self.target))
            except ValidationError:
                raise FieldError("target", "must be an e-mail address") from None
            if self.format != "json":
                raise FieldError("format", "only webhooks have a format")
        else:
            parts = urlsplit(self.target)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FieldError("target", "must be an http:// or https:// URL with a host")
            try:
                port = parts.port  # raises for a port that is not a number from 0 to 65535
            except ValueError:
                port = 0
            if port == 0:
                raise FieldError("target", "has a port that is not a number from 1 to 65535")
            if any(ord(c) < 33 for c in self.target):
                raise FieldError("target", "must not contain spaces or control characters")
            if parts.username or parts.password:
                raise FieldError("target", "must not carry credentials (use the signature to authenticate us)")
        return self


def stored_channel(channel: Channel) -> dict[str, Any]:
    """A channel as a rule or schedule keeps it (e-mail has no format)."""
    return channel.model_dump(exclude={"format"} if channel.type == "email" else None)


class TargetRefused(ValueError):
    """A webhook target resolving to an address the service must not call (SSRF)."""


class TargetUnresolved(TargetRefused):
    """A webhook host that does not resolve (now): not refused when saved, retried when sent."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local use, never public
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64, IPv4-compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not address.is_global or address.is_multicast:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL:
        return True
    inner = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    return inner is not None and _refused(inner)


def check_public_target(url: str, allow_private: bool) -> list[str]:
    """The addresses a webhook URL's host resolves to, refusing loopback, private, link-local,
    multicast, reserved or unspecified ones (also inside an IPv6 address that carries an IPv4
    one) unless WEBHOOK_ALLOW_PRIVATE_TARGETS. Checked when a rule is saved and again before
    every attempt, which then connects to the address checked (not to a new resolution)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise TargetUnresolved(f"the host {host!r} does not resolve ({exc})") from None
    addresses = [str(info[4][0]).split("%", 1)[0] for info in infos]
    if allow_private:
        return addresses
    for text in addresses:
        if _refused(ipaddress.ip_address(text)):
            raise TargetRefused(
                f"the host {host!r} resolves to {text}, a loopback, private or reserved address "
                "(set WEBHOOK_ALLOW_PRIVATE_TARGETS=true to allow it)"
            )
    return addresses


# -- alert rules -----------------------------------------------------------------------------


class Condition(BaseModel):
    """When a rule fires (docs/alerts.md "Conditions")."""

    model_config = ConfigDict(extra="forbid")

    type: ConditionType = Field(
        description="threshold: the value; change: against a reference window; anomaly: "
        "outside the band of the same hour of the week in the last `weeks` weeks"
    )
    operator: Operator | None = Field(
        None, description="threshold and change: how the value (or the change) compares with `value`"
    )
    value: float | None = Field(
        None,
        allow_inf_nan=False,
        description="threshold and change: the bound (change in % with unit pct, e.g. -30 for a drop of 30 %)",
    )
    compare_to: Literal["previous_window", "last_week"] = Field(
        "previous_window", description="change: the window just before, or the same window one week earlier"
    )
    unit: Literal["pct", "abs"] = Field("pct", description="change: in % of the reference, or absolute")
    weeks: int = Field(4, ge=2, le=12, description="anomaly: how many earlier weeks make the band")
    sensitivity: float = Field(
        3.0, gt=0, le=10, allow_inf_nan=False, description="anomaly: the band's half-width in standard deviations"
    )
    direction: Literal["both", "up", "down"] = Field("both", description="anomaly: which side of the band fires")
    min_deviation: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description="anomaly: the band's half-width is "
        "at least this (in the measure's unit), so a flat history does not fire on noise",
    )

    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "threshold": ("type", "operator", "value"),
        "change": ("type", "operator", "value", "compare_to", "unit"),
        "anomaly": ("type", "weeks", "sensitivity", "direction", "min_deviation"),
    }

    def stored(self) -> dict[str, Any]:
        """The fields that mean something for this type (what the rule keeps and shows)."""
        return {name: getattr(self, name) for name in self.FIELDS[self.type]}

    @model_validator(mode="after")
    def _complete(self) -> Condition:
        if self.type in ("threshold", "change"):
            if self.operator is None:
                raise FieldError("operator", f"is required for a {self.type} condition (>, <, >= or <=)")
            if self.value is None:
                raise FieldError("value", f"is required for a {self.type} condition")
        return self


class AlertFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str | None = Field(None, min_length=1, max_length=64, description="sales channel (web, mobile, ...)")
    category: str | None = Field(None, min_length=1, max_length=200, description="one product category")
    product_ids: list[str] | None = Field(None, min_length=1, max_length=500, description="products")


class AlertBody(BaseModel):
    """POST /api/v1/alerts (PATCH: the same fields, each optional)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, min_length=1, max_length=200, pattern=NAME, description="default: the template's or measure's"
    )
    template: str | None = Field(
        None,
        description="a built-in template (GET /api/v1/alerts/templates): its "
        "measure, window, condition and cadence; fields given here override them",
    )
    measure: str | None = Field(None, description="what to watch (GET /api/v1/alerts/templates lists the measures)")
    window: str | None = Field(None, description="a duration (1m, 5m, 1h, 24h, 7d) or `today` (the local day so far)")
    condition: Condition | None = None
    filters: AlertFilters = Field(default_factory=AlertFilters)
    channels: list[Channel] = Field(
        default_factory=list,
        max_length=20,
        description="where to send fired and resolved notifications (the stream shows them either way)",
    )
    evaluate_every: str | None = Field(
        None, description="how often (a duration, at least 1m; default: the window, within 1m..1h)"
    )
    cooldown: str = Field(
        "0s",
        description="after an incident resolves, no new one for the same subject within this long (against flapping)",
    )
    tz: str | None = Field(None, description="the time zone of `today` and of the weeks (default: the store's)")
    store_id: str | None = Field(None, description="the store (a store-bound key: its own)")

    @field_validator("store_id")
    @classmethod
    def _store(cls, v: str | None) -> str | None:
        return None if v is None else check_store_id(v)

    muted: bool = Field(False, description="muted: evaluated and recorded, nothing delivered")

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is None or v == "today":
            return v
        if duration_seconds(v) > MAX_WINDOW_SECONDS:
            raise ValueError("must be at most 90d")
        return v

    @field_validator("evaluate_every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is not None and not MIN_EVERY_SECONDS <= duration_seconds(v) <= MAX_EVERY_SECONDS:
            raise ValueError("must be from 1m to 7d")
        return v

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, v: str) -> str:
        if v != "0s" and duration_seconds(v) > MAX_COOLDOWN_SECONDS:
            raise ValueError("must be at most 90d")
        return v

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            zone_named(v)
        return v

    @field_validator("template")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is not None and v not in TEMPLATES:
            raise ValueError(f"must be one of {', '.join(TEMPLATES)}")
        return v

    @field_validator("measure")
    @classmethod
    def _measure(cls, v: str | None) -> str | None:
        if v is not None and v not in MEASURES:
            raise ValueError(f"unknown measure; one of {', '.join(MEASURES)}")
        return v


TEMPLATES: dict[str, dict[str, Any]] = {
    "stock_out_imminent": {
        "name": "Stock-out imminent (under 7 days of cover)",
        "measure": "days_of_cover",
        "window": "30d",
        "condition": {"type": "threshold", "operator": "<", "value": 7},
        "evaluate_every": "1h",
        "description": "per product: stock / average daily units of the last 30 days under 7",
    },
    "low_stock": {
        "name": "Low stock (under 14 days of cover)",
        "measure": "days_of_cover",
        "window": "30d",
        "condition": {"type": "threshold", "operator": "<", "value": 14},
        "evaluate_every": "1h",
        "description": "per product: stock / average daily units of the last 30 days under 14",
    },
    "orders_per_minute": {
        "name": "Orders per minute above 10",
        "measure": "orders",
        "window": "1m",
        "condition": {"type": "threshold", "operator": ">", "value": 10},
        "evaluate_every": "1m",
        "description": "sales in the last minute above a threshold (set `condition.value`)",
    },
    "revenue_drop": {
        "name": "Revenue down 30 % on the same hour last week",
        "measure": "gross_revenue",
        "window": "1h",
        "condition": {"type": "change", "compare_to": "last_week", "unit": "pct", "operator": "<=", "value": -30},
        "evaluate_every": "1h",
        "description": "gross revenue of the last hour at least 30 % below the same hour one week earlier",
    },
    "revenue_anomaly": {
        "name": "Unusual revenue for the hour of the week",
        "measure": "gross_revenue",
        "window": "1h",
        "condition": {"type": "anomaly", "weeks": 4, "sensitivity": 3, "direction": "both"},
        "evaluate_every": "1h",
        "description": "gross revenue of the last hour outside mean ± 3 standard deviations of the same hour in "
        "the 4 weeks before",
    },
    "payment_failures_spike": {
        "name": "Payment failures spike",
        "measure": "payment_failures",
        "window": "1h",
        "condition": {"type": "change", "compare_to": "previous_window", "unit": "pct", "operator": ">=", "value": 100},
        "evaluate_every": "15m",
        "description": "failed payments of the last hour at least double those of the hour before",
    },
    "zero_result_searches": {
        "name": "Zero-result searches above 20 %",
        "measure": "zero_result_search_rate",
        "window": "1h",
        "condition": {"type": "threshold", "operator": ">", "value": 0.2},
        "evaluate_every": "15m",
        "description": "share of the last hour's searches that found nothing above 20 %",
    },
}


def default_every(window: str) -> str:
    if window == "today":
        return "15m"
    seconds = min(max(duration_seconds(window), MIN_EVERY_SECONDS), 3600)
    return f"{seconds // 60}m"


def resolved_rule(body: AlertBody) -> dict[str, Any]:
    """The rule's fields from a request: the template's, then the request's; 422 when the measure,
    window or condition is missing or does not suit the measure."""
    template = dict(TEMPLATES.get(body.template or "", {}))
    measure = body.measure or template.get("measure")
    window = body.window or template.get("window")
    condition = body.condition or (Condition.model_validate(template["condition"]) if template else None)
    for name, value in (("measure", measure), ("window", window), ("condition", condition)):
        if value is None:
            raise FieldError(name, "is required (or a template that gives it)")
    assert isinstance(measure, str) and isinstance(window, str) and isinstance(condition, Condition)
    spec = MEASURES[measure]
    if spec.per_product and condition.type != "threshold":
        raise FieldError(("condition", "type"), f"{measure} is per product: only threshold conditions")
    if spec.per_product and window == "today":
        raise FieldError("window", f"{measure} needs a duration (the average daily units are over whole days)")
    if (body.filters.category or body.filters.product_ids) and not (spec.category_filter or spec.per_product):
        field = "category" if body.filters.category else "product_ids"
        raise FieldError(
            ("filters", field),
            f"not available for {measure}; for orders, gross_revenue, units, stock and days_of_cover",
        )
    if body.filters.category and spec.per_product:
        raise FieldError(("filters", "category"), f"not available for {measure}; name the products")
    if body.filters.category and body.filters.product_ids:
        raise FieldError(("filters", "product_ids"), "give a category or products, not both")
    every = body.evaluate_every or template.get("evaluate_every") or default_every(window)
    return {
        "name": body.name or template.get("name") or f"{spec.label} ({window})",
        "template": body.template,
        "measure": measure,
        "window": window,
        "condition": condition.stored(),
        "filters": body.filters.model_dump(exclude_none=True),
        "channels": [stored_channel(c) for c in body.channels],
        "evaluate_every_seconds": duration_seconds(every),
        "cooldown_seconds": 0 if body.cooldown == "0s" else duration_seconds(body.cooldown),
        "muted": body.muted,
    }


# -- report schedules ------------------------------------------------------------------------

ScheduleRange = Literal[
    "yesterday",
    "last_week",
    "last_month",
    "last_quarter",
    "month_to_date",
    "week_to_date",
    "last_7_days",
    "last_30_days",
]


class ScheduleBody(BaseModel):
    """POST /api/v1/reports/schedules."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, pattern=NAME)
    report_type: str = Field(description="any report type of POST /api/v1/reports/generate")
    format: Literal["csv", "xlsx", "pdf", "json"]
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="the report's parameters, with `range` (relative to each run) instead of start and end",
    )
    cron: str = Field(description="five-field cron expression, e.g. `0 6 1 * *` (06:00 on the 1st)")
    tz: str = Field("UTC", description="the time zone the cron expression is read in")
    recipients: list[Channel] = Field(min_length=1, max_length=50)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5 or not croniter.is_valid(v):
            raise ValueError("must be a valid five-field cron expression (minute hour day month weekday)")
        try:
            croniter(v, datetime.now(UTC)).get_next(datetime)
        except CroniterBadDateError:
            raise ValueError("names no date that exists (e.g. 30 February)") from None
        return v

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        zone_named(v)
        return v


def cron_times(cron: str, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """The times the cron expression names after `after`, read in `tz` (croniter), as UTC, the
    way cron itself treats summer time: a schedule whose hour field is `*` or a step (hourly or
    more often) runs by elapsed time, in both passes of a repeated hour; one with fixed hours
    runs a local time of the repeated hour once, at its first occurrence (croniter gives both)."""
    itr = croniter(cron, after.astimezone(tz))
    hours = cron.split()[1]
    by_elapsed_time = hours == "*" or "/" in hours
    given: dict[datetime, datetime] = {}  # local wall time -> when it was given (the last few hours)
    while True:
        moment = itr.get_next(datetime)
        wall = moment.replace(tzinfo=None)
        utc = moment.astimezone(UTC)
        if not by_elapsed_time and wall in given:
            continue
        given = {w: at for w, at in given.items() if utc - at < timedelta(hours=3)}
        given[wall] = utc
        yield utc


def next_run(cron: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first time after `after` the cron expression names (see `cron_times`)."""
    return next(cron_times(cron, tz, after))
