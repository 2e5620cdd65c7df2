"""Product endpoints (performance, inventory, reviews, search) against pandas over the
generated records (docs/metrics.md "Products and inventory", "Users and activity").

The oracle below works from the raw records that were POSTed (tests/oracle.py frames
plus a few columns built here), never from Elasticsearch or the service's code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tests import oracle, periods
from tests.conftest import analytics_get as get
from tests.conftest import (
    bad_parameters_test,
    generate_records,
    headers,
    ingest_records,
    post_records,
)
from tests.oracle import all_keys, bucket, build_frames, in_period
from tests.periods import AUTUMN, YEAR, ZONES

pytestmark = pytest.mark.oracle  # also run on the 3-shard cluster (README "Tests")

# A spring period of this module's own (New York's DST starts on 8 March, inside it).
SPRING = (date(2026, 2, 25), date(2026, 3, 20))
PERIODS = [AUTUMN, SPRING, YEAR]
INTERVAL_PERIODS = {**periods.INTERVAL_PERIODS, "hour": (date(2026, 10, 31), date(2026, 11, 3)), "week": SPRING}
MONEY, RATE = 0.01, 1e-4


def each_zone_and_period(test):
    """Parametrizes `test` by tz (ZONES) and period (PERIODS: autumn, spring, year)."""
    by_period = pytest.mark.parametrize("period", PERIODS, ids=["autumn", "spring", "year"])
    return pytest.mark.parametrize("tz", ZONES)(by_period(test))


# -- data ------------------------------------------------------------------------------------


def catalog_updates(products: list[dict]) -> list[dict]:
    """Later states of a few catalog records (the newest updated_at must win) and one stale one."""
    a, b, c = products[0], products[1], products[2]
    newer = "2026-11-14T12:00:00Z"
    older = "2025-01-01T00:00:00Z"
    return [
        {**a, "stock_quantity": 0, "updated_at": newer},  # now out of stock
        {**b, "stock_quantity": b["reorder_point"], "cost": round(b["cost"] * 1.1, 2), "updated_at": newer},
        {**c, "stock_quantity": c["stock_quantity"] + 1000, "updated_at": older},  # older: ignored
    ]


@pytest.fixture(scope="module")
def data(client):
    records = generate_records(seed=23, orders=1200, activity=6000, days=420, end=date(2026, 11, 15))
    ingest_records(client, records)
    updates = catalog_updates(records["products"])
    r = post_records(client, "products", updates)
    assert r.status_code == 200 and r.json()["indexed"] == 2 and r.json()["stale"] == 1, r.text
    records["products"] = records["products"] + updates
    frames = build_frames(records)
    frames.records = records
    return frames


def period_params(start: date, end: date, tz: str, **more) -> dict:
    """The generated store's period (store "default"; the `big` fixture's store is another)."""
    return periods.period_params(start, end, tz, **{"store_id": "default", **more})


def latest_catalog(products: pd.DataFrame) -> pd.DataFrame:
    """Each product's record with the newest updated_at."""
    p = products.assign(updated=pd.to_datetime(products["updated_at"], utc=True, format="ISO8601"))
    return p.sort_values("updated").groupby("product_id").tail(1).set_index("product_id")


def sale_lines(frames, start, end, tz, channel=None) -> pd.DataFrame:
    lines = oracle.sale_lines(frames, start, end, tz)
    if channel:
        lines = lines[lines["channel"] == channel]
    return lines


def activity_in(frames, start, end, tz, *types) -> pd.DataFrame:
    act = in_period(frames.activity, "timestamp", start, end, tz)
    return act[act["activity_type"].isin(types)]


def sales_by_product(lines: pd.DataFrame) -> pd.DataFrame:
    costed = lines["line_cogs"].notna()
    return (
        lines.assign(
            costed_revenue=lines["line_revenue"].where(costed, 0.0),
            no_cost=(~costed).astype(int),
            cogs=lines["line_cogs"].fillna(0.0),
        )
        .groupby("product_id")
        .agg(
            units=("quantity", "sum"),
            gross_revenue=("line_revenue", "sum"),
            orders=("order_id", "nunique"),
            cogs=("cogs", "sum"),
            costed_revenue=("costed_revenue", "sum"),
            lines_without_cost=("no_cost", "sum"),
            lines=("line", "count"),
        )
    )


def top_order(values: dict[str, float | None], descending: bool = True, digits: int = 2) -> list[str]:
    """Keys by the rounded measure (what the response shows), empty ones last, ties by key."""

    def order(key):
        v = values[key]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return (1, 0.0, key)
        v = round(v, digits)
        return (0, -v if descending else v, key)

    return sorted(values, key=order)


def approx(value, expected, tol):
    if expected is None or (isinstance(expected, float) and np.isnan(expected)):
        return value is None
    return value is not None and abs(value - expected) <= tol


# -- performance ------------------------------------------------------------------------------


def performance_oracle(frames, start, end, tz, channel=None) -> pd.DataFrame:
    sales = sales_by_product(sale_lines(frames, start, end, tz, channel))
    act = activity_in(frames, start, end, tz, "product_view", "add_to_cart")
    act = act[act["product_id"].notna()]
    views = act[act["activity_type"] == "product_view"]
    engagement = pd.DataFrame(
        {
            "views": views.groupby("product_id").size(),
            "viewers": views[views["actor"].notna()].groupby("product_id")["actor"].nunique(),
            "add_to_carts": act[act["activity_type"] == "add_to_cart"].groupby("product_id").size(),
        }
    )
    # "bought": the viewer is a user whose user_id is the customer_id of a sale containing the product
    viewed_by_users = views[views["user_id"].notna()][["product_id", "user_id"]].drop_duplicates()
    buyers = sale_lines(frames, start, end, tz, channel)[["product_id", "customer_id"]].drop_duplicates()
    both = viewed_by_users.merge(buyers, left_on=["product_id", "user_id"], right_on=["product_id", "customer_id"])
    engagement["viewers_who_bought"] = both.groupby("product_id").size()
    out = sales.join(engagement, how="outer").fillna(0)
    has_cost = out["lines"] > out["lines_without_cost"]  # profit only where some sale line has a cost
    out["gross_profit"] = (out["costed_revenue"] - out["cogs"]).where(has_cost)
    out["margin"] = (out["gross_profit"] / out["costed_revenue"]).where(has_cost & (out["costed_revenue"] != 0))
    out["avg_price"] = (out["gross_revenue"] / out["units"]).where(out["units"] > 0)
    out["view_to_purchase"] = (out["viewers_who_bought"] / out["viewers"]).where(out["viewers"] > 0)
    return out


def check_performance_item(item, row, name):
    assert item["name"] == name
    for count in ("units", "orders", "lines_without_cost", "views", "viewers", "add_to_carts", "viewers_who_bought"):
        assert item[count] == int(row[count]), (item["key"], count)
    for m in ("gross_revenue", "cogs", "gross_profit", "avg_price"):
        assert approx(item[m], row[m], MONEY), (item["key"], m, item[m], row[m])
    for rate in ("margin", "view_to_purchase"):
        assert approx(item[rate], row[rate], RATE), (item["key"], rate, item[rate], row[rate])


@each_zone_and_period
def test_performance_every_product_matches_pandas(client, data, tz, period):
    start, end = period
    body = get(client, "products/performance", **period_params(start, end, tz, limit=1000))
    expected = performance_oracle(data, start, end, tz)
    names = latest_catalog(data.products)["name"]
    assert body["products"] == len(expected)
    assert [i["key"] for i in body["items"]] == top_order(expected["gross_revenue"].to_dict())
    for item in body["items"]:
        check_performance_item(item, expected.loc[item["key"]], names.get(item["key"]))
    # the data exercise every part of the definitions
    assert expected["viewers_who_bought"].sum() > 0 and expected["lines_without_cost"].sum() > 0
    assert (expected["viewers"] > expected["viewers_who_bought"]).any()


@pytest.mark.parametrize(
    "sort, column, digits",
    [("units", "units", 0), ("views", "views", 0), ("margin", "margin", 4), ("revenue", "gross_revenue", 2)],
)
def test_performance_sorts_and_limit(client, data, sort, column, digits):
    start, end = YEAR
    body = get(client, "products/performance", **period_params(start, end, "America/New_York", sort=sort, limit=15))
    expected = performance_oracle(data, start, end, "America/New_York")
    assert body["sort"] == sort
    assert [i["key"] for i in body["items"]] == top_order(expected[column].to_dict(), digits=digits)[:15]


def test_performance_channel_filters_the_sales_side(client, data):
    start, end = YEAR
    body = get(client, "products/performance", **period_params(start, end, "UTC", channel="mobile", limit=1000))
    expected = performance_oracle(data, start, end, "UTC", channel="mobile")
    names = latest_catalog(data.products)["name"]
    assert len(body["items"]) == len(expected)
    for item in body["items"]:
        check_performance_item(item, expected.loc[item["key"]], names.get(item["key"]))


def test_performance_viewers_are_looked_up_a_chunk_at_a_time(client, data, monkeypatch):
    """Viewers who bought come from the viewers' purchases, TERMS_CHUNK ids a request: small
    chunks give the pandas numbers too."""
    from analytics_service.analytics import products

    start, end = YEAR
    monkeypatch.setattr(products, "TERMS_CHUNK", 3)
    body = get(client, "products/performance", **period_params(start, end, "Europe/Berlin", limit=999))
    expected = performance_oracle(data, start, end, "Europe/Berlin")
    names = latest_catalog(data.products)["name"]
    assert body["cached"] is False and len(body["items"]) == len(expected)
    for item in body["items"]:
        check_performance_item(item, expected.loc[item["key"]], names.get(item["key"]))
    assert expected["viewers_who_bought"].sum() > 3


# -- inventory --------------------------------------------------------------------------------


def abc_oracle(revenue: pd.Series) -> pd.Series:
    """A while the cumulative share before a product is < 80 % (the crossing one is A), B < 95 %, else C."""
    cents = revenue.round(2)
    positive = cents[cents > 0].rename("revenue").rename_axis("key").reset_index()
    ordered = positive.sort_values(["revenue", "key"], ascending=[False, True]).set_index("key")["revenue"]
    share = (ordered.cumsum() - ordered) / ordered.sum()
    classes = pd.Series(np.select([share < 0.80, share < 0.95], ["A", "B"], "C"), index=ordered.index)
    return classes.reindex(revenue.index, fill_value="C")


def inventory_oracle(frames, start, end, tz) -> pd.DataFrame:
    catalog = latest_catalog(frames.products)
    sales = sales_by_product(sale_lines(frames, start, end, tz))
    out = catalog[["name", "stock_quantity", "reorder_point", "cost", "active"]].join(
        sales[["units", "gross_revenue", "cogs"]], how="outer"
    )
    out[["units", "gross_revenue", "cogs"]] = out[["units", "gross_revenue", "cogs"]].fillna(0)
    days = (end - start).days  # local calendar days: a DST day is one day
    out["avg_daily_units"] = out["units"] / days
    out["days_of_cover"] = (out["stock_quantity"] / out["avg_daily_units"]).where(out["units"] > 0)
    out["low_stock"] = out["stock_quantity"] <= out["reorder_point"]
    out["out_of_stock"] = out["stock_quantity"] == 0
    out["stock_value"] = out["stock_quantity"] * out["cost"]
    out["turnover"] = (out["cogs"] / out["stock_value"]).where(out["stock_value"] > 0)
    out["slow_mover"] = (out["stock_quantity"] > 0) & (out["units"] == 0)
    out["abc_class"] = abc_oracle(out["gross_revenue"])
    return out


@each_zone_and_period
def test_inventory_every_product_matches_pandas(client, data, tz, period):
    start, end = period
    body = get(client, "products/inventory", **period_params(start, end, tz, limit=1000))
    expected = inventory_oracle(data, start, end, tz)
    assert body["days"] == (end - start).days
    assert len(body["items"]) == len(expected)
    assert [i["key"] for i in body["items"]] == top_order(expected["gross_revenue"].to_dict())
    for item in body["items"]:
        row = expected.loc[item["key"]]
        assert item["name"] == row["name"] and item["in_catalog"] and item["active"] == row["active"]
        assert item["stock"] == row["stock_quantity"] and item["reorder_point"] == row["reorder_point"]
        assert item["units"] == row["units"]
        assert item["abc_class"] == row["abc_class"], item["key"]
        for flag in ("low_stock", "out_of_stock", "slow_mover"):
            assert item[flag] == bool(row[flag]), (item["key"], flag)
        for m in ("gross_revenue", "cogs", "stock_value"):
            assert approx(item[m], row[m], MONEY), (item["key"], m)
        assert approx(item["days_of_cover"], row["days_of_cover"], 0.01), item["key"]
        assert approx(item["avg_daily_units"], row["avg_daily_units"], RATE)
        assert approx(item["turnover"], row["turnover"], RATE), item["key"]
    s = body["summary"]
    assert s["products"] == s["matched"] == len(expected)
    assert s["low_stock"] == expected["low_stock"].sum() and s["out_of_stock"] == expected["out_of_stock"].sum()
    assert s["slow_movers"] == expected["slow_mover"].sum()
    assert s["stock_value"] == pytest.approx(expected["stock_value"].sum(), abs=MONEY)
    assert s["units"] == expected["units"].sum()
    assert s["gross_revenue"] == pytest.approx(expected["gross_revenue"].sum(), abs=MONEY)
    assert s["cogs"] == pytest.approx(expected["cogs"].sum(), abs=MONEY)
    assert s["abc"] == {c: int((expected["abc_class"] == c).sum()) for c in "ABC"}
    assert s["abc"]["A"] and s["abc"]["B"] and s["abc"]["C"] and s["slow_movers"] and s["out_of_stock"]


def test_inventory_uses_the_latest_catalog_record(client, data):
    body = get(client, "products/inventory", **period_params(*AUTUMN, "UTC", sort="key", limit=1000))
    first, second, third = data.records["products"][:3]
    items = {i["key"]: i for i in body["items"]}
    assert items[first["product_id"]]["stock"] == 0 and items[first["product_id"]]["out_of_stock"]
    assert items[second["product_id"]]["stock"] == second["reorder_point"] and items[second["product_id"]]["low_stock"]
    assert items[second["product_id"]]["stock_value"] == pytest.approx(
        second["reorder_point"] * round(second["cost"] * 1.1, 2), abs=MONEY
    )
    assert items[third["product_id"]]["stock"] == third["stock_quantity"]  # the older update was ignored
    assert [i["key"] for i in body["items"]] == sorted(items)


@pytest.mark.parametrize(
    "sort, column, descending",
    [
        ("units", "units", True),
        ("stock", "stock_quantity", False),
        ("stock_value", "stock_value", True),
        ("days_of_cover", "days_of_cover", False),
        ("turnover", "turnover", True),
    ],
)
def test_inventory_sorts(client, data, sort, column, descending):
    start, end = AUTUMN
    body = get(client, "products/inventory", **period_params(start, end, "America/Sao_Paulo", sort=sort, limit=20))
    expected = inventory_oracle(data, start, end, "America/Sao_Paulo")
    digits = {"days_of_cover": 2, "turnover": 4}.get(sort, 2)
    assert [i["key"] for i in body["items"]] == top_order(expected[column].to_dict(), descending, digits)[:20]


@pytest.mark.parametrize("tz", ZONES)
def test_inventory_filters(client, data, tz):
    start, end = AUTUMN
    expected = inventory_oracle(data, start, end, tz)
    low = get(client, "products/inventory", **period_params(start, end, tz, low_stock="true", limit=1000))
    want = expected[expected["low_stock"]]
    assert low["summary"]["matched"] == len(want) and low["summary"]["products"] == len(expected)
    assert [i["key"] for i in low["items"]] == top_order(want["gross_revenue"].to_dict())
    not_low = get(client, "products/inventory", **period_params(start, end, tz, low_stock="false", limit=1000))
    assert not_low["summary"]["matched"] == len(expected) - len(want)
    for cls in "ABC":
        body = get(client, "products/inventory", **period_params(start, end, tz, abc_class=cls, limit=5))
        want = expected[expected["abc_class"] == cls]
        assert body["summary"]["matched"] == len(want)
        assert [i["key"] for i in body["items"]] == top_order(want["gross_revenue"].to_dict())[:5]
    both = get(
        client,
        "products/inventory",
        **period_params(start, end, tz, abc_class="C", low_stock="true", sort="key", limit=1000),
    )
    want = expected[(expected["abc_class"] == "C") & expected["low_stock"]]
    assert [i["key"] for i in both["items"]] == sorted(want.index)


def test_abc_boundaries_by_hand():
    """The crossing product is A (and B); an exact 80 % stops A at that product."""
    from analytics_service.analytics.products import abc_classes

    assert abc_classes({"a": 70, "b": 20, "c": 6, "d": 4, "e": 0}) == {"a": "A", "b": "A", "c": "B", "d": "C", "e": "C"}
    assert abc_classes({"a": 80, "b": 15, "c": 5}) == {"a": "A", "b": "B", "c": "C"}
    assert abc_classes({"b": 50, "a": 50}) == {"a": "A", "b": "A"}
    assert abc_classes({}) == {}


# -- reviews ----------------------------------------------------------------------------------


def reviews_in(frames, start, end, tz) -> pd.DataFrame:
    rev = activity_in(frames, start, end, tz, "review")
    return rev[rev["rating"].notna()]


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("min_reviews", [1, 2, 3])
def test_reviews_match_pandas(client, data, tz, min_reviews):
    start, end = YEAR
    body = get(
        client,
        "products/reviews",
        **period_params(start, end, tz, min_reviews=min_reviews, limit=1000, interval="month"),
    )
    rev = reviews_in(data, start, end, tz)
    assert len(rev) > 30
    assert body["count"] == len(rev)
    assert body["average_rating"] == pytest.approx(rev["rating"].mean(), abs=RATE)
    counts = rev["rating"].astype(int).value_counts()
    assert body["distribution"] == [{"rating": n, "count": int(counts.get(n, 0))} for n in range(1, 6)]
    per = rev.groupby("product_id")["rating"].agg(["count", "mean"]).reset_index()
    per = per[per["count"] >= min_reviews]
    per = per.assign(avg=per["mean"].round(4)).sort_values(
        ["avg", "count", "product_id"], ascending=[False, False, True]
    )
    assert body["min_reviews"] == min_reviews and body["reviewed_products"] == len(per)
    names = latest_catalog(data.products)["name"]
    assert [p["key"] for p in body["products"]] == list(per["product_id"])
    for p, (_, row) in zip(body["products"], per.iterrows(), strict=True):
        assert p["count"] == row["count"] and p["average_rating"] == pytest.approx(row["mean"], abs=RATE)
        assert p["name"] == names[p["key"]]


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", list(INTERVAL_PERIODS))
def test_review_series_every_interval(client, data, tz, interval):
    start, end = INTERVAL_PERIODS[interval]
    body = get(client, "products/reviews", **period_params(start, end, tz, interval=interval, limit=3))
    rev = reviews_in(data, start, end, tz)
    keys = all_keys(start, end, tz, interval)
    assert [p["key"] for p in body["series"]] == keys
    g = rev.assign(k=bucket(rev["timestamp"], tz, interval)).groupby("k")["rating"].agg(["count", "mean"])
    for point in body["series"]:
        if point["key"] not in g.index:
            assert point["count"] == 0 and point["average_rating"] is None
            continue
        assert point["count"] == g.loc[point["key"], "count"]
        assert point["average_rating"] == pytest.approx(g.loc[point["key"], "mean"], abs=RATE)
    assert body["count"] == len(rev) == sum(p["count"] for p in body["series"])
    assert len(body["products"]) <= 3


def test_reviews_of_an_empty_period(client, data):
    body = get(client, "products/reviews", start="2020-01-01", end="2020-02-01")
    assert body["count"] == 0 and body["average_rating"] is None and body["products"] == []
    assert [d["count"] for d in body["distribution"]] == [0] * 5 and len(body["series"]) == 31


# -- search -----------------------------------------------------------------------------------


def search_oracle(frames, start, end, tz):
    act = activity_in(frames, start, end, tz, "search", "purchase")
    searches = act[act["activity_type"] == "search"]
    normalised = searches["search_query"].dropna().map(lambda q: " ".join(q.split()).lower())
    zero = searches[searches["results_count"] == 0]
    zero_norm = zero["search_query"].dropna().map(lambda q: " ".join(q.split()).lower())
    searchers = set(searches["actor"].dropna())
    purchasers = set(act.loc[act["activity_type"] == "purchase", "actor"].dropna())
    return {
        "searches": len(searches),
        "zero": len(zero),
        "queries": normalised.value_counts().to_dict(),
        "zero_queries": zero_norm.value_counts().to_dict(),
        "searchers": len(searchers),
        "converted": len(searchers & purchasers),
    }


def check_search(body, expected, limit):
    assert body["searches"] == expected["searches"] and body["zero_result_searches"] == expected["zero"]
    assert body["zero_result_rate"] == pytest.approx(expected["zero"] / expected["searches"], abs=RATE)
    assert body["unique_queries"] == len(expected["queries"])
    assert body["searchers"] == expected["searchers"]
    assert body["searchers_who_purchased"] == expected["converted"]
    assert body["search_conversion"] == pytest.approx(expected["converted"] / expected["searchers"], abs=RATE)
    for name, source in (("top_queries", "queries"), ("zero_result_queries", "zero_queries")):
        counts = expected[source]
        want = sorted(counts, key=lambda q: (-counts[q], q))[:limit]
        assert body[name] == [{"key": q, "count": counts[q]} for q in want], name


@each_zone_and_period
def test_search_matches_pandas(client, data, tz, period):
    start, end = period
    body = get(client, "products/search", **period_params(start, end, tz, limit=25))
    expected = search_oracle(data, start, end, tz)
    assert expected["converted"] > 0 and expected["zero"] > 0
    check_search(body, expected, 25)
    # messy spellings of one query are merged
    assert all(q["key"] == " ".join(q["key"].split()).lower() for q in body["top_queries"])


# -- exact beyond 10,000 buckets ----------------------------------------------------------


BIG_ACTORS = 11_000


@pytest.fixture(scope="module")
def big(client):
    """A second store with 11,000 identified actors: composite paging must keep every one."""
    # March 2024: outside every period of the other tests; New York's DST starts on the 10th.
    base = datetime(2024, 3, 5, tzinfo=UTC)
    activities, orders = [], []
    for i in range(1, BIG_ACTORS + 1):
        user, ts = f"bu{i:05d}", base + timedelta(seconds=97 * i)
        common = {"user_id": user, "session_id": f"bs{i}", "store_id": "big"}
        activities.append(
            {
                "activity_id": f"ba{i}-s",
                "activity_type": "search",
                "timestamp": ts.isoformat(),
                "search_query": f"  Query {i % 13} ",
                "results_count": 0 if i % 4 == 0 else 7,
                **common,
            }
        )
        if i % 3 == 0:
            activities.append(
                {
                    "activity_id": f"ba{i}-p",
                    "activity_type": "purchase",
                    "timestamp": (ts + timedelta(minutes=5)).isoformat(),
                    **common,
                }
            )
        if i % 2 == 0:
            activities.append(
                {
                    "activity_id": f"ba{i}-v",
                    "activity_type": "product_view",
                    "product_id": "big-p1",
                    "timestamp": (ts + timedelta(minutes=1)).isoformat(),
                    **common,
                }
            )
        if i % 5 == 0:
            items = [{"product_id": "big-p1", "quantity": 1, "unit_price": 10.0, "unit_cost": 4.0}]
            if i % 55 == 0:  # a product missing from the catalog
                items.append({"product_id": "big-p2", "name": "Mystery Item", "quantity": 1, "unit_price": 25.0})
            if i % 110 == 0:  # twice in one order (a free one): still one order
                items.append({"product_id": "big-p2", "name": "Mystery Item", "quantity": 1, "unit_price": 0.0})
            orders.append(
                {
                    "order_id": f"bo{i}",
                    "store_id": "big",
                    "status": "paid",
                    "created_at": (ts + timedelta(minutes=4)).isoformat(),
                    "customer": {"customer_id": user},
                    "items": items,
                }
            )
    # big-p1 is in two stores' catalogs: seen together, their stock and stock value add up
    products = [
        {
            "product_id": "big-p1",
            "store_id": "big",
            "name": "Big One",
            "stock_quantity": 10,
            "reorder_point": 5,
            "cost": 4.0,
            "updated_at": "2024-03-01T00:00:00Z",
        },
        {
            "product_id": "big-p1",
            "store_id": "big2",
            "name": "Big One (outlet)",
            "stock_quantity": 6,
            "reorder_point": 2,
            "cost": 5.0,
            "updated_at": "2024-02-01T00:00:00Z",
        },
    ]
    records = {"activities": activities, "orders": orders, "products": products}
    ingest_records(client, records)
    return build_frames(records, store_id="big")


def test_search_and_view_to_purchase_are_exact_with_11000_actors(client, big):
    start, end = date(2024, 3, 1), date(2024, 4, 1)
    body = get(client, "products/search", **period_params(start, end, "America/New_York", store_id="big", limit=20))
    expected = search_oracle(big, start, end, "America/New_York")
    assert expected["searchers"] == BIG_ACTORS and expected["converted"] == BIG_ACTORS // 3
    check_search(body, expected, 20)
    perf = get(client, "products/performance", **period_params(start, end, "America/New_York", store_id="big"))
    assert [i["key"] for i in perf["items"]] == ["big-p1", "big-p2"] and perf["items"][1]["name"] == "Mystery Item"
    item = perf["items"][0]
    assert item["name"] == "Big One" and item["views"] == item["viewers"] == BIG_ACTORS // 2
    assert item["viewers_who_bought"] == BIG_ACTORS // 10 and item["orders"] == BIG_ACTORS // 5
    assert item["view_to_purchase"] == pytest.approx(0.2, abs=RATE)
    assert item["gross_profit"] == pytest.approx(6.0 * (BIG_ACTORS // 5), abs=MONEY) and item["margin"] == 0.6
    mystery = perf["items"][1]
    assert mystery["orders"] == BIG_ACTORS // 55 and mystery["units"] == BIG_ACTORS // 55 + BIG_ACTORS // 110
    assert mystery["lines_without_cost"] == mystery["units"] and mystery["gross_revenue"] == 25.0 * (BIG_ACTORS // 55)
    assert mystery["gross_profit"] is None and mystery["margin"] is None and mystery["cogs"] == 0


def test_inventory_of_products_outside_the_catalog_and_of_several_stores(client, big):
    start, end = date(2024, 3, 1), date(2024, 4, 1)
    body = get(client, "products/inventory", **period_params(start, end, "America/New_York", store_id="big"))
    one, mystery = body["items"]
    # revenue 22,000 and 5,000: big-p1 crosses 80 % (A), big-p2 is B
    assert one["key"] == "big-p1" and one["abc_class"] == "A" and one["stock"] == 10 and one["stock_value"] == 40.0
    assert one["units"] == BIG_ACTORS // 5 and one["days_of_cover"] == pytest.approx(10 / (2200 / 31), abs=0.01)
    assert one["turnover"] == pytest.approx(4.0 * 2200 / 40.0, abs=RATE) and not one["low_stock"]
    assert mystery == {
        **mystery,
        "key": "big-p2",
        "name": "Mystery Item",
        "in_catalog": False,
        "stock": None,
        "reorder_point": None,
        "days_of_cover": None,
        "low_stock": False,
        "out_of_stock": False,
        "abc_class": "B",
        "stock_value": None,
        "turnover": None,
        "units": 300,
        "slow_mover": False,
        "gross_revenue": 5000.0,
    }
    assert body["summary"]["products"] == 2 and body["summary"]["stock_value"] == 40.0
    every = get(client, "products/inventory", start="2024-03-01", end="2024-04-01", sort="key", limit=1000)
    one = next(i for i in every["items"] if i["key"] == "big-p1")
    assert one["stock"] == 16 and one["reorder_point"] == 7 and one["stock_value"] == 70.0 and one["name"] == "Big One"


# -- parameters, scope, cache -------------------------------------------------------------


test_bad_parameters_are_422_naming_them = bad_parameters_test(
    [
        ("products/performance", {"sort": "profit"}, "query.sort"),
        ("products/performance", {"tz": "Mars/Olympus"}, "query.tz"),
        ("products/performance", {"limit": "0"}, "query.limit"),
        ("products/inventory", {"sort": "margin"}, "query.sort"),
        ("products/inventory", {"abc_class": "D"}, "query.abc_class"),
        ("products/inventory", {"low_stock": "maybe"}, "query.low_stock"),
        ("products/inventory", {"start": "2026-02-30"}, "query.start"),
        ("products/reviews", {"min_reviews": "0"}, "query.min_reviews"),
        ("products/reviews", {"min_reviews": "x"}, "query.min_reviews"),
        ("products/reviews", {"interval": "fortnight"}, "query.interval"),
        ("products/search", {"start": "2026-02-01", "end": "2026-01-01"}, "query.end"),
        ("products/search", {"limit": "5000"}, "query.limit"),
    ]
)


@pytest.mark.parametrize("path", ["products/performance", "products/inventory", "products/reviews", "products/search"])
def test_scope_and_store_binding(client, data, path):
    assert client.get(f"/api/v1/analytics/{path}").status_code == 401
    assert client.get(f"/api/v1/analytics/{path}", headers=headers("ingest")).status_code == 403
    r = client.get(
        f"/api/v1/analytics/{path}", params={"start": "2025-01-01", "end": "2026-11-15"}, headers=headers("read_s1")
    )
    assert r.status_code == 200
    body = r.json()
    assert body.get("items", body.get("products", body.get("top_queries"))) == []


def test_cache_keys_include_the_endpoint_parameters(client, data):
    params = period_params(*AUTUMN, "UTC", limit=5)
    by_revenue = get(client, "products/performance", **params)
    by_units = get(client, "products/performance", sort="units", **params)
    again = get(client, "products/performance", sort="units", **params)
    assert by_units["sort"] == "units" and by_units["cached"] is False and again["cached"] is True
    assert by_revenue["sort"] == "revenue"
    low = get(client, "products/inventory", low_stock="true", **params)
    all_items = get(client, "products/inventory", **params)
    assert low["summary"]["matched"] < all_items["summary"]["matched"]
    three = get(client, "products/reviews", **params)
    one = get(client, "products/reviews", min_reviews=1, **params)
    assert one["reviewed_products"] >= three["reviewed_products"] and one["min_reviews"] == 1


def test_catalog_is_read_page_by_page(client, data, monkeypatch):
    """Small pages give the same inventory as one page (search_after walks the whole catalog)."""
    from analytics_service.analytics import products

    params = period_params(*AUTUMN, "UTC", sort="key", limit=997)
    whole = get(client, "products/inventory", **params)
    monkeypatch.setattr(products, "CATALOG_PAGE", 7)
    paged = get(client, "products/inventory", **{**params, "limit": 998})
    assert paged["cached"] is False
    assert paged["items"] == whole["items"] and paged["summary"] == whole["summary"]
