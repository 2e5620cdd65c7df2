"""CSV, NDJSON and XLSX writers of export rows (docs/reports.md "Exports").

CSV and NDJSON turn each page of rows into bytes to stream at once; XLSX rows go into an
openpyxl write-only workbook, saved at the end (more than XLSX_MAX_ROWS rows continue on
a new sheet).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import re
from collections.abc import Iterable
from typing import IO, Any, Literal

import orjson
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from .specs import ExportSpec

log = logging.getLogger(__name__)

XLSX_MAX_ROWS = 1_048_575  # data rows per sheet: Excel's 1,048,576 rows minus the header

ExportFormat = Literal["csv", "ndjson", "xlsx"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _csv_text(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind == "money":
        return f"{value:.2f}"
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("datetime", "local_date"):
        return value.isoformat()
    return value


class CsvWriter:
    """RFC 4180 CSV (csv module, `\\r\\n` rows), UTF-8 without BOM; empty cell = null."""

    def __init__(self, spec: ExportSpec) -> None:
        self.names = [c.name for c in spec.columns]
        self.kinds = [c.kind for c in spec.columns]

    def header(self) -> bytes:
        return self._encode([self.names])

    def rows(self, rows: list[list[Any]]) -> bytes:
        kinds = self.kinds
        return self._encode([_csv_text(v, k) for v, k in zip(row, kinds)] for row in rows)

    @staticmethod
    def _encode(rows: Iterable[list[Any]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue().encode("utf-8")


class NdjsonWriter:
    """One JSON object per line with every column (null when absent); no header line."""

    def __init__(self, spec: ExportSpec) -> None:
        self.names = [c.name for c in spec.columns]

    def header(self) -> bytes:
        return b""

    def rows(self, rows: list[list[Any]]) -> bytes:
        names = self.names
        return b"".join(orjson.dumps(dict(zip(names, row))) + b"\n" for row in rows)


# Characters XML 1.0 (and so XLSX) cannot hold; dropped from text cells.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WIDTHS = {"datetime": 20, "local_date": 11, "money": 12, "number": 10, "int": 8, "bool": 7, "text": 14}


class XlsxWriter:
    """An openpyxl write-only workbook: one sheet per XLSX_MAX_ROWS rows, a bold frozen
    header with filters, typed cells (money `#,##0.00`, dates, local datetimes)."""

    def __init__(self, spec: ExportSpec) -> None:
        self.spec = spec
        self.workbook = Workbook(write_only=True)
        self.sheet: WriteOnlyWorksheet | None = None
        self.sheet_rows = 0
        self.rows_written = 0
        self.kinds = [c.kind for c in spec.columns]
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._close_sheet()
        number = len(self.workbook.worksheets) + 1
        ws = self.workbook.create_sheet(self.spec.kind if number == 1 else f"{self.spec.kind} {number}")
        for i, col in enumerate(self.spec.columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(len(col.name) + 3, _WIDTHS[col.kind])
        ws.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for col in self.spec.columns:
            cell = WriteOnlyCell(ws, col.name)
            cell.font = bold
            header.append(cell)
        ws.append(header)
        self.sheet, self.sheet_rows = ws, 0

    def _close_sheet(self) -> None:
        if self.sheet is not None:
            last = get_column_letter(len(self.spec.columns))
            self.sheet.auto_filter.ref = f"A1:{last}{self.sheet_rows + 1}"

    def _cells(self, row: list[Any]) -> list[Any]:
        ws = self.sheet
        out: list[Any] = []
        for value, kind in zip(row, self.kinds):
            if value is None:
                out.append(None)
            elif kind == "money":
                cell = WriteOnlyCell(ws, value)
                cell.number_format = "#,##0.00"
                out.append(cell)
            elif kind == "datetime":
                out.append(value.replace(tzinfo=None))  # Excel has no zones: local wall-clock time in tz
            elif isinstance(value, str):
                out.append(self._text(value))
            else:
                out.append(value)
        return out

    def _text(self, value: str) -> Any:
        value = _ILLEGAL_XML.sub("", value)
        if value.startswith("="):  # a string, never a formula
            cell = WriteOnlyCell(self.sheet, value)
            cell.data_type = "s"
            return cell
        return value

    def rows(self, rows: list[list[Any]]) -> None:
        for row in rows:
            if self.sheet_rows >= XLSX_MAX_ROWS:
                self._new_sheet()
            self.sheet.append(self._cells(row))  # type: ignore[union-attr]
            self.sheet_rows += 1
        self.rows_written += len(rows)

    def save(self, target: IO[bytes]) -> None:
        self._close_sheet()
        self.workbook.save(target)

    def discard(self) -> None:
        """Remove openpyxl's per-sheet temp files of a workbook that will not be saved
        (openpyxl only removes them on save, or at interpreter exit)."""
        for ws in self.workbook.worksheets:
            writer = getattr(ws, "_writer", None)
            if writer is None:
                continue
            try:  # end the row stream, then the sheet's XML stream, which closes its file
                if ws._rows is not None:
                    ws._rows.close()
                writer.close()
            except Exception as exc:
                log.debug("closing an abandoned sheet: %s", exc)
            with contextlib.suppress(OSError, ValueError):
                writer.cleanup()
