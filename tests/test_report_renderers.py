"""Renderers: every format from hand-built ReportData, read back with the csv module,
openpyxl, pypdf and json; the PDF also rendered to PNG with pdftoppm.

No Elasticsearch here: the inputs are ReportData fixtures shaped like the builders'
output (a monthly business review with KPIs and comparison, a daily revenue series,
top-20 products, a 300-row orders table spanning several PDF pages, categories).
Run `python -m tests.test_report_renderers docs/report-sample.png` to refresh the
README's sample page.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from analytics_service.reports.model import Chart, Column, Kpi, ReportData, Table
from analytics_service.reports.renderers import WRITERS, RenderResult, render
from analytics_service.reports.renderers.xlsx_file import sheet_names

GENERATED_AT = datetime(2024, 4, 1, 6, 0, tzinfo=UTC)
MARCH = {
    "start": "2024-03-01T00:00:00+01:00",
    "end": "2024-04-01T00:00:00+02:00",
    "tz": "Europe/Berlin",
    "interval": "day",
}
TRICKY_NAMES = [
    'Kid\'s "Explorer" Backpack, blue',  # comma and quotes: RFC 4180 quoting
    '=HYPERLINK("http://x")',  # a formula in text: must stay text
    "Café Crème – 250 g, ground",  # non-ASCII
    "Ultra-long product name: ergonomic office chair with lumbar support and adjustable armrests",
]
CATEGORIES = ["Electronics", "Home & Kitchen", "Garden", "Toys", "Books", "Sports", "Beauty"]


def _money(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def _growth(current: float, previous: float | None) -> float | None:
    return None if not previous else round((current - previous) / abs(previous) * 100, 2)


def _kpis() -> list[Kpi]:
    """Key figures with their changes: a rate in points, a loss that grows (negative growth, bad
    news), a rise of refunds (bad news) and one with nothing to compare with."""
    figures = [
        ("gross_revenue", "Gross revenue", "money", 148210.55, 139012.40, True),
        ("net_revenue", "Net revenue", "money", 131877.12, 125930.09, True),
        ("orders", "Orders", "count", 2431, 2380, True),
        ("aov", "Average order value", "money", 60.97, 58.41, True),
        ("customers", "Customers", "count", 1874, 1902, True),
        ("gross_profit", "Gross profit", "money", 52013.87, 47311.02, True),
        ("net_profit", "Net profit", "money", -2543.45, -855.33, True),
        ("refunds", "Refunds", "money", 4210.0, 3120.5, False),
        ("refund_rate", "Refund rate", "rate", 0.0312, 0.0287, False),
        ("new_customers", "New customers", "count", 611, 0, True),
    ]
    return [
        Kpi(  # type: ignore[arg-type]
            name,
            label,
            value,
            kind,
            previous,
            _growth(value, previous),
            change_pp=round((value - previous) * 100, 2) if kind == "rate" else None,
            up_is_good=good,
        )
        for name, label, kind, value, previous, good in figures
    ]


def _daily_revenue(rng: random.Random) -> Table:
    rows = []
    for day in range(31):
        gross = _money(rng, 3200, 6400) * (1.25 if (day + 4) % 7 in (5, 6) else 1)
        rows.append(
            [
                (date(2024, 3, 1) + timedelta(days=day)).isoformat(),
                round(gross, 2),
                round(gross * 0.89, 2),
                rng.randint(50, 110),
            ]
        )
    return Table(
        "daily_revenue",
        "Daily revenue",
        [
            Column("key", "Day", "date"),
            Column("gross_revenue", "Gross revenue", "money"),
            Column("net_revenue", "Net revenue", "money"),
            Column("orders", "Orders", "count"),
        ],
        rows,
    )


def _top_products(rng: random.Random) -> Table:
    names = TRICKY_NAMES + [
        f"{rng.choice(['Smart', 'Classic', 'Pro', 'Eco'])} "
        f"{rng.choice(['Lamp', 'Kettle', 'Speaker', 'Planter', 'Blender'])} {i}"
        for i in range(16)
    ]
    revenues = sorted((_money(rng, 800, 9800) for _ in names), reverse=True)
    total = sum(revenues) * 4
    rows = [
        [
            f"P{1000 + i}",
            name,
            rng.choice(CATEGORIES),
            revenue,
            rng.randint(10, 400),
            rng.randint(8, 300),
            round(revenue / total, 4),
        ]
        for i, (name, revenue) in enumerate(zip(names, revenues))
    ]
    return Table(
        "top_products",
        "Top products",
        [
            Column("key", "Product ID"),
            Column("name", "Product"),
            Column("category", "Category"),
            Column("gross_revenue", "Gross revenue", "money"),
            Column("units", "Units", "count"),
            Column("orders", "Orders", "count"),
            Column("share", "Share of revenue", "rate"),
        ],
        rows,
    )


def orders_table(n: int, rng: random.Random, name: str = "orders_by_day") -> Table:
    rows = []
    for i in range(n):
        gross = _money(rng, 12, 480)
        discount = round(gross * rng.choice([0, 0, 0.05, 0.1]), 2)
        rows.append(
            [
                (date(2024, 3, 1) + timedelta(days=i * 31 // max(n, 1))).isoformat(),
                f"ORD-{700000 + i}",
                f"C{rng.randint(10000, 99999)}",
                rng.choice(["web", "app", "marketplace"]),
                rng.choice(["paid", "shipped", "delivered", "refunded"]),
                rng.randint(1, 6),
                gross,
                discount,
                round(gross - discount, 2),
            ]
        )
    return Table(
        name,
        "Orders by day",
        [
            Column("day", "Day", "date"),
            Column("order_id", "Order"),
            Column("customer_id", "Customer"),
            Column("channel", "Channel"),
            Column("status", "Status"),
            Column("units", "Units", "count"),
            Column("gross_revenue", "Gross revenue", "money"),
            Column("discount", "Discount", "money"),
            Column("net_revenue", "Net revenue", "money"),
        ],
        rows,
    )


def _categories(rng: random.Random) -> Table:
    rows = []
    for category in CATEGORIES:
        revenue = _money(rng, 5000, 40000)
        rows.append(
            [
                category,
                revenue,
                rng.randint(80, 600),
                rng.randint(100, 900),
                round(revenue / 148210.55, 4),
                round(rng.uniform(-18, 25), 2),
            ]
        )
    return Table(
        "categories",
        "Revenue by category",
        [
            Column("key", "Category"),
            Column("gross_revenue", "Gross revenue", "money"),
            Column("orders", "Orders", "count"),
            Column("units", "Units", "count"),
            Column("share", "Share", "rate"),
            Column("gross_revenue_growth_pct", "Growth", "pct"),
        ],
        rows,
    )


def monthly_review(orders: int = 300) -> ReportData:
    rng = random.Random(7)
    return ReportData(
        report_type="monthly_business_review",
        title="Monthly business review – March 2024",
        store_id="s1",
        period=dict(MARCH),
        generated_at=GENERATED_AT,
        kpis=_kpis(),
        tables=[_daily_revenue(rng), _top_products(rng), orders_table(orders, rng), _categories(rng)],
        charts=[
            Chart("line", "Daily revenue", "daily_revenue", "key", ("gross_revenue", "net_revenue")),
            Chart("line", "Daily orders", "daily_revenue", "key", ("orders",)),
            Chart("bar", "Top products by gross revenue", "top_products", "name", ("gross_revenue",)),
        ],
        notes=[
            (
                "Gross revenue: quantity × unit price − line discounts, sales only (paid, processing, shipped, "
                "delivered, refunded)."
            ),
            "Previous period: the 31 days before the period, same time zone.",
            "Growth: (current − previous) / previous × 100; – when the previous value is 0.",
        ],
    )


def empty_report() -> ReportData:
    return ReportData(
        report_type="daily_sales",
        title="Daily sales",
        store_id=None,
        period={
            "start": "2024-03-05T00:00:00+00:00",
            "end": "2024-03-06T00:00:00+00:00",
            "tz": "UTC",
            "interval": "hour",
        },
        generated_at=GENERATED_AT,
        kpis=[Kpi("gross_revenue", "Gross revenue", 0.0, "money", 0.0, None)],
        tables=[
            Table(
                "hourly",
                "Hourly revenue",
                [Column("key", "Hour", "date"), Column("gross_revenue", "Gross revenue", "money")],
                [],
            ),
            Table("top_products", "Top products", [Column("name", "Product"), Column("units", "Units", "count")], []),
        ],
        charts=[
            Chart("line", "Hourly revenue", "hourly", "key", ("gross_revenue",)),
            Chart("bar", "Top products", "top_products", "name", ("units",)),
        ],
    )


def wide_report() -> ReportData:
    """A table of 14 columns: too wide for portrait, rendered on landscape pages."""
    rng = random.Random(3)
    columns = (
        [Column("key", "Product")]
        + [Column(f"m{i:02d}", f"Revenue {date(2023, i, 1):%b %Y}", "money") for i in range(1, 13)]
        + [Column("growth_pct", "Growth", "pct")]
    )
    rows = [
        [f"Product {i}"] + [_money(rng, 10000, 999999) for _ in range(12)] + [round(rng.uniform(-30, 30), 2)]
        for i in range(60)
    ]
    data = monthly_review(orders=20)
    data.tables.append(Table("monthly_by_product", "Monthly revenue by product", columns, rows))
    return data


# --- independent expectations (not the renderers' own formatting code) ---------------------------


def csv_text(value, kind: str) -> str:
    if value is None:
        return ""
    if kind == "money":
        return f"{value:.2f}"
    if kind in ("count", "rate", "pct", "pp", "number"):
        return str(value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return str(value)


def shown(value, kind: str) -> str:
    """How the PDF shows a value in a table."""
    if value is None:
        return "–"
    return {
        "money": lambda v: f"{v:,.2f}",
        "count": lambda v: f"{v:,}",
        "rate": lambda v: f"{v * 100:.1f}%",
        "pct": lambda v: f"{v:+.1f}%",
        "pp": lambda v: f"{v:+.1f} pp",
    }.get(kind, str)(value)


def shown_kpi(value, kind: str) -> str:
    """How the PDF shows a key figure: money with its currency."""
    return f"USD {shown(value, kind)}" if kind == "money" and value is not None else shown(value, kind)


def header(column: Column) -> str:
    """A column header: money columns name the currency."""
    return f"{column.label} (USD)" if column.kind == "money" else column.label


XLSX_FORMATS = {
    "money": "[$USD] #,##0.00",
    "count": "#,##0",
    "rate": "0.0%",
    "pct": "+0.0%;-0.0%;0.0%",
    "pp": '+0.0" pp";-0.0" pp";0.0" pp"',
    "date": "yyyy-mm-dd",
}


def squash(text: str) -> str:
    return " ".join(text.split())


# --- rendering ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def review() -> ReportData:
    return monthly_review()


@pytest.fixture(scope="module")
def rendered(review, tmp_path_factory) -> dict[str, tuple[Path, RenderResult]]:
    folder = tmp_path_factory.mktemp("reports")
    out = {}
    for fmt in WRITERS:
        path = folder / f"monthly.{fmt}"
        out[fmt] = (path, render(review, fmt, path))
    return out


@pytest.fixture(scope="module")
def pdf_pages(rendered) -> list[str]:
    return [page.extract_text() for page in PdfReader(rendered["pdf"][0]).pages]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf", "json"])
def test_result_describes_the_file_on_disk(rendered, review, fmt):
    path, result = rendered[fmt]
    body = path.read_bytes()
    assert result.file_size == len(body) > 0
    assert result.checksum == hashlib.sha256(body).hexdigest()
    assert result.row_count == review.row_count == 31 + 20 + 300 + 7
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.parametrize("fmt", ["csv", "pdf", "json"])
def test_same_data_same_bytes(review, tmp_path, fmt):
    """CSV, JSON and PDF (reportlab's invariant mode) are reproducible; XLSX carries a save time."""
    assert render(review, fmt, tmp_path / f"a.{fmt}").checksum == render(review, fmt, tmp_path / f"b.{fmt}").checksum


def test_a_failed_render_leaves_no_file_and_keeps_the_old_one(tmp_path, review, monkeypatch):
    def half_then_fail(data, path):
        path.write_text("half a report")
        raise RuntimeError("disk on fire")

    target = tmp_path / "report.csv"
    target.write_text("previous complete file")
    monkeypatch.setitem(WRITERS, "csv", half_then_fail)
    with pytest.raises(RuntimeError):
        render(review, "csv", target)
    assert target.read_text() == "previous complete file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]
    with pytest.raises(ValueError, match="format"):
        render(review, "docx", tmp_path / "x.docx")


# --- CSV ------------------------------------------------------------------------------------------


def csv_blocks(path: Path) -> dict[str, dict]:
    """Blocks of the documented layout: name -> {title, header, rows}."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    blocks, current = {}, []
    for line in lines:
        if line:
            current.append(line)
            continue
        (name, title), header, *rows = current
        blocks[name] = {"title": title, "header": header, "rows": rows}
        current = []
    assert current == []  # the file ends with a block separator
    return blocks


def test_csv_layout_values_and_quoting(rendered, review):
    path = rendered["csv"][0]
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends (RFC 4180)
    assert b'"Kid\'s ""Explorer"" Backpack, blue"' in raw  # embedded quotes doubled, field quoted
    blocks = csv_blocks(path)
    assert list(blocks) == ["report", "kpis", "daily_revenue", "top_products", "orders_by_day", "categories", "notes"]
    facts = dict(blocks["report"]["rows"])
    assert blocks["report"]["title"] == review.title
    assert facts == {
        "report_type": "monthly_business_review",
        "title": review.title,
        "store_id": "s1",
        "period_start": MARCH["start"],
        "period_end": MARCH["end"],
        "currency": "USD",
        "tz": "Europe/Berlin",
        "interval": "day",
        "generated_at": "2024-04-01T06:00:00+00:00",
        "row_count": "358",
    }
    assert blocks["kpis"]["header"] == [
        "name",
        "label",
        "value",
        "previous",
        "growth_pct",
        "change_pp",
        "up_is_good",
        "compared_has_data",
    ]
    assert blocks["kpis"]["rows"] == [
        [
            k.name,
            k.label,
            csv_text(k.value, k.kind),
            csv_text(k.previous, k.kind),
            csv_text(k.growth_pct, "pct"),
            csv_text(k.change_pp, "pp"),
            "true" if k.up_is_good else "false",
            "true",
        ]
        for k in review.kpis
    ]
    rows = {row[0]: row for row in blocks["kpis"]["rows"]}
    assert rows["gross_revenue"][2:5] == ["148210.55", "139012.40", "6.62"]
    assert rows["new_customers"][2:5] == ["611", "0", ""]
    assert rows["net_profit"][2:5] == ["-2543.45", "-855.33", "-197.36"]  # a growing loss: negative
    assert rows["refund_rate"][5:7] == ["0.25", "false"]  # points, and a rise is bad news
    for table in review.tables:
        block = blocks[table.name]
        assert block["title"] == table.title
        assert block["header"] == [c.name for c in table.columns]
        assert block["rows"] == [[csv_text(v, c.kind) for v, c in zip(row, table.columns)] for row in table.rows]
    products = {row[0]: row for row in blocks["top_products"]["rows"]}
    assert products["P1001"][1] == '\'=HYPERLINK("http://x")'  # formula defused
    assert products["P1002"][1] == "Café Crème – 250 g, ground"
    assert blocks["daily_revenue"]["rows"][0][0] == "2024-03-01"
    assert blocks["notes"]["rows"] == [[n] for n in review.notes]


def test_csv_lines_are_generated_one_at_a_time(review):
    from analytics_service.reports.renderers.csv_file import csv_lines

    lines = csv_lines(review)
    assert iter(lines) is lines  # a generator: the file is written line by line
    assert next(lines) == ["report", review.title]


# --- XLSX -----------------------------------------------------------------------------------------


def test_xlsx_summary_sheet(rendered, review):
    wb = load_workbook(rendered["xlsx"][0])
    names = sheet_names(review)
    assert wb.sheetnames == ["Summary", *names.values()]
    ws = wb["Summary"]
    assert ws["A1"].value == review.title and ws["A1"].font.b
    facts = {row[0].value: row[1] for row in ws.iter_rows(min_row=3, max_row=11) if row[0].value}
    assert facts["Store"].value == "s1"
    assert facts["Period"].value == "2024-03-01 – 2024-03-31 (Europe/Berlin)"
    assert facts["Period start"].value == datetime(2024, 3, 1) and facts["Period start"].is_date
    assert facts["Period end (exclusive)"].value == datetime(2024, 4, 1)
    assert facts["Time zone"].value == "Europe/Berlin"
    assert facts["Generated at (UTC)"].value == datetime(2024, 4, 1, 6, 0)
    rows = list(ws.iter_rows())
    header_at = next(i for i, row in enumerate(rows) if row[0].value == "Metric")
    assert [c.value for c in rows[header_at]] == ["Metric", "This period", "Previous period", "Change"]
    assert all(c.font.b for c in rows[header_at])
    for kpi, row in zip(review.kpis, rows[header_at + 1 :]):
        label, value, previous, change = row[:4]
        assert label.value == kpi.label
        assert value.value == kpi.value and value.data_type == "n"
        assert value.number_format == XLSX_FORMATS[kpi.kind]
        assert previous.value == kpi.previous and previous.number_format == XLSX_FORMATS[kpi.kind]
        if kpi.kind == "rate":  # a rate changes in points
            assert change.value == kpi.change_pp and change.number_format == XLSX_FORMATS["pp"]
        elif kpi.growth_pct is None:
            assert change.value is None
        else:  # growth stored as a fraction, shown as a percentage
            assert change.value == pytest.approx(kpi.growth_pct / 100) and change.number_format == XLSX_FORMATS["pct"]
    by_label = {row[0].value: row for row in rows[header_at + 1 :]}
    assert by_label["Gross revenue"][3].font.color.rgb.endswith("1E7B34")  # up, and up is good: green
    assert by_label["Refund rate"][3].font.color.rgb.endswith("B3261E")  # refund rate up: red
    assert by_label["Refunds"][3].font.color.rgb.endswith("B3261E")  # refunds up: red
    assert by_label["Net profit"][3].value == pytest.approx(-1.9736)  # a loss growing: -197.4 %
    assert by_label["Net profit"][3].font.color.rgb.endswith("B3261E")  # and red
    assert facts["Currency"].value == "USD"
    sheets = {row[0].value: row[1].value for row in rows if row[0].value in names.values()}
    assert sheets == {names[t.name]: len(t.rows) for t in review.tables}


def test_xlsx_data_sheets_are_typed_frozen_filtered_and_sized(rendered, review):
    wb = load_workbook(rendered["xlsx"][0])
    for table in review.tables:
        ws = wb[sheet_names(review)[table.name]]
        last = chr(ord("A") + len(table.columns) - 1)
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:{last}{len(table.rows) + 1}"
        first = next(ws.iter_rows(min_row=1, max_row=1))
        assert [c.value for c in first] == [header(c) for c in table.columns]
        assert all(c.font.b for c in first)
        cells = list(ws.iter_rows(min_row=2))
        assert len(cells) == len(table.rows)
        for row, xl_row in zip(table.rows, cells):
            for value, column, cell in zip(row, table.columns, xl_row):
                if column.kind == "date":
                    assert cell.is_date and cell.value == datetime.fromisoformat(value)
                elif column.kind == "text":
                    assert cell.data_type == "s" and cell.value == value
                elif column.kind == "pct":  # the API's 7.11 (%) stored as the fraction 0.0711
                    assert cell.data_type == "n" and cell.value == pytest.approx(value / 100)
                else:
                    assert cell.data_type == "n" and cell.value == value
                    if column.kind == "count":
                        assert isinstance(cell.value, int)
                if column.kind != "text":
                    assert cell.number_format == XLSX_FORMATS[column.kind]
        for i, column in enumerate(table.columns):
            width = ws.column_dimensions[chr(ord("A") + i)].width
            extra = 4 if column.kind == "money" else 0  # room for the currency
            longest = max([len(header(column))] + [len(shown(r[i], column.kind)) + extra for r in table.rows])
            assert min(longest, 58) + 2 <= width <= 60
    products = wb[sheet_names(review)["top_products"]]
    assert products["B3"].value == '=HYPERLINK("http://x")' and products["B3"].data_type == "s"  # text, no formula


def test_xlsx_sheet_names_are_valid_and_unique(tmp_path):
    cols = [Column("key", "Key")]
    titles = [
        "Summary",
        "Revenue: by [region]/channel?",
        "A very long table title that Excel would reject",
        "A very long table title that Excel would reject too",
        "History",
        "revenue- by -region--channel-",
    ]
    data = ReportData(
        "inventory",
        "x",
        None,
        dict(MARCH),
        GENERATED_AT,
        tables=[Table(f"t{i}", t, cols, [["a"]]) for i, t in enumerate(titles)],
    )
    names = list(sheet_names(data).values())
    assert len({n.lower() for n in names} | {"summary"}) == len(names) + 1
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)
    assert names[1] == "Revenue- by -region--channel-"
    assert names[2] == "A very long table title that"  # cut at a word, never inside one
    assert names[3] == "A very long table title (2)"
    wb_path = tmp_path / "names.xlsx"
    render(data, "xlsx", wb_path)
    assert load_workbook(wb_path).sheetnames == ["Summary", *names]


# --- PDF ------------------------------------------------------------------------------------------


def test_pdf_title_page(pdf_pages, review):
    first = squash(pdf_pages[0])
    assert review.title in first
    assert "MONTHLY BUSINESS REVIEW" in first
    assert "Store s1" in first
    assert "2024-03-01 – 2024-03-31 (Europe/Berlin)" in first
    assert "Generated 2024-04-01 06:00 UTC" in first
    assert f"Page 1 of {len(pdf_pages)}" in first
    assert "Key figures" in first and "Previous period" in first and "CURRENCY USD" in first
    for kpi in review.kpis:
        assert f"{kpi.label} {shown_kpi(kpi.value, kpi.kind)} {shown_kpi(kpi.previous, kpi.kind)}" in first
        change, kind = kpi.change
        assert shown(change, kind) in first


def test_pdf_every_table_row_is_there_with_page_numbers(pdf_pages, review):
    everything = squash(" ".join(pdf_pages))
    for table in review.tables:
        assert table.title in everything
        for row in table.rows:
            assert " ".join(shown(v, c.kind) for v, c in zip(row, table.columns)) in everything
    for n, text in enumerate(pdf_pages, start=1):
        assert f"Page {n} of {len(pdf_pages)}" in text


def test_pdf_long_table_repeats_its_header_on_every_page(pdf_pages, review):
    header = "Day Order Customer Channel Status Units Gross revenue (USD) Discount (USD) Net revenue (USD)"
    pages = [i for i, text in enumerate(pdf_pages) if "ORD-7" in text]
    assert len(pages) >= 4 and pages == list(range(pages[0], pages[-1] + 1))
    for i in pages:
        assert header in squash(pdf_pages[i])
    later = squash(pdf_pages[pages[-1]])
    assert (
        " ".join(
            shown(v, c.kind)
            for v, c in zip(review.table("orders_by_day").rows[-1], review.table("orders_by_day").columns)
        )
        in later
    )


def test_pdf_of_2000_rows_spans_many_pages_with_each_row_once(tmp_path):
    data = ReportData(
        "inventory", "Orders", None, dict(MARCH), GENERATED_AT, tables=[orders_table(2000, random.Random(5))]
    )
    result = render(data, "pdf", tmp_path / "long.pdf")
    pages = [p.extract_text() for p in PdfReader(tmp_path / "long.pdf").pages]
    assert result.row_count == 2000 and len(pages) >= 35
    header = "Day Order Customer Channel Status Units Gross revenue (USD) Discount (USD) Net revenue (USD)"
    for n, text in enumerate(pages, start=1):
        assert header in squash(text)
        assert f"Page {n} of {len(pages)}" in text
    ids = re.findall(r"ORD-\d+", " ".join(pages))
    assert ids == [f"ORD-{700000 + i}" for i in range(2000)]  # every row once, in order


def test_pdf_wide_table_gets_landscape_pages(tmp_path):
    """A table too wide for portrait goes last, on landscape pages: one change of orientation."""
    data = wide_report()
    render(data, "pdf", tmp_path / "wide.pdf")
    reader = PdfReader(tmp_path / "wide.pdf")
    landscape = [p.mediabox.width > p.mediabox.height for p in reader.pages]
    assert landscape[0] is False and sum(landscape) >= 2
    assert landscape == sorted(landscape)  # portrait pages, then landscape pages
    for page, wide in zip(reader.pages, landscape):
        if wide:
            assert "Revenue Jan 2023 (USD)" in squash(page.extract_text())
    everything = squash(" ".join(p.extract_text() for p in reader.pages))
    table = data.table("monthly_by_product")
    for row in table.rows:
        assert " ".join(shown(v, c.kind) for v, c in zip(row, table.columns)) in everything


@pytest.fixture
def without_dejavu(monkeypatch):
    """The PDF as the slim Docker image makes it when no DejaVu font is installed: Helvetica."""
    from analytics_service.reports.renderers import pdf_file

    monkeypatch.setattr(pdf_file, "DEJAVU_DIRS", ())
    pdf_file.fonts.cache_clear()
    pdf_file.styles.cache_clear()
    yield
    pdf_file.fonts.cache_clear()
    pdf_file.styles.cache_clear()


def test_pdf_without_dejavu_falls_back_to_helvetica(without_dejavu, review, tmp_path):
    render(review, "pdf", tmp_path / "plain.pdf")
    reader = PdfReader(tmp_path / "plain.pdf")
    fonts = {
        str(f.get_object()["/BaseFont"]) for page in reader.pages[:1] for f in page["/Resources"]["/Font"].values()
    }
    assert fonts <= {"/Helvetica", "/Helvetica-Bold", "/Symbol"}  # base-14 fonts, nothing embedded
    first = squash(reader.pages[0].extract_text())
    for kpi in review.kpis:
        assert f"{kpi.label} {shown_kpi(kpi.value, kpi.kind)} {shown_kpi(kpi.previous, kpi.kind)}" in first
    assert f"Page 1 of {len(reader.pages)}" in first


def test_pdf_pages_render_to_png(rendered, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils (pdftoppm) is not installed")
    pdf = rendered["pdf"][0]
    count = len(PdfReader(pdf).pages)
    for page in (1, count // 2):
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "60",
                "-f",
                str(page),
                "-l",
                str(page),
                "-singlefile",
                str(pdf),
                str(tmp_path / f"page{page}"),
            ],
            check=True,
            timeout=60,
        )
        png = (tmp_path / f"page{page}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 20_000


# --- JSON -----------------------------------------------------------------------------------------


def test_json_is_the_report_data(rendered, review):
    doc = json.loads(rendered["json"][0].read_text(encoding="utf-8"))
    assert doc["report_type"] == review.report_type and doc["title"] == review.title
    assert doc["store_id"] == "s1" and doc["period"] == MARCH and doc["row_count"] == 358
    assert doc["generated_at"] == "2024-04-01T06:00:00+00:00"
    assert doc["kpis"][0] == {
        "name": "gross_revenue",
        "label": "Gross revenue",
        "kind": "money",
        "value": 148210.55,
        "previous": 139012.4,
        "growth_pct": 6.62,
        "change_pp": None,
        "up_is_good": True,
        "compared_has_data": True,
    }
    assert doc["currency"] == "USD"
    assert [(k["name"], k["value"], k["previous"], k["growth_pct"]) for k in doc["kpis"]] == [
        (k.name, k.value, k.previous, k.growth_pct) for k in review.kpis
    ]
    assert [t["name"] for t in doc["tables"]] == [t.name for t in review.tables]
    for table, out in zip(review.tables, doc["tables"]):
        assert out["columns"] == [{"name": c.name, "label": c.label, "kind": c.kind} for c in table.columns]
        assert out["rows"] == [dict(zip([c.name for c in table.columns], row)) for row in table.rows]
    assert doc["charts"][0] == {
        "kind": "line",
        "title": "Daily revenue",
        "table": "daily_revenue",
        "category": "key",
        "values": ["gross_revenue", "net_revenue"],
    }
    assert doc["notes"] == review.notes
    assert "Café Crème" in rendered["json"][0].read_text(encoding="utf-8")  # UTF-8, not \u escapes


# --- empty tables ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf", "json"])
def test_empty_tables_render(tmp_path, fmt):
    data = empty_report()
    path = tmp_path / f"empty.{fmt}"
    result = render(data, fmt, path)
    assert result.row_count == 0 and result.file_size == path.stat().st_size
    if fmt == "csv":
        blocks = csv_blocks(path)
        assert blocks["hourly"] == {"title": "Hourly revenue", "header": ["key", "gross_revenue"], "rows": []}
        assert dict(blocks["report"]["rows"])["store_id"] == ""
    elif fmt == "xlsx":
        ws = load_workbook(path)["Hourly revenue"]
        assert ws.max_row == 1 and ws.auto_filter.ref == "A1:B1" and ws.freeze_panes == "A2"
    elif fmt == "pdf":
        text = squash(" ".join(p.extract_text() for p in PdfReader(path).pages))
        assert "No data for this period." in text and "All stores" in text and "Page 1 of 1" in text
        assert "2024-03-05 (UTC)" in text
    else:
        assert [t["rows"] for t in json.loads(path.read_text())["tables"]] == [[], []]


def test_missing_and_odd_values_do_not_break_any_format(tmp_path):
    table = Table(
        "odd",
        "Odd values",
        [
            Column("key", "Hour", "date"),
            Column("v", "Value", "money"),
            Column("r", "Rate", "rate"),
            Column("n", "Note"),
        ],
        [["2024-03-05T13:00:00+01:00", None, float("nan"), None], ["not a date", 1.005, None, "-minus first"]],
    )
    data = ReportData(
        "daily_sales",
        "Odd",
        None,
        dict(MARCH),
        GENERATED_AT,
        tables=[table],
        charts=[Chart("line", "Odd", "odd", "key", ("v", "missing_column"))],
    )
    for fmt in WRITERS:
        render(data, fmt, tmp_path / f"odd.{fmt}")
    rows = csv_blocks(tmp_path / "odd.csv")["odd"]["rows"]
    assert rows == [["2024-03-05T13:00:00+01:00", "", "", ""], ["not a date", "1.00", "", "'-minus first"]]
    ws = load_workbook(tmp_path / "odd.xlsx")["Odd values"]
    assert ws["A2"].value == datetime(2024, 3, 5, 13, 0) and ws["A2"].number_format == "yyyy-mm-dd hh:mm"
    assert ws["A3"].value == "not a date" and ws["B2"].value is None
    assert json.loads((tmp_path / "odd.json").read_text())["tables"][0]["rows"][0]["r"] is None


def write_sample(target: Path) -> None:
    """Render page 1 of the monthly review at 80 dpi: the README's example."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "sample.pdf"
        render(monthly_review(), "pdf", pdf)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(Path(folder) / "page")],
            check=True,
        )
        shutil.copyfile(Path(folder) / "page.png", target)


if __name__ == "__main__":
    write_sample(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report-sample.png"))
