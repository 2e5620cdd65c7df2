"""How an analytics query runs: a typed query object, the requests it sends, the cache.

A query object is a frozen dataclass (`AnalyticsQuery`) holding its parameters. It says
what it sends as data (`requests()`: `Search` and `Composite` values of
analytics/requests.py, sent concurrently by `QueryContext.fetch`; later requests that
need an earlier answer come from its `*_request` methods) and shapes the answers into
its response model in `run`. Routes, reports and exports call `ctx.answer(query)`,
which adds the response cache keyed by the query's own type and fields.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import orjson
from elasticsearch import AsyncElasticsearch, NotFoundError
from fastapi import Depends
from pydantic import BaseModel, ValidationError

from ..cache import Entry, Lookup, ResponseCache
from ..config import Settings
from ..dependencies import CacheDep, EsDep, NamesDep, SettingsDep
from ..errors import UncomputableResult
from ..es.indices import CUSTOMERS, IndexFamily, IndexNames
from ..ingest.customers import customer_documents_built
from ..metrics import CACHE_LOOKUPS
from .fields import AnalyticsResponse
from .params import CommonParams
from .requests import COMPOSITE_PAGE, Composite, Partitioned, Search, partitions_for

log = logging.getLogger(__name__)

# Partitions of a Partitioned request in flight at a time: measured on this 2-core node,
# 4 (its search thread pool) keeps Elasticsearch busy while the client parses answers.
PARTITION_CONCURRENCY = 4

__all__ = ["COMPOSITE_PAGE", "AnalyticsQuery", "Ctx", "QueryContext"]

R = TypeVar("R", bound=AnalyticsResponse)
T = TypeVar("T")
# What reads a streamed composite's buckets into an answer (QueryContext.fetch_reading).
Reader = Callable[[AsyncIterator[dict[str, Any]]], Awaitable[Any]]


class AnalyticsQuery(Generic[R]):
    """The base of every query object: a frozen dataclass whose first field is `params`.

    `name` is the endpoint the query answers (in error messages and logs); `response_model`
    is the type argument of `AnalyticsQuery[...]` in the class statement. The cache key is
    the class and every field (`cache_identity`), so two queries share a cached answer
    exactly when they are equal.
    """

    name: ClassVar[str]
    response_model: ClassVar[type[AnalyticsResponse]]
    params: CommonParams

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is AnalyticsQuery:
                (cls.response_model,) = typing.get_args(base)

    def requests(self) -> Mapping[str, Search | Composite | Partitioned]:
        """The requests sent first, none depending on another's answer (sent concurrently)."""
        raise NotImplementedError

    async def run(self, ctx: QueryContext) -> R:
        raise NotImplementedError

    def cache_identity(self) -> dict[str, Any]:
        own = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.name != "params"
        }
        return {"class": type(self).__name__, "params": self.params.cache_parts(), "fields": own}


# Customer indices known to be built (ingest/customers.py): a build is never undone.
_CUSTOMER_DOCUMENTS_BUILT: set[str] = set()


@dataclass
class QueryContext:
    es: AsyncElasticsearch
    names: IndexNames
    settings: Settings
    cache: ResponseCache | None = None
    # How old a cached answer computed before newer data arrived may be and still be served
    # (CACHE_MAX_STALENESS_SECONDS for the API; reports use 0: always the current data).
    max_staleness: float = 0

    def index(self, family: IndexFamily) -> str:
        return self.names.alias(family)

    async def send(self, request: Search) -> dict[str, Any]:
        """The response body of one search."""
        return await self._search(request.family, request.sent_body())

    async def _search(self, family: IndexFamily, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.es.search(
            index=self.index(family), ignore_unavailable=True, allow_no_indices=True, **body
        )
        return response.body

    def stream(self, request: Composite) -> AsyncIterator[dict[str, Any]]:
        """Every bucket of a composite request, page by page, without holding them all."""
        return self.composite(request.family, request.query, request.sources, request.aggs)

    async def composite(
        self,
        family: IndexFamily,
        query: dict[str, Any],
        sources: list[dict[str, Any]],
        aggs: dict[str, Any] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The pager behind `stream`: `Composite.page_body` with the previous page's after_key."""
        request = Composite(family, query, sources, aggs)
        after = None
        while True:
            response = await self._search(family, request.page_body(after, COMPOSITE_PAGE))
            page = response.get("aggregations", {}).get("page", {})
            for bucket in page.get("buckets", []):
                yield bucket
            after = page.get("after_key")
            if not page.get("buckets") or after is None:
                return

    async def partitioned(self, request: Partitioned, upper_bound: int) -> list[dict[str, Any]]:
        """Every bucket of a partitioned terms request, for at most `upper_bound` distinct values
        (e.g. the matching documents), PARTITION_CONCURRENCY partitions in flight at a time."""
        partitions = partitions_for(upper_bound)
        slots = asyncio.Semaphore(PARTITION_CONCURRENCY)

        async def read(partition: int) -> dict[str, Any]:
            async with slots:
                response = await self._search(request.family, request.body(partition, partitions))
            return response.get("aggregations", {}).get("values", {"buckets": []})

        while True:
            answers = await all_or_none(*(read(i) for i in range(partitions)))
            if not any(a.get("sum_other_doc_count") for a in answers):
                return [b for a in answers for b in a["buckets"]]
            log.warning("a partition of %s had values left over; reading it in %d", request.field, 2 * partitions)
            partitions *= 2

    async def buckets(self, request: Composite) -> list[dict[str, Any]]:
        return [bucket async for bucket in self.stream(request)]

    async def stream_and_fetch(
        self,
        requests: Mapping[str, Search | Composite],
        name: str,
        read: Callable[[AsyncIterator[dict[str, Any]]], Awaitable[T]],
    ) -> tuple[T, dict[str, Any]]:
        """`read` the buckets of the composite request `requests[name]` as they stream (there may
        be too many to hold) while the other requests are fetched; both answers."""
        answers = await self.fetch_reading(requests, {name: read})
        return answers.pop(name), answers

    async def fetch_reading(
        self,
        requests: Mapping[str, Search | Composite],
        readers: Mapping[str, Reader],
    ) -> dict[str, Any]:
        """The answers of `requests`, all sent concurrently: a Composite named in `readers` is
        streamed into its reader (its buckets are never all held) and answered by what the reader
        returns; the others are answered as by `fetch`."""
        streamed = {name: r for name, r in requests.items() if name in readers}

        async def read(name: str, request: Search | Composite) -> Any:
            assert isinstance(request, Composite), name
            return await readers[name](self.stream(request))

        fetched, *read_answers = await all_or_none(
            self.fetch({name: r for name, r in requests.items() if name not in readers}),
            *(read(name, r) for name, r in streamed.items()),
        )
        return {**fetched, **dict(zip(streamed, read_answers, strict=True))}

    async def fetch(self, requests: Mapping[str, Search | Composite]) -> dict[str, Any]:
        """Send independent requests concurrently: each name gets a Search's response body, or
        the list of every bucket of a Composite. The first failure is raised as it is (an
        unavailable node is a 503, as for one request) and the other requests are cancelled."""
        names = list(requests)
        answers = await all_or_none(
            *(self.send(r) if isinstance(r, Search) else self.buckets(r) for r in requests.values())
        )
        return dict(zip(names, answers, strict=True))

    async def customer_documents_ready(self) -> bool:
        """True once the customer documents are built from the stored orders (asked of the node
        until then, then remembered for the index)."""
        alias = self.index(CUSTOMERS)
        if alias in _CUSTOMER_DOCUMENTS_BUILT:
            return True
        try:
            built = await customer_documents_built(self.es, self.names)
        except NotFoundError:
            return False
        if built:
            _CUSTOMER_DOCUMENTS_BUILT.add(alias)
        return built

    async def answer(self, query: AnalyticsQuery[R]) -> R:
        """Run `query`, or serve it from the cache (keyed by its type and fields and the store).

        A cached answer of the current data version is served as it is; one computed before
        newer data arrived only while it is younger than `max_staleness` seconds (marked
        `stale`, and a fresh one is computed in the background). Otherwise the answer is
        computed now, once for every concurrent request of this process asking for it. Only
        an answer that holds finite numbers and passes its own response model is returned or
        cached; a cached entry that fails either is a miss (see `checked_payload`).
        """
        cache = self.cache
        found = None
        if cache is not None:
            found = await cache.lookup(query.name, query.cache_identity(), query.params.store_id)
        if cache is None or found is None:
            return (await self.computed(query))[0]
        if found.entry is not None and found.servable(self.max_staleness, time.time()):
            cached = cached_answer(query.response_model, found.entry.payload)
            if cached is not None:
                cached.cached, cached.stale = True, found.stale
                CACHE_LOOKUPS.labels(result="stale" if found.stale else "hit").inc()
                if found.stale:
                    cache.refresh_in_background(found.key, lambda: self.computed_into(cache, found, query))
                return cached  # type: ignore[return-value]
            log.warning("cached answer of %s fails its model; computing it again", query.name)
        CACHE_LOOKUPS.labels(result="miss").inc()
        return await cache.once(found.key, lambda: self.computed_into(cache, found, query))

    async def computed(self, query: AnalyticsQuery[R]) -> tuple[R, bytes, float]:
        """The answer, its checked JSON, and `as_of`: the time its computation started."""
        as_of = time.time()
        result = await run_checked(query, self)
        result.as_of = datetime.fromtimestamp(as_of, UTC).isoformat(timespec="milliseconds")
        return result, checked_payload(query.name, query.response_model, result), as_of

    async def computed_into(self, cache: ResponseCache, found: Lookup, query: AnalyticsQuery[R]) -> R:
        """The answer, cached with the data version read before it was computed (so data that
        arrives meanwhile makes it stale, not lost)."""
        result, payload, as_of = await self.computed(query)
        await cache.store(found.key, Entry(found.version, as_of, payload))
        return result


async def all_or_none(*awaitables: Awaitable[Any]) -> list[Any]:
    """Every awaitable's result, run concurrently; on the first failure the others are
    cancelled (nobody would read them) and that failure is raised as it is."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


async def run_checked(query: AnalyticsQuery[R], ctx: QueryContext) -> R:
    """`query.run`, with a number the data cannot give (a non-finite sum turned into an int, a
    null where the model wants a number) reported as UncomputableResult, not as a 500."""
    endpoint = query.name
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


def query_context(es: EsDep, names: NamesDep, settings: SettingsDep, cache: CacheDep) -> QueryContext:
    return QueryContext(
        es=es, names=names, settings=settings, cache=cache, max_staleness=settings.cache_max_staleness_seconds
    )


Ctx = Annotated[QueryContext, Depends(query_context)]
