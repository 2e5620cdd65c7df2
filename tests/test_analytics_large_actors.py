"""The funnel, activity retention and RFM stay exact with 100,000 distinct actors and customers.

Far more actors and customers than one terms aggregation (or the default 10,000-bucket
limit) could hold: the endpoints must page their composite aggregations. The records are
cheap synthetic ones made here and stored with the project's own Ingestor, in-process (the
HTTP route would only add time); the numbers are compared with pandas over those records.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from analytics_service.es.indices import IndexGuard
from analytics_service.ingest.service import Ingestor
from tests.conftest import analytics_get as get
from tests.conftest import with_async_es
from tests.oracle import build_frames, funnel_oracle, retention_oracle, rfm_oracle

pytestmark = [pytest.mark.slow, pytest.mark.oracle]

ACTORS = 100_000
CUSTOMERS = 100_000
START, END = date(2026, 6, 1), date(2026, 11, 15)
FUNNEL_TYPES = (
    ["product_view"] * 10 + ["add_to_cart"] * 5 + ["checkout_started"] * 3 + ["purchase"] * 2 + ["page_view"] * 2
)
BATCH = 10_000


EPOCH = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + seconds))


def make_records(seed: int = 7) -> dict[str, list[dict]]:
    """100,000 actors with 1-3 activities each (60 % logged in) and 100,000 customers with
    1-3 small orders each, spread over [START, END) in UTC (New York: up to 4-5 h earlier)."""
    rnd = random.Random(seed)
    span = int((datetime(2026, 11, 14) - datetime(2026, 6, 1)).total_seconds())
    activities = []
    for i in range(ACTORS):
        who = {"user_id": f"u{i:06d}"} if rnd.random() < 0.6 else {"anonymous_id": f"a{i:06d}"}
        for j in range(rnd.choice((1, 1, 2, 3))):
            activities.append(
                {
                    "activity_id": f"la{i}-{j}",
                    "activity_type": rnd.choice(FUNNEL_TYPES),
                    "timestamp": _iso(rnd.randrange(span)),
                    "session_id": f"ls{i}-{j}",
                    **who,
                }
            )
    orders = []
    for i in range(CUSTOMERS):
        for j in range(rnd.choice((1, 1, 1, 1, 2, 3))):
            orders.append(
                {
                    "order_id": f"lo{i}-{j}",
                    "status": "paid" if rnd.random() < 0.97 else "cancelled",
                    "created_at": _iso(rnd.randrange(span)),
                    "customer": {"customer_id": f"c{i:06d}"},
                    "items": [
                        {
                            "product_id": f"p{rnd.randrange(50)}",
                            "quantity": rnd.randint(1, 3),
                            "unit_price": rnd.randrange(200, 20000) / 100,
                        }
                    ],
                    "discount_amount": rnd.choice((0.0, 0.0, 1.5)),
                }
            )
    return {"activities": activities, "orders": orders}


def ingest_direct(settings, records: dict[str, list[dict]]) -> None:
    """Store the records with the project's Ingestor: big bulk requests, two batches at a
    time, the indices' own refresh off while writing (the publisher's, once a second, stays)."""
    settings = settings.model_copy(update={"bulk_chunk_actions": 5000})
    indices = f"{settings.index_prefix}-*"

    async def go(es) -> None:
        ingestor = Ingestor.for_settings(es, settings)
        await IndexGuard(es, ingestor.names, auto_setup=True).ensure()
        for kind, write in (("activities", ingestor.activities), ("orders", ingestor.orders)):
            batch = records[kind]
            chunks = [batch[i : i + BATCH] for i in range(0, len(batch), BATCH)]
            for group in range(0, len(chunks), 2):
                results = await asyncio.gather(*(write(c, None) for c in chunks[group : group + 2]))
                for result in results:
                    assert not result.errors, result.errors[:3]
                if group == 0:  # the monthly indices exist now
                    await es.indices.put_settings(index=indices, settings={"index": {"refresh_interval": "-1"}})
        await es.indices.put_settings(index=indices, settings={"index": {"refresh_interval": "1s"}})
        await ingestor.finish()  # refreshed, and the data versions published

    with_async_es(settings, go)


@pytest.fixture(scope="module")
def data(client, settings):
    records = make_records()
    started = time.monotonic()
    ingest_direct(settings, records)
    print(
        f"ingested {len(records['activities']):,} activities and {len(records['orders']):,} orders "
        f"in {time.monotonic() - started:.1f} s"
    )
    return build_frames(records)


def test_funnel_is_exact(client, data):
    steps = ["product_view", "add_to_cart", "purchase"]  # actors have at most 3 activities
    body = get(client, "users/conversion", start=START.isoformat(), end=END.isoformat(), steps=",".join(steps))
    reached = funnel_oracle(data.activity, steps)
    assert reached[0] > 50_000 and reached[2] > 1_000
    assert [s["actors"] for s in body["steps"]] == reached
    for s, n in zip(body["steps"], reached, strict=True):
        assert s["conversion"] == pytest.approx(n / reached[0], abs=1e-4)


def test_activity_retention_is_exact(client, data):
    tz = "America/New_York"
    body = get(client, "users/retention", start=START.isoformat(), end=END.isoformat(), tz=tz, basis="activity")
    expected = retention_oracle(data.activity, "actor", "timestamp", START, END, tz, "month")
    assert sum(e["size"] for e in expected) > 90_000
    assert [(c["cohort"], c["size"], c["counts"]) for c in body["cohorts"]] == [
        (e["cohort"], e["size"], e["counts"]) for e in expected
    ]
    for got, want in zip(body["cohorts"], expected, strict=True):
        assert got["retention"] == pytest.approx(want["retention"], abs=1e-4)


def test_rfm_is_exact(client, data):
    params = {"start": START.isoformat(), "end": END.isoformat(), "tz": "UTC"}
    expected = rfm_oracle(data, START, END, "UTC")
    assert len(expected) > 95_000
    body = get(client, "users/segments", **params, type="rfm")
    assert body["total"] == len(expected)
    g = expected.groupby("segment").agg(
        customers=("customer_id", "count"), orders=("frequency", "sum"), monetary=("monetary_raw", "sum")
    )
    assert {s["key"]: s["customers"] for s in body["segments"] if s["customers"]} == g["customers"].to_dict()
    for s in body["segments"]:
        if s["customers"]:
            assert s["orders"] == g.loc[s["key"], "orders"]
            assert s["monetary"] == pytest.approx(g.loc[s["key"], "monetary"], abs=0.01)
    ordered = expected.sort_values(["monetary", "customer_id"], ascending=[False, True]).reset_index(drop=True)
    pages = -(-len(expected) // 1000)
    for page in (1, pages // 2, pages):
        body = get(client, "users/segments", **params, type="rfm", include_customers="true", page=page, page_size=1000)
        got = pd.DataFrame(body["customers"])
        want = ordered.iloc[(page - 1) * 1000 : page * 1000].reset_index(drop=True)
        assert list(got["customer_id"]) == list(want["customer_id"]), page
        for column in ("recency_days", "frequency", "r", "f", "m", "segment"):
            assert list(got[column]) == list(want[column]), (page, column)
        assert (got["monetary"] - want["monetary"]).abs().max() <= 0.01
