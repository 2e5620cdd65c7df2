"""Every report type in every format, read back as a finance reader would (issue 11): money names
its currency, labels are words rather than machine names, no PDF page is blank, a PDF changes
orientation at most once (portrait, then the tables too wide for it), sheet names are whole,
percentages are fractions with a percent format, the XLSX summary carries native charts, and a
loss that grows is shown as bad news."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from analytics_service.reports.model import FORMATS, REPORT_TYPES, ReportData
from analytics_service.reports.renderers import render
from analytics_service.reports.renderers.values import cell_kinds, growth_is_good
from analytics_service.reports.renderers.xlsx_file import sheet_names
from tests.conftest import generate_records, ingest_records
from tests.test_report_builders import build

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # last month: November 2026
# October 2026 ends in a loss and November in a larger one.
LOSSES = [
    {"expense_id": "q-loss-oct", "date": "2026-10-15", "category": "rent", "amount": 400_000.0},
    {"expense_id": "q-loss-nov", "date": "2026-11-15", "category": "office_rent", "amount": 1_200_000.0},
]
# A machine name: lower-case words joined by underscores (product_view, payment_fees, gift_card).
MACHINE_NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
BAD_RGB = "B3261E"


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory) -> dict[str, tuple[ReportData, dict[str, Path]]]:
    records = generate_records(seed=57, orders=1200, activity=4000, days=500, end=date(2026, 12, 2))
    records["expenses"].extend(LOSSES)
    ingest_records(client, records)
    out = tmp_path_factory.mktemp("reports")
    built = {}
    for report_type in REPORT_TYPES:
        _, data = build(client, report_type, {"tz": "America/New_York"}, now=NOW)
        files = {fmt: out / f"{report_type}.{fmt}" for fmt in FORMATS}
        for fmt, path in files.items():
            render(data, fmt, path)
        built[report_type] = (data, files)
    return built


def pdf_pages(path: Path) -> list[tuple[str, bool]]:
    """(text, landscape) per page."""
    return [(page.extract_text(), page.mediabox.width > page.mediabox.height) for page in PdfReader(path).pages]


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_money_names_its_currency(reports, report_type):
    data, files = reports[report_type]
    assert data.currency == "USD"
    pages = pdf_pages(files["pdf"])
    assert "CURRENCY USD" in " ".join(pages[0][0].split())
    text = " ".join(" ".join(t for t, _ in pages).split())
    for table in data.tables:
        for column in table.columns:
            if column.kind == "money" and table.rows:
                assert f"{column.label} (USD)" in text, (table.name, column.label)
    wb, names = load_workbook(files["xlsx"]), sheet_names(data)
    money = []  # every money cell of every data sheet
    for table in data.tables:
        for r, cells in enumerate(wb[names[table.name]].iter_rows(min_row=2)):
            money += [c for c, kind in zip(cells, cell_kinds(table, r)) if kind == "money" and c.value is not None]
    summary = {row[0].value: row for row in wb["Summary"].iter_rows() if row[0].value}
    money += [summary[k.label][1] for k in data.kpis if k.kind == "money" and k.value is not None]
    assert money and all(c.number_format == "[$USD] #,##0.00" for c in money)
    rows = list(csv.reader(files["csv"].read_text(encoding="utf-8-sig").splitlines()))
    assert ["currency", "USD"] in rows
    assert json.loads(files["json"].read_text())["currency"] == "USD"


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_labels_are_words_not_machine_names(reports, report_type):
    data, files = reports[report_type]
    text = " ".join(t for t, _ in pdf_pages(files["pdf"]))
    assert MACHINE_NAME.findall(text) == []
    assert "docs/metrics.md" not in text and "Notes and definitions" in text
    wb = load_workbook(files["xlsx"])
    strings = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert [s for s in strings if MACHINE_NAME.fullmatch(s)] == []
    cells = {c for row in csv.reader(files["csv"].read_text(encoding="utf-8-sig").splitlines()) for c in row}
    for table in data.tables:  # the machine values themselves stay in the CSV, for programs
        for i, column in enumerate(table.columns):
            if column.kind == "label":
                assert {row[i] for row in table.rows if isinstance(row[i], str)} <= cells, table.name


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_pdf_pages_are_full_and_turn_at_most_once(reports, report_type):
    data, files = reports[report_type]
    pages = pdf_pages(files["pdf"])
    running = {data.title, "Page"}
    for n, (text, _) in enumerate(pages, start=1):
        body = [
            line
            for line in text.splitlines()
            if line.strip() and not line.startswith("Generated ") and not any(r in line for r in running)
        ]
        assert len(body) >= 3, (report_type, n, text[:200])
    orientation = [landscape for _, landscape in pages]
    assert orientation[0] is False and orientation == sorted(orientation)  # portrait, then landscape
    reader = PdfReader(files["pdf"])
    meta = reader.metadata
    assert meta.title == data.title and meta.author and data.title.split(" — ")[0] in meta.subject
    assert meta.creation_date.replace(tzinfo=UTC) == data.generated_at.replace(microsecond=0)


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_xlsx_sheets_percentages_and_charts(reports, report_type):
    data, files = reports[report_type]
    wb = load_workbook(files["xlsx"])
    names = sheet_names(data)
    assert wb.sheetnames == ["Summary", *names.values()]
    for table in data.tables:
        name = names[table.name]
        assert name in (table.sheet, table.title) and len(name) <= 31, (name, table.title)
        ws = wb[name]
        for r, (row, cells) in enumerate(zip(table.rows, ws.iter_rows(min_row=2))):
            for value, kind, cell in zip(row, cell_kinds(table, r), cells):
                if not isinstance(value, (int, float)):
                    continue
                if kind == "pct":
                    assert cell.value == pytest.approx(value / 100) and "%" in cell.number_format
                elif kind == "rate":
                    assert cell.value == value and cell.number_format == "0.0%"
                elif kind == "pp":
                    assert cell.value == value and "pp" in cell.number_format
    header = next(r for r in wb["Summary"].iter_rows(values_only=True) if r and r[0] == "Metric")
    compared = any(k.previous is not None or not k.has_data for k in data.kpis)
    assert [h for h in header if h] == (
        ["Metric", "This period", "Previous period", "Change"] if compared else ["Metric", "This period"]
    )
    with zipfile.ZipFile(files["xlsx"]) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        rels = z.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    line_or_bar = {c.kind for c in data.charts if data.table(c.table).rows}
    assert len(charts) == len(line_or_bar & {"line", "bar"}) > 0 or not data.charts
    if charts:
        assert "drawing" in rels  # the charts are on the Summary sheet


def test_a_growing_loss_is_bad_news_in_every_format(reports):
    data, files = reports["monthly_business_review"]
    net = next(k for k in data.kpis if k.name == "net_profit")
    assert net.value < net.previous < 0 and net.growth_pct < 0  # the loss grew: negative change
    assert growth_is_good(net) is False  # the verdict the PDF and XLSX colour by
    margin = next(k for k in data.kpis if k.name == "net_margin")
    assert margin.change_pp is not None and margin.change == (margin.change_pp, "pp")
    ws = load_workbook(files["xlsx"])["Summary"]
    row = next(r for r in ws.iter_rows() if r[0].value == "Net profit")
    assert row[3].value == pytest.approx(net.growth_pct / 100) and row[3].font.color.rgb.endswith(BAD_RGB)
    first = " ".join(pdf_pages(files["pdf"])[0][0].split())
    assert f"Net profit USD {net.value:,.2f} USD {net.previous:,.2f} ▼ {net.growth_pct:+.1f}%" in first
    kpis = {k["name"]: k for k in json.loads(files["json"].read_text())["kpis"]}
    assert kpis["net_profit"]["growth_pct"] == net.growth_pct and kpis["net_profit"]["up_is_good"] is True
