"""XLSX (openpyxl, write-only mode): a "Summary" sheet, then one sheet per table.

Summary: the title, store, period (text, plus typed start and exclusive end), time
zone, currency, interval, generation time (UTC), the KPI table (value, previous period,
change coloured by whether it is good news), native Excel charts of the report's trend
and top items (drawn from the data sheets' cells), the list of data sheets with their
row counts, and the notes.

Data sheets (named by the table's title, or its short `sheet` name when the title is
longer than Excel's 31 characters): row 1 is the header (column labels, money columns
with their currency, bold, frozen, with an autofilter over header + data); then one row
per table row. Cells are typed: money `[$USD] #,##0.00` (the report's currency), counts
`#,##0`, rates and growth stored as fractions (0.0711) shown `0.0%` / `+7.1%`, changes in
percentage points as numbers shown `+6.0 pp`, dates as Excel dates `yyyy-mm-dd` (hours
`yyyy-mm-dd hh:mm`, wall-clock time in the report's zone), machine names by their
labels, text always as text (never a formula). Column widths come from the widest shown
value (8..60 chars).

Everything is written in openpyxl's write-only mode, which keeps memory flat for
long tables: freeze panes, column widths and print settings are set before the
first row, the autofilter (written after the rows) from the known row count.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from ..model import NO_DATA, Chart, Kpi, ReportData, Table, ValueKind
from .values import (
    NUMERIC_KINDS,
    cell_kinds,
    change_is_good,
    display,
    growth_is_good,
    header_label,
    period_bounds,
    period_label,
    typed,
)

SUMMARY = "Summary"
MAX_SHEET_NAME = 31
INVALID_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
RESERVED_SHEET_NAMES = {"history"}  # Excel reserves it
MIN_WIDTH, MAX_WIDTH = 8, 60

FORMATS: dict[str, str] = {
    "money": "[$USD] #,##0.00",  # the currency is the report's (`money_format`)
    "count": "#,##0",
    "rate": "0.0%",
    "pct": "+0.0%;-0.0%;0.0%",  # stored as a fraction: the API's 7.11 is 0.0711
    "pp": '+0.0" pp";-0.0" pp";0.0" pp"',
    "number": "#,##0.00",
    "date": "yyyy-mm-dd",
}
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
CHART_WIDTH_CM, CHART_HEIGHT_CM = 16.0, 7.5
NOTE_WIDTH = 110  # characters per line of a note on the Summary sheet

BOLD = Font(bold=True)
TITLE_FONT = Font(bold=True, size=16, color="1F3A5F")
SECTION_FONT = Font(bold=True, size=12, color="1F3A5F")
HEADER_FILL = PatternFill("solid", fgColor="DCE6F1")
HEADER_BORDER = Border(bottom=Side(style="thin", color="1F3A5F"))
GOOD, BAD = Font(color="1E7B34"), Font(color="B3261E")


def write_xlsx(data: ReportData, path: Path) -> None:
    wb = Workbook(write_only=True)
    wb.properties.title = data.title
    wb.properties.creator = "Analytics service"
    wb.properties.subject = f"{data.report_type}, {period_label(data.period)}, money in {data.currency}"
    wb.properties.created = data.generated_at.astimezone(UTC).replace(tzinfo=None)
    names = sheet_names(data)
    summary = wb.create_sheet(SUMMARY)
    sheets = {table.name: wb.create_sheet(names[table.name]) for table in data.tables}
    _write_summary(summary, data, names, sheets)
    for table in data.tables:
        _write_table(sheets[table.name], table, data.currency)
    wb.save(path)


def money_format(currency: str) -> str:
    return f"[${currency}] #,##0.00"


def sheet_names(data: ReportData) -> dict[str, str]:
    """Table name -> sheet name: the table's `sheet` name, else its title, made valid (no
    []:*?/\\), unique, and within 31 characters (cut at a word, never inside one)."""
    used = {SUMMARY.lower(), *RESERVED_SHEET_NAMES}
    names: dict[str, str] = {}
    for table in data.tables:
        base = INVALID_SHEET_CHARS.sub("-", table.sheet or table.title or table.name).strip().strip("'") or "Data"
        name, n = _fit(base, MAX_SHEET_NAME), 1
        while name.lower() in used:
            n += 1
            suffix = f" ({n})"
            name = _fit(base, MAX_SHEET_NAME - len(suffix)) + suffix
        used.add(name.lower())
        names[table.name] = name
    return names


def _fit(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at the last whole word (or hard when one word is longer)."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0].rstrip(" (-,")
    return cut if 0 < len(cut) <= limit else text[:limit].rstrip()


# --- data sheets --------------------------------------------------------------------------------


def _write_table(ws: WriteOnlyWorksheet, table: Table, currency: str) -> None:
    last = get_column_letter(max(len(table.columns), 1))
    for i, width in enumerate(_widths(table, currency), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    _fit_to_page_width(ws, landscape=len(table.columns) > 6)
    ws.auto_filter.ref = f"A1:{last}{len(table.rows) + 1}"
    ws.append([_header(ws, header_label(c, currency), c.kind) for c in table.columns])
    for r, row in enumerate(table.rows):
        cells = []
        for value, kind, column in zip(row, cell_kinds(table, r), table.columns):
            cell = _cell(ws, value, kind, currency)
            good = change_is_good(table, r, column, value)
            if good is not None and cell is not None:
                cell.font = GOOD if good else BAD
            cells.append(cell)
        ws.append(cells)


def _widths(table: Table, currency: str) -> list[float]:
    """Width per column in characters: the longest shown value or label, plus padding."""
    widest = [len(header_label(c, currency)) for c in table.columns]
    for r, row in enumerate(table.rows):
        for i, (value, kind) in enumerate(zip(row, cell_kinds(table, r))):
            widest[i] = max(widest[i], len(display(value, kind)) + (4 if kind == "money" else 0))
    return [float(min(max(w + 2, MIN_WIDTH), MAX_WIDTH)) for w in widest]


def _fit_to_page_width(ws: WriteOnlyWorksheet, *, landscape: bool) -> None:
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.page_setup.orientation = "landscape" if landscape else "portrait"


def _header(ws: WriteOnlyWorksheet, label: str, kind: ValueKind) -> WriteOnlyCell:
    cell = _text_cell(ws, label)
    cell.font, cell.fill, cell.border = BOLD, HEADER_FILL, HEADER_BORDER
    cell.alignment = Alignment(horizontal="right" if kind in NUMERIC_KINDS else "left", vertical="center")
    return cell


def _cell(ws: WriteOnlyWorksheet, value: Any, kind: ValueKind, currency: str = "USD") -> Any:
    """A typed cell: numbers and dates with their number format (growth as a fraction), machine
    names by their label, text forced to be text."""
    if kind == "label":
        return None if value is None else _text_cell(ws, display(value, kind))
    v = typed(value, kind)
    if v is None:
        return None
    if isinstance(v, str):
        return _text_cell(ws, v)
    if isinstance(v, datetime):
        v = v.replace(tzinfo=None)  # Excel has no zones: the wall-clock time in the report's zone
    if kind == "pct":
        v = v / 100  # the API's 7.11 (%) is the fraction 0.0711, shown +7.1%
    cell = WriteOnlyCell(ws, value=v)
    if isinstance(v, datetime):
        cell.number_format = DATETIME_FORMAT
    else:
        cell.number_format = money_format(currency) if kind == "money" else FORMATS.get(kind, "General")
    return cell


def _text_cell(ws: WriteOnlyWorksheet, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # openpyxl would turn "=..." into a formula
    return cell


# --- summary ------------------------------------------------------------------------------------


def _write_summary(
    ws: WriteOnlyWorksheet, data: ReportData, names: dict[str, str], sheets: dict[str, WriteOnlyWorksheet]
) -> None:
    for letter, width in zip("ABCD", (34, 24, 24, 14)):
        ws.column_dimensions[letter].width = width
    _fit_to_page_width(ws, landscape=bool(data.charts))  # the charts sit to the right of the figures
    title = _text_cell(ws, data.title)
    title.font = TITLE_FONT
    ws.append([title])
    ws.append([])
    for label, value in _report_facts(data):
        ws.append([_label(ws, label), _text_cell(ws, value) if isinstance(value, str) else _moment_cell(ws, value)])
    ws.append([])
    _add_charts(ws, data, sheets)
    _append_kpis(ws, data.kpis, data.currency)
    _append_sheet_list(ws, data.tables, names)
    if data.notes:
        ws.append([])
        ws.append([_section(ws, "Notes")])
        for note in data.notes:  # lines of a readable width (a cell's text overflows into the empty cells beside it)
            for line in textwrap.wrap(note, NOTE_WIDTH):
                ws.append([_text_cell(ws, line)])


def _report_facts(data: ReportData) -> Iterator[tuple[str, str | datetime]]:
    start, end = period_bounds(data.period)
    yield "Store", data.store_id or "All stores"
    yield "Period", period_label(data.period)
    if start is not None and end is not None:
        yield "Period start", start
        yield "Period end (exclusive)", end
    yield "Time zone", data.period.get("tz", "UTC")
    yield "Currency", data.currency
    yield "Interval", data.period.get("interval", "")
    generated = data.generated_at.astimezone(UTC) if data.generated_at.tzinfo else data.generated_at
    yield "Generated at (UTC)", generated
    yield "Report", data.title.split(" — ")[0]


def _moment_cell(ws: WriteOnlyWorksheet, moment: datetime) -> WriteOnlyCell:
    """A date cell for a local midnight, a date-time cell otherwise (wall-clock time)."""
    local = moment.replace(tzinfo=None)
    cell = WriteOnlyCell(ws, value=local.date() if local.time() == time(0) else local)
    cell.number_format = FORMATS["date"] if local.time() == time(0) else DATETIME_FORMAT
    cell.alignment = Alignment(horizontal="left")
    return cell


KPI_HEADER: tuple[tuple[str, ValueKind], ...] = (
    ("Metric", "text"),
    ("This period", "money"),
    ("Previous period", "money"),
    ("Change", "pct"),
)


def _append_kpis(ws: WriteOnlyWorksheet, kpis: Sequence[Kpi], currency: str) -> None:
    """Metric and value and, when the report compares, the previous value and the change."""
    compared = any(k.previous is not None or not k.has_data for k in kpis)
    ws.append([_section(ws, "Key figures")])
    ws.append([_header(ws, label, kind) for label, kind in KPI_HEADER[: 4 if compared else 2]])
    for kpi in kpis:
        value = _cell(ws, kpi.value, kpi.kind, currency)
        if not compared:
            ws.append([_text_cell(ws, kpi.label), value])
            continue
        if not kpi.has_data:
            previous, change = _text_cell(ws, NO_DATA), _text_cell(ws, NO_DATA)
        else:
            amount, kind = kpi.change
            previous, change = _cell(ws, kpi.previous, kpi.kind, currency), _cell(ws, amount, kind)
            good = growth_is_good(kpi)
            if change is not None and good is not None:
                change.font = GOOD if good else BAD
        ws.append([_text_cell(ws, kpi.label), value, previous, change])
    ws.append([])


def _add_charts(ws: WriteOnlyWorksheet, data: ReportData, sheets: dict[str, WriteOnlyWorksheet]) -> None:
    """The report's first line chart (the trend) and first bar chart (top items) as native
    Excel charts beside the key figures, drawn from the data sheets' cells."""
    tables = {t.name: t for t in data.tables}
    placed = 0
    for kind in ("line", "bar"):
        chart = next((c for c in data.charts if c.kind == kind and tables.get(c.table) and tables[c.table].rows), None)
        if chart is None:
            continue
        drawn = _excel_chart(chart, tables[chart.table], sheets[chart.table], data.currency)
        if drawn is not None:
            ws.add_chart(drawn, f"F{2 + placed * 16}")
            placed += 1


def _excel_chart(chart: Chart, table: Table, sheet: WriteOnlyWorksheet, currency: str) -> LineChart | BarChart | None:
    names = [c.name for c in table.columns]
    if chart.category not in names or not all(v in names for v in chart.values):
        return None
    rows = len(table.rows) if chart.kind == "line" else min(len(table.rows), 10)
    drawn: LineChart | BarChart = LineChart() if chart.kind == "line" else BarChart()
    if isinstance(drawn, BarChart):
        drawn.type, drawn.y_axis.majorGridlines = "bar", None
        drawn.x_axis.scaling.orientation = "maxMin"  # the first item on top, as in the table
    kinds = {table.columns[names.index(v)].kind for v in chart.values}
    drawn.title = chart.title + (f" ({currency})" if kinds == {"money"} else "")
    drawn.width, drawn.height = CHART_WIDTH_CM, CHART_HEIGHT_CM
    for value in chart.values:
        at = names.index(value) + 1
        drawn.add_data(Reference(sheet, min_col=at, min_row=1, max_row=rows + 1), titles_from_data=True)
    at = names.index(chart.category) + 1
    drawn.set_categories(Reference(sheet, min_col=at, min_row=2, max_row=rows + 1))
    if isinstance(drawn, LineChart):
        for series in drawn.series:
            series.smooth = False  # straight segments: a smoothed curve invents values between the points
    drawn.y_axis.numFmt = f"[${currency}] #,##0" if kinds == {"money"} else "#,##0"
    # openpyxl 3.1 leaves <c:delete> out, which recent Excel reads as "axis hidden": say it is shown.
    drawn.x_axis.delete = drawn.y_axis.delete = False
    drawn.legend.position = "b"
    return drawn


def _append_sheet_list(ws: WriteOnlyWorksheet, tables: Iterable[Table], names: dict[str, str]) -> None:
    ws.append([_section(ws, "Data sheets")])
    ws.append([_header(ws, "Sheet", "text"), _header(ws, "Rows", "count")])
    for table in tables:
        ws.append([_text_cell(ws, names[table.name]), _cell(ws, len(table.rows), "count")])


def _label(ws: WriteOnlyWorksheet, text: str) -> WriteOnlyCell:
    cell = _text_cell(ws, text)
    cell.font = BOLD
    return cell


def _section(ws: WriteOnlyWorksheet, text: str) -> WriteOnlyCell:
    cell = _text_cell(ws, text)
    cell.font = SECTION_FONT
    return cell
