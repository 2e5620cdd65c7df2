"""Report parameters: a report request's `parameters` -> (CommonParams, the type's options).

One pydantic model per report type: the common analytics parameters, which mean what
they mean on the endpoints (docs/metrics.md, "Common parameters and time"), plus the
type's options (docs/reports.md, "Report types"). `parse_common` turns the common ones
into CommonParams; without start and end the period is the type's natural one
(periods.natural_dates). Unknown keys and bad values are a 422 naming `parameters.<key>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictStr, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from ..analytics import lifecycle, products, users
from ..analytics.params import MAX_LIMIT, CommonParams, Compare, Interval, parse_common
from ..auth import Principal
from ..errors import ApiError
from .model import REPORT_TYPES
from .periods import Natural, natural_dates

COMMON_KEYS = ("start", "end", "tz", "interval", "store_id", "channel", "compare", "limit")
# Full per-product listings (product_performance, inventory): up to this many rows.
DEFAULT_ROWS, MAX_ROWS = 1000, 100_000
# Customer-behaviour cohorts are weekly up to this many days, monthly beyond.
WEEKLY_COHORTS_MAX_DAYS = 92

GeoLevel = Literal["country", "region", "state", "city"]


# -- errors -------------------------------------------------------------------------------


def param_error(key: str, message: str) -> ApiError:
    """A 422 naming `parameters.<key>` (the request body's field)."""
    return ApiError(422, f"parameters.{key}: {message}", details=[{"field": f"parameters.{key}", "message": message}])


def as_parameter_error(error: ApiError) -> ApiError:
    """parse_common's `query.<x>` 422 as `parameters.<x>`; other errors (403 store) unchanged."""
    if error.status != 422:
        return error
    for detail in error.details:
        if isinstance(detail, dict) and str(detail.get("field", "")).startswith("query."):
            key = detail["field"].removeprefix("query.")
            return param_error(key, str(detail.get("message", error.message)))
    return error


def _refused(message: str) -> PydanticCustomError:
    """A validator's refusal; its message is the 422's as it stands."""
    return PydanticCustomError("parameter", "{message}", {"message": message})


# -- field types ----------------------------------------------------------------------------


def _digits(value: Any) -> Any:
    """A string of digits as its integer, as in a query string."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def _steps(value: Any) -> str:
    """Funnel steps as `a,b,c` (or a list): validated and normalised by the conversion route's own parser."""
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise _refused("a comma-separated list (or a JSON list) of activity types")
    try:
        return ",".join(lifecycle.parse_steps(value))
    except ApiError as exc:  # parse_steps' 422 names `steps`; its message is ours
        raise _refused(str(exc.details[0]["message"]) if exc.details else exc.message) from None


Limit = Annotated[int, Strict(), Field(ge=1, le=MAX_LIMIT), BeforeValidator(_digits)]
Rows = Annotated[int, Strict(), Field(ge=1, le=MAX_ROWS), BeforeValidator(_digits)]
MinReviews = Annotated[int, Strict(), Field(ge=1, le=100_000), BeforeValidator(_digits)]
Steps = Annotated[str, BeforeValidator(_steps)]


# -- the models -----------------------------------------------------------------------------


class ReportParameters(BaseModel):
    """The common analytics parameters; each report type's subclass adds its options and says
    its natural period and its default interval and compare. A null value is the default."""

    model_config = ConfigDict(extra="forbid")

    natural: ClassVar[Natural] = "last_30_days"
    default_interval: ClassVar[Interval] = "day"
    default_compare: ClassVar[Compare] = "none"
    activity_only: ClassVar[bool] = False  # numbers from activity records, which carry no sales channel

    start: StrictStr | None = None
    end: StrictStr | None = None
    tz: StrictStr | None = None
    interval: StrictStr | None = None
    store_id: StrictStr | None = None
    channel: StrictStr | None = None
    compare: StrictStr | None = None
    limit: Limit | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """A known key given as null takes its default; an unknown one stays, to be refused."""
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None or k not in cls.model_fields}
        return data

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(name for name in cls.model_fields if name not in COMMON_KEYS)

    def options(self, params: CommonParams) -> dict[str, Any]:
        """The type's options, each as given or at its default."""
        return {name: getattr(self, name) for name in self.option_names()}


class DailySalesParameters(ReportParameters):
    natural: ClassVar[Natural] = "yesterday"
    default_interval: ClassVar[Interval] = "hour"
    default_compare: ClassVar[Compare] = "previous_period"


class WeeklyPerformanceParameters(ReportParameters):
    natural: ClassVar[Natural] = "last_week"
    default_compare: ClassVar[Compare] = "previous_period"

    geo_level: GeoLevel = Field("country", description="level of the geographic breakdown")


class MonthlyBusinessReviewParameters(ReportParameters):
    natural: ClassVar[Natural] = "last_month"
    default_compare: ClassVar[Compare] = "previous_period"

    geo_level: GeoLevel = Field("country", description="level of the geographic breakdown")


class QuarterlyExecutiveSummaryParameters(ReportParameters):
    natural: ClassVar[Natural] = "last_quarter"
    default_interval: ClassVar[Interval] = "week"
    default_compare: ClassVar[Compare] = "previous_period"


class ProductPerformanceParameters(ReportParameters):
    rows: Rows = Field(DEFAULT_ROWS, description="products listed in the full per-product tables")
    sort: products.PerformanceSort = Field("revenue", description="ranking of the performance table")
    min_reviews: MinReviews = Field(3, description="minimum reviews of a best-rated product")


class CustomerBehaviorParameters(ReportParameters):
    activity_only: ClassVar[bool] = True

    steps: Steps = Field(",".join(lifecycle.DEFAULT_STEPS), description="funnel steps, comma-separated activity types")
    retention_basis: lifecycle.Basis = Field(
        "orders", description="retention of customers by sales, or of actors by activity"
    )
    granularity: lifecycle.Granularity | None = Field(
        None, description=f"retention cohorts; default: week up to {WEEKLY_COHORTS_MAX_DAYS} days, else month"
    )

    def cohorts(self, params: CommonParams) -> lifecycle.Granularity:
        """The retention cohorts' granularity: as given, else by the period's length."""
        if self.granularity is not None:
            return self.granularity
        return "week" if params.period.days <= WEEKLY_COHORTS_MAX_DAYS else "month"

    def options(self, params: CommonParams) -> dict[str, Any]:
        return {**super().options(params), "granularity": self.cohorts(params)}


class InventoryParameters(ReportParameters):
    rows: Rows = Field(DEFAULT_ROWS, description="products listed in the full per-product tables")
    sort: products.InventorySort = Field("revenue", description="ranking of the inventory table")


class MarketingCampaignParameters(ReportParameters):
    natural: ClassVar[Natural] = "last_month"


PARAMETERS: dict[str, type[ReportParameters]] = {
    "daily_sales": DailySalesParameters,
    "weekly_performance": WeeklyPerformanceParameters,
    "monthly_business_review": MonthlyBusinessReviewParameters,
    "quarterly_executive_summary": QuarterlyExecutiveSummaryParameters,
    "product_performance": ProductPerformanceParameters,
    "customer_behavior": CustomerBehaviorParameters,
    "inventory": InventoryParameters,
    "marketing_campaign": MarketingCampaignParameters,
}
assert set(PARAMETERS) == set(REPORT_TYPES)

P = TypeVar("P", bound=ReportParameters)


# -- validation errors as 422s ----------------------------------------------------------------


@cache
def _rules(model: type[ReportParameters]) -> dict[str, str]:
    """Each field's rule in words, from its JSON schema: the message of a 422 on it."""
    rules = {}
    for name, schema in model.model_json_schema()["properties"].items():
        kind = next(s for s in schema.get("anyOf", [schema]) if s.get("type") != "null")
        if "enum" in kind:
            rules[name] = f"must be one of {', '.join(kind['enum'])}"
        elif kind.get("type") == "integer":
            rules[name] = f"must be an integer between {kind['minimum']} and {kind['maximum']}"
        else:
            rules[name] = "must be a string"
    return rules


def _first(model: type[ReportParameters], exc: ValidationError, given: Mapping[str, Any]) -> ErrorDetails:
    """The error reported: an unknown key first (in the request's order), else the first field in
    the model's order (the common parameters, then the options)."""
    keys, fields = list(given), list(model.model_fields)

    def rank(error: ErrorDetails) -> tuple[int, int]:
        key = error["loc"][0] if error["loc"] else ""
        if error["type"] == "extra_forbidden":
            return 0, keys.index(key) if key in keys else 0
        return 1, fields.index(key) if key in fields else len(fields)

    return min(exc.errors(), key=rank)


def _api_error(model: type[ReportParameters], error: ErrorDetails, report_type: str) -> ApiError:
    key = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        return param_error(key, f"unknown parameter for {report_type}; known: {', '.join(model.model_fields)}")
    if error["type"] == "parameter":
        return param_error(key, error["msg"])
    return param_error(key, _rules(model).get(key, error["msg"]))


def chosen_options(model: type[P], report_type: str, options: Mapping[str, Any]) -> P:
    """A type's options as its model: the given ones validated (422 naming the key), the others at their default."""
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        raise _api_error(model, _first(model, exc, options), report_type) from None


# -- common parameters ---------------------------------------------------------------------------


def _parse(
    given: ReportParameters, principal: Principal, default_tz: str, now: datetime, start: str | None, end: str | None
) -> CommonParams:
    try:
        return parse_common(
            start=start,
            end=end,
            tz=given.tz,
            interval=given.interval,
            store_id=given.store_id,
            channel=given.channel,
            compare=given.compare or given.default_compare,
            limit=given.limit,
            principal=principal,
            default_tz=default_tz,
            default_interval=given.default_interval,
            now=now,
        )
    except ApiError as exc:
        raise as_parameter_error(exc) from None


def _check_report(given: ReportParameters, params: CommonParams) -> None:
    """What only shows when a query runs, checked up front: the series' bucket count, and a
    channel on a report built from activity records."""
    try:
        params.period.date_histogram("created_at")  # raises when there would be too many buckets
        if given.activity_only:
            users.check_activity_params(params)
    except ApiError as exc:
        raise as_parameter_error(exc) from None


def _common(given: ReportParameters, principal: Principal, default_tz: str, now: datetime) -> CommonParams:
    """The CommonParams of the given common parameters; no start and end: the type's natural period."""
    params = _parse(given, principal, default_tz, now, given.start, given.end)
    if given.start is None and given.end is None:
        dates = natural_dates(given.natural, now.astimezone(params.period.tz).date())
        if dates is not None:
            params = _parse(given, principal, default_tz, now, dates[0].isoformat(), dates[1].isoformat())
    _check_report(given, params)
    return params


def report_params(
    parameters: Mapping[str, Any] | None,
    principal: Principal,
    *,
    report_type: str,
    default_tz: str = "UTC",
    now: datetime | None = None,
) -> tuple[CommonParams, dict[str, Any]]:
    """A report request's `parameters` -> (CommonParams, the type's options).

    The common analytics parameters (start, end, tz, interval, store_id, channel, compare,
    limit) mean what they mean on the endpoints; without start and end the period is the
    type's natural one. Unknown keys and bad values are a 422 naming `parameters.<key>`
    (unknown keys first, then the common parameters, then the options); a key bound to a
    store asking for another one is a 403.
    """
    if report_type not in PARAMETERS:
        raise ApiError(
            422,
            f"report_type: must be one of {', '.join(REPORT_TYPES)}",
            details=[{"field": "report_type", "message": f"must be one of {', '.join(REPORT_TYPES)}"}],
        )
    model = PARAMETERS[report_type]
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise ApiError(
            422, "parameters: must be an object", details=[{"field": "parameters", "message": "must be an object"}]
        )
    now = now or datetime.now(UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    try:
        given = model.model_validate(parameters)
    except ValidationError as exc:
        error = _first(model, exc, parameters)
        if error["type"] != "extra_forbidden" and error["loc"] and error["loc"][0] not in COMMON_KEYS:
            # Only options are wrong: what parse_common says of the common parameters comes first.
            common = model.model_validate({k: v for k, v in parameters.items() if k in COMMON_KEYS})
            _common(common, principal, default_tz, now)
        raise _api_error(model, error, report_type) from None
    params = _common(given, principal, default_tz, now)
    return params, given.options(params)


def resolved_parameters(params: CommonParams, options: Mapping[str, Any]) -> dict[str, Any]:
    """Explicit parameters (period resolved to instants) that `report_params` turns back into
    the same CommonParams whenever it runs: what a queued job should keep, so "yesterday"
    means the day before the request, not before the worker picks it up."""
    out: dict[str, Any] = {
        "start": params.period.start.isoformat(),
        "end": params.period.end.isoformat(),
        "tz": params.period.tz.key,
        "interval": params.period.interval,
        "compare": params.compare,
        "limit": params.limit,
    }
    if params.store_id is not None:
        out["store_id"] = params.store_id
    if params.channel is not None:
        out["channel"] = params.channel
    return {**out, **options}
