"""Report builders (analytics_service/reports/builders.py): every report type's numbers are the
analytics endpoints' numbers for the same parameters; parameters are validated like the
endpoints' (422 naming `parameters.<key>`) and default to each type's natural period.

Data: generated records ingested through the API. Reports are built on the app's own event
loop (the TestClient's portal) with a QueryContext made from `client.app.state`, without
the response cache, so the report and the endpoint each run their query from scratch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from analytics_service.analytics.params import CommonParams
from analytics_service.analytics.runner import QueryContext
from analytics_service.auth import Principal
from analytics_service.errors import ApiError
from analytics_service.reports.builders import REPORTS, build_report
from analytics_service.reports.model import REPORT_TYPES, ReportData, Table
from analytics_service.reports.parameters import report_params, resolved_parameters
from analytics_service.reports.periods import period_label
from tests.conftest import generate_records, headers, ingest_records
from tests.oracle import compared_period

# Wednesday 4 November 2026 01:30 UTC is still Tuesday 3 November (22:30) in São Paulo.
NOW = datetime(2026, 11, 4, 1, 30, tzinfo=UTC)
# New Year in UTC, still 31 December 2025 in São Paulo.
NEW_YEAR = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
SP = "America/Sao_Paulo"
STORE = "default"
UNBOUND = Principal(key_id="reports-test", scopes=frozenset({"reports"}), store_id=None)
BOUND = Principal(key_id="reports-s1", scopes=frozenset({"reports"}), store_id="s1")


@pytest.fixture(scope="module")
def data(client) -> dict[str, list[dict]]:
    records = generate_records(seed=31, orders=1500, activity=6000, days=420, end=date(2026, 11, 15))
    ingest_records(client, records)
    return records


# -- helpers ---------------------------------------------------------------------------------


def build(
    client,
    report_type: str,
    parameters: Mapping[str, Any],
    *,
    principal: Principal = UNBOUND,
    now: datetime = NOW,
    cache: bool = False,
) -> tuple[CommonParams, ReportData]:
    """report_params + build_report on the app's event loop (its ES client lives there)."""
    params, options = report_params(parameters, principal, report_type=report_type, now=now)
    state = client.app.state
    ctx = QueryContext(es=state.es, names=state.names, settings=state.settings, cache=state.cache if cache else None)
    report = client.portal.call(partial(build_report, report_type, params, ctx, options))
    check_shape(report)
    return params, report


def query(params: CommonParams, *, common_limit: bool = True, **more: Any) -> dict[str, Any]:
    """The endpoint query parameters of the report's CommonParams."""
    q: dict[str, Any] = {
        "start": params.period.start.isoformat(),
        "end": params.period.end.isoformat(),
        "tz": params.period.tz.key,
        "interval": params.period.interval,
        "compare": params.compare,
    }
    if common_limit:
        q["limit"] = params.limit
    if params.store_id is not None:
        q["store_id"] = params.store_id
    return {**q, **more}


def get(client, path: str, params: CommonParams, *, common_limit: bool = True, **more: Any) -> dict[str, Any]:
    """An endpoint's JSON for the report's parameters (`more` overrides; no `limit` when common_limit is false:
    breakdowns then list every key, as the reports do)."""
    r = client.get(
        f"/api/v1/analytics/{path}", params=query(params, common_limit=common_limit, **more), headers=headers("read")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    same = ("start", "end", "tz")  # (retention reports its cohort grid as the interval)
    assert [body["period"][k] for k in same] == [params.period.describe()[k] for k in same]
    return body


def check_shape(report: ReportData) -> None:
    """Every chart draws from a table and columns that exist; rows fit their columns; the notes define
    the figures in the report itself (no pointer to the repository's docs) and name the currency."""
    names = [t.name for t in report.tables]
    assert len(names) == len(set(names))
    for t in report.tables:
        assert all(len(row) == len(t.columns) for row in t.rows), t.name
    for chart in report.charts:
        t = report.table(chart.table)
        cols = {c.name for c in t.columns}
        assert chart.category in cols and set(chart.values) <= cols, chart
    assert not any("docs/" in n or ".md" in n for n in report.notes)
    assert report.currency == "USD" and "Money is in USD" in report.notes[0]
    assert report.kpis and all(k.kind in ("money", "count", "rate", "number", "pct") for k in report.kpis)


def rows_of(t: Table, items: list[dict]) -> list[list[Any]]:
    return [[item.get(c.name) for c in t.columns] for item in items]


def assert_table(report: ReportData, name: str, items: list[dict]) -> None:
    t = report.table(name)
    assert t.rows == rows_of(t, items), name


def assert_kpis(
    report: ReportData, values: Mapping[str, Any], names: tuple[str, ...], comparison: Mapping[str, Any] | None = None
) -> None:
    by_name = {k.name: k for k in report.kpis}
    for name in names:
        k = by_name[name]
        assert k.value == values[name], name
        c = comparison or {}
        assert k.previous == c.get(name), name
        assert k.growth_pct == c.get(f"{name}_growth_pct"), name
        assert k.change_pp == c.get(f"{name}_change_pp"), name
        assert k.has_data is c.get("has_data", True), name
        assert k.up_is_good is c.get("up_is_good", {}).get(name, k.up_is_good), name


DASHBOARD_KPIS = (
    "gross_revenue",
    "net_revenue",
    "orders",
    "aov",
    "units",
    "customers",
    "new_customers",
    "gross_profit",
)


# -- every type against the endpoints ------------------------------------------------------------


def test_daily_sales_equals_the_endpoints(client, data):
    params, report = build(
        client, "daily_sales", {"start": "2026-11-02", "end": "2026-11-03", "tz": SP, "store_id": STORE}
    )
    assert report.title == "Daily sales — Monday 2 November 2026"
    assert (params.period.interval, params.compare, report.store_id) == ("hour", "previous_period", STORE)
    dashboard = get(client, "dashboard", params)
    assert dashboard["kpis"]["orders"] > 0
    assert_kpis(report, dashboard["kpis"], DASHBOARD_KPIS, dashboard["comparison"])
    trends = get(client, "revenue/trends", params)
    assert len(trends["series"]) == 24
    assert_table(report, "revenue_trend", trends["series"])
    assert_table(report, "top_products", get(client, "products/top-selling", params)["items"])
    orders = get(client, "sales/orders", params)
    assert_kpis(report, orders, ("placed", "cancellation_rate", "refunded_order_rate"))
    assert_table(report, "orders_by_status", orders["by_status"])
    assert any("previous period, Sunday 1 November 2026" in n for n in report.notes)


def test_weekly_performance_equals_the_endpoints(client, data):
    params, report = build(client, "weekly_performance", {"store_id": STORE})
    assert (params.period.start, params.period.end) == (
        datetime(2026, 10, 26, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 11, 2, tzinfo=ZoneInfo("UTC")),
    )
    assert report.title == "Weekly performance — week of 26 October 2026"
    dashboard = get(client, "dashboard", params)
    assert_kpis(report, dashboard["kpis"], DASHBOARD_KPIS, dashboard["comparison"])
    assert_table(report, "daily_revenue", get(client, "revenue/trends", params)["series"])
    assert len(report.table("daily_revenue").rows) == 7
    assert_table(report, "top_products", get(client, "products/top-selling", params)["items"])
    assert_table(report, "categories", get(client, "sales/categories", params, common_limit=False)["items"])
    assert_table(report, "geographic", get(client, "sales/geographic", params, common_limit=False)["items"])
    customers = get(client, "users/segments", params, type="new_returning")
    assert_table(report, "new_vs_returning", customers["segments"])
    assert_kpis(report, customers, ("repeat_purchase_rate",))
    assert_kpis(report, get(client, "sales/orders", params), ("cancellation_rate",))


def test_monthly_business_review_equals_the_endpoints(client, data):
    params, report = build(client, "monthly_business_review", {"store_id": STORE, "tz": SP, "geo_level": "region"})
    assert report.title == "Monthly business review — October 2026"
    assert params.period.describe()["start"] == "2026-10-01T00:00:00-03:00"
    by_period = get(client, "dashboard", params, compare="previous_period")
    by_year = get(client, "dashboard", params, compare="previous_year")
    assert_kpis(report, by_period["kpis"], DASHBOARD_KPIS, by_period["comparison"])
    comparison = report.table("period_comparison")
    # one row per KPI: this period, then each compared period's value and change (points for a rate)
    assert comparison.row_measures == list(DASHBOARD_KPIS)
    for row, name in zip(comparison.rows, DASHBOARD_KPIS, strict=True):
        expected = [by_period["kpis"][name]]
        for c in (by_period["comparison"], by_year["comparison"]):
            change = c.get(f"{name}_change_pp", c.get(f"{name}_growth_pct"))
            expected += [c[name], change] if c["has_data"] else ["no data", "no data"]
        assert row[1:] == expected, name
    headers = [c.label for c in comparison.columns]
    for compared in (by_period, by_year):
        p = compared["comparison_period"]
        last = (date.fromisoformat(p["end"][:10]) - timedelta(days=1)).isoformat()
        assert any(f"({p['start'][:10]} – {last})" in h for h in headers), (p, headers)
    # a whole month compares with the previous whole month and the same month a year earlier
    for compared, compare in ((by_period, "previous_period"), (by_year, "previous_year")):
        start, end = compared_period(date(2026, 10, 1), date(2026, 11, 1), compare)
        assert compared["comparison_period"]["start"] == f"{start.isoformat()}T00:00:00-03:00"
        assert compared["comparison_period"]["end"] == f"{end.isoformat()}T00:00:00-03:00"
    assert by_year["comparison"]["orders"] > 0

    revenue, profit = get(client, "financial/revenue", params), get(client, "financial/profit", params)
    pnl = {row[0]: row[1:] for row in report.table("profit_and_loss").rows}
    for label, name, source in (
        ("Gross revenue", "gross_revenue", revenue),
        ("Refunds", "refunds", revenue),
        ("Net revenue", "net_revenue", revenue),
        ("Cost of goods", "cogs", profit),
        ("Expenses", "expenses", profit),
        ("Net profit", "net_profit", profit),
        ("Total billed", "total_billed", revenue),
    ):
        assert pnl[label] == [
            source["totals"][name],
            source["comparison"][name],
            source["comparison"][f"{name}_growth_pct"],
        ], label
    assert_kpis(
        report, profit["totals"], ("gross_margin", "expenses", "net_profit", "net_margin"), profit["comparison"]
    )
    assert_table(report, "profit_by_category", profit["by_category"])
    assert_table(report, "daily_revenue", get(client, "revenue/trends", params)["series"])
    assert len(report.table("daily_revenue").rows) == 31
    assert_table(report, "categories", get(client, "sales/categories", params, common_limit=False)["items"])
    geo = get(client, "sales/geographic", params, common_limit=False, level="region")
    assert report.table("geographic").title == "Revenue by region"
    assert_table(report, "geographic", geo["items"])
    assert_table(report, "top_products", get(client, "sales/products", params)["items"])
    assert_table(report, "expenses_by_category", get(client, "financial/expenses", params)["by_category"])
    payments = get(client, "financial/payments", params)
    assert_table(report, "payments_by_method", payments["by_method"])
    assert_kpis(report, payments["totals"], ("success_rate",), payments["comparison"])
    assert_table(report, "funnel", get(client, "users/conversion", params)["steps"])


def test_quarterly_executive_summary_equals_the_endpoints(client, data):
    params, report = build(client, "quarterly_executive_summary", {"store_id": STORE})
    assert report.title == "Quarterly executive summary — Q3 2026"
    assert params.period.describe()["start"] == "2026-07-01T00:00:00+00:00"
    assert params.period.interval == "week"
    dashboard = get(client, "dashboard", params)
    assert_kpis(report, dashboard["kpis"], DASHBOARD_KPIS, dashboard["comparison"])
    assert_table(report, "revenue_trend", get(client, "revenue/trends", params)["series"])

    trends = get(client, "revenue/trends", params, interval="month")["series"]
    profit = get(client, "financial/profit", params, interval="month")["series"]
    monthly = report.table("monthly")
    assert [r[0] for r in monthly.rows] == ["2026-07-01", "2026-08-01", "2026-09-01"]
    assert monthly.rows == rows_of(monthly, [{**p, **t} for t, p in zip(trends, profit, strict=True)])

    retention = get(client, "users/retention", params, basis="orders", granularity="month")
    rows = report.table("retention").rows
    assert [r[:2] for r in rows] == [[c["cohort"], c["size"]] for c in retention["cohorts"]]
    assert [[v for v in r[2:] if v is not None] for r in rows] == [c["retention"] for c in retention["cohorts"]]
    assert_table(report, "rfm_segments", get(client, "users/segments", params, type="rfm")["segments"])
    assert_table(report, "categories", get(client, "sales/categories", params, common_limit=False)["items"])
    assert_table(report, "top_products", get(client, "sales/products", params)["items"])


def test_product_performance_equals_the_endpoints(client, data):
    params, report = build(
        client,
        "product_performance",
        {"start": "2026-09-01", "end": "2026-11-01", "tz": SP, "store_id": STORE, "compare": "previous_period"},
    )
    assert report.title == "Product performance — 1 Sep 2026 – 31 Oct 2026"
    performance = get(client, "products/performance", params, limit=1000)
    assert len(performance["items"]) > 20
    assert_table(report, "performance", performance["items"])
    assert_kpis(report, performance, ("products",))
    assert_table(report, "top_products_by_units", get(client, "products/top-selling", params, by="units")["items"])
    categories = get(client, "sales/categories", params, common_limit=False)
    assert categories["items"][0]["gross_revenue_growth_pct"] is not None
    assert_table(report, "categories", categories["items"])
    products = get(client, "sales/products", params)
    assert_kpis(report, products["totals"], ("gross_revenue", "units", "cogs", "gross_profit"))
    assert_kpis(report, products, ("total_products",))
    reviews = get(client, "products/reviews", params)
    assert_table(report, "rating_distribution", reviews["distribution"])
    assert_table(report, "top_rated", reviews["products"])
    assert_kpis(
        report,
        {"reviews": reviews["count"], "average_rating": reviews["average_rating"]},
        ("reviews", "average_rating"),
    )


def test_customer_behavior_equals_the_endpoints(client, data):
    params, report = build(client, "customer_behavior", {"store_id": STORE, "tz": SP})
    # The last 30 whole days before Tuesday 3 November in São Paulo.
    assert params.period.describe()["start"] == "2026-10-04T00:00:00-03:00"
    assert params.period.describe()["end"] == "2026-11-03T00:00:00-03:00"
    engagement = get(client, "users/engagement", params)
    assert engagement["active_users"] > 0
    assert_kpis(
        report,
        engagement,
        (
            "active_users",
            "dau",
            "wau",
            "mau",
            "stickiness",
            "sessions",
            "avg_session_seconds",
            "bounce_rate",
            "events_per_session",
        ),
    )
    assert_table(report, "engagement_trend", engagement["series"])
    funnel = get(client, "users/conversion", params)
    assert_table(report, "funnel", funnel["steps"])
    assert {k.name: k.value for k in report.kpis}["funnel_conversion"] == funnel["steps"][-1]["conversion"]
    for name, kind in (
        ("rfm_segments", "rfm"),
        ("new_vs_returning", "new_returning"),
        ("device_segments", "device"),
        ("source_segments", "source"),
    ):
        assert_table(report, name, get(client, "users/segments", params, type=kind)["segments"])
    retention = get(client, "users/retention", params, basis="orders", granularity="week")
    assert [r[:2] for r in report.table("retention").rows] == [[c["cohort"], c["size"]] for c in retention["cohorts"]]
    behavior = get(client, "users/behavior", params)
    assert_table(report, "activity_by_type", behavior["events_by_type"])
    assert_table(report, "top_pages", behavior["top_pages"])
    heatmap = report.table("activity_heatmap")
    assert [r[0] for r in heatmap.rows][:2] == ["Monday", "Tuesday"]
    assert {(d, h): heatmap.rows[d][1 + h] for d in range(7) for h in range(24)} == {
        (c["weekday"], c["hour"]): c["count"] for c in behavior["heatmap"]
    }


def test_marketing_campaign_equals_the_endpoint(client, data):
    params, report = build(client, "marketing_campaign", {"store_id": STORE, "tz": SP})
    assert report.title == "Marketing campaigns — October 2026"
    body = get(client, "marketing/campaigns", params)
    assert body["items"] and any(i["spend"] for i in body["items"])
    assert_table(report, "campaigns", body["items"])
    sources = [{"campaign": i["campaign"], **u} for i in body["items"] for u in i["utm"]]
    assert_table(report, "campaign_sources", sources)
    totals = body["totals"]
    assert_kpis(report, totals, ("spend", "gross_revenue", "orders", "new_customers", "roas", "cac", "conversion_rate"))
    by_name = {k.name: k for k in report.kpis}
    assert by_name["unattributed_orders"].value == body["unattributed"]["orders"]
    assert any("last touch" in n for n in report.notes)


def test_inventory_equals_the_endpoints(client, data):
    params, report = build(client, "inventory", {"store_id": STORE, "rows": 40})
    assert report.title == "Inventory — 5 Oct 2026 – 3 Nov 2026"
    inventory = get(client, "products/inventory", params, limit=40)
    assert len(inventory["items"]) == 40
    assert_table(report, "inventory", inventory["items"])
    summary = inventory["summary"]
    assert_kpis(
        report,
        {**summary, "low_stock_products": summary["low_stock"]},
        (
            "products",
            "low_stock_products",
            "out_of_stock",
            "slow_movers",
            "stock_value",
            "units",
            "gross_revenue",
            "cogs",
        ),
    )
    assert report.table("abc_classes").rows == [[c, summary["abc"][c]] for c in "ABC"]
    low = get(client, "products/inventory", params, limit=40, low_stock="true", sort="days_of_cover")
    assert low["items"]
    assert_table(report, "low_stock", low["items"])
    every = get(client, "products/inventory", params, limit=1000, sort="stock_value")["items"]
    assert_table(report, "slow_movers", [i for i in every if i["slow_mover"]][:40])
    assert report.table("slow_movers").rows
    assert_table(report, "top_stock_value", get(client, "products/inventory", params, sort="stock_value")["items"])


def test_the_response_cache_serves_reports_the_endpoints_numbers(client, data):
    """Through the cache (the route's endpoint names and extras), after the endpoints cached
    other variants of the same queries, a report still holds its own numbers."""
    parameters = {"start": "2026-10-01", "end": "2026-11-01", "store_id": STORE}
    params, _ = report_params(parameters, UNBOUND, report_type="product_performance", now=NOW)
    for sort in ("units", "views", "margin"):
        get(client, "products/performance", params, limit=1000, sort=sort)
    get(client, "products/top-selling", params, by="revenue")
    _, fresh = build(client, "product_performance", parameters)
    _, cached = build(client, "product_performance", parameters, cache=True)
    _, again = build(client, "product_performance", parameters, cache=True)
    assert client.app.state.cache is not None
    assert [t.rows for t in cached.tables] == [t.rows for t in fresh.tables] == [t.rows for t in again.tables]
    assert cached.kpis == fresh.kpis == again.kpis


# -- natural periods -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "tz", "report_type", "start", "end", "title"),
    [
        (NOW, "UTC", "daily_sales", "2026-11-03", "2026-11-04", "Tuesday 3 November 2026"),
        (NOW, SP, "daily_sales", "2026-11-02", "2026-11-03", "Monday 2 November 2026"),
        (NOW, "UTC", "weekly_performance", "2026-10-26", "2026-11-02", "week of 26 October 2026"),
        (NOW, SP, "weekly_performance", "2026-10-26", "2026-11-02", "week of 26 October 2026"),
        (NOW, "UTC", "monthly_business_review", "2026-10-01", "2026-11-01", "October 2026"),
        (NOW, SP, "monthly_business_review", "2026-10-01", "2026-11-01", "October 2026"),
        (NOW, "UTC", "quarterly_executive_summary", "2026-07-01", "2026-10-01", "Q3 2026"),
        (NOW, "UTC", "product_performance", "2026-10-05", "2026-11-04", "5 Oct 2026 – 3 Nov 2026"),
        (NOW, SP, "customer_behavior", "2026-10-04", "2026-11-03", "4 Oct 2026 – 2 Nov 2026"),
        (NOW, SP, "inventory", "2026-10-04", "2026-11-03", "4 Oct 2026 – 2 Nov 2026"),
        (NEW_YEAR, "UTC", "daily_sales", "2025-12-31", "2026-01-01", "Wednesday 31 December 2025"),
        (NEW_YEAR, SP, "daily_sales", "2025-12-30", "2025-12-31", "Tuesday 30 December 2025"),
        (NEW_YEAR, "UTC", "weekly_performance", "2025-12-22", "2025-12-29", "week of 22 December 2025"),
        (NEW_YEAR, SP, "weekly_performance", "2025-12-22", "2025-12-29", "week of 22 December 2025"),
        (NEW_YEAR, "UTC", "monthly_business_review", "2025-12-01", "2026-01-01", "December 2025"),
        (NEW_YEAR, SP, "monthly_business_review", "2025-11-01", "2025-12-01", "November 2025"),
        (NEW_YEAR, "UTC", "quarterly_executive_summary", "2025-10-01", "2026-01-01", "Q4 2025"),
        (NEW_YEAR, SP, "quarterly_executive_summary", "2025-07-01", "2025-10-01", "Q3 2025"),
    ],
)
def test_natural_periods(now, tz, report_type, start, end, title):
    params, _ = report_params({"tz": tz}, UNBOUND, report_type=report_type, now=now)
    zone = ZoneInfo(tz)
    assert params.period.start == datetime.combine(date.fromisoformat(start), datetime.min.time(), zone)
    assert params.period.end == datetime.combine(date.fromisoformat(end), datetime.min.time(), zone)
    assert params.period.tz.key == tz
    assert period_label(params.period) == title


def test_defaults_of_each_type():
    expected = {
        "daily_sales": ("hour", "previous_period"),
        "weekly_performance": ("day", "previous_period"),
        "monthly_business_review": ("day", "previous_period"),
        "quarterly_executive_summary": ("week", "previous_period"),
        "product_performance": ("day", "none"),
        "customer_behavior": ("day", "none"),
        "inventory": ("day", "none"),
        "marketing_campaign": ("day", "none"),
    }
    assert set(expected) == set(REPORT_TYPES) == set(REPORTS)
    for report_type, (interval, compare) in expected.items():
        params, options = report_params({}, UNBOUND, report_type=report_type, now=NOW)
        assert (params.period.interval, params.compare, params.limit, params.store_id) == (interval, compare, 10, None)
        assert set(options) == set(REPORTS[report_type].options)
    _, options = report_params({}, UNBOUND, report_type="customer_behavior", now=NOW)
    assert options == {
        "steps": "product_view,add_to_cart,checkout_started,purchase",
        "retention_basis": "orders",
        "granularity": "week",
    }
    _, options = report_params(
        {"start": "2026-01-01", "end": "2026-07-01"}, UNBOUND, report_type="customer_behavior", now=NOW
    )
    assert options["granularity"] == "month"
    # Only one end given: the endpoints' rules (30 days before `end`, or `start` through today).
    params, _ = report_params({"end": "2026-10-10"}, UNBOUND, report_type="monthly_business_review", now=NOW)
    assert params.period.start.date() == date(2026, 9, 10)
    params, _ = report_params({"start": "2026-10-10"}, UNBOUND, report_type="daily_sales", now=NOW)
    assert (params.period.start.date(), params.period.end.date()) == (date(2026, 10, 10), date(2026, 11, 5))


def test_resolved_parameters_give_the_same_report_later():
    """What a queued job keeps: explicit instants, so a later run covers the same period."""
    parameters = {"tz": SP, "store_id": STORE, "limit": 5, "geo_level": "city", "channel": "web"}
    params, options = report_params(parameters, UNBOUND, report_type="weekly_performance", now=NOW)
    kept = resolved_parameters(params, options)
    assert kept["start"] == "2026-10-26T00:00:00-03:00" and kept["geo_level"] == "city"
    later = datetime(2027, 3, 1, tzinfo=UTC)
    assert report_params(kept, UNBOUND, report_type="weekly_performance", now=later) == (params, options)


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report_type", "parameters", "field"),
    [
        ("daily_sales", {"foo": 1}, "parameters.foo"),
        ("daily_sales", {"rows": 10}, "parameters.rows"),  # an inventory option, not a daily_sales one
        ("daily_sales", {"tz": "Mars/Olympus"}, "parameters.tz"),
        ("daily_sales", {"start": "yesterday"}, "parameters.start"),
        ("daily_sales", {"start": 20261101}, "parameters.start"),
        ("daily_sales", {"start": "2026-11-02", "end": "2026-11-01"}, "parameters.end"),
        ("daily_sales", {"start": "2026-01-01", "end": "2026-11-01"}, "parameters.interval"),  # 7,000 hours
        ("weekly_performance", {"interval": "fortnight"}, "parameters.interval"),
        ("weekly_performance", {"compare": "last_week"}, "parameters.compare"),
        ("weekly_performance", {"limit": 0}, "parameters.limit"),
        ("weekly_performance", {"limit": "many"}, "parameters.limit"),
        ("weekly_performance", {"limit": True}, "parameters.limit"),
        ("weekly_performance", {"store_id": " "}, "parameters.store_id"),
        ("monthly_business_review", {"geo_level": "planet"}, "parameters.geo_level"),
        ("product_performance", {"sort": "price"}, "parameters.sort"),
        ("product_performance", {"min_reviews": 0}, "parameters.min_reviews"),
        ("customer_behavior", {"channel": "web"}, "parameters.channel"),
        ("customer_behavior", {"steps": "product_view,teleport"}, "parameters.steps"),
        ("customer_behavior", {"steps": ["purchase"]}, "parameters.steps"),
        ("customer_behavior", {"granularity": "day"}, "parameters.granularity"),
        ("inventory", {"rows": 1_000_000}, "parameters.rows"),
        ("inventory", {"sort": "color"}, "parameters.sort"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(report_type, parameters, field):
    with pytest.raises(ApiError) as caught:
        report_params(parameters, UNBOUND, report_type=report_type, now=NOW)
    error = caught.value
    assert error.status == 422
    assert error.details[0]["field"] == field
    assert error.message.startswith(f"{field}: ")


def test_parameters_and_type_must_be_known():
    with pytest.raises(ApiError) as caught:
        report_params({}, UNBOUND, report_type="yearly_party", now=NOW)
    assert (caught.value.status, caught.value.details[0]["field"]) == (422, "report_type")
    with pytest.raises(ApiError) as caught:
        report_params(["start"], UNBOUND, report_type="inventory", now=NOW)  # type: ignore[arg-type]
    assert (caught.value.status, caught.value.details[0]["field"]) == (422, "parameters")
    _, options = report_params(None, UNBOUND, report_type="inventory", now=NOW)
    assert options == {"rows": 1000, "sort": "revenue"}


def test_a_store_bound_key_cannot_build_another_stores_report(client, data):
    with pytest.raises(ApiError) as caught:
        report_params({"store_id": STORE}, BOUND, report_type="daily_sales", now=NOW)
    assert (caught.value.status, caught.value.code) == (403, "store_forbidden")
    params, report = build(client, "daily_sales", {"start": "2026-11-02", "end": "2026-11-03"}, principal=BOUND)
    assert params.store_id == report.store_id == "s1"
    assert {k.name: k.value for k in report.kpis}["orders"] == 0  # the generated data is store "default"
    params, _ = report_params({"store_id": "s1"}, BOUND, report_type="daily_sales", now=NOW)
    assert params.store_id == "s1"
