"""Order versions converge: any arrival order, batching or concurrency -> the newest state.

Hypothesis draws version histories per order (status changes, refunds, lines added and
removed, currency and fx), resends, a random arrival order, random batch splits, and
sequential or concurrent requests, all sent through the API to the real node. After
each example the orders and order-items documents, and the category, product and
dashboard numbers, must equal a pandas computation over the newest version of each
order only (tests/oracle.py, which knows nothing of the service's code).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import analytics_get as get
from tests.conftest import post_records
from tests.oracle import build_frames

CATALOG = {"p1": "Kitchen", "p2": "Kitchen", "p3": "Garden", "p4": "Toys", "p5": "Books"}
STATUSES = ["pending", "paid", "processing", "shipped", "delivered", "cancelled", "refunded"]
RANK = {s: n for n, s in enumerate(STATUSES)}
CREATED = datetime(2026, 10, 10, 9, 0, tzinfo=UTC)
PERIOD = {"start": "2026-10-01", "end": "2026-11-01", "tz": "UTC"}

line = st.fixed_dictionaries(
    {
        "product_id": st.sampled_from(sorted(CATALOG)),
        "quantity": st.integers(1, 5),
        "unit_price": st.sampled_from([5.0, 12.5, 20.0, 99.99]),
        "discount": st.sampled_from([0.0, 0.0, 1.0]),
    }
)
version_shape = st.fixed_dictionaries(
    {
        "status": st.sampled_from(STATUSES),
        "items": st.lists(line, min_size=1, max_size=5),
        "fx": st.sampled_from([None, None, ("EUR", 1.1), ("GBP", 1.25)]),
        "refund": st.sampled_from([None, None, 1.0]),
    }
)


@st.composite
def order_history(draw, n: int) -> list[dict]:
    """1-4 versions of order n, each at a later time than the one before."""
    minutes = draw(st.lists(st.integers(1, 600), min_size=1, max_size=4, unique=True))
    created = CREATED + timedelta(hours=n)
    versions = []
    for minute in sorted(minutes):
        shape = draw(version_shape)
        # mostly the order's own customer; sometimes a correction moves it to the next one
        customer = draw(st.sampled_from([n % 3, n % 3, n % 3, (n + 1) % 3]))
        record = {
            "order_id": f"o-{n}",
            "status": shape["status"],
            "created_at": created.isoformat(),
            "updated_at": (created + timedelta(minutes=minute)).isoformat(),
            "customer": {"customer_id": f"c-{customer}"},
            "channel": "web",
            "items": [{**item, "category": CATALOG[item["product_id"]]} for item in shape["items"]],
        }
        if shape["fx"]:
            record["currency"], record["fx_rate"] = shape["fx"]
        if shape["refund"] and shape["status"] == "refunded":
            record["refunded_amount"] = shape["refund"]
        versions.append(record)
    return versions


@st.composite
def arrivals(draw) -> dict:
    histories = [draw(order_history(n)) for n in range(draw(st.integers(1, 4)))]
    sent = [v for h in histories for v in h]
    sent += draw(st.lists(st.sampled_from(sent), max_size=3))  # resends of any version
    order = draw(st.permutations(sent))
    cuts = draw(st.lists(st.booleans(), min_size=len(order) - 1, max_size=len(order) - 1))
    batches, current = [], [order[0]]
    for record, cut in zip(order[1:], cuts, strict=True):
        if cut:
            batches.append(current)
            current = []
        current.append(record)
    batches.append(current)
    return {"histories": histories, "batches": batches, "concurrent": draw(st.booleans())}


def hand_order(order_id: str, store: str, status: str, created_at: str, items=None, **times: str) -> dict:
    """A hand-written order of customer "c": one p1 at 10.0 unless `items` are given."""
    return {
        "order_id": order_id,
        "store_id": store,
        "status": status,
        "created_at": created_at,
        **times,
        "customer": {"customer_id": "c"},
        "items": [{"product_id": "p1", "quantity": 1, "unit_price": 10.0}] if items is None else items,
    }


def newest(history: list[dict]) -> dict:
    return max(history, key=lambda v: (v["updated_at"], RANK[v["status"]]))


def phantom_hazard(case: dict) -> bool:
    """Would the pre-fix writer have left a phantom line? An older version with more lines
    than the newest arrives in the newest one's batch or after it."""
    for history in case["histories"]:
        top = newest(history)
        seen_top = False
        for batch in case["batches"]:
            in_batch = top in batch
            for record in batch:
                if (
                    record["order_id"] == top["order_id"]
                    and record is not top
                    and len(record["items"]) > len(top["items"])
                    and (seen_top or in_batch)
                ):
                    return True
            seen_top = seen_top or in_batch
    return False


def of_store(order: dict, store: str) -> dict:
    """The order in `store`, its customer's id prefixed with the store: the all-stores customer
    documents of one example then hold that example's orders alone."""
    return {**order, "store_id": store, "customer": {"customer_id": f"{store}-{order['customer']['customer_id']}"}}


def send(client, store: str, case: dict) -> None:
    def post(batch: list[dict]) -> dict:
        r = post_records(client, "orders", [of_store(o, store) for o in batch], refresh=None)
        assert r.status_code == 200, r.text
        body = r.json()
        assert not body["errors"], body["errors"]
        assert body["indexed"] + body["duplicates"] + body["stale"] == len(batch)
        return body

    if case["concurrent"] and len(case["batches"]) > 1:
        with ThreadPoolExecutor(max_workers=len(case["batches"])) as pool:
            list(pool.map(post, case["batches"]))
    else:
        for batch in case["batches"]:
            post(batch)


def check_documents(es, prefix: str, store: str, latest: list[dict]) -> None:
    query = {"term": {"store_id": store}}
    orders = es.search(index=f"{prefix}-orders", query=query, size=100)["hits"]["hits"]
    got = {
        h["_source"]["order_id"]: (h["_source"]["status"], h["_source"]["updated_at"], h["_source"]["item_count"])
        for h in orders
    }
    want = {o["order_id"]: (o["status"], o["updated_at"].replace("+00:00", "Z"), len(o["items"])) for o in latest}
    assert {k: (s, pd.Timestamp(t), n) for k, (s, t, n) in got.items()} == {
        k: (s, pd.Timestamp(t), n) for k, (s, t, n) in want.items()
    }
    lines = es.search(index=f"{prefix}-order-items", query=query, size=1000)["hits"]["hits"]
    got_lines = sorted(
        (
            h["_source"]["order_id"],
            h["_source"]["line"],
            h["_source"]["product_id"],
            h["_source"]["quantity"],
            h["_source"]["status"],
        )
        for h in lines
    )
    want_lines = sorted(
        (o["order_id"], n, item["product_id"], item["quantity"], o["status"])
        for o in latest
        for n, item in enumerate(o["items"], start=1)
    )
    assert got_lines == want_lines


def check_customers(es, prefix: str, store: str, latest: list[dict]) -> None:
    """Each customer document of the store, and the all-stores one, holds exactly the sales of
    the newest states that belong to the customer: in time order, each with the previous."""
    frames = build_frames({"orders": [of_store(o, store) for o in latest]}, store_id=store)
    sales = frames.orders[frames.orders["is_sale"]].sort_values(["created_at", "order_id"])
    want = {
        customer: [(int(t.timestamp() * 1000), v) for t, v in zip(group["created_at"], group["order_value"])]
        for customer, group in sales.groupby("customer_id")
    }
    for scope in (store, "*"):
        query = {"bool": {"filter": [{"term": {"store_id": scope}}, {"prefix": {"customer_id": f"{store}-"}}]}}
        hits = es.search(index=f"{prefix}-customers", query=query, size=100)["hits"]["hits"]
        got = {h["_source"]["customer_id"]: h["_source"] for h in hits}
        assert set(want) <= set(got), (scope, sorted(want), sorted(got))
        for customer, doc in got.items():
            expected = want.get(customer, [])
            stored = [(s["created_at"], s["order_value"]) for s in doc["sales"]]
            assert [t for t, _ in stored] == [t for t, _ in expected], (scope, customer)
            assert [v for _, v in stored] == pytest.approx([v for _, v in expected], abs=1e-9), (scope, customer)
            assert [s["previous_sale_at"] for s in doc["sales"]] == [None, *(t for t, _ in expected)][: len(expected)]
            assert doc["sales_count"] == len(expected)
            assert doc["first_sale_at"] == (expected[0][0] if expected else None)
            assert doc["last_sale_at"] == (expected[-1][0] if expected else None)


def check_numbers(client, store: str, latest: list[dict]) -> None:
    frames = build_frames({"orders": latest}, store_id=store)
    sales, lines = frames.orders[frames.orders["is_sale"]], frames.lines[frames.lines["is_sale"]]

    categories = get(client, "sales/categories", store_id=store, **PERIOD)
    by_category = lines.groupby("category").agg(
        rev=("line_revenue", "sum"), units=("quantity", "sum"), orders=("order_id", "nunique")
    )
    assert {i["key"]: (i["gross_revenue"], i["units"], i["orders"]) for i in categories["items"]} == {
        k: (pytest.approx(r.rev, abs=0.01), r.units, r.orders) for k, r in by_category.iterrows()
    }

    products = get(client, "products/top-selling", store_id=store, limit=10, **PERIOD)
    by_product = lines.groupby("product_id").agg(rev=("line_revenue", "sum"), units=("quantity", "sum"))
    assert {i["key"]: (i["gross_revenue"], i["units"]) for i in products["items"]} == {
        k: (pytest.approx(r.rev, abs=0.01), r.units) for k, r in by_product.iterrows()
    }

    kpis = get(client, "dashboard", store_id=store, **PERIOD)["kpis"]
    assert kpis["orders"] == len(sales)
    assert kpis["gross_revenue"] == pytest.approx(sales["gross_revenue"].sum(), abs=0.01)
    assert kpis["net_revenue"] == pytest.approx(sales["net_revenue"].sum(), abs=0.01)
    assert kpis["units"] == sales["units"].sum()
    assert kpis["customers"] == sales["customer_id"].nunique()


def test_versions_converge_in_any_arrival_order(client, es, prefix):
    stores = (f"h{n}" for n in itertools.count())
    hazards, moves = [], []

    @settings(
        max_examples=100,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(case=arrivals())
    def converge(case: dict) -> None:
        store = next(stores)  # a store of its own per example: examples never see each other's data
        hazards.append(phantom_hazard(case))
        moves.append(any(len({v["customer"]["customer_id"] for v in h}) > 1 for h in case["histories"]))
        send(client, store, case)
        es.indices.refresh(index=f"{prefix}-*")
        latest = [newest(h) for h in case["histories"]]
        check_documents(es, prefix, store, latest)
        check_customers(es, prefix, store, latest)
        check_numbers(client, store, latest)

    converge()
    print(f"{len(hazards)} examples, {sum(hazards)} of them could leave a phantom line before the fix")
    # The draws must exercise the defect this guards against (phantom lines), many times over.
    assert sum(hazards) >= 20, f"only {sum(hazards)} of {len(hazards)} examples could leave a phantom line"
    # ... and orders moving between customers (their old customers' documents must let them go).
    assert sum(moves) >= 20, f"only {sum(moves)} of {len(moves)} examples move an order to another customer"


def test_a_stale_version_writes_nothing(client, es, prefix):
    """The newer state first, then the older one with more lines: answered stale, no line added."""
    new = hand_order("s-1", "stale", "delivered", "2026-10-05T10:00:00Z", updated_at="2026-10-05T12:00:00Z")
    old = {
        **new,
        "status": "paid",
        "updated_at": "2026-10-05T10:00:00Z",
        "items": new["items"]
        + [
            {"product_id": "p2", "quantity": 2, "unit_price": 7.0},
            {"product_id": "p3", "quantity": 1, "unit_price": 3.0},
        ],
    }
    first = post_records(client, "orders", [new], refresh=None).json()
    assert first["indexed"] == 1
    before = es.get(index=f"{prefix}-orders", id="stale:s-1")
    late = post_records(client, "orders", [old]).json()
    assert late == {"indexed": 0, "duplicates": 0, "stale": 1, "errors": []}
    after = es.get(index=f"{prefix}-orders", id="stale:s-1")
    assert (after["_seq_no"], after["_source"]) == (before["_seq_no"], before["_source"])
    es.indices.refresh(index=f"{prefix}-order-items")
    lines = es.search(index=f"{prefix}-order-items", query={"term": {"store_id": "stale"}})["hits"]["hits"]
    assert [h["_id"] for h in lines] == ["stale:s-1:1"]


def test_a_resend_completes_lines_left_unwritten(client, es, prefix, monkeypatch):
    """The process dies between the order document and its lines: the resend is a
    duplicate for the order and writes the missing lines."""
    from analytics_service.ingest.order_versions import OrderVersionWriter

    order = hand_order(
        "r-1",
        "resend",
        "paid",
        "2026-10-06T10:00:00Z",
        [
            {"product_id": "p1", "quantity": 1, "unit_price": 10.0},
            {"product_id": "p2", "quantity": 3, "unit_price": 4.0},
        ],
    )

    async def crash(self, accepted, refresh):
        raise RuntimeError("killed between the two writes")

    with monkeypatch.context() as patch:
        patch.setattr(OrderVersionWriter, "_write_lines", crash)
        crashed = post_records(client, "orders", [order], refresh=None)
        assert crashed.status_code == 500 and crashed.json()["error"]["code"] == "internal_error"
    es.indices.refresh(index=f"{prefix}-*")
    assert es.get(index=f"{prefix}-orders", id="resend:r-1")["found"]
    query = {"term": {"store_id": "resend"}}
    assert es.count(index=f"{prefix}-order-items", query=query)["count"] == 0
    again = post_records(client, "orders", [order])
    assert again.json() == {"indexed": 0, "duplicates": 1, "stale": 0, "errors": []}
    lines = es.search(index=f"{prefix}-order-items", query=query)["hits"]["hits"]
    assert sorted(h["_id"] for h in lines) == ["resend:r-1:1", "resend:r-1:2"]


def test_customer_documents_let_go_of_an_order_whatever_step_failed(client, es, prefix, monkeypatch):
    """The process dies before the customer documents of a state that moved the order to
    customer B; the next state (customer C, not a resend) still takes the order out of A's
    and B's documents, because the order document remembers every customer it had."""
    from analytics_service.ingest.order_versions import OrderVersionWriter

    def version(customer: str, minute: int) -> dict:
        return {
            **hand_order("m-1", "moves", "paid", "2026-10-06T10:00:00Z", updated_at=f"2026-10-06T10:{minute:02d}:00Z"),
            "customer": {"customer_id": customer},
        }

    async def crash(self, accepted, refresh):
        raise RuntimeError("killed before the customer documents")

    assert post_records(client, "orders", [version("mA", 1)]).json()["indexed"] == 1
    with monkeypatch.context() as patch:
        patch.setattr(OrderVersionWriter, "_write_customers", crash)
        assert post_records(client, "orders", [version("mB", 2)], refresh=None).status_code == 500
    assert post_records(client, "orders", [version("mC", 3)]).json()["indexed"] == 1
    es.indices.refresh(index=f"{prefix}-customers")
    for scope in ("moves", "*"):
        counts = {
            c: es.get(index=f"{prefix}-customers", id=f"{scope}:{c}")["_source"]["sales_count"] for c in ("mA", "mC")
        }
        assert counts == {"mA": 0, "mC": 1}, scope
        # B's document was never written with the order, and is not created for a tombstone's sake alone
        b = es.options(ignore_status=404).get(index=f"{prefix}-customers", id=f"{scope}:mB")
        assert not b["found"] or b["_source"]["sales_count"] == 0


def test_a_storm_of_concurrent_versions_of_one_order(client, es, prefix, monkeypatch):
    """Twelve versions of one order at once, each in its own request, fewer lines the newer
    it is: the guarded order write serialises them and no older line survives."""
    from analytics_service.ingest.order_versions import OrderVersionWriter

    reads = []
    stored_states = OrderVersionWriter._stored

    async def counted(self, states):
        reads.append(len(states))
        return await stored_states(self, states)

    monkeypatch.setattr(OrderVersionWriter, "_stored", counted)
    rounds = 8
    for r in range(rounds):
        store = f"storm{r}"
        versions = [
            hand_order(
                "o-1",
                store,
                "paid",
                "2026-10-07T10:00:00Z",
                [{"product_id": f"p{n}", "quantity": 1, "unit_price": 10.0} for n in range(12 - m)],
                updated_at=f"2026-10-07T10:{m:02d}:00Z",
            )
            for m in range(12)
        ]
        order = versions[r % 3 :] + versions[: r % 3]  # a different arrival order each round

        def post(version: dict) -> dict:
            r = post_records(client, "orders", [version], refresh=None)
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(max_workers=len(order)) as pool:
            answers = list(pool.map(post, order))
        assert all(not a["errors"] for a in answers), answers
        assert sum(a["indexed"] + a["stale"] for a in answers) == len(versions)
        es.indices.refresh(index=f"{prefix}-*")
        stored = es.get(index=f"{prefix}-orders", id=f"{store}:o-1")["_source"]
        assert (stored["updated_at"], stored["item_count"]) == ("2026-10-07T10:11:00+00:00", 1)
        lines = es.search(index=f"{prefix}-order-items", query={"term": {"store_id": store}})["hits"]["hits"]
        assert [(h["_id"], h["_source"]["product_id"]) for h in lines] == [(f"{store}:o-1:1", "p0")]
    # Writers did collide: some requests lost the guarded write and read the order again.
    assert len(reads) > rounds * 12


def test_another_content_at_the_same_version_changes_nothing(client, es, prefix):
    """A cart resent with more lines but the same status and time is the same version:
    a `duplicate`, and neither the order nor its lines change (only a true resend of the
    stored content rewrites lines)."""
    order = hand_order("d-1", "digest", "pending", "2026-10-08T10:00:00Z")
    assert post_records(client, "orders", [order]).json()["indexed"] == 1
    before = es.get(index=f"{prefix}-orders", id="digest:d-1")
    bigger = {
        **order,
        "items": order["items"]
        + [
            {"product_id": "p2", "quantity": 2, "unit_price": 5.0},
            {"product_id": "p3", "quantity": 1, "unit_price": 1.0},
        ],
    }
    answer = post_records(client, "orders", [bigger])
    assert answer.json() == {"indexed": 0, "duplicates": 1, "stale": 0, "errors": []}
    es.indices.refresh(index=f"{prefix}-*")
    after = es.get(index=f"{prefix}-orders", id="digest:d-1")
    assert (after["_seq_no"], after["_source"]) == (before["_seq_no"], before["_source"])
    lines = es.search(index=f"{prefix}-order-items", query={"term": {"store_id": "digest"}})["hits"]["hits"]
    assert [h["_id"] for h in lines] == ["digest:d-1:1"]


def test_customer_documents_built_from_the_orders_equal_the_ones_kept_at_ingest(client, es, prefix):
    """Deleting the customers index and building it again from the orders index (what `setup`
    does for orders stored before the index existed) gives the documents ingest maintained."""
    import asyncio

    from analytics_service.es.client import make_async_client
    from analytics_service.es.indices import IndexNames, setup_indices
    from analytics_service.ingest.customers import customer_documents_built, ensure_customer_documents

    orders = [
        hand_order("b-1", "build", "paid", "2026-10-02T10:00:00Z", updated_at="2026-10-02T10:00:00Z"),
        hand_order("b-2", "build", "shipped", "2026-10-03T10:00:00Z"),
        hand_order("b-3", "build-2", "cancelled", "2026-10-04T10:00:00Z"),
        {**hand_order("b-4", "build", "paid", "2026-10-05T10:00:00Z"), "customer": {"customer_id": "d"}},
    ]
    moved = {**orders[0], "updated_at": "2026-10-02T11:00:00Z", "customer": {"customer_id": "d"}}
    for batch in (orders, [moved]):
        assert not post_records(client, "orders", batch).json()["errors"]
    index = f"{prefix}-customers"
    es.indices.refresh(index=index)
    kept = {h["_id"]: h["_source"] for h in es.search(index=index, size=1000)["hits"]["hits"]}

    async def rebuild() -> tuple[bool, str | None, bool]:
        aes = make_async_client(client.app.state.settings)
        names = IndexNames(prefix)
        try:
            await aes.indices.delete(index=f"{index}-*")
            await setup_indices(aes, names)
            before = await customer_documents_built(aes, names)
            built = await ensure_customer_documents(aes, names)
            return before, built, await customer_documents_built(aes, names)
        finally:
            await aes.close()

    before, built, after = asyncio.run(rebuild())
    assert before is False and built and after is True
    es.indices.refresh(index=index)
    rebuilt = {h["_id"]: h["_source"] for h in es.search(index=index, size=1000)["hits"]["hits"]}
    # tombstones of orders that moved are only kept where ingest wrote them; the sales are the same
    derived = ("store_id", "customer_id", "first_sale_at", "last_sale_at", "sales_count", "sales")
    assert {k: {f: d[f] for f in derived} for k, d in rebuilt.items()} == {
        k: {f: d[f] for f in derived} for k, d in kept.items() if k in rebuilt
    }
    assert {k for k, d in kept.items() if d["sales_count"]} <= set(rebuilt)
    assert kept["build:c"]["sales_count"] == 1 and kept["build:d"]["sales_count"] == 2
