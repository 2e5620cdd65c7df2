"""Every body Elasticsearch receives for a store-bound key carries that key's store filter.

The snapshot tests (test_query_snapshots.py) check the bodies each query object builds;
this one records what is actually sent, dependent requests and paging included, while
every analytics, search and export endpoint answers a key bound to store s1, with two
stores' data in the indices (so ranked keys, names and id look-ups all have work to do).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.conftest import generate_records, headers, ingest_records

STORE = "s1"
PERIOD = {"start": "2026-08-01", "end": "2026-11-16", "tz": "America/Sao_Paulo"}


@pytest.fixture(scope="module")
def data(client):
    ingest_records(client, generate_records(seed=31, orders=300, activity=1500, days=120, end=date(2026, 11, 15)))
    ingest_records(
        client, generate_records(seed=32, orders=200, activity=1000, days=120, end=date(2026, 11, 15), store_id=STORE)
    )


@pytest.fixture
def sent(client, monkeypatch) -> list[dict[str, Any]]:
    """The keyword arguments of every search the app sends to Elasticsearch."""
    es = client.app.state.es
    calls: list[dict[str, Any]] = []
    original = es.search

    async def recording(*args, **kwargs):
        calls.append(kwargs)
        return await original(*args, **kwargs)

    monkeypatch.setattr(es, "search", recording)
    return calls


def requires(query: Any, field: str, value: str) -> bool:
    """True when `query` requires `field == value` (a term in bool filter/must, at any depth)."""
    if not isinstance(query, dict):
        return False
    term = query.get("term", {}).get(field)
    if term == value or term == {"value": value}:
        return True
    boolean = query.get("bool", {})
    return any(requires(clause, field, value) for key in ("filter", "must") for clause in boolean.get(key, []))


def analytics_paths(client) -> list[str]:
    spec = client.get("/openapi.json").json()
    return sorted(p for p, ops in spec["paths"].items() if p.startswith("/api/v1/analytics/") and "get" in ops)


# Parameters that send more requests than the defaults (comparisons, other bases and types).
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "/api/v1/analytics/users/retention": [{"basis": "orders"}, {"basis": "activity", "granularity": "week"}],
    "/api/v1/analytics/users/segments": [{"type": t} for t in ("rfm", "new_returning", "device", "source", "country")]
    + [{"type": "rfm", "include_customers": "true"}],
    "/api/v1/analytics/search": [{"query": "a", "index": i} for i in ("orders", "events", "activity", "products")],
    "/api/v1/analytics/products/inventory": [{}, {"low_stock": "true"}],
}


def test_every_search_of_a_store_bound_key_filters_its_store(client, data, sent):
    answered = []
    for path in analytics_paths(client):
        for variant in VARIANTS.get(path, [{}]):
            params = {**PERIOD, "compare": "previous_period", **variant}
            r = client.get(path, params=params, headers=headers("read_s1"))
            assert r.status_code == 200, (path, variant, r.text)
            answered.append(path)
    assert len(set(answered)) >= 20
    assert len(sent) > 2 * len(answered)  # dependent requests and pages were recorded too
    unfiltered = [call for call in sent if not requires(call.get("query"), "store_id", STORE)]
    assert not unfiltered, unfiltered[:3]


def test_exports_of_a_store_bound_key_filter_its_store(client, data, sent):
    for kind in ("sales", "users", "products", "orders"):
        r = client.get(f"/api/v1/export/{kind}", params={**PERIOD, "format": "ndjson"}, headers=headers("read_s1"))
        assert r.status_code == 200, (kind, r.text)
        assert r.text  # rows of s1 were exported
    assert sent
    assert all(requires(call.get("query"), "store_id", STORE) for call in sent), sent[:3]
