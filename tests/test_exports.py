"""Streamed exports (GET /api/v1/export/{kind}) against the raw records sent.

The expected rows are built here from the generated records (the dicts POSTed), not
from Elasticsearch; the service module is only asked for its column names and kinds,
to know how to read each file back. Pages are made small so every export spans many
point-in-time pages.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest

from analytics_service import exports
from analytics_service.app import create_app
from analytics_service.es.scan import PitScan
from analytics_service.exports import stream, writers
from tests.conftest import generate_records, headers, ingest_records, served

SALE_STATUSES = {"paid", "processing", "shipped", "delivered", "refunded"}
PAGE = 40  # documents per point-in-time page in these tests
ALL = {"start": "2026-08-01", "end": "2026-11-15"}  # holds every generated record
NY = "America/New_York"


@pytest.fixture(scope="module", autouse=True)
def small_pages():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream, "PAGE_SIZE", PAGE)
        yield


@pytest.fixture(scope="module")
def records(client) -> dict[str, list[dict]]:
    """Two stores: `default` (most records) and `s1`, merged by kind."""
    main = generate_records(seed=31, orders=260, activity=500, days=40, end=date(2026, 11, 1))
    other = generate_records(seed=32, orders=70, activity=120, days=40, end=date(2026, 11, 1), store_id="s1")
    for batch in (main, other):
        ingest_records(client, batch)
    merged = {kind: main[kind] + other[kind] for kind in main}
    assert len({(o["store_id"], o["order_id"]) for o in merged["orders"]}) == len(merged["orders"])
    assert len(merged["orders"]) > 5 * PAGE and len(merged["activities"]) > 10 * PAGE
    return merged


# -- the oracle: expected rows from the raw records --------------------------------------------


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _local_date(text: str, tz: str) -> date:
    return _instant(text).astimezone(ZoneInfo(tz)).date()


def _customer(c: dict) -> dict[str, Any]:
    return {
        "customer_id": str(c["customer_id"]),
        "segment": c.get("segment"),
        "country": c.get("country"),
        "region": c.get("region"),
        "state": c.get("state"),
        "city": c.get("city"),
    }


def _utm(r: dict) -> dict[str, Any]:
    utm = r.get("utm") or {}
    return {"utm_source": utm.get("source"), "utm_medium": utm.get("medium"), "utm_campaign": utm.get("campaign")}


def _line(item: dict, fx: float) -> dict[str, Any]:
    cost = item.get("unit_cost")
    return {
        "product_id": str(item["product_id"]),
        "sku": item.get("sku"),
        "name": item.get("name"),
        "category": item.get("category"),
        "subcategory": item.get("subcategory"),
        "brand": item.get("brand"),
        "quantity": item["quantity"],
        "unit_price": item["unit_price"] * fx,
        "discount": item.get("discount", 0.0) * fx,
        "line_revenue": (item["quantity"] * item["unit_price"] - item.get("discount", 0.0)) * fx,
        "unit_cost": None if cost is None else cost * fx,
        "line_cogs": None if cost is None else item["quantity"] * cost * fx,
    }


def expected_orders(records: dict, tz: str) -> dict[tuple, dict[str, Any]]:
    out = {}
    for o in records["orders"]:
        fx = o.get("fx_rate") or 1.0
        lines = [_line(item, fx) for item in o["items"]]
        gross = sum(line["line_revenue"] for line in lines)
        value = gross - o.get("discount_amount", 0.0) * fx
        if o.get("refunded_amount") is not None:
            refunded = o["refunded_amount"] * fx
        else:
            refunded = value if o["status"] == "refunded" else 0.0
        shipping, tax = o.get("shipping_amount", 0.0) * fx, o.get("tax_amount", 0.0) * fx
        payment = o.get("payment") or {}
        out[(o["store_id"], o["order_id"])] = {
            "order_id": o["order_id"],
            "store_id": o["store_id"],
            "status": o["status"],
            "created_at": _instant(o["created_at"]),
            "local_date": _local_date(o["created_at"], tz),
            **{k: _instant(o.get(k)) for k in ("updated_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at")},
            "channel": o.get("channel"),
            **_customer(o["customer"]),
            "postal_code": o["customer"].get("postal_code"),
            "currency": o.get("currency") or "USD",
            "fx_rate": fx,
            "gross_revenue": gross,
            "discount_amount": o.get("discount_amount", 0.0) * fx,
            "order_value": value,
            "refunded_amount": refunded,
            "net_revenue": value - refunded,
            "shipping_amount": shipping,
            "tax_amount": tax,
            "total_billed": value + shipping + tax,
            "cogs": sum(line["line_cogs"] or 0.0 for line in lines),
            "units": sum(line["quantity"] for line in lines),
            "item_count": len(lines),
            "payment_method": payment.get("method"),
            "payment_status": payment.get("status"),
            "installments": payment.get("installments"),
            "coupon_code": o.get("coupon_code"),
            **_utm(o),
        }
    return out


def expected_sales(records: dict, tz: str) -> dict[tuple, dict[str, Any]]:
    out = {}
    for o in records["orders"]:
        if o["status"] not in SALE_STATUSES:
            continue
        fx = o.get("fx_rate") or 1.0
        for n, item in enumerate(o["items"], start=1):
            out[(o["store_id"], o["order_id"], n)] = {
                "order_id": o["order_id"],
                "line": n,
                "store_id": o["store_id"],
                "status": o["status"],
                "created_at": _instant(o["created_at"]),
                "local_date": _local_date(o["created_at"], tz),
                "channel": o.get("channel"),
                **_line(item, fx),
                "currency": o.get("currency") or "USD",
                "fx_rate": fx,
                **_customer(o["customer"]),
                "payment_method": (o.get("payment") or {}).get("method"),
                "coupon_code": o.get("coupon_code"),
                **_utm(o),
            }
    return out


def expected_users(records: dict, tz: str) -> dict[tuple, dict[str, Any]]:
    out = {}
    for a in records["activities"]:
        device, geo = a.get("device") or {}, a.get("geo") or {}
        out[(a["store_id"], a["activity_id"])] = {
            "activity_id": a["activity_id"],
            "store_id": a["store_id"],
            "timestamp": _instant(a["timestamp"]),
            "local_date": _local_date(a["timestamp"], tz),
            "activity_type": a["activity_type"],
            "actor_id": a.get("user_id") or a.get("anonymous_id"),
            **{
                k: a.get(k)
                for k in (
                    "user_id",
                    "anonymous_id",
                    "session_id",
                    "page_url",
                    "referrer",
                    "product_id",
                    "category",
                    "search_query",
                    "results_count",
                    "order_id",
                    "value",
                    "rating",
                    "review_text",
                    "duration_ms",
                )
            },
            "device_type": device.get("type"),
            "device_os": device.get("os"),
            "device_browser": device.get("browser"),
            "country": geo.get("country"),
            "region": geo.get("region"),
            "city": geo.get("city"),
            **_utm(a),
        }
    return out


def expected_products(records: dict, tz: str) -> dict[tuple, dict[str, Any]]:
    return {
        (p["store_id"], p["product_id"]): {
            **{
                k: p.get(k)
                for k in (
                    "product_id",
                    "store_id",
                    "sku",
                    "name",
                    "category",
                    "subcategory",
                    "brand",
                    "price",
                    "cost",
                    "stock_quantity",
                    "reorder_point",
                    "active",
                )
            },
            "updated_at": _instant(p.get("updated_at")),
        }
        for p in records["products"]
    }


EXPECTED = {"orders": expected_orders, "sales": expected_sales, "users": expected_users, "products": expected_products}
KEYS = {
    "orders": ("store_id", "order_id"),
    "sales": ("store_id", "order_id", "line"),
    "users": ("store_id", "activity_id"),
    "products": ("store_id", "product_id"),
}


def in_period(rows: dict[tuple, dict], field: str, start: str, end: str, tz: str) -> dict[tuple, dict]:
    lo = datetime.combine(date.fromisoformat(start), datetime.min.time(), ZoneInfo(tz))
    hi = datetime.combine(date.fromisoformat(end), datetime.min.time(), ZoneInfo(tz))
    return {k: r for k, r in rows.items() if lo <= r[field] < hi}


# -- reading the files back ---------------------------------------------------------------------


def _typed(value: Any, kind: str, fmt: str, tz: str) -> Any:
    """A cell as the test compares it: None, str, int, float, bool, UTC datetime, date."""
    if value is None or (fmt == "csv" and value == ""):
        return None
    if kind in ("money", "number"):
        return float(value)
    if kind == "int":
        return int(value)
    if kind == "bool":
        return value if isinstance(value, bool) else {"true": True, "false": False}[value]
    if kind == "datetime":
        if isinstance(value, datetime):  # XLSX: local wall-clock time in tz
            return value.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
        parsed = datetime.fromisoformat(value)
        assert parsed.utcoffset() == parsed.astimezone(ZoneInfo(tz)).utcoffset(), f"{value} is not in {tz}"
        return parsed.astimezone(UTC)
    if kind == "local_date":
        return value.date() if isinstance(value, datetime) else date.fromisoformat(value)
    return str(value)


def read_export(content: bytes, fmt: str, kind: str, tz: str = "UTC") -> tuple[list[str], list[dict[str, Any]]]:
    """(header, rows as typed dicts) of an export file."""
    columns = exports.EXPORTS[kind].columns
    names = [c.name for c in columns]
    if fmt == "csv":
        lines = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
        header, raw = lines[0], lines[1:]
    elif fmt == "ndjson":
        objects = [json.loads(line) for line in content.decode("utf-8").splitlines()]
        assert all(list(o) == names for o in objects)
        header, raw = names, [[o[n] for n in names] for o in objects]
    else:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
        header, raw = [], []
        for ws in workbook.worksheets:
            values = list(ws.iter_rows(values_only=True))
            header = list(values[0])
            # Write-only sheets carry no dimension: trailing empty cells are simply absent.
            raw += [(list(v) + [None] * len(names))[: len(names)] for v in values[1:]]
        workbook.close()
    rows = [{c.name: _typed(v, c.kind, fmt, tz) for c, v in zip(columns, row)} for row in raw]
    assert all(len(row) == len(names) for row in raw)
    return header, rows


def export(client, kind: str, fmt: str = "csv", key: str = "read", **params) -> httpx.Response:
    return client.get(f"/api/v1/export/{kind}", params={"format": fmt, **params}, headers=headers(key))


def assert_rows_equal(kind: str, rows: list[dict], expected: dict[tuple, dict]) -> None:
    by_key = {tuple(r[k] for k in KEYS[kind]): r for r in rows}
    assert len(by_key) == len(rows), "a record was exported twice"
    assert len(rows) == len(expected)
    assert set(by_key) == set(expected)
    kinds = {c.name: c.kind for c in exports.EXPORTS[kind].columns}
    for key, want in expected.items():
        got = by_key[key]
        assert set(got) == set(want), f"columns differ: {set(got) ^ set(want)}"
        for name, value in want.items():
            if kinds[name] == "money" and value is not None:
                assert got[name] == pytest.approx(value, abs=0.0051), (key, name)
            elif kinds[name] == "number" and value is not None:
                assert got[name] == pytest.approx(value), (key, name)
            elif isinstance(value, str):  # the ingest API strips surrounding whitespace from strings
                assert got[name] == value.strip(), (key, name, got[name], value)
            else:
                assert got[name] == value, (key, name, got[name], value)


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "xlsx"])
@pytest.mark.parametrize("kind", ["orders", "sales", "users", "products"])
def test_export_rows_equal_the_records(client, records, kind, fmt):
    r = export(client, kind, fmt, tz=NY, **ALL)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == exports.MEDIA_TYPES[fmt]
    disposition = r.headers["content-disposition"]
    if kind == "products":
        assert disposition.startswith('attachment; filename="products-') and disposition.endswith(f'.{fmt}"')
    else:
        assert disposition == f'attachment; filename="{kind}-2026-08-01-2026-11-15.{fmt}"'
    header, rows = read_export(r.content, fmt, kind, NY)
    assert header == [c.name for c in exports.EXPORTS[kind].columns]
    assert_rows_equal(kind, rows, EXPECTED[kind](records, NY))


def test_rows_are_sorted_by_time(client, records):
    _, rows = read_export(export(client, "sales", **ALL).content, "csv", "sales")
    keys = [(r["created_at"], r["order_id"], r["line"]) for r in rows]
    assert keys == sorted(keys)
    _, rows = read_export(export(client, "users", "ndjson", **ALL).content, "ndjson", "users")
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)


@pytest.mark.parametrize("kind,field", [("orders", "created_at"), ("sales", "created_at"), ("users", "timestamp")])
def test_period_in_a_time_zone(client, records, kind, field):
    tz, start, end = "America/Sao_Paulo", "2026-10-05", "2026-10-19"
    r = export(client, kind, "ndjson", tz=tz, start=start, end=end)
    assert r.status_code == 200
    _, rows = read_export(r.content, "ndjson", kind, tz)
    expected = in_period(EXPECTED[kind](records, tz), field, start, end, tz)
    assert 0 < len(expected) < len(EXPECTED[kind](records, tz))
    assert_rows_equal(kind, rows, expected)


def test_local_date_across_a_dst_change(client, records):
    """New York leaves DST on 1 November 2026: local dates follow the zone, not UTC."""
    _, rows = read_export(
        export(client, "orders", tz=NY, start="2026-10-30", end="2026-11-02").content, "csv", "orders", NY
    )
    assert rows
    for row in rows:
        assert row["local_date"] == row["created_at"].astimezone(ZoneInfo(NY)).date()


@pytest.mark.parametrize("kind", ["orders", "sales", "users", "products"])
def test_store_filter_and_store_bound_key(client, records, kind):
    expected = {k: v for k, v in EXPECTED[kind](records, "UTC").items() if v["store_id"] == "s1"}
    assert expected
    for key, params in (("read", {"store_id": "s1"}), ("read_s1", {}), ("read_s1", {"store_id": "s1"})):
        r = export(client, kind, "csv", key=key, **ALL, **params)
        assert r.status_code == 200, r.text
        assert_rows_equal(kind, read_export(r.content, "csv", kind)[1], expected)
    r = export(client, kind, "csv", key="read_s1", store_id="default", **ALL)
    assert r.status_code == 403 and r.json()["error"]["code"] == "store_forbidden"


def test_channel_filter(client, records):
    r = export(client, "orders", "ndjson", channel="web", **ALL)
    expected = {k: v for k, v in EXPECTED["orders"](records, "UTC").items() if v["channel"] == "web"}
    assert expected
    assert_rows_equal("orders", read_export(r.content, "ndjson", "orders")[1], expected)
    for kind in ("users", "products"):
        r = export(client, kind, channel="web")
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["field"] == "query.channel"


def test_bad_parameters_are_422_naming_them(client, records):
    r = export(client, "orders", "pdf")
    assert r.status_code == 422
    body = r.json()["error"]
    assert body["code"] == "validation_error" and body["details"][0]["field"] == "query.format"
    r = export(client, "orders", tz="Mars/Base")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.tz"
    assert export(client, "invoices").status_code == 404


def test_elasticsearch_down_is_503_before_any_byte(es_connection, prefix, tmp_path):
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings

    dead = make_settings(es_connection, prefix, tmp_path, elasticsearch_url="http://127.0.0.1:9")
    with TestClient(create_app(dead)) as offline:
        for fmt in ("csv", "xlsx"):
            r = export(offline, "orders", fmt)
            assert r.status_code == 503 and r.json()["error"]["code"] == "elasticsearch_unavailable"


def test_scope_read_is_required(client, records):
    assert client.get("/api/v1/export/orders").status_code == 401
    assert export(client, "orders", key="ingest").status_code == 403
    assert export(client, "orders", key="admin", **ALL).status_code == 200


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "xlsx"])
def test_an_empty_export_still_has_its_header(client, records, fmt):
    r = export(client, "orders", fmt, start="2020-01-01", end="2020-02-01")
    assert r.status_code == 200
    header, rows = read_export(r.content, fmt, "orders")
    assert rows == []
    if fmt != "ndjson":  # NDJSON has no header line: an empty file
        assert header == [c.name for c in exports.ORDERS_EXPORT.columns]
    else:
        assert r.content == b""


def test_csv_money_has_two_decimals(client, records):
    text = export(client, "orders", **ALL).content.decode()
    reader = csv.DictReader(io.StringIO(text))
    money = [c.name for c in exports.ORDERS_EXPORT.columns if c.kind == "money"]
    for row in reader:
        for name in money:
            whole, _, cents = row[name].partition(".")
            assert whole.lstrip("-").isdigit() and len(cents) == 2, (name, row[name])


def test_xlsx_layout_and_sheets_of_at_most_the_row_limit(client, records, monkeypatch):
    monkeypatch.setattr(writers, "XLSX_MAX_ROWS", 100)
    r = export(client, "orders", "xlsx", **ALL)
    assert int(r.headers["content-length"]) == len(r.content)
    workbook = openpyxl.load_workbook(io.BytesIO(r.content))
    total = len(records["orders"])
    assert workbook.sheetnames == ["orders"] + [f"orders {n}" for n in range(2, (total - 1) // 100 + 2)]
    names = [c.name for c in exports.ORDERS_EXPORT.columns]
    counted = 0
    for ws in workbook.worksheets:
        assert [c.value for c in ws[1]] == names and ws["A1"].font.b
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(names))}{ws.max_row}"
        counted += ws.max_row - 1
    assert counted == total
    first = workbook["orders"]
    money = names.index("gross_revenue") + 1
    assert first.cell(2, money).number_format == "#,##0.00" and isinstance(first.cell(2, money).value, float)
    assert isinstance(first.cell(2, names.index("created_at") + 1).value, datetime)
    assert first.column_dimensions["A"].width >= len("order_id")


def test_text_is_never_a_formula_in_xlsx(client, records, es, prefix):
    product = {"product_id": "evil-1", "store_id": "evil", "name": '=HYPERLINK("http://x")\x07', "price": 1.0}
    r = client.post(
        "/api/v1/analytics/products/index",
        json={"products": [product]},
        headers=headers("ingest"),
        params={"refresh": "wait_for"},
    )
    assert r.status_code == 200 and not r.json()["errors"]
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(export(client, "products", "xlsx", store_id="evil").content))
        row = next(workbook.active.iter_rows(min_row=2))
        assert row[0].value == "evil-1"
        assert row[3].value == '=HYPERLINK("http://x")' and row[3].data_type == "s"  # control character dropped
    finally:
        es.delete(index=f"{prefix}-products", id="evil:evil-1", refresh=True)


# -- the point in time is closed: after an export, and when the client goes away ------------------


def open_contexts(es, prefix: str) -> int:
    stats = es.indices.stats(index=f"{prefix}-*", metric="search", expand_wildcards="all")
    return stats["_all"]["total"]["search"]["open_contexts"]


def wait_closed(es, prefix: str, within: float) -> float:
    deadline = time.monotonic() + within
    start = time.monotonic()
    while open_contexts(es, prefix):
        assert time.monotonic() < deadline, "the point in time is still open"
        time.sleep(0.05)
    return time.monotonic() - start


def test_point_in_time_closed_after_exports(client, records, es, prefix):
    for fmt in ("csv", "ndjson", "xlsx"):
        assert export(client, "users", fmt, **ALL).status_code == 200
    assert open_contexts(es, prefix) == 0


@pytest.fixture
def live_server(settings):
    """The app in a real uvicorn server (a thread of this process, so monkeypatches apply)."""
    with served(create_app(settings)) as url:
        yield url


@pytest.fixture
def slow_pages(monkeypatch):
    """Pages of 5 documents, each fetched 0.2 s late: a whole export takes tens of seconds."""
    original = PitScan.page

    async def page(self, after):
        if after is not None:
            import asyncio

            await asyncio.sleep(0.2)
        return await original(self, after)

    monkeypatch.setattr(stream, "PAGE_SIZE", 5)
    monkeypatch.setattr(PitScan, "page", page)


def test_client_disconnect_mid_stream_closes_the_point_in_time(records, es, prefix, live_server, slow_pages):
    with httpx.Client(base_url=live_server, headers=headers("read")) as http:
        with http.stream("GET", "/api/v1/export/users", params={"format": "csv", **ALL}) as r:
            assert r.status_code == 200
            chunks = r.iter_bytes()  # held: a dropped iterator would close the response at once
            next(chunks)
            assert open_contexts(es, prefix) > 0  # one per shard of the monthly indices
    # The whole export would take > 10 s; the server notices the disconnect at its next write.
    assert wait_closed(es, prefix, within=5) < 5


def test_client_disconnect_while_xlsx_is_built_stops_and_cleans_up(records, es, prefix, live_server, slow_pages):
    from openpyxl.worksheet import _writer

    temp_files = set(_writer.ALL_TEMP_FILES)
    with httpx.Client(base_url=live_server, headers=headers("read"), timeout=1.0) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("/api/v1/export/users", params={"format": "xlsx", **ALL})
    wait_closed(es, prefix, within=5)
    deadline = time.monotonic() + 5
    while set(_writer.ALL_TEMP_FILES) - temp_files and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_writer.ALL_TEMP_FILES) - temp_files, "openpyxl temp files left behind"
