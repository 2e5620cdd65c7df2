"""The built-in dashboard page and the API docs in real headless Chromium (Debian's
`chromium`, driven by Playwright for Python through `executable_path`), against a real
uvicorn server and the real node.

Every page runs with the network closed beyond 127.0.0.1: a request elsewhere is aborted
and recorded, and the test fails on it. (The screenshots in docs/ come from scripts/screenshots.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import KEYS, headers, ingest_records, server_missing
from tests.live_data import order_at, store_with_recent_records

CHARTS = ["chart-trend", "chart-products", "chart-categories", "chart-geography", "chart-funnel", "chart-heatmap"]
KPIS = ["gross_revenue", "net_revenue", "orders", "aov", "units", "customers", "new_customers", "gross_profit"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not executable:
        server_missing("Chromium is not installed (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def records(http):
    data = store_with_recent_records(datetime.now(UTC), seed=21)
    ingest_records(http, data)
    return data


def wait_until(page, expression: str, arg=None, timeout: float = 30, every: float = 0.05) -> float:
    """Poll `expression` (a JS function of `arg`) until it returns a truthy value; seconds waited.

    Polled from here with page.evaluate rather than page.wait_for_function, whose in-page
    polling evaluates a string, which the pages' Content-Security-Policy forbids."""
    started = time.monotonic()
    while not page.evaluate(expression, arg):
        assert time.monotonic() - started < timeout, f"not true after {timeout} s: {expression}"
        time.sleep(every)
    return time.monotonic() - started


class Browsing:
    """A fresh browser context (its own sessionStorage) that lets only 127.0.0.1 through and
    records every URL it was asked for."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.requested: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _guard(self, route) -> None:
        url = route.request.url
        self.requested.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open_dashboard(self, key: str, fragment: str = "") -> None:
        self.page.goto(f"{self.base}/dashboard" + (f"#{fragment}" if fragment else ""))
        self.page.fill("#key-input", key)
        self.page.click("#key-form button[type=submit]")

    def wait_loaded(self, after: int = 0) -> int:
        """Wait until the page has drawn a load later than `after`; its number."""
        wait_until(self.page, "(after) => Number(document.body.dataset.loaded || 0) > after", after)
        return int(self.page.evaluate("document.body.dataset.loaded"))

    def kpi_tiles(self) -> tuple[dict, dict]:
        """(the dashboard query the tiles were drawn from, {kpi: raw value or None})."""
        query = json.loads(self.page.get_attribute("#kpis", "data-query"))
        values = {}
        for name in KPIS:
            raw = self.page.get_attribute(f'[data-kpi="{name}"] .value', "data-value")
            values[name] = None if raw == "" else float(raw)
        return query, values

    def tile_number(self, selector: str) -> float | None:
        raw = self.page.get_attribute(f"{selector} .value", "data-value")
        return None if raw in (None, "") else float(raw)

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors
        assert not self.blocked, f"requests beyond 127.0.0.1: {self.blocked}"


@pytest.fixture
def browsing(chromium, served_api) -> Iterator[Browsing]:
    session = Browsing(chromium, served_api)
    yield session
    session.close()


def api_query(query: dict) -> dict:
    return {k: v for k, v in query.items() if v not in (None, "")}


def assert_tiles_equal_the_api(browsing: Browsing, http: httpx.Client) -> dict:
    query, tiles = browsing.kpi_tiles()
    body = http.get("/api/v1/analytics/dashboard", params=api_query(query), headers=headers("read")).json()
    assert tiles == {k: (None if body["kpis"][k] is None else float(body["kpis"][k])) for k in KPIS}
    for name in KPIS:
        change = browsing.page.text_content(f'[data-kpi="{name}"] .change')
        growth = (body.get("comparison") or {}).get(f"{name}_growth_pct")
        direction = browsing.page.get_attribute(f'[data-kpi="{name}"] .change', "data-direction")
        if body.get("comparison") is None:
            assert change == ""
        elif not body["comparison"]["has_data"]:
            assert change == "no data in the compared period"
        elif growth is None:
            assert change.startswith("no comparison")
        else:
            shown = "■ 0.0%" if growth == 0 else f"{growth:+.1f}%"  # no change: neither up nor down
            assert shown in change, (name, change, growth)
            good = (growth > 0) == body["comparison"]["up_is_good"][name]
            assert direction == (None if growth == 0 else "good" if good else "bad"), (name, direction)
    return body


def painted_pixels(browsing: Browsing, chart: str) -> int:
    return browsing.page.evaluate(
        """(id) => {
          const canvas = document.querySelector(`#${id} canvas`);
          if (!canvas) return 0;
          const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
          let painted = 0;
          for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
          return painted;
        }""",
        chart,
    )


def chart_option(browsing: Browsing, chart: str) -> dict:
    return browsing.page.evaluate(
        "(id) => JSON.parse(JSON.stringify(echarts.getInstanceByDom(document.getElementById(id)).getOption()))",
        chart,
    )


def test_the_page_loads_with_a_key_and_every_chart_draws(browsing, http, records):
    browsing.open_dashboard(KEYS["read"]["key"])
    browsing.wait_loaded()
    browsing.page.wait_for_selector('#live-status[data-state="live"]', timeout=10_000)
    time.sleep(1.2)  # the charts' entry animation
    for chart in CHARTS:
        option = chart_option(browsing, chart)
        assert not any(t.get("text") for t in option.get("title", [])), (chart, option.get("title"))
        assert option["series"] and option["series"][0]["data"], chart
        width, height = browsing.page.evaluate(
            "(id) => { const c = document.querySelector(`#${id} canvas`); return [c.width, c.height]; }", chart
        )
        assert painted_pixels(browsing, chart) > 0.02 * width * height, chart
    # The charts hold the API's numbers: categories and countries, as the page asked for them.
    query, _ = browsing.kpi_tiles()
    common = api_query({k: v for k, v in query.items() if k not in ("compare", "limit")})
    categories = http.get("/api/v1/analytics/sales/categories", params={**common, "limit": 8}, headers=headers("read"))
    drawn = {d["name"]: d["value"] for d in chart_option(browsing, "chart-categories")["series"][0]["data"]}
    assert drawn == {c["key"]: c["gross_revenue"] for c in categories.json()["items"]}
    low = http.get(
        "/api/v1/analytics/products/inventory",
        params={**common, "low_stock": "true", "sort": "days_of_cover", "limit": 15},
        headers=headers("read"),
    ).json()["items"]
    rows = browsing.page.eval_on_selector_all(
        "#low-stock tbody tr[data-product]", "rows => rows.map(r => r.dataset.product)"
    )
    assert rows == [p["key"] for p in low] and rows
    assert_tiles_equal_the_api(browsing, http)
    # The key went in a header only: in no URL the page asked for, and kept for the tab only.
    assert not [u for u in browsing.requested if KEYS["read"]["key"] in u]
    assert browsing.page.evaluate("localStorage.length") == 0


@pytest.mark.parametrize(
    "changes",
    [
        [("select", "#period", "last7")],
        [("fill", "#tz", "America/New_York"), ("select", "#compare", "previous_year")],
        [("fill", "#channel", "web"), ("select", "#period", "this_month")],
        [("fill", "#store", "default"), ("select", "#period", "custom"), ("fill", "#start", None)],
    ],
    ids=["last-7-days", "new-york-last-year", "web-this-month", "store-custom"],
)
def test_the_tiles_show_the_apis_numbers_and_follow_the_pickers(browsing, http, records, changes):
    browsing.open_dashboard(KEYS["read"]["key"])
    loaded = browsing.wait_loaded()
    first = assert_tiles_equal_the_api(browsing, http)
    for action, selector, value in changes:
        if action == "select":
            browsing.page.select_option(selector, value)
            if value == "custom":
                continue  # nothing to load until the dates are given
        else:
            if selector == "#start":  # a custom period: the 3 days before today, in the page's own zone
                today = datetime.now(UTC).date()
                browsing.page.fill("#end", (today - timedelta(days=1)).isoformat())
                value = (today - timedelta(days=3)).isoformat()
            browsing.page.fill(selector, value)
            browsing.page.dispatch_event(selector, "change")
        loaded = browsing.wait_loaded(loaded)
    body = assert_tiles_equal_the_api(browsing, http)
    assert body["period"] != first["period"] or body.get("comparison") != first.get("comparison")


def test_an_order_ingested_while_the_page_is_open_appears_within_two_seconds(browsing, http, records):
    browsing.open_dashboard(KEYS["read"]["key"], fragment="period=today")
    browsing.wait_loaded()
    browsing.page.wait_for_selector('#live-status[data-state="live"]', timeout=10_000)
    wait_until(browsing.page, "() => document.querySelector('[data-live=orders] .value').dataset.value !== undefined")
    period_orders = browsing.tile_number('[data-kpi="orders"]')
    live_orders = browsing.tile_number('[data-live="orders"]')
    assert period_orders == live_orders  # both are today's sales so far
    order = order_at(records["orders"][2], datetime.now(UTC) - timedelta(seconds=5), "page-live-1", status="paid")
    answer = http.post("/api/v1/analytics/orders/index", json={"orders": [order]}, headers=headers("ingest"))
    answered = time.monotonic()
    assert answer.status_code == 200 and answer.json()["indexed"] == 1, answer.text
    wait_until(
        browsing.page,
        """(n) => ['[data-kpi="orders"]', '[data-live="orders"]'].every(
             s => Number(document.querySelector(s + ' .value').dataset.value) === n)""",
        period_orders + 1,
        timeout=10,
        every=0.02,
    )
    delay = time.monotonic() - answered
    assert delay <= 2.0, f"the order reached the tiles {delay:.2f} s after the ingest answer"
    assert_tiles_equal_the_api(browsing, http)


def test_a_wrong_key_shows_a_clear_message(browsing, records):
    browsing.open_dashboard("not-a-key")
    browsing.page.wait_for_selector("#message:not([hidden])")
    assert "refused (401)" in browsing.page.text_content("#message")
    assert browsing.page.is_visible("#key-panel") and not browsing.page.is_visible("#board")
    # A key bound to store s1 asking for another store.
    browsing.open_dashboard(KEYS["read_s1"]["key"], fragment="store=s2")
    wait_until(browsing.page, "() => document.querySelector('#message').textContent.includes('403')")
    assert "may only read store 's1'" in browsing.page.text_content("#message")


def operation_count(http: httpx.Client) -> int:
    paths = http.get("/openapi.json").json()["paths"]
    return sum(len(operations) for operations in paths.values())


def test_the_api_docs_render_with_no_network_beyond_localhost(browsing, http):
    operations = operation_count(http)
    browsing.page.goto(f"{browsing.base}/docs")
    wait_until(browsing.page, "(n) => document.querySelectorAll('.opblock').length === n", operations)
    browsing.page.goto(f"{browsing.base}/redoc")
    wait_until(
        browsing.page,
        "(n) => document.querySelectorAll('[data-section-id*=\"operation/\"]').length >= n",
        operations,
        timeout=60,
    )
    assert browsing.page.is_visible("text=Store analytics")


def test_an_alert_that_fires_shows_on_the_page_within_2s(browsing, http, records):
    """A key with the reports scope sees the open incidents and each new one as it fires."""
    browsing.open_dashboard(KEYS["admin"]["key"])
    browsing.wait_loaded()
    wait_until(browsing.page, "() => document.querySelector('#alerts').dataset.stream === 'open'")
    rule = http.post(
        "/api/v1/alerts",
        headers=headers("reports"),
        json={
            "name": "Page test alert",
            "measure": "orders",
            "window": "1h",
            "condition": {"type": "threshold", "operator": ">=", "value": 0},
        },
    ).json()
    fired = http.post(f"/api/v1/alerts/{rule['alert_id']}/evaluate", headers=headers("reports"))
    assert fired.status_code == 200 and fired.json()["events"]
    waited = wait_until(
        browsing.page,
        "() => document.querySelector('#alerts-last').textContent.includes('Page test alert')",
        timeout=10,
    )
    assert waited < 2.0
    text = browsing.page.inner_text("#incidents")
    assert "Page test alert" in text and f"orders {fired.json()['value']:,.0f}" in text
    http.delete(f"/api/v1/alerts/{rule['alert_id']}", headers=headers("reports"))


def test_a_key_without_the_reports_scope_is_told_alerts_need_it(browsing, records):
    browsing.open_dashboard(KEYS["read"]["key"])
    browsing.wait_loaded()
    wait_until(browsing.page, "() => document.querySelector('#alerts-state').textContent.length > 0")
    assert "reports scope" in browsing.page.inner_text("#alerts-state")
