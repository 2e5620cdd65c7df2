"""Every report type in every format, generated through the API from generated data:
the files, opened with the csv module, openpyxl and a PDF text extractor, carry the
analytics endpoints' numbers for the same parameters."""

from __future__ import annotations

import csv
import io
import time
from datetime import date

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from analytics_service.reports.model import FORMATS, REPORT_TYPES
from tests.conftest import analytics_get, generate_records, headers, ingest_records, request_report

END = date(2026, 11, 15)
PARAMETERS = {
    "daily_sales": {"start": "2026-11-10", "end": "2026-11-11", "tz": "America/Sao_Paulo"},
    "weekly_performance": {"start": "2026-11-02", "end": "2026-11-09", "tz": "America/New_York"},
    "monthly_business_review": {"start": "2026-10-01", "end": "2026-11-01", "tz": "America/New_York"},
    "quarterly_executive_summary": {"start": "2026-07-01", "end": "2026-10-01", "tz": "UTC"},
    "product_performance": {"start": "2026-10-15", "end": "2026-11-14", "tz": "UTC"},
    "customer_behavior": {"start": "2026-10-15", "end": "2026-11-14", "tz": "America/Sao_Paulo"},
    "inventory": {"start": "2026-10-15", "end": "2026-11-14", "tz": "UTC"},
    "marketing_campaign": {"start": "2026-10-01", "end": "2026-11-01", "tz": "America/New_York"},
}
SALES_TYPES = ("daily_sales", "weekly_performance", "monthly_business_review", "quarterly_executive_summary")


@pytest.fixture(scope="module")
def files(client):
    """{(type, format): (row, bytes)} for every type and format, all generated through the API."""
    ingest_records(client, generate_records(seed=17, orders=700, activity=3000, days=200, end=END))
    ids = {}
    for report_type in REPORT_TYPES:
        for fmt in FORMATS:
            ids[(report_type, fmt)] = request_report(client, report_type, fmt, PARAMETERS[report_type], key="admin")
    out = {}
    deadline = time.monotonic() + 600
    for key, report_id in ids.items():
        while True:
            row = client.get(f"/api/v1/reports/{report_id}", headers=headers("admin")).json()
            if row["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, row
            time.sleep(0.2)
        assert row["status"] == "completed", (key, row["error"])
        body = client.get(f"/api/v1/reports/{report_id}/download", headers=headers("admin"))
        assert body.status_code == 200
        out[key] = (row, body.content)
    return out


def api(client, path: str, report_type: str, **extra) -> dict:
    return analytics_get(client, path, **{**PARAMETERS[report_type], **extra})


def reference_kpis(client, report_type: str) -> dict[str, float]:
    """The endpoint numbers each report's KPIs come from, for the same parameters."""
    if report_type in SALES_TYPES:
        return api(client, "dashboard", report_type, compare="previous_period")["kpis"]
    if report_type == "customer_behavior":
        return api(client, "users/engagement", report_type)
    if report_type == "marketing_campaign":
        return api(client, "marketing/campaigns", report_type)["totals"]
    if report_type == "inventory":
        summary = api(client, "products/inventory", report_type)["summary"]
        return {**summary, "low_stock_products": summary["low_stock"]}
    totals = api(client, "sales/products", report_type)
    return {"total_products": totals["total_products"], **totals["totals"]}


def json_kpis(report: dict) -> dict[str, dict]:
    return {k["name"]: k for k in report["kpis"]}


def csv_blocks(content: bytes) -> dict[str, list[list[str]]]:
    """Block name -> [header, rows...] (blocks: a title line, a header, rows, an empty line)."""
    blocks: dict[str, list[list[str]]] = {}
    current = None
    for line in csv.reader(io.StringIO(content.decode("utf-8-sig"))):
        if not line:
            current = None
        elif current is None:
            current = line[0]
            blocks[current] = []
        else:
            blocks[current].append(line)
    return blocks


def number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_every_format_carries_the_endpoint_numbers(client, files, report_type):
    import json

    report = json.loads(files[(report_type, "json")][1])
    kpis = json_kpis(report)
    reference = reference_kpis(client, report_type)
    shared = [name for name in kpis if name in reference and isinstance(reference[name], (int, float))]
    assert len(shared) >= 3, (report_type, list(kpis), list(reference))
    for name in shared:
        assert kpis[name]["value"] == pytest.approx(reference[name], abs=0.01), name

    # CSV: the kpis block and every table block equal the JSON report.
    blocks = csv_blocks(files[(report_type, "csv")][1])
    header, *rows = blocks["kpis"]
    assert header[:3] == ["name", "label", "value"]
    csv_values = {row[0]: row[2] for row in rows}
    for name in shared:
        assert number(csv_values[name]) == pytest.approx(reference[name], abs=0.01), name
    for table in report["tables"]:
        header, *rows = blocks[table["name"]]
        assert header == [c["name"] for c in table["columns"]]
        assert len(rows) == len(table["rows"]), table["name"]
        numeric = [c["name"] for c in table["columns"] if c["kind"] in ("money", "count", "number", "rate")]
        for got, want in zip(rows, table["rows"], strict=True):
            for i, column in enumerate(header):
                if column in numeric and want[column] is not None:
                    assert number(got[i]) == pytest.approx(want[column], abs=0.01), (table["name"], column)

    # XLSX: the Summary sheet holds each KPI's value beside its label; data sheets hold the rows.
    workbook = load_workbook(io.BytesIO(files[(report_type, "xlsx")][1]))
    summary_rows = [[c.value for c in row] for row in workbook["Summary"].iter_rows()]
    for name in shared:
        label = kpis[name]["label"]
        row = next(r for r in summary_rows if label in r)
        value = row[row.index(label) + 1]
        expected = reference[name]
        assert value == pytest.approx(expected, abs=0.01), (name, row)
    data_rows = sum(ws.max_row - 1 for ws in workbook.worksheets if ws.title != "Summary")
    assert data_rows >= sum(len(t["rows"]) for t in report["tables"])

    # PDF: the text shows each money and count KPI as formatted on the page.
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(files[(report_type, "pdf")][1])).pages)
    for name in shared:
        kind, value = kpis[name]["kind"], reference[name]
        if kind == "money":
            assert f"{value:,.2f}" in text, (name, value)
        elif kind == "count":
            assert f"{int(value):,}" in text, (name, value)
    assert report["title"] in text.replace("\n", " ") or report["title"].split(" – ")[0] in text


@pytest.mark.parametrize("report_type", SALES_TYPES)
def test_sales_reports_top_products_equal_the_dashboard(client, files, report_type):
    import json

    report = json.loads(files[(report_type, "json")][1])
    dashboard = api(client, "dashboard", report_type, compare="previous_period")
    table = next(t for t in report["tables"] if "product" in t["name"])
    keys = [row.get("key") for row in table["rows"]]
    assert keys[:5] == [p["key"] for p in dashboard["top_products"]][:5]
    for row, product in zip(table["rows"], dashboard["top_products"], strict=False):
        assert row["gross_revenue"] == pytest.approx(product["gross_revenue"], abs=0.01)
