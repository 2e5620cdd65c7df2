"""User activity endpoints (activity, behavior, engagement) against pandas over the raw
generated activity records (docs/metrics.md "Users and activity").

The oracle works on the records that were POSTed: actor = user_id, else anonymous_id;
times are converted to the requested zone with pandas. Two stores are ingested (the
main one, and a small `s1` one through a key bound to it), so unfiltered numbers span
both and the store filter is proved against the `s1` rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from analytics_service.analytics import runner, users
from tests.conftest import (
    analytics_get,
    assert_bad_parameter,
    assert_changes,
    generate_records,
    headers,
    ingest_records,
    post_records,
)
from tests.oracle import all_keys, bucket, build_frames, compared_period
from tests.periods import COMMON_BAD_PARAMETERS, ZONES

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

END = date(2026, 11, 15)
# Every period but the year-long ones holds New York's fall-back (1 November 2026);
# "day" and "week" hold Sao Paulo and New York days of 24, 25 (and UTC's) hours alike.
PERIODS = {
    "hour": (date(2026, 10, 31), date(2026, 11, 3)),
    "day": (date(2026, 10, 15), date(2026, 11, 10)),
    "week": (date(2026, 9, 2), date(2026, 11, 15)),
    "month": (date(2026, 6, 1), date(2026, 11, 15)),
    "quarter": (date(2026, 4, 10), date(2026, 11, 15)),
    "year": (date(2025, 1, 1), date(2026, 11, 15)),
}
S1_PERIOD = (date(2026, 10, 20), date(2026, 11, 15))


@pytest.fixture(scope="module")
def activity(client) -> pd.DataFrame:
    """Every activity record ingested, as a frame with `actor`, `device_type` and UTC `timestamp`."""
    main = generate_records(seed=11, orders=1000, activity=5000, days=150, end=END)
    ingest_records(client, main)
    s1 = generate_records(seed=5, orders=60, activity=400, days=25, end=END, store_id="s1")["activities"]
    assert {a["store_id"] for a in s1} == {"s1"}
    r = post_records(client, "activities", s1, key="ingest_s1")
    assert r.status_code == 200 and r.json()["indexed"] == len(s1), r.text
    frame = build_frames({"activities": main["activities"] + s1}).activity
    frame["device_type"] = frame["device"].map(lambda d: d.get("type") if isinstance(d, dict) else None)
    return frame


def get(client, path, key="read", **params):
    return analytics_get(client, f"users/{path}", key, **params)


def bounds(start, end, tz) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) as UTC instants; a date is 00:00 local, a datetime is local wall time."""

    def at(x):
        x = x if isinstance(x, datetime) else datetime.combine(x, datetime.min.time())
        return pd.Timestamp(x).tz_localize(tz).tz_convert("UTC")

    return at(start), at(end)


def within(frame: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    return frame[(frame["timestamp"] >= lo) & (frame["timestamp"] < hi)]


def ranked(counts: pd.Series) -> list[tuple[str, int]]:
    """(key, count) by count desc, then key asc."""
    return sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))


def oracle_activity(a: pd.DataFrame, tz: str, interval: str, keys: list[str]) -> dict:
    b = a.assign(k=bucket(a["timestamp"], tz, interval))
    per = b.groupby("k").agg(
        active_users=("actor", "nunique"), sessions=("session_id", "nunique"), events=("activity_id", "count")
    )
    per = per.reindex(keys, fill_value=0)
    return {
        "active_users": a["actor"].nunique(),
        "sessions": a["session_id"].nunique(),
        "events": len(a),
        "series": [{"key": k, **{c: int(per.loc[k, c]) for c in per.columns}} for k in keys],
    }


def oracle_engagement(a: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp, tz: str) -> dict:
    """docs/metrics.md "Users and activity", with its buckets: every local day of the period,
    every week (Monday) and month overlapping it, activity inside the period only."""
    first, last = lo.tz_convert(tz).date(), (hi - pd.Timedelta(1, "ns")).tz_convert(tz).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    week = lambda d: d - timedelta(days=d.weekday())  # noqa: E731
    month = lambda d: d.replace(day=1)  # noqa: E731
    local = a["timestamp"].dt.tz_convert(tz).dt.date
    per = {
        name: a.assign(b=local.map(f)).groupby("b")["actor"].nunique().sum() / len({f(d) for d in days})
        for name, f in (("dau", lambda d: d), ("wau", week), ("mau", month))
    }
    s = a.groupby("session_id")["timestamp"].agg(["count", "min", "max"])
    n = len(s)
    return {
        **per,
        "stickiness": per["dau"] / per["mau"] if per["mau"] else None,
        "active_users": a["actor"].nunique(),
        "sessions": n,
        "events": len(a),
        "avg_session_seconds": (s["max"] - s["min"]).dt.total_seconds().mean() if n else None,
        "bounce_rate": (s["count"] == 1).mean() if n else None,
        "events_per_session": len(a) / n if n else None,
        "days": len(days),
        "weeks": len({week(d) for d in days}),
        "months": len({month(d) for d in days}),
    }


def assert_engagement(body: dict, expected: dict) -> None:
    for name in ("active_users", "sessions", "events", "days", "weeks", "months"):
        assert body[name] == expected[name], name
    for name, tolerance in (
        ("dau", 0.01),
        ("wau", 0.01),
        ("mau", 0.01),
        ("avg_session_seconds", 0.01),
        ("events_per_session", 0.01),
        ("stickiness", 1e-4),
        ("bounce_rate", 1e-4),
    ):
        if expected[name] is None:
            assert body[name] is None, name
        else:
            assert body[name] == pytest.approx(expected[name], abs=tolerance), name


# -- users/activity ----------------------------------------------------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", list(PERIODS))
def test_activity_matches_pandas(client, activity, tz, interval):
    start, end = PERIODS[interval]
    body = get(client, "activity", start=start.isoformat(), end=end.isoformat(), tz=tz, interval=interval)
    a = within(activity, *bounds(start, end, tz))
    assert len(a) > 0
    keys = all_keys(start, end, tz, interval)
    expected = oracle_activity(a, tz, interval, keys)
    assert [p["key"] for p in body["series"]] == keys
    assert body["series"] == expected["series"]
    for name in ("active_users", "sessions", "events"):
        assert body[name] == expected[name], name
    by_type = ranked(a["activity_type"].value_counts())
    assert [(t["key"], t["count"]) for t in body["events_by_type"]] == by_type
    for t in body["events_by_type"]:
        assert t["share"] == pytest.approx(t["count"] / len(a), abs=1e-4)
    assert body["period"]["tz"] == tz and body["period"]["interval"] == interval
    assert body["comparison"] is None


def test_activity_sessions_across_buckets_count_in_each(client, activity):
    """Hour buckets split sessions: the series counts a session in every hour it is active in."""
    start, end = PERIODS["hour"]
    body = get(client, "activity", start=start.isoformat(), end=end.isoformat(), interval="hour")
    a = within(activity, *bounds(start, end, "UTC"))
    spanning = a.assign(k=bucket(a["timestamp"], "UTC", "hour")).groupby("session_id")["k"].nunique()
    assert (spanning > 1).any()  # the data has such sessions, so the test below means something
    assert sum(p["sessions"] for p in body["series"]) == body["sessions"] + int((spanning - 1).sum())


@pytest.mark.parametrize("compare, shift", [("previous_period", None), ("previous_year", "year")])
def test_activity_comparison(client, activity, compare, shift):
    tz = "America/New_York"
    start, end = date(2026, 10, 20), date(2026, 11, 10)
    body = get(client, "activity", start=start.isoformat(), end=end.isoformat(), tz=tz, compare=compare)
    prev_start, prev_end = compared_period(start, end, compare)
    prev, now = within(activity, *bounds(prev_start, prev_end, tz)), within(activity, *bounds(start, end, tz))
    c = body["comparison"]
    assert c["active_users"] == prev["actor"].nunique() and c["sessions"] == prev["session_id"].nunique()
    assert c["events"] == len(prev)

    def kpis(frame):
        return {
            "active_users": frame["actor"].nunique(),
            "sessions": frame["session_id"].nunique(),
            "events": len(frame),
        }

    assert_changes(c, kpis(now), kpis(prev), has_data=len(prev) > 0)


# -- users/behavior ----------------------------------------------------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("period, limit", [(PERIODS["day"], None), ((date(2026, 2, 20), date(2026, 11, 15)), 5)])
def test_behavior_matches_pandas(client, activity, tz, period, limit):
    start, end = period
    params = {"start": start.isoformat(), "end": end.isoformat(), "tz": tz}
    if limit:
        params["limit"] = limit
    body = get(client, "behavior", **params)
    a = within(activity, *bounds(start, end, tz))
    assert body["events"] == len(a) and body["active_users"] == a["actor"].nunique()
    assert [(t["key"], t["count"]) for t in body["events_by_type"]] == ranked(a["activity_type"].value_counts())
    # heatmap: every local weekday x hour, cell by cell
    local = a["timestamp"].dt.tz_convert(tz)
    cells = a.groupby([local.dt.day_of_week, local.dt.hour]).size()
    assert [(c["weekday"], c["hour"]) for c in body["heatmap"]] == [(d, h) for d in range(7) for h in range(24)]
    for c in body["heatmap"]:
        assert c["count"] == int(cells.get((c["weekday"], c["hour"]), 0)), c
    assert sum(c["count"] for c in body["heatmap"]) == len(a)
    # top pages among page views
    views = a[a["activity_type"] == "page_view"]
    assert body["page_views"] == len(views)
    expected_pages = ranked(views["page_url"].value_counts())[: limit or 10]
    assert [(p["key"], p["views"]) for p in body["top_pages"]] == expected_pages
    for p in body["top_pages"]:
        assert p["share"] == pytest.approx(p["views"] / len(views), abs=1e-4)
    # devices: distinct actors per device type, share of active users
    devices = ranked(a.groupby(a["device_type"].fillna("unknown"))["actor"].nunique())
    assert [(d["key"], d["actors"]) for d in body["devices"]] == devices
    for d in body["devices"]:
        assert d["share"] == pytest.approx(d["actors"] / a["actor"].nunique(), abs=1e-4)


def test_heatmap_folds_the_repeated_fall_back_hour(client, activity):
    """1 November 2026 in New York has two local 01:00 hours: both land in (Sunday, 1)."""
    tz = "America/New_York"
    body = get(client, "behavior", start="2026-11-01", end="2026-11-02", tz=tz)
    a = within(activity, *bounds(date(2026, 11, 1), date(2026, 11, 2), tz))
    local = a["timestamp"].dt.tz_convert(tz)
    cell = {(c["weekday"], c["hour"]): c["count"] for c in body["heatmap"]}
    assert len(cell) == 168
    assert all(n == 0 for (d, _), n in cell.items() if d != 6)
    assert cell[(6, 1)] == int((local.dt.hour == 1).sum())
    assert sum(cell.values()) == len(a) > 0


# -- users/engagement --------------------------------------------------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", list(PERIODS))
def test_engagement_matches_pandas(client, activity, tz, interval):
    start, end = PERIODS[interval]
    body = get(client, "engagement", start=start.isoformat(), end=end.isoformat(), tz=tz, interval=interval)
    lo, hi = bounds(start, end, tz)
    a = within(activity, lo, hi)
    assert_engagement(body, oracle_engagement(a, lo, hi, tz))
    keys = all_keys(start, end, tz, interval)
    series = oracle_activity(a, tz, interval, keys)["series"]
    assert body["series"] == series


@pytest.mark.parametrize("tz", ZONES)
def test_engagement_partial_days_and_comparison(client, activity, tz):
    """A period with times: the days it overlaps are the DAU buckets, sessions cut at its edges
    count only their activity inside; the previous period has the same length."""
    start, end = datetime(2026, 10, 24, 10, 30), datetime(2026, 11, 9, 15, 0)
    body = get(
        client,
        "engagement",
        start=start.isoformat(),
        end=end.isoformat(),
        tz=tz,
        interval="week",
        compare="previous_period",
    )
    lo, hi = bounds(start, end, tz)
    now = oracle_engagement(within(activity, lo, hi), lo, hi, tz)
    assert_engagement(body, now)
    assert body["days"] == 17
    prev_lo, prev_hi = lo - (hi - lo), lo
    prev = oracle_engagement(within(activity, prev_lo, prev_hi), prev_lo, prev_hi, tz)
    c = body["comparison"]
    assert c["sessions"] == prev["sessions"] and c["active_users"] == prev["active_users"]
    for name in ("dau", "wau", "mau", "avg_session_seconds", "events_per_session"):
        assert c[name] == pytest.approx(prev[name], abs=0.01), name
    for name in ("stickiness", "bounce_rate"):
        assert c[name] == pytest.approx(prev[name], abs=1e-4), name
    kpis = [name for name in now if name not in ("days", "weeks", "months")]
    assert_changes(c, {k: now[k] for k in kpis}, prev)
    assert c["up_is_good"]["bounce_rate"] is False and c["up_is_good"]["sessions"] is True


def test_engagement_of_an_empty_period(client, activity):
    body = get(client, "engagement", start="2020-01-01", end="2020-03-01")
    assert body["dau"] == body["wau"] == body["mau"] == 0 and body["sessions"] == 0
    assert body["stickiness"] is None and body["avg_session_seconds"] is None and body["bounce_rate"] is None
    assert body["days"] == 60 and body["weeks"] == 9 and body["months"] == 2
    assert all(p["active_users"] == 0 and p["sessions"] == 0 for p in body["series"]) and len(body["series"]) == 60


# -- exact paths: many composite pages, truncated top-page lists -------------------------


def test_results_are_exact_across_composite_pages(client, activity, monkeypatch):
    """With tiny composite pages an actor's or a session's buckets straddle pages: still exact.
    Top pages fall back to counting every page when a shard truncated its list."""
    monkeypatch.setattr(runner, "COMPOSITE_PAGE", 7)
    monkeypatch.setattr(users, "PAGES_SHARD_SIZE", 1)
    pages: list[int] = []
    composite = runner.QueryContext.composite

    def spy(self, family, query, sources, aggs=None):
        pages.append(len(sources) == 1 and "p" in sources[0])
        return composite(self, family, query, sources, aggs)

    monkeypatch.setattr(runner.QueryContext, "composite", spy)
    tz, start, end = "America/New_York", date(2026, 9, 25), date(2026, 11, 5)  # not asked before: not cached
    lo, hi = bounds(start, end, tz)
    a = within(activity, lo, hi)
    act = get(client, "activity", start=start.isoformat(), end=end.isoformat(), tz=tz, interval="week")
    expected = oracle_activity(a, tz, "week", all_keys(start, end, tz, "week"))
    assert act["active_users"] == expected["active_users"] and act["sessions"] == expected["sessions"]
    assert act["series"] == expected["series"]
    eng = get(client, "engagement", start=start.isoformat(), end=end.isoformat(), tz=tz, interval="week")
    assert_engagement(eng, oracle_engagement(a, lo, hi, tz))
    beh = get(client, "behavior", start=start.isoformat(), end=end.isoformat(), tz=tz, limit=4)
    views = a[a["activity_type"] == "page_view"]
    assert [(p["key"], p["views"]) for p in beh["top_pages"]] == ranked(views["page_url"].value_counts())[:4]
    assert any(pages)  # the terms list was truncated, so every page was counted
    local = a["timestamp"].dt.tz_convert(tz)
    cells = a.groupby([local.dt.day_of_week, local.dt.hour]).size()
    assert all(c["count"] == int(cells.get((c["weekday"], c["hour"]), 0)) for c in beh["heatmap"])


# -- stores, parameters ------------------------------------------------------------------


def test_store_bound_key_and_store_filter(client, activity):
    start, end = S1_PERIOD
    params = {"start": start.isoformat(), "end": end.isoformat(), "tz": "America/Sao_Paulo"}
    lo, hi = bounds(start, end, "America/Sao_Paulo")
    a = within(activity, lo, hi)
    s1, default = a[a["store_id"] == "s1"], a[a["store_id"] == "default"]
    assert len(s1) and len(default)
    bound = get(client, "activity", key="read_s1", **params)
    filtered = get(client, "activity", store_id="s1", **params)
    for body in (bound, filtered):
        assert body["active_users"] == s1["actor"].nunique() and body["sessions"] == s1["session_id"].nunique()
        assert body["events"] == len(s1)
    other = get(client, "activity", store_id="default", **params)
    assert other["events"] == len(default) and other["active_users"] == default["actor"].nunique()
    everything = get(client, "activity", **params)
    assert everything["events"] == len(a)
    eng = get(client, "engagement", key="read_s1", **params)
    assert_engagement(eng, oracle_engagement(s1, lo, hi, "America/Sao_Paulo"))
    beh = get(client, "behavior", key="read_s1", **params)
    assert beh["events"] == len(s1) and beh["active_users"] == s1["actor"].nunique()
    assert sum(c["count"] for c in beh["heatmap"]) == len(s1)
    r = client.get("/api/v1/analytics/users/activity", params={"store_id": "default"}, headers=headers("read_s1"))
    assert r.status_code == 403


@pytest.mark.parametrize("path", ["activity", "behavior", "engagement"])
@pytest.mark.parametrize(
    "params, field",
    [*COMMON_BAD_PARAMETERS, ({"channel": "web"}, "query.channel"), ({"store_id": " "}, "query.store_id")],
)
def test_bad_parameters_are_422_naming_them(client, path, params, field):
    assert_bad_parameter(client, f"users/{path}", params, field)


@pytest.mark.parametrize("path", ["activity", "engagement"])
def test_too_many_series_buckets_are_422(client, path):
    params = {"start": "2020-01-01", "end": "2026-01-01", "interval": "hour"}
    assert_bad_parameter(client, f"users/{path}", params, "query.interval")


def test_behavior_has_no_series_so_any_interval_is_fine(client, activity):
    body = get(client, "behavior", start="2020-01-01", end="2026-11-15", interval="hour")
    assert body["events"] == len(within(activity, *bounds(date(2020, 1, 1), END, "UTC")))


@pytest.mark.parametrize("path", ["activity", "behavior", "engagement"])
def test_scopes(client, path):
    assert client.get(f"/api/v1/analytics/users/{path}").status_code == 401
    assert client.get(f"/api/v1/analytics/users/{path}", headers=headers("ingest")).status_code == 403


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    for path in ("activity", "behavior", "engagement"):
        assert f"/api/v1/analytics/users/{path}" in spec["paths"]
    schemas = spec["components"]["schemas"]
    for name in ("UserActivityResponse", "BehaviorResponse", "EngagementResponse"):
        assert "example" in schemas[name], name
        assert all("description" in f for n, f in schemas[name]["properties"].items() if n not in ("period", "cached"))
