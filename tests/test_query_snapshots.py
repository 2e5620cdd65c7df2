"""Every Elasticsearch body the service generates, snapshotted (no Elasticsearch needed).

Each analytics query object is built for a fixed set of parameters (three time zones,
every interval, compare on and off, store-bound and all-stores keys) and its requests
(`requests()` and the dependent `*_request` methods, with sample inputs) are compared
with tests/__snapshots__/test_query_snapshots.ambr; so are the bulk actions ingest sends
for an order with lines. A changed body fails here until the snapshot is updated on
purpose: `pytest tests/test_query_snapshots.py --snapshot-update`, and the diff reviewed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from analytics_service.analytics import (
    breakdowns,
    financial,
    lifecycle,
    marketing,
    products,
    sales,
    search,
    shared,
    site_search,
    users,
)
from analytics_service.analytics.params import CommonParams
from analytics_service.analytics.requests import Composite, Partitioned, Search
from analytics_service.analytics.runner import AnalyticsQuery
from analytics_service.es.indices import ORDER_ITEMS, PRODUCTS, IndexNames
from analytics_service.ingest.customers import changes_of, customer_document
from analytics_service.ingest.documents import StoredOrder, line_actions, order_action, order_documents
from analytics_service.ingest.schemas import Order
from tests.conftest import common_params

STORE = "s1"


@dataclass(frozen=True)
class Case:
    tz: str
    interval: str
    compare: str
    store_id: str | None  # the key's store: None for a key bound to no store

    @property
    def id(self) -> str:
        return f"{self.tz.replace('/', '_')}-{self.interval}-{self.compare}-{self.store_id or 'all'}"


# Three zones (two with a DST change inside the period), every interval, compare on and
# off, store-bound and all-stores keys.
CASES = [
    Case("UTC", "day", "none", None),
    Case("America/New_York", "hour", "previous_period", STORE),
    Case("Europe/Berlin", "week", "previous_year", None),
    Case("UTC", "month", "previous_period", STORE),
    Case("America/New_York", "quarter", "none", None),
    Case("Europe/Berlin", "year", "none", STORE),
]


def common(case: Case) -> CommonParams:
    return common_params(
        "2026-10-01",
        "2026-11-03",
        store_id=case.store_id,
        tz=case.tz,
        interval=case.interval,
        compare=case.compare,
        limit=5,
        now=datetime(2026, 11, 20, tzinfo=UTC),
    )


Requests = dict[str, Search | Composite | Partitioned]


@dataclass(frozen=True)
class Spec:
    """How to build one query object, and the dependent requests it sends with sample inputs."""

    build: Callable[[CommonParams], AnalyticsQuery[Any]]
    follow_ups: Callable[[Any], Requests] = lambda query: {}


IDS = ["id-1", "id-2"]

QUERIES: dict[str, Spec] = {
    "sales.Dashboard": Spec(
        sales.Dashboard,
        lambda q: {
            "customers_from_orders": q.customers_request(q.params.period, from_orders=True),
            "earlier_customers": q.earlier_customers_request(q.params.period, IDS),
            "product_sums": sales.product_sums_request(q.params),
            "product_names": shared.sold_product_names_request(q.params, IDS),
            "orders_per_product": sales.orders_per_product_request(q.params, IDS),
        },
    ),
    "sales.RevenueTrends": Spec(sales.RevenueTrends),
    "sales.TopSelling[revenue]": Spec(
        lambda p: sales.TopSelling(p, "revenue"),
        lambda q: {
            "product_names": shared.sold_product_names_request(q.params, IDS),
            "orders_per_product": sales.orders_per_product_request(q.params, IDS),
        },
    ),
    "sales.TopSelling[units]": Spec(lambda p: sales.TopSelling(p, "units")),
    "sales.SalesRevenue": Spec(sales.SalesRevenue),
    "sales.SalesOrders": Spec(sales.SalesOrders),
    # the route takes day, week and month only: other cases are sent as weeks
    "sales.RollingAov[7d]": Spec(
        lambda p: sales.RollingAov(
            p if p.period.interval in sales.ROLLING_INTERVALS else p.with_period(replace(p.period, interval="week")), 7
        )
    ),
    "sales.SalesProducts[gross_profit]": Spec(
        lambda p: breakdowns.SalesProducts(p, "gross_profit"),
        lambda q: {"names": shared.sold_product_names_request(q.params, IDS)},
    ),
    "sales.SalesCategories[subcategory]": Spec(lambda p: breakdowns.SalesCategories(p, "subcategory", None)),
    "sales.SalesGeographic[city]": Spec(
        lambda p: breakdowns.SalesGeographic(p, "city", 3), lambda q: {"pairs": q.pairs_request()}
    ),
    "users.UserActivity": Spec(users.UserActivity),
    "users.Behavior": Spec(users.Behavior, lambda q: {"all_pages": q.all_pages_request()}),
    "users.Engagement": Spec(users.Engagement),
    "lifecycle.Retention[orders,month]": Spec(
        lambda p: lifecycle.Retention(p, "orders", "month"),
        lambda q: {"first_seen": q.first_seen_request(), "active": q.active_request(q.params.period.start)},
    ),
    "lifecycle.Retention[orders,month,revenue]": Spec(
        lambda p: lifecycle.Retention(p, "orders", "month", "revenue", True),
        lambda q: {"active": q.active_request(q.params.period.start)},
    ),
    "lifecycle.Retention[activity,week]": Spec(
        lambda p: lifecycle.Retention(p, "activity", "week"),
        lambda q: {"active": q.active_request(q.params.period.start)},
    ),
    "marketing.MarketingCampaigns": Spec(
        marketing.MarketingCampaigns, lambda q: {"earlier_customers": q.earlier_customers_request(IDS)}
    ),
    "lifecycle.Conversion": Spec(lambda p: lifecycle.Conversion(p, lifecycle.DEFAULT_STEPS)),
    "lifecycle.RfmSegments": Spec(
        lambda p: lifecycle.RfmSegments(p, True, "Champions", 2, 50),
        lambda q: {"customers": lifecycle.rfm_customers_request(q.params)},
    ),
    "lifecycle.NewReturning": Spec(
        lifecycle.NewReturning, lambda q: {"customers_from_orders": q.requests(from_orders=True)["customers"]}
    ),
    "lifecycle.ActorSegments[source]": Spec(lambda p: lifecycle.ActorSegments(p, "source")),
    "products.ProductPerformance[margin]": Spec(
        lambda p: products.ProductPerformance(p, "margin"),
        lambda q: {
            "buyers": q.buyers_request(IDS),
            "catalog_names": products.names_request(q.params, PRODUCTS, IDS),
            "line_names": products.names_request(q.params, ORDER_ITEMS, IDS),
        },
    ),
    "products.ProductInventory[low_stock]": Spec(
        lambda p: products.ProductInventory(p, "days_of_cover", True, "A"),
        lambda q: {"catalog_page_1": q.catalog_request(None), "catalog_page_2": q.catalog_request(["id-2", "s1"])},
    ),
    "products.ProductReviews": Spec(lambda p: products.ProductReviews(p, 2)),
    "products.SiteSearch": Spec(site_search.SiteSearch),
    "financial.FinancialRevenue": Spec(financial.FinancialRevenue),
    "financial.FinancialProfit": Spec(financial.FinancialProfit),
    "financial.FinancialExpenses": Spec(financial.FinancialExpenses),
    "financial.FinancialPayments": Spec(financial.FinancialPayments),
    **{
        f"search.IndexSearch[{index}]": Spec(lambda p, index=index: search.IndexSearch(p, "red mug", index, 20, 40))
        for index in ("orders", "events", "activity", "products")
    },
}


def sent(query: AnalyticsQuery[Any], spec: Spec) -> dict[str, Any]:
    """Every request of the query as sent, JSON-normalised (tuples as lists)."""
    as_data = {
        "requests": {name: r.as_data() for name, r in query.requests().items()},
        "follow_ups": {name: r.as_data() for name, r in spec.follow_ups(query).items()},
    }
    return orjson.loads(orjson.dumps(as_data))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("name", list(QUERIES))
def test_generated_bodies_match_their_snapshot(name: str, case: Case, snapshot) -> None:
    spec = QUERIES[name]
    assert sent(spec.build(common(case)), spec) == snapshot


def query_classes() -> Iterator[type]:
    for module in (sales, breakdowns, users, lifecycle, products, site_search, financial, search):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, AnalyticsQuery) and cls is not AnalyticsQuery and cls.__module__ == module.__name__:
                yield cls


def test_every_query_object_is_snapshotted() -> None:
    built = {type(spec.build(common(CASES[0]))) for spec in QUERIES.values()}
    missing = [cls.__qualname__ for cls in query_classes() if cls not in built]
    assert not missing, f"add these query objects to QUERIES: {missing}"


# -- store isolation -------------------------------------------------------------------


def _queries_of(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for group in ("requests", "follow_ups"):
        for name, request in data[group].items():
            body = request["body"]
            yield f"{group}.{name}", body.get("query")


def _has_term(query: Any, field: str, value: str) -> bool:
    """True when `query` requires `field == value`: a term in a bool filter/must, at any depth
    of bool filters (a should or must_not clause does not require it)."""
    if not isinstance(query, dict):
        return False
    if query.get("term", {}).get(field) == value or query.get("term", {}).get(field, {}) == {"value": value}:
        return True
    boolean = query.get("bool", {})
    return any(_has_term(clause, field, value) for key in ("filter", "must") for clause in boolean.get(key, []))


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_body_of_a_store_bound_key_carries_its_store_filter(name: str) -> None:
    spec = QUERIES[name]
    for case in (c for c in CASES if c.store_id == STORE):
        for where, query in _queries_of(sent(spec.build(common(case)), spec)):
            assert _has_term(query, "store_id", STORE), f"{name} {case.id} {where}: no store filter in {query}"


# -- ingest ------------------------------------------------------------------------------


ORDER = {
    "order_id": "o-1001",
    "channel": "web",
    "status": "paid",
    "created_at": "2026-11-01T01:30:00-03:00",
    "currency": "EUR",
    "fx_rate": 1.08,
    "customer": {"customer_id": "c-7", "country": "BR", "city": "Campinas"},
    "items": [
        {
            "product_id": "p-7",
            "name": "Teapot",
            "category": "Kitchen",
            "quantity": 3,
            "unit_price": 18.0,
            "discount": 1.5,
            "unit_cost": 6.0,
        },
        {"product_id": "p-2", "name": "Lamp", "quantity": 1, "unit_price": 40.0},
    ],
    "discount_amount": 5.0,
    "shipping_amount": 7.5,
    "tax_amount": 3.2,
    "payment": {"method": "card"},
    "coupon_code": "FALL",
}


def test_ingest_bulk_actions_of_an_order_with_lines(snapshot) -> None:
    order = Order.model_validate_json(orjson.dumps(ORDER))
    names = IndexNames("snap")
    received = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
    order_doc, line_docs = order_documents(order, STORE, ZoneInfo("America/Sao_Paulo"), "USD", received)
    first = [order_action(order_doc, names, None), *line_actions(order_doc, line_docs, names, 2)]
    stored = StoredOrder(
        state_version=1, state_digest="x", line_high_water=4, customers_seen=("c-before",), seq_no=17, primary_term=1
    )
    again = order_action(order_doc, names, stored)
    assert again.source is not None
    replacing = [again, *line_actions(order_doc, line_docs, names, again.source["line_high_water"])]
    # the customer documents the replacing state writes when none is stored yet: its customer's
    # (store and all stores) with its sale, the earlier customer's with a tombstone
    changes = changes_of([(again.source, again.source["customers_seen"], None)])
    lines = {
        "new order": [orjson.loads(line) for a in first for line in a.lines()],
        "over a stored state with 4 lines": [orjson.loads(line) for a in replacing for line in a.lines()],
        "customer documents": {
            key: customer_document(c.scope, c.customer_id, c.entries) for key, c in sorted(changes.items())
        },
    }
    assert lines == snapshot


# -- cache identity ----------------------------------------------------------------------


def test_the_cache_identity_is_the_query_itself() -> None:
    """Equal queries share an identity; another class, field or parameter gives another one."""
    identities = []
    for case in CASES:
        for spec in QUERIES.values():
            query = spec.build(common(case))
            assert query.cache_identity() == spec.build(common(case)).cache_identity()
            identities.append(orjson.dumps(query.cache_identity(), default=str, option=orjson.OPT_SORT_KEYS))
    assert len(set(identities)) == len(identities)
