"""How an analytics query runs: a typed query object, its ES body, the cache around it.

Every query is a small frozen dataclass holding its parameters, with
`async def run(ctx) -> <ResponseModel>`; the Elasticsearch request bodies it sends are
built by plain methods on it (`body()` and friends), so a reader sees in one place what
an endpoint asks Elasticsearch and how the answer is shaped. Routes call
`ctx.answer(endpoint, params, query)`, which adds the cache.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

import orjson
from elasticsearch import AsyncElasticsearch
from fastapi import Depends, Request
from pydantic import BaseModel, Field, ValidationError

from ..cache import ResponseCache
from ..config import Settings
from ..errors import UncomputableResult
from ..es.indices import IndexFamily, IndexNames
from .params import CommonParams, Period

log = logging.getLogger(__name__)

# Composite aggregations are paged with this many buckets a request.
COMPOSITE_PAGE = 5000


# The key of a series bucket, shared by every `series` item.
BucketKey = Annotated[str, Field(description="local bucket start: YYYY-MM-DD, or ISO datetime with offset for hours")]


class PeriodOut(BaseModel):
    start: str = Field(description="period start, local ISO 8601 datetime in `tz`")
    end: str = Field(description="period end (exclusive)")
    tz: str = Field(description="IANA time zone of the period and of the bucket keys (default DEFAULT_TIMEZONE)")
    interval: str = Field(description="bucket size of `series`: hour, day, week (Monday), month, quarter or year")

    @classmethod
    def of(cls, period: Period) -> PeriodOut:
        return cls(**period.describe())


class AnalyticsResponse(BaseModel):
    period: PeriodOut = Field(description="the half-open period [start, end) the numbers cover")
    cached: bool = Field(False, description="true when served from the response cache")


R = TypeVar("R", bound=AnalyticsResponse)


class Query(Protocol[R]):  # type: ignore[misc]
    """A query object: its parameters, the response model it returns, and `run`."""

    params: CommonParams
    response_model: type[R]

    async def run(self, ctx: QueryContext) -> R: ...


@dataclass
class QueryContext:
    es: AsyncElasticsearch
    names: IndexNames
    settings: Settings
    cache: ResponseCache | None = None

    def index(self, family: IndexFamily) -> str:
        return self.names.alias(family)

    async def search(self, family: IndexFamily, body: dict[str, Any]) -> dict[str, Any]:
        """A search that returns aggregations only (size 0 unless the body says otherwise)."""
        body = {"size": 0, "track_total_hits": True, **body}
        response = await self.es.search(index=self.index(family), ignore_unavailable=True, allow_no_indices=True,
                                        **body)
        return response.body

    async def composite(self, family: IndexFamily, query: dict[str, Any], sources: list[dict[str, Any]],
                        aggs: dict[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every bucket of a composite aggregation, page by page (no 10,000-bucket cap)."""
        after = None
        while True:
            composite: dict[str, Any] = {"size": COMPOSITE_PAGE, "sources": sources}
            if after is not None:
                composite["after"] = after
            agg: dict[str, Any] = {"composite": composite}
            if aggs:
                agg["aggs"] = aggs
            response = await self.search(family, {"query": query, "aggs": {"page": agg}, "track_total_hits": False})
            page = response.get("aggregations", {}).get("page", {})
            for bucket in page.get("buckets", []):
                yield bucket
            after = page.get("after_key")
            if not page.get("buckets") or after is None:
                return

    async def answer(self, endpoint: str, query: Query[R], extra: dict[str, Any] | None = None) -> R:
        """Run `query`, or serve it from the cache (keyed by endpoint, parameters, store, data version).

        Only an answer that holds finite numbers and passes its own response model is returned
        or cached; a cached entry that fails either is a miss (see `checked_payload`).
        """
        params = query.params
        key = None
        if self.cache is not None:
            key = await self.cache.key(endpoint, {**params.cache_parts(), **(extra or {})}, params.store_id)
        if key is not None:
            hit = await self.cache.get(key)  # type: ignore[union-attr]
            cached = cached_answer(query.response_model, hit) if hit is not None else None
            if cached is not None:
                cached.cached = True
                return cached
            if hit is not None:
                log.warning("cached answer of %s fails its model; computing it again", endpoint)
        result = await run_checked(endpoint, query, self)
        payload = checked_payload(endpoint, query.response_model, result)
        if key is not None:
            await self.cache.set(key, payload)  # type: ignore[union-attr]
        return result


async def run_checked(endpoint: str, query: Query[R], ctx: QueryContext) -> R:
    """`query.run`, with a number the data cannot give (a non-finite sum turned into an int, a
    null where the model wants a number) reported as UncomputableResult, not as a 500."""
    try:
        return await query.run(ctx)
    except ValidationError as exc:
        log.warning("%s: the answer fails its model: %s", endpoint, exc)
        raise UncomputableResult(endpoint, _error_fields(exc)) from None
    except OverflowError as exc:  # int(inf)
        log.warning("%s: %s", endpoint, exc)
        raise UncomputableResult(endpoint, ["a count or amount (overflow)"]) from None
    except ValueError as exc:
        if "NaN" not in str(exc):  # int(nan); any other ValueError is a bug
            raise
        log.warning("%s: %s", endpoint, exc)
        raise UncomputableResult(endpoint, ["a count or amount (NaN)"]) from None


def checked_payload(endpoint: str, model: type[BaseModel], result: BaseModel) -> bytes:
    """The cacheable JSON of `result`: refused (UncomputableResult) when a number is NaN or
    infinite, or when the JSON does not validate against `model` (e.g. a null in a number)."""
    bad = non_finite_fields(result)
    if bad:
        raise UncomputableResult(endpoint, bad)
    payload = orjson.dumps(result.model_dump(mode="json"))
    try:
        model.model_validate_json(payload)
    except ValidationError as exc:
        raise UncomputableResult(endpoint, _error_fields(exc)) from None
    return payload


def cached_answer(model: type[R], payload: bytes) -> R | None:
    """A cached entry as its model, or None when it fails to validate or holds a non-finite number."""
    try:
        answer = model.model_validate_json(payload)
    except ValidationError:
        return None
    return None if non_finite_fields(answer) else answer


def non_finite_fields(value: Any, path: str = "") -> list[str]:
    """Dotted paths of every NaN or infinite float in a model (nested models, lists, dicts)."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path or "value"]
    if isinstance(value, BaseModel):
        items: Any = ((name, getattr(value, name)) for name in type(value).model_fields)
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    out: list[str] = []
    for name, child in items:
        out += non_finite_fields(child, f"{path}.{name}" if path else str(name))
    return out


def _error_fields(exc: ValidationError) -> list[str]:
    return [".".join(str(part) for part in err["loc"]) or err["type"] for err in exc.errors()]


@dataclass(frozen=True)
class Composite:
    """One paged composite aggregation kept as data, so its ES body can be read and tested:
    the index family, the query, the sources and the sub-aggregations."""

    family: IndexFamily
    query: dict[str, Any]
    sources: list[dict[str, Any]]
    aggs: dict[str, Any] | None = None

    def buckets(self, ctx: QueryContext) -> AsyncIterator[dict[str, Any]]:
        return ctx.composite(self.family, self.query, self.sources, self.aggs)


def terms_source(name: str, field: str, *, missing: bool = False) -> dict[str, Any]:
    """A composite `terms` source; `missing` keeps documents without the field as a null key."""
    terms: dict[str, Any] = {"field": field}
    if missing:
        terms["missing_bucket"] = True
    return {name: {"terms": terms}}


def query_context(request: Request) -> QueryContext:
    state = request.app.state
    return QueryContext(es=state.es, names=state.names, settings=state.settings, cache=state.cache)


Ctx = Annotated[QueryContext, Depends(query_context)]


def money(value: float | None) -> float:
    """Money is a number rounded to 2 decimals (API.md)."""
    return round(float(value or 0.0), 2)


def ratio(part: float | None, whole: float | None) -> float | None:
    """A fraction 0..1 (None when the whole is 0), rounded to 4 decimals."""
    if not whole:
        return None
    return round(float(part or 0.0) / float(whole), 4)


def agg_value(aggs: dict[str, Any], name: str) -> float:
    value = aggs.get(name, {}).get("value")
    return float(value) if value is not None else 0.0
