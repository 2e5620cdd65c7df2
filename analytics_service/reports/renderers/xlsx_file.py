"""XLSX (openpyxl, write-only mode): a "Summary" sheet, then one sheet per table.

Summary: the title, store, period (text, plus typed start and exclusive end), time
zone, interval, generation time (UTC), the KPI table (value, previous period,
growth), the list of data sheets with their row counts, and the notes.

Data sheets: row 1 is the header (column labels, bold, frozen, with an autofilter
over header + data); then one row per table row. Cells are typed: money
`#,##0.00`, counts `#,##0`, rates stored as fractions shown `0.0%`, growth stored as
the API's percentage (7.11) shown `+7.1%`, dates as Excel dates `yyyy-mm-dd` (hours
`yyyy-mm-dd hh:mm`, wall-clock time in the report's zone), text always as text
(never a formula). Column widths come from the widest shown value (8..60 chars).

Everything is written in openpyxl's write-only mode, which keeps memory flat for
long tables: freeze panes, column widths and print settings are set before the
first row, the autofilter (written after the rows) from the known row count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from ..model import Kpi, ReportData, Table, ValueKind
from .values import display, growth_is_good, period_bounds, period_label, typed

SUMMARY = "Summary"
MAX_SHEET_NAME = 31
INVALID_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
RESERVED_SHEET_NAMES = {"history"}  # Excel reserves it
MIN_WIDTH, MAX_WIDTH = 8, 60

FORMATS: dict[str, str] = {
    "money": "#,##0.00",
    "count": "#,##0",
    "rate": "0.0%",
    "pct": '+0.0"%";-0.0"%";0.0"%"',
    "number": "#,##0.00",
    "date": "yyyy-mm-dd",
}
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
NUMERIC_KINDS = {"money", "count", "rate", "pct", "number"}

BOLD = Font(bold=True)
TITLE_FONT = Font(bold=True, size=16, color="1F3A5F")
SECTION_FONT = Font(bold=True, size=12, color="1F3A5F")
HEADER_FILL = PatternFill("solid", fgColor="DCE6F1")
HEADER_BORDER = Border(bottom=Side(style="thin", color="1F3A5F"))
GOOD, BAD = Font(color="1E7B34"), Font(color="B3261E")


def write_xlsx(data: ReportData, path: Path) -> None:
    wb = Workbook(write_only=True)
    wb.properties.title = data.title
    wb.properties.creator = "analytics_service"
    names = sheet_names(data)
    _write_summary(wb.create_sheet(SUMMARY), data, names)
    for table in data.tables:
        _write_table(wb.create_sheet(names[table.name]), table)
    wb.save(path)


def sheet_names(data: ReportData) -> dict[str, str]:
    """Table name -> sheet name: the table's title made valid (<= 31 chars, no []:*?/\\), unique."""
    used = {SUMMARY.lower(), *RESERVED_SHEET_NAMES}
    names: dict[str, str] = {}
    for table in data.tables:
        base = INVALID_SHEET_CHARS.sub("-", table.title or table.name).strip().strip("'") or "Data"
        name, n = base[:MAX_SHEET_NAME].rstrip(), 1
        while name.lower() in used:
            n += 1
            suffix = f" ({n})"
            name = base[: MAX_SHEET_NAME - len(suffix)].rstrip() + suffix
        used.add(name.lower())
        names[table.name] = name
    return names


# --- data sheets --------------------------------------------------------------------------------


def _write_table(ws: WriteOnlyWorksheet, table: Table) -> None:
    kinds = [c.kind for c in table.columns]
    last = get_column_letter(max(len(table.columns), 1))
    for i, width in enumerate(_widths(table), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    _fit_to_page_width(ws, landscape=len(table.columns) > 6)
    ws.auto_filter.ref = f"A1:{last}{len(table.rows) + 1}"
    ws.append([_header(ws, c.label, c.kind) for c in table.columns])
    for row in table.rows:
        ws.append([_cell(ws, value, kind) for value, kind in zip(row, kinds)])


def _widths(table: Table) -> list[float]:
    """Width per column in characters: the longest shown value or label, plus padding."""
    widest = [len(c.label) for c in table.columns]
    for row in table.rows:
        for i, (value, column) in enumerate(zip(row, table.columns)):
            widest[i] = max(widest[i], len(display(value, column.kind)))
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


def _cell(ws: WriteOnlyWorksheet, value: Any, kind: ValueKind) -> Any:
    """A typed cell: numbers and dates with their number format, text forced to be text."""
    v = typed(value, kind)
    if v is None:
        return None
    if isinstance(v, str):
        return _text_cell(ws, v)
    if isinstance(v, datetime):
        v = v.replace(tzinfo=None)  # Excel has no zones: the wall-clock time in the report's zone
    cell = WriteOnlyCell(ws, value=v)
    cell.number_format = DATETIME_FORMAT if isinstance(v, datetime) else FORMATS.get(kind, "General")
    return cell


def _text_cell(ws: WriteOnlyWorksheet, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # openpyxl would turn "=..." into a formula
    return cell


# --- summary ------------------------------------------------------------------------------------


def _write_summary(ws: WriteOnlyWorksheet, data: ReportData, names: dict[str, str]) -> None:
    for letter, width in zip("ABCD", (34, 24, 24, 14)):
        ws.column_dimensions[letter].width = width
    title = _text_cell(ws, data.title)
    title.font = TITLE_FONT
    ws.append([title])
    ws.append([])
    for label, value in _report_facts(data):
        ws.append([_label(ws, label), _text_cell(ws, value) if isinstance(value, str) else _moment_cell(ws, value)])
    ws.append([])
    _append_kpis(ws, data.kpis)
    _append_sheet_list(ws, data.tables, names)
    if data.notes:
        ws.append([])
        ws.append([_section(ws, "Notes")])
        for note in data.notes:
            ws.append([_text_cell(ws, note)])


def _report_facts(data: ReportData) -> Iterator[tuple[str, str | datetime]]:
    start, end = period_bounds(data.period)
    yield "Store", data.store_id or "All stores"
    yield "Period", period_label(data.period)
    if start is not None and end is not None:
        yield "Period start", start
        yield "Period end (exclusive)", end
    yield "Time zone", data.period.get("tz", "UTC")
    yield "Interval", data.period.get("interval", "")
    generated = data.generated_at.astimezone(UTC) if data.generated_at.tzinfo else data.generated_at
    yield "Generated at (UTC)", generated
    yield "Report type", data.report_type


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
    ("Growth", "pct"),
)


def _append_kpis(ws: WriteOnlyWorksheet, kpis: Sequence[Kpi]) -> None:
    ws.append([_section(ws, "Key figures")])
    ws.append([_header(ws, label, kind) for label, kind in KPI_HEADER])
    for kpi in kpis:
        growth = _cell(ws, kpi.growth_pct, "pct")
        if growth is not None and kpi.growth_pct:
            growth.font = GOOD if growth_is_good(kpi) else BAD
        ws.append(
            [_text_cell(ws, kpi.label), _cell(ws, kpi.value, kpi.kind), _cell(ws, kpi.previous, kpi.kind), growth]
        )
    ws.append([])


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
