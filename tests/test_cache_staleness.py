"""The freshness budget (CACHE_MAX_STALENESS_SECONDS): while data flows in, a cached answer
younger than the budget is served marked stale and refreshed in the background, once per
answer at a time; concurrent requests for an answer that must be computed share one
computation. The end-to-end tests run the app against the real node."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from analytics_service.analytics.fields import AnalyticsResponse, PeriodOut
from analytics_service.analytics.params import CommonParams
from analytics_service.analytics.runner import AnalyticsQuery, QueryContext
from analytics_service.app import create_app
from analytics_service.cache import MemoryBackend, ResponseCache
from analytics_service.config import Settings
from tests.conftest import analytics_get, common_params, make_settings, numbers_of, post_records

PERIOD = {"start": "2026-10-01", "end": "2026-11-01"}


def order(n: int) -> dict:
    return {
        "order_id": f"stale-{n}",
        "status": "paid",
        "created_at": "2026-10-15T12:00:00Z",
        "customer": {"customer_id": f"stale-c{n}"},
        "items": [{"product_id": "stale-p", "quantity": 1, "unit_price": 10.0}],
    }


@pytest.fixture(scope="module")
def budget_client(es_connection, prefix, tmp_path_factory):
    settings = make_settings(es_connection, prefix, tmp_path_factory.mktemp("stale"), cache_max_staleness_seconds=30)
    with TestClient(create_app(settings)) as client:
        assert post_records(client, "orders", [order(0)]).json()["indexed"] == 1
        yield client


def test_within_the_budget_the_previous_answer_is_served_stale_then_refreshed(budget_client):
    first = analytics_get(budget_client, "sales/orders", **PERIOD)
    assert first["cached"] is False and first["stale"] is False and first["as_of"]
    assert post_records(budget_client, "orders", [order(1)]).json()["indexed"] == 1
    served = analytics_get(budget_client, "sales/orders", **PERIOD)
    assert served["cached"] is True and served["stale"] is True
    assert numbers_of(served) == numbers_of(first) and served["as_of"] == first["as_of"]
    # the background refresh stores the answer of the new data
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        fresh = analytics_get(budget_client, "sales/orders", **PERIOD)
        if not fresh["stale"]:
            break
        time.sleep(0.1)
    assert fresh["cached"] is True and fresh["stale"] is False
    assert fresh["orders"] == first["orders"] + 1 and fresh["as_of"] > first["as_of"]


def test_without_a_budget_an_answer_older_than_the_data_is_never_served(client):
    """The default test settings have CACHE_MAX_STALENESS_SECONDS=0: the behaviour before the budget."""
    assert post_records(client, "orders", [order(10)]).json()["indexed"] == 1
    first = analytics_get(client, "sales/orders", **PERIOD)
    assert post_records(client, "orders", [order(11)]).json()["indexed"] == 1
    again = analytics_get(client, "sales/orders", **PERIOD)
    assert again["cached"] is False and again["stale"] is False and again["orders"] == first["orders"] + 1


# -- the cache logic alone: a query that counts its runs, no Elasticsearch ----------------------------


class CountResponse(AnalyticsResponse):
    runs: int


@dataclass(frozen=True)
class CountingQuery(AnalyticsQuery[CountResponse]):
    """Answers how many times any CountingQuery ran; each run takes a while."""

    params: CommonParams
    name: ClassVar = "test/counting"
    RUNS: ClassVar[list[int]] = [0]

    async def run(self, ctx: QueryContext) -> CountResponse:
        await asyncio.sleep(0.05)
        self.RUNS[0] += 1
        return CountResponse(period=PeriodOut.of(self.params.period), runs=self.RUNS[0])


def counting_query() -> CountingQuery:
    CountingQuery.RUNS[0] = 0
    return CountingQuery(common_params(PERIOD["start"], PERIOD["end"], tz="UTC"))


def context(cache: ResponseCache, max_staleness: float) -> QueryContext:
    return QueryContext(es=None, names=None, settings=Settings(), cache=cache, max_staleness=max_staleness)  # type: ignore[arg-type]


def test_concurrent_requests_for_a_missing_answer_share_one_computation():
    async def scenario():
        cache = ResponseCache(MemoryBackend(), namespace="t")
        ctx, query = context(cache, 5), counting_query()
        answers = await asyncio.gather(*(ctx.answer(query) for _ in range(20)))
        assert CountingQuery.RUNS[0] == 1 and {a.runs for a in answers} == {1}
        assert (await ctx.answer(query)).cached is True

    asyncio.run(scenario())


def test_a_stale_answer_is_refreshed_once_however_many_read_it():
    async def scenario():
        cache = ResponseCache(MemoryBackend(), namespace="t")
        ctx, query = context(cache, 5), counting_query()
        await ctx.answer(query)
        await cache.bump(["s1"])
        served = await asyncio.gather(*(ctx.answer(query) for _ in range(50)))
        assert all(a.stale and a.cached and a.runs == 1 for a in served)
        await asyncio.sleep(0.3)  # the one background refresh
        assert CountingQuery.RUNS[0] == 2
        fresh = await ctx.answer(query)
        assert fresh.cached is True and fresh.stale is False and fresh.runs == 2

    asyncio.run(scenario())


def test_a_stale_answer_older_than_the_budget_is_computed_again_before_answering():
    async def scenario():
        cache = ResponseCache(MemoryBackend(), namespace="t")
        ctx, query = context(cache, 0.1), counting_query()
        await ctx.answer(query)
        await cache.bump(["s1"])
        await asyncio.sleep(0.2)
        again = await ctx.answer(query)
        assert again.cached is False and again.stale is False and again.runs == 2

    asyncio.run(scenario())
