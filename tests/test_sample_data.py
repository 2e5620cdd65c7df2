"""The sample-data generator: deterministic, valid, shaped for the analytics, and ingestible.

The ingest tests run against the real node: what the generator produced is what is
stored, once, through the API, through the direct sink and through the HTTP sink.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import Elasticsearch

from analytics_service.devtools import sample_data
from analytics_service.devtools.sample_data import (
    BATCH_SIZE,
    KINDS,
    DirectSink,
    HttpSink,
    SampleConfig,
    SinkError,
    generate,
    ingest,
)
from analytics_service.ingest.schemas import (
    ACTIVITY_TYPES,
    SALE_STATUSES,
    Activity,
    Event,
    Expense,
    Order,
    Product,
    normalise_query,
)
from tests.conftest import headers, served

ROOT = Path(__file__).resolve().parents[1]
FIXED_END = date(2025, 6, 30)
WAIT = {"refresh": "wait_for"}
MODELS = {"orders": Order, "events": Event, "activities": Activity, "products": Product, "expenses": Expense}
PATHS = {kind: path for kind, (path, _) in sample_data.HTTP_ROUTES.items()}
BODY_KEYS = {kind: key for kind, (_, key) in sample_data.HTTP_ROUTES.items()}


def collect(config: SampleConfig) -> dict[str, list[dict[str, Any]]]:
    records: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for kind, batch in generate(config):
        assert 0 < len(batch) <= BATCH_SIZE
        records[kind].extend(batch)
    return records


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[dict[str, Any]]]:
    """A few thousand records of every kind (four months, so recent statuses show up)."""
    return collect(SampleConfig(seed=7, orders=2500, activity=6000, days=120, end=FIXED_END))


# -- determinism and shape ---------------------------------------------------------------


def test_same_seed_and_end_give_identical_records_and_another_seed_does_not():
    config = SampleConfig(seed=3, orders=300, activity=1500, end=FIXED_END)
    first = orjson.dumps(collect(config))
    assert orjson.dumps(collect(SampleConfig(seed=3, orders=300, activity=1500, end=FIXED_END))) == first
    assert orjson.dumps(collect(SampleConfig(seed=4, orders=300, activity=1500, end=FIXED_END))) != first
    moved = collect(SampleConfig(seed=3, orders=300, activity=1500, end=FIXED_END - timedelta(days=30)))
    assert max(o["created_at"] for o in moved["orders"]) < "2025-05-31"


def test_default_config_counts():
    records = collect(SampleConfig(end=FIXED_END))
    counts = {k: len(v) for k, v in records.items()}
    assert counts["orders"] == 1000 and counts["activities"] == 5000
    assert counts["products"] == 110
    assert 1000 <= counts["events"] <= 1200
    assert 700 <= counts["expenses"] <= 1500
    customers = {o["customer"]["customer_id"] for o in records["orders"]}
    assert 330 <= len(customers) <= 500  # about orders / 2.5
    assert SampleConfig(orders=2000).activity_count == 10000


def test_batches_stream_products_first_and_interleave_the_rest():
    kinds = [kind for kind, _ in generate(SampleConfig(orders=12000, activity=30000, days=60, end=FIXED_END))]
    assert kinds[0] == "products" and "products" not in kinds[1:]
    # orders and activities are produced day by day, not all of one kind and then the other
    first_activity = kinds.index("activities")
    last_orders = len(kinds) - 1 - kinds[::-1].index("orders")
    assert first_activity < last_orders


def test_ids_are_unique_and_every_record_carries_the_store(dataset):
    for kind, id_field in (
        ("orders", "order_id"),
        ("events", "event_id"),
        ("activities", "activity_id"),
        ("products", "product_id"),
        ("expenses", "expense_id"),
    ):
        ids = [r[id_field] for r in dataset[kind]]
        assert len(ids) == len(set(ids)), kind
        assert all(r["store_id"] == "default" for r in dataset[kind]), kind


def test_every_record_validates_under_its_ingest_model(dataset):
    for kind, model in MODELS.items():
        assert dataset[kind], kind
        for record in dataset[kind]:
            model.model_validate_json(orjson.dumps(record))


def test_order_timelines_are_consistent_and_inside_the_period(dataset):
    start = datetime(2025, 3, 2, tzinfo=UTC)  # FIXED_END - 120 days
    end = datetime(2025, 6, 30, tzinfo=UTC)
    for o in dataset["orders"]:
        created = parse(o["created_at"])
        assert start <= created < end
        stamps = [parse(o[k]) for k in ("paid_at", "shipped_at", "delivered_at", "cancelled_at") if k in o]
        assert all(created <= s < end for s in stamps), o["order_id"]
        assert parse(o["updated_at"]) == max([created, *stamps]) or o["status"] == "refunded"
        if o["status"] == "refunded":
            assert parse(o["updated_at"]) > parse(o["delivered_at"])
        status = o["status"]
        assert ("paid_at" in o) == (status in SALE_STATUSES)
        assert ("shipped_at" in o) == (status in ("shipped", "delivered", "refunded"))
        assert ("delivered_at" in o) == (status in ("delivered", "refunded"))
        assert ("cancelled_at" in o) == (status == "cancelled")
        if "paid_at" in o and "shipped_at" in o:
            assert parse(o["paid_at"]) <= parse(o["shipped_at"])
        if "shipped_at" in o and "delivered_at" in o:
            assert parse(o["shipped_at"]) <= parse(o["delivered_at"])
        assert 1 <= len(o["items"]) <= 5 and all(1 <= i["quantity"] <= 4 for i in o["items"])
        assert ("currency" in o) == ("fx_rate" in o)


def test_catalog_times_are_the_month_before_the_end_even_for_a_short_period():
    """The catalog's updated_at falls in the 30 days before `end`, also when the period is
    shorter than that (those days are outside the generator's day table)."""
    end = date(2026, 12, 8)
    products = generate(SampleConfig(seed=11, orders=80, activity=300, days=5, end=end))
    stamps = [parse(p["updated_at"]) for kind, batch in products if kind == "products" for p in batch]
    close = datetime(end.year, end.month, end.day, tzinfo=UTC)
    assert stamps and all(close - timedelta(days=30, minutes=2) <= s < close for s in stamps)


def test_the_data_has_what_the_analytics_need(dataset):
    orders = dataset["orders"]
    statuses = collections.Counter(o["status"] for o in orders)
    assert set(statuses) == {"pending", "paid", "processing", "shipped", "delivered", "cancelled", "refunded"}
    n = len(orders)
    assert 0.02 < statuses["pending"] / n < 0.09
    assert 0.03 < statuses["cancelled"] / n < 0.09
    assert 0.015 < statuses["refunded"] / n < 0.07
    refunded = [o for o in orders if o["status"] == "refunded"]
    assert any("refunded_amount" in o for o in refunded) and any("refunded_amount" not in o for o in refunded)
    eur = [o for o in orders if o.get("currency") == "EUR"]
    assert 0.02 < len(eur) / n < 0.1 and all(1.05 <= o["fx_rate"] <= 1.12 for o in eur)
    assert any("unit_cost" not in i for o in orders for i in o["items"])  # lines_without_cost
    assert any(i.get("discount") for o in orders for i in o["items"])
    assert any(o.get("coupon_code") and o["discount_amount"] > 0 for o in orders)
    assert {o["channel"] for o in orders} == {"web", "mobile", "marketplace"}
    assert {o["payment"]["method"] for o in orders} >= {"card", "paypal", "gift_card"}

    # returning customers: orders in at least three different months
    months: dict[str, set[str]] = collections.defaultdict(set)
    for o in orders:
        months[o["customer"]["customer_id"]].add(o["created_at"][:7])
    assert sum(1 for m in months.values() if len(m) >= 3) >= 20

    # weekly seasonality
    weekdays = collections.Counter(parse(o["created_at"]).weekday() for o in orders)
    assert len(set(weekdays.values())) > 1 and max(weekdays.values()) > 1.15 * min(weekdays.values())

    # payment events
    events = dataset["events"]
    types = collections.Counter(e["event_type"] for e in events)
    sales = [o for o in orders if o["status"] in SALE_STATUSES]
    assert types["payment_succeeded"] == len(sales)
    assert types["refund_issued"] == len(refunded)
    assert types["payment_failed"] > 0
    by_order = {o["order_id"]: o for o in orders}
    for e in events:
        o = by_order[e["order_id"]]
        assert e["user_id"] == o["customer"]["customer_id"]
        assert e["properties"]["method"] == o["payment"]["method"]
        if e["event_type"] == "payment_succeeded":
            assert e["timestamp"] == o["paid_at"]

    # activity: searches, reviews, funnel, bounces, purchases linked to orders
    acts = dataset["activities"]
    searches = [a for a in acts if a["activity_type"] == "search"]
    zero = sum(1 for a in searches if a["results_count"] == 0)
    assert 0.05 < zero / len(searches) < 0.25
    assert any(normalise_query(a["search_query"]) != a["search_query"] for a in searches)
    reviews = [a for a in acts if a["activity_type"] == "review"]
    assert reviews and all(1 <= a["rating"] <= 5 and a["product_id"] for a in reviews)
    ratings = collections.Counter(a["rating"] for a in reviews)
    assert ratings[5] + ratings[4] > ratings[1] + ratings[2]
    assert {a["activity_type"] for a in acts} == set(ACTIVITY_TYPES)

    actors: dict[str, set[str]] = collections.defaultdict(set)
    sessions: dict[str, list[dict]] = collections.defaultdict(list)
    for a in acts:
        actors[a["activity_type"]].add(a.get("user_id") or a["anonymous_id"])
        sessions[a["session_id"]].append(a)
        assert ("user_id" in a) != ("anonymous_id" in a)
    steps = ["page_view", "product_view", "add_to_cart", "checkout_started", "purchase"]
    reached = [len(actors[s]) for s in steps]
    assert all(a > b for a, b in itertools.pairwise(reached)), reached
    assert any(len(s) == 1 for s in sessions.values())  # bounces
    for records in sessions.values():
        times = [parse(a["timestamp"]) for a in records]
        assert times == sorted(times) and times[-1] - times[0] < timedelta(hours=2)
    purchases = [a for a in acts if a["activity_type"] == "purchase"]
    for p in purchases:
        o = by_order[p["order_id"]]
        assert o["customer"]["customer_id"] == p["user_id"] and p["timestamp"] == o["created_at"]

    # expenses: every category, inside the period
    expenses = dataset["expenses"]
    assert {e["category"] for e in expenses} == {
        "marketing",
        "shipping",
        "payment_fees",
        "salaries",
        "software",
        "rent",
    }
    assert all("2025-03-02" <= e["date"] < "2025-06-30" for e in expenses)
    assert all(e.get("channel") and e.get("campaign") for e in expenses if e["category"] == "marketing")

    # catalog: out of stock, low stock
    products = dataset["products"]
    assert any(p["stock_quantity"] == 0 for p in products)
    assert any(0 < p["stock_quantity"] <= p["reorder_point"] for p in products)
    assert all(0.4 * p["price"] - 0.01 <= p["cost"] <= 0.75 * p["price"] + 0.01 for p in products)


def test_hours_follow_the_store_time_zone():
    records = collect(SampleConfig(orders=3000, activity=10, days=60, end=FIXED_END, timezone="America/Sao_Paulo"))
    sao_paulo = collections.Counter((parse(o["created_at"]) - timedelta(hours=3)).hour for o in records["orders"])
    # night in Sao Paulo is quiet, evenings are busy
    assert sao_paulo[4] * 5 < sao_paulo[20]
    # a Brazilian store sells mostly to Brazil, with pix and boleto
    countries = collections.Counter(o["customer"]["country"] for o in records["orders"])
    assert countries.most_common(1)[0][0] == "BR"
    assert {"pix", "boleto"} <= {o["payment"]["method"] for o in records["orders"]}


# -- command line --------------------------------------------------------------------------


def test_cli_writes_ndjson_files(tmp_path, capsys):
    out = tmp_path / "sample"
    code = sample_data.main(
        ["--orders", "200", "--activity", "800", "--days", "90", "--end", "2025-06-30", "--out", str(out), "--quiet"]
    )
    assert code == 0
    lines = {k: (out / f"{k}.ndjson").read_bytes().splitlines() for k in KINDS}
    assert len(lines["orders"]) == 200 and len(lines["activities"]) == 800
    expected = collect(SampleConfig(orders=200, activity=800, days=90, end=FIXED_END))
    assert [orjson.loads(x) for x in lines["orders"]] == expected["orders"]
    assert "orders/s" in capsys.readouterr().out


def test_cli_rejects_bad_options(capsys):
    assert sample_data.main(["--timezone", "Mars/Base", "--out", "/tmp/x"]) == 2
    assert sample_data.main(["--end", (date.today() + timedelta(days=30)).isoformat(), "--out", "/tmp/x"]) == 2


def test_script_wrapper_runs_from_the_repo_root(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "scripts/generate_sample_data.py",
            "--orders",
            "20",
            "--activity",
            "50",
            "--days",
            "10",
            "--end",
            "2025-06-30",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "orders.ndjson").read_bytes().splitlines()) == 20


# -- ingest, against the real node ---------------------------------------------------------


def count(es: Elasticsearch, index: str, store: str | None = None) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    query = {"term": {"store_id": store}} if store else None
    return es.count(index=index, query=query, ignore_unavailable=True, allow_no_indices=True)["count"]


def stored_counts(es: Elasticsearch, prefix: str, store: str | None = None) -> dict[str, int]:
    return {
        "orders": count(es, f"{prefix}-orders", store),
        "order-items": count(es, f"{prefix}-order-items", store),
        "events": count(es, f"{prefix}-events", store),
        "activities": count(es, f"{prefix}-activity", store),
        "products": count(es, f"{prefix}-products", store),
        "expenses": count(es, f"{prefix}-expenses", store),
    }


def expected_counts(records: dict[str, list[dict]]) -> dict[str, int]:
    return {
        "orders": len(records["orders"]),
        "order-items": sum(len(o["items"]) for o in records["orders"]),
        "events": len(records["events"]),
        "activities": len(records["activities"]),
        "products": len(records["products"]),
        "expenses": len(records["expenses"]),
    }


def small_config(store: str, **overrides: Any) -> SampleConfig:
    # Ends today: every timestamp is recent enough and none is in the future.
    values: dict[str, Any] = {"seed": 11, "orders": 300, "activity": 1500, "store_id": store}
    values.update(overrides)
    return SampleConfig(**values)


def post_all(client, records: dict[str, list[dict]]) -> dict[str, dict[str, int]]:
    totals = {k: {"indexed": 0, "duplicates": 0, "stale": 0, "errors": 0} for k in KINDS}
    for kind in KINDS:
        batch = records[kind]
        for i in range(0, len(batch), BATCH_SIZE):
            r = client.post(
                PATHS[kind], json={BODY_KEYS[kind]: batch[i : i + BATCH_SIZE]}, headers=headers("ingest"), params=WAIT
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["errors"] == [], body["errors"][:3]
            for k in ("indexed", "duplicates", "stale"):
                totals[kind][k] += body[k]
    return totals


def test_ingest_through_the_api_stores_what_was_generated_once(client, es, prefix):
    records = collect(small_config("default"))
    first = post_all(client, records)
    for kind in KINDS:
        assert first[kind]["indexed"] == len(records[kind]), kind
    expected = expected_counts(records)
    assert stored_counts(es, prefix, "default") == expected

    again = post_all(client, records)
    for kind in KINDS:
        assert again[kind] == {"indexed": 0, "duplicates": len(records[kind]), "stale": 0, "errors": 0}, kind
    assert stored_counts(es, prefix, "default") == expected


def test_direct_sink_writes_the_same_counts_for_another_store(settings, es, prefix):
    config = small_config("shop-direct")
    records = collect(config)
    stats: dict[str, Any] = {}
    totals = asyncio.run(ingest(config, DirectSink(settings, concurrency=3), progress=False, stats=stats))
    assert stats["generated"] == {k: len(v) for k, v in records.items()}
    for kind in KINDS:
        assert totals[kind] == {"indexed": len(records[kind]), "duplicates": 0, "stale": 0, "errors": 0}, kind
    assert stored_counts(es, prefix, "shop-direct") == expected_counts(records)

    again = asyncio.run(ingest(config, DirectSink(settings), progress=False))
    for kind in KINDS:
        assert again[kind]["duplicates"] == len(records[kind]) and again[kind]["errors"] == 0, kind
    assert stored_counts(es, prefix, "shop-direct") == expected_counts(records)


def test_cli_if_empty_skips_a_store_that_has_orders(settings, prefix, monkeypatch, capsys):
    monkeypatch.setenv("ELASTICSEARCH_URL", settings.elasticsearch_url)
    monkeypatch.setenv("ES_LOCAL_DIR", str(settings.es_local_dir))
    monkeypatch.setenv("INDEX_PREFIX", prefix)
    # The earlier tests stored orders under this prefix.
    assert sample_data.main(["--if-empty", "--sink", "direct", "--quiet"]) == 0
    assert "skipped" in capsys.readouterr().out


@pytest.fixture(scope="module")
def api_url(settings):
    """The app served by uvicorn on a free port, for the HTTP sink."""
    from analytics_service.app import create_app

    with served(create_app(settings)) as url:
        yield url


def test_http_sink_posts_everything_and_checks_the_answers(api_url, es, prefix):
    config = small_config("shop-http", orders=150, activity=600)
    records = collect(config)
    sink = HttpSink(api_url, "test-ingest-key", refresh="wait_for")
    totals = asyncio.run(ingest(config, sink, progress=False))
    for kind in KINDS:
        assert totals[kind]["indexed"] == len(records[kind]), kind
    assert stored_counts(es, prefix, "shop-http") == expected_counts(records)

    async def send_bad() -> None:
        async with HttpSink(api_url, "test-ingest-key") as bad:
            bad_order = dict(records["orders"][0], order_id="bad-1", status="lost")
            await bad.write("orders", [records["orders"][1], bad_order])

    with pytest.raises(SinkError, match="status"):
        asyncio.run(send_bad())

    async def send_unauthorised() -> None:
        async with HttpSink(api_url, "no-such-key") as sink:
            await sink.write("products", records["products"][:1])

    with pytest.raises(SinkError, match="401"):
        asyncio.run(send_unauthorised())
