"""Alert rules on the real node with time moved by hand: an "orders per minute > N" rule, a
"revenue down 30 % on the same hour last week" rule across the end of summer time, and an
anomaly rule fire and resolve exactly when pandas, computing from the ingested records, says
they should; each measure's value is the API's number for the same window; store rules.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from analytics_service.app import create_app
from analytics_service.notifications.worker import NotificationOptions, NotificationWorker
from tests.conftest import KEYS, generate_records, headers, ingest_records, make_settings
from tests.live_data import order_at
from tests.oracle import SALE_STATUSES, build_frames

BERLIN = "Europe/Berlin"
# Monday after the end of summer time in Europe (25 October 2026): the same local hour one
# week earlier is an hour further from UTC.
WEEK0 = pd.Timestamp("2026-10-26", tz=BERLIN)
HOURS = range(9, 16)  # local hours with orders, every week
# The current week's orders per local hour, and the weeks before (the same templates per
# hour and position, so an equal count is an equal revenue).
CURRENT = {9: 4, 10: 1, 11: 4, 12: 12, 13: 0, 14: 4, 15: 4}
MINUTE0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
PER_MINUTE = [3, 5, 6, 2, 7, 7, 1, 0, 5, 9, 4, 4, 8, 2, 6, 6, 6, 1, 0, 3]
REPORTS_S1 = {"key": "test-reports-s1-key", "scopes": ["reports"], "store_id": "s1"}


class Clock:
    """The time every repository and worker of the test reads."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def build_records() -> dict[str, list[dict]]:
    templates = generate_records(seed=41, orders=200, activity=0, days=20)["orders"]
    rng = random.Random(5)
    orders: list[dict] = []

    def place(at: pd.Timestamp | datetime, template: dict, tag: str) -> None:
        orders.append(order_at(template, pd.Timestamp(at).to_pydatetime(), f"al-{tag}", store_id="default"))

    history = {h: [rng.randint(2, 5) for _ in range(4)] for h in HOURS}
    for hour in HOURS:
        pool = templates[hour * 12 : hour * 12 + 12]
        for week in range(5):
            count = CURRENT[hour] if week == 0 else (4 if week == 1 else history[hour][week - 1])
            start = (WEEK0 - pd.Timedelta(weeks=week)).tz_localize(None).tz_localize(BERLIN) + pd.Timedelta(hours=hour)
            for k in range(count):
                place(start + pd.Timedelta(minutes=4 * k + 1), pool[k % len(pool)], f"w{week}h{hour}k{k}")
    for minute, count in enumerate(PER_MINUTE):
        for k in range(count):
            at = MINUTE0 + timedelta(minutes=minute, seconds=6 * k + 1)
            place(at, templates[rng.randrange(len(templates))], f"m{minute}k{k}")
    # Another store's sales in the same minutes: never counted for store `default`... nor for a key of s1.
    for minute in range(0, 20, 3):
        place(MINUTE0 + timedelta(minutes=minute, seconds=30), templates[minute], f"s1m{minute}")
        orders[-1]["store_id"] = "s1"
    return {"orders": orders}


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(datetime(2026, 10, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def client(es_connection, prefix, tmp_path_factory, clock) -> Iterator[TestClient]:
    settings = make_settings(
        es_connection,
        prefix,
        tmp_path_factory.mktemp("alerts"),
        notifications_in_process=False,
        api_keys=json.dumps([*KEYS.values(), REPORTS_S1]),
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.app.state.notifications.service.repo.clock = clock
        yield test_client


@pytest.fixture(scope="module")
def records(client) -> dict[str, list[dict]]:
    data = build_records()
    ingest_records(client, data)
    return data


@pytest.fixture(scope="module")
def sales(records) -> pd.DataFrame:
    orders = build_frames(records).orders
    return orders[orders["is_sale"] & (orders["store_id"] == "default")]


@pytest.fixture(scope="module")
def worker(client) -> NotificationWorker:
    service = client.app.state.notifications.service
    return NotificationWorker(
        service.settings,
        service.worker.ctx,
        service.repo,
        service.reports,
        options=NotificationOptions(),
        worker_id="test-worker",
    )


def create_rule(client: TestClient, body: dict, key: str = "reports") -> dict:
    r = client.post("/api/v1/alerts", json=body, headers=headers(key))
    assert r.status_code == 201, r.text
    return r.json()


def run_slots(client: TestClient, worker: NotificationWorker, clock: Clock, slots: list[datetime]) -> None:
    """Move the clock to each evaluation time (a little after it) and let the worker do its round."""
    for slot in slots:
        clock.at = slot + timedelta(seconds=5)
        client.portal.call(worker.tick)


def incidents_of(client: TestClient, alert_id: str) -> list[tuple[str, str | None]]:
    r = client.get(
        "/api/v1/alerts/incidents", params={"alert_id": alert_id, "page_size": 100}, headers=headers("reports")
    )
    assert r.status_code == 200, r.text
    items = sorted(r.json()["items"], key=lambda i: i["opened_at"])
    return [(i["opened_at"], i["resolved_at"]) for i in items]


def expected_incidents(slots: list[datetime], firing: list[bool]) -> list[tuple[str, str | None]]:
    """(opened_at, resolved_at) of the runs of consecutive firing evaluations."""
    out, opened = [], None
    for slot, fires in zip(slots, firing):
        if fires and opened is None:
            opened = slot
        elif not fires and opened is not None:
            out.append((iso(opened), iso(slot)))
            opened = None
    if opened is not None:
        out.append((iso(opened), None))
    return out


def iso(at: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(at).tz_convert(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_times(pairs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    def norm(value: str | None) -> str | None:
        return None if value is None else iso(pd.Timestamp(value))

    return [(norm(a), norm(b)) for a, b in pairs]


def window_sum(sales: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, column: str | None) -> float:
    rows = sales[(sales["created_at"] >= start) & (sales["created_at"] < end)]
    return float(len(rows)) if column is None else float(rows[column].sum())


def growth(current: float, previous: float) -> float | None:
    return None if previous == 0 else round((current - previous) / abs(previous) * 100, 2)


def test_orders_per_minute_fires_and_resolves_when_pandas_says(client, records, sales, worker, clock):
    clock.at = MINUTE0 + timedelta(seconds=30)
    rule = create_rule(
        client,
        {
            "template": "orders_per_minute",
            "condition": {"type": "threshold", "operator": ">", "value": 4},
            "store_id": "default",
        },
    )
    assert rule["window"] == "1m" and rule["evaluate_every"] == "1m"
    first = datetime.fromisoformat(rule["next_evaluation_at"].replace("Z", "+00:00"))
    assert first == MINUTE0 + timedelta(minutes=1)
    slots = [first + timedelta(minutes=j) for j in range(21)]
    run_slots(client, worker, clock, slots)

    counts = [window_sum(sales, pd.Timestamp(s) - pd.Timedelta(minutes=1), pd.Timestamp(s), None) for s in slots]
    expected = expected_incidents(slots, [c > 4 for c in counts])
    assert len(expected) >= 2 and any(b for _, b in expected), expected  # the data fires and resolves
    assert api_times(incidents_of(client, rule["alert_id"])) == expected
    # Every evaluation ran once, and recorded the count pandas gives.
    r = client.get(f"/api/v1/alerts/{rule['alert_id']}/evaluations", headers=headers("reports"))
    assert r.status_code == 200, r.text
    recorded = sorted((pd.Timestamp(e["at"]), e["value"]) for e in r.json()["items"])
    assert recorded == [(pd.Timestamp(s), c) for s, c in zip(slots, counts)]
    assert client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports")).status_code == 204


def test_revenue_down_30_pct_on_the_same_hour_last_week_across_the_dst_change(client, records, sales, worker, clock):
    start = WEEK0 + pd.Timedelta(hours=9)
    clock.at = start.tz_convert(UTC).to_pydatetime() - timedelta(minutes=30)
    rule = create_rule(client, {"template": "revenue_drop", "tz": BERLIN, "store_id": "default"})
    assert rule["condition"] == {
        **rule["condition"],
        "type": "change",
        "compare_to": "last_week",
        "operator": "<=",
        "value": -30.0,
        "unit": "pct",
    }
    slots = [(start + pd.Timedelta(hours=h)).tz_convert(UTC).to_pydatetime() for h in range(1, 9)]
    run_slots(client, worker, clock, slots)

    firing = []
    for slot in slots:
        end = pd.Timestamp(slot).tz_convert(BERLIN)
        begin = end - pd.Timedelta(hours=1)
        # The hour starting at the same local time a week earlier (one hour further from UTC: summer time).
        first = (begin.tz_localize(None) - pd.Timedelta(weeks=1)).tz_localize(BERLIN)
        before = [first, first + (end - begin)]
        assert before[0].utcoffset() != begin.utcoffset()
        change = growth(
            window_sum(sales, begin, end, "gross_revenue"), window_sum(sales, before[0], before[1], "gross_revenue")
        )
        firing.append(change is not None and change <= -30)
    expected = expected_incidents(slots, firing)
    assert firing.count(True) >= 2 and any(b for _, b in expected), (firing, expected)
    assert api_times(incidents_of(client, rule["alert_id"])) == expected
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_anomaly_outside_the_band_of_the_same_hour_of_the_week(client, records, sales, worker, clock):
    start = WEEK0 + pd.Timedelta(hours=9)
    clock.at = start.tz_convert(UTC).to_pydatetime() - timedelta(minutes=30)
    rule = create_rule(
        client,
        {
            "measure": "orders",
            "window": "1h",
            "tz": BERLIN,
            "store_id": "default",
            "condition": {"type": "anomaly", "weeks": 4, "sensitivity": 2},
        },
    )
    slots = [(start + pd.Timedelta(hours=h)).tz_convert(UTC).to_pydatetime() for h in range(1, 9)]
    run_slots(client, worker, clock, slots)

    firing = []
    for slot in slots:
        end = pd.Timestamp(slot).tz_convert(BERLIN)
        begin = end - pd.Timedelta(hours=1)
        history = []
        for weeks in range(1, 5):
            a = (begin.tz_localize(None) - pd.Timedelta(weeks=weeks)).tz_localize(BERLIN)
            history.append(window_sum(sales, a, a + (end - begin), None))
        series = pd.Series(history)
        mean, std = series.mean(), series.std(ddof=1)
        value = window_sum(sales, begin, end, None)
        firing.append(bool(value > mean + 2 * std or value < mean - 2 * std))
    expected = expected_incidents(slots, firing)
    assert any(firing) and not all(firing), firing
    assert api_times(incidents_of(client, rule["alert_id"])) == expected
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


MEASURE_SOURCES = [
    ("orders", "/api/v1/analytics/financial/revenue", ("totals", "orders")),
    ("gross_revenue", "/api/v1/analytics/financial/revenue", ("totals", "gross_revenue")),
    ("net_revenue", "/api/v1/analytics/financial/revenue", ("totals", "net_revenue")),
    ("refunds", "/api/v1/analytics/financial/revenue", ("totals", "refunds")),
    ("aov", "/api/v1/analytics/dashboard", ("kpis", "aov")),
    ("units", "/api/v1/analytics/dashboard", ("kpis", "units")),
    ("payment_success_rate", "/api/v1/analytics/financial/payments", ("payments", "success_rate")),
]


@pytest.mark.parametrize(("measure", "path", "field"), MEASURE_SOURCES)
def test_a_measure_is_the_apis_number_for_the_window(client, records, sales, clock, measure, path, field):
    clock.at = datetime(2026, 10, 27, tzinfo=UTC)
    rule = create_rule(
        client,
        {
            "measure": measure,
            "window": "7d",
            "tz": BERLIN,
            "store_id": "default",
            "condition": {"type": "threshold", "operator": ">", "value": 0},
        },
    )
    r = client.post(
        f"/api/v1/alerts/{rule['alert_id']}/evaluate", params={"dry_run": "true"}, headers=headers("reports")
    )
    assert r.status_code == 200, r.text
    outcome = r.json()
    assert outcome["applied"] is False and outcome["events"] == []
    api = client.get(
        path,
        params={"start": outcome["window_start"], "end": outcome["window_end"], "tz": BERLIN, "store_id": "default"},
        headers=headers("read"),
    ).json()
    assert outcome["value"] == api[field[0]][field[1]]
    if measure in ("orders", "gross_revenue"):
        begin, end = pd.Timestamp(outcome["window_start"]), pd.Timestamp(outcome["window_end"])
        column = None if measure == "orders" else "gross_revenue"
        assert outcome["value"] == pytest.approx(window_sum(sales, begin, end, column), abs=0.005)
        assert outcome["value"] > 0
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_a_store_bound_key_sees_and_creates_only_its_stores_rules(client, records, clock):
    s1 = {"X-API-Key": REPORTS_S1["key"]}
    other = create_rule(client, {"template": "low_stock", "store_id": "default"})
    assert (
        client.post("/api/v1/alerts", json={"template": "low_stock", "store_id": "default"}, headers=s1).status_code
        == 403
    )
    own = client.post("/api/v1/alerts", json={"template": "orders_per_minute"}, headers=s1)
    assert own.status_code == 201 and own.json()["store_id"] == "s1"
    listed = client.get("/api/v1/alerts", headers=s1).json()
    assert [i["alert_id"] for i in listed["items"]] == [own.json()["alert_id"]]
    assert client.get(f"/api/v1/alerts/{other['alert_id']}", headers=s1).status_code == 404
    # The s1 rule counts s1's sales only.
    clock.at = MINUTE0 + timedelta(minutes=20)
    r = client.post(f"/api/v1/alerts/{own.json()['alert_id']}/evaluate?dry_run=true", headers=s1).json()
    s1_sales = build_frames(records).orders
    s1_sales = s1_sales[(s1_sales["store_id"] == "s1") & s1_sales["is_sale"]]
    window = s1_sales[
        (s1_sales["created_at"] >= pd.Timestamp(r["window_start"]))
        & (s1_sales["created_at"] < pd.Timestamp(r["window_end"]))
    ]
    assert r["value"] == len(window)
    for alert in (other, own.json()):
        client.delete(f"/api/v1/alerts/{alert['alert_id']}", headers=headers("reports"))


def test_per_product_days_of_cover_opens_one_incident_per_product(client, records, clock):
    clock.at = datetime(2026, 11, 20, tzinfo=UTC)
    # Products with a sale in the rule's 30 days before the clock (a cancelled or pending order
    # sells nothing: such a product has no days of cover).
    sold = {
        str(item["product_id"])
        for o in records["orders"]
        if "2026-10-21" <= o["created_at"] < "2026-11-20" and o["status"] in SALE_STATUSES
        for item in o["items"]
    }
    catalog = generate_records(seed=41, orders=200, activity=0, days=20)["products"]
    chosen = [p for p in catalog if str(p["product_id"]) in sold][:6]
    assert len(chosen) == 6
    # Three out of stock (0 days of cover), three with plenty.
    # Newer than the stored catalog (a product's newest state by updated_at is kept), whatever
    # the generated catalog's own times are.
    newer = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    stocked = [
        {**p, "store_id": "default", "stock_quantity": 0 if i < 3 else 100_000, "updated_at": newer}
        for i, p in enumerate(chosen)
    ]
    ingest_records(client, {"products": stocked})
    ids = [str(p["product_id"]) for p in stocked]
    rule = create_rule(
        client, {"template": "stock_out_imminent", "store_id": "default", "filters": {"product_ids": ids}}
    )
    r = client.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports"))
    assert r.status_code == 200, r.text
    inventory = client.get(
        "/api/v1/analytics/products/inventory",
        params={
            "start": r.json()["window_start"],
            "end": r.json()["window_end"],
            "store_id": "default",
            "limit": 1000,
            "tz": rule["tz"],
        },
        headers=headers("read"),
    ).json()
    cover = {i["key"]: i["days_of_cover"] for i in inventory["items"] if i["key"] in ids}
    expected = sorted(k for k, v in cover.items() if v is not None and v < 7)
    assert expected == sorted(ids[:3])
    fired = sorted(e["subject"] for e in r.json()["events"] if e["kind"] == "fired")
    assert fired == expected
    open_incidents = client.get(
        "/api/v1/alerts/incidents", params={"alert_id": rule["alert_id"], "status": "open"}, headers=headers("reports")
    ).json()
    assert sorted(i["subject"] for i in open_incidents["items"]) == expected
    # Evaluated again a minute later: still open, not opened twice (one open incident per rule and subject).
    clock.at += timedelta(minutes=1)
    again = client.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports")).json()
    assert again["applied"] is True and again["events"] == []
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_a_cooldown_keeps_a_subject_from_reopening_soon_after_it_resolved(client, records, sales, worker, clock):
    clock.at = MINUTE0 + timedelta(seconds=30)
    rule = create_rule(
        client,
        {
            "measure": "orders",
            "window": "1m",
            "store_id": "default",
            "cooldown": "4m",
            "condition": {"type": "threshold", "operator": ">", "value": 4},
        },
    )
    assert rule["cooldown"] == "4m"
    slots = [MINUTE0 + timedelta(minutes=j) for j in range(1, 22)]
    run_slots(client, worker, clock, slots)
    # pandas: the runs of firing evaluations, a new one opening only 4 minutes after the last resolution.
    firing = [window_sum(sales, pd.Timestamp(s) - pd.Timedelta(minutes=1), pd.Timestamp(s), None) > 4 for s in slots]
    expected, opened, resolved_at = [], None, None
    for slot, fires in zip(slots, firing):
        if fires and opened is None and (resolved_at is None or slot - resolved_at >= timedelta(minutes=4)):
            opened = slot
        elif not fires and opened is not None:
            expected.append((iso(opened), iso(slot)))
            opened, resolved_at = None, slot
    if opened is not None:
        expected.append((iso(opened), None))
    without = expected_incidents(slots, firing)
    assert len(expected) < len(without)  # the data has a flap the cooldown swallows
    assert api_times(incidents_of(client, rule["alert_id"])) == expected
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_patch_changes_a_rule_and_delete_closes_its_open_incidents(client, records, clock):
    clock.at = MINUTE0 + timedelta(minutes=10)
    rule = create_rule(
        client,
        {
            "measure": "orders",
            "window": "1h",
            "store_id": "default",
            "condition": {"type": "threshold", "operator": ">=", "value": 0},
        },
    )
    r = client.patch(
        f"/api/v1/alerts/{rule['alert_id']}",
        headers=headers("reports"),
        json={
            "name": "Renamed",
            "evaluate_every": "5m",
            "condition": {"type": "threshold", "operator": "<", "value": 3},
        },
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["name"] == "Renamed" and changed["evaluate_every"] == "5m"
    assert changed["condition"] == {"type": "threshold", "operator": "<", "value": 3.0}
    assert changed["measure"] == "orders" and changed["window"] == "1h"  # untouched
    bad = client.patch(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"), json={"window": "1 hour"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "body.window"
    bad = client.patch(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"), json={"measure": "x"})
    assert bad.status_code == 422
    assert client.get(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports")).json()["name"] == "Renamed"
    client.patch(
        f"/api/v1/alerts/{rule['alert_id']}",
        headers=headers("reports"),
        json={"condition": {"type": "threshold", "operator": ">=", "value": 0}},
    )
    fired = client.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports")).json()
    assert [e["kind"] for e in fired["events"]] == ["fired"]
    assert client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports")).status_code == 204
    assert client.get(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports")).status_code == 404
    (incident,) = client.get(
        "/api/v1/alerts/incidents", params={"alert_id": rule["alert_id"]}, headers=headers("reports")
    ).json()["items"]
    assert incident["status"] == "closed" and incident["resolved_at"]


def test_a_rule_that_fails_neither_blocks_the_others_nor_loses_its_evaluation(
    client, records, worker, clock, monkeypatch
):
    """Elasticsearch unreachable for one rule's measure: that evaluation is given back and runs
    again 30 s later (not advanced, not recorded as done); the other rule is evaluated meanwhile."""
    from elasticsearch import ConnectionError as ESConnectionError

    from analytics_service.notifications import evaluation as evaluation_module

    clock.at = MINUTE0 + timedelta(seconds=30)
    failing = create_rule(
        client,
        {
            "measure": "aov",
            "window": "1m",
            "store_id": "default",
            "condition": {"type": "threshold", "operator": ">", "value": 0},
        },
    )
    healthy = create_rule(
        client,
        {
            "measure": "orders",
            "window": "1m",
            "store_id": "default",
            "condition": {"type": "threshold", "operator": ">", "value": 100},
        },
    )
    real = evaluation_module.measure_values
    outage = {"on": True}

    async def flaky(ctx, measure, params, filters):
        if measure.name == "aov" and outage["on"]:
            raise ESConnectionError("connection refused")
        return await real(ctx, measure, params, filters)

    monkeypatch.setattr(evaluation_module, "measure_values", flaky)
    clock.at = MINUTE0 + timedelta(minutes=1, seconds=5)
    client.portal.call(worker.tick)
    evaluations = client.app.state.notifications.service.repo.evaluations
    assert [e.at for e in evaluations(healthy["alert_id"])] == [MINUTE0 + timedelta(minutes=1)]
    assert evaluations(failing["alert_id"]) == []
    row = client.get(f"/api/v1/alerts/{failing['alert_id']}", headers=headers("reports")).json()
    assert row["next_evaluation_at"].startswith(iso(MINUTE0 + timedelta(minutes=1))[:-1])  # not advanced
    clock.at += timedelta(seconds=10)
    client.portal.call(worker.tick)  # within the 30 s: not tried again yet
    assert evaluations(failing["alert_id"]) == []
    outage["on"] = False
    clock.at += timedelta(seconds=25)
    client.portal.call(worker.tick)
    assert [e.at for e in evaluations(failing["alert_id"])] == [MINUTE0 + timedelta(minutes=1)]
    for rule in (failing, healthy):
        client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_an_older_evaluation_applied_after_a_newer_one_leaves_the_incidents_alone(
    client, records, sales, worker, clock
):
    """A manual evaluation at 10:08 (no sale in its minute), then the worker's late evaluation
    of 10:01 (sales in its minute): the late one is recorded as firing, but no incident opens,
    because a newer evaluation had found the condition false."""
    clock.at = MINUTE0 + timedelta(seconds=30)
    rule = create_rule(
        client,
        {
            "measure": "orders",
            "window": "1m",
            "store_id": "default",
            "condition": {"type": "threshold", "operator": ">", "value": 0},
        },
    )
    clock.at = MINUTE0 + timedelta(minutes=8)
    manual = client.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports")).json()
    assert manual["outcome"] == "ok" and manual["value"] == 0
    late = MINUTE0 + timedelta(minutes=1)
    assert window_sum(sales, pd.Timestamp(MINUTE0), pd.Timestamp(late), None) > 0
    client.portal.call(worker.tick)
    recorded = {e.at: e.outcome for e in client.app.state.notifications.service.repo.evaluations(rule["alert_id"])}
    assert recorded[late] == "firing"
    assert incidents_of(client, rule["alert_id"]) == []
    client.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))
