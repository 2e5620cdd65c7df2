"""CSV: one file of blocks, written row by row with the csv module.

Layout (every block: a title line `<name>,<title>`, a header line, the data lines,
then one empty line):

    report,<report title>          -- block "report": field,value lines
    field,value                       report_type, title, store_id (empty: all stores),
    report_type,monthly_business_review   period_start, period_end (ISO, end exclusive),
    ...                               tz, interval, generated_at, row_count
                                   (empty line)
    kpis,Key figures               -- block "kpis"
    name,label,value,previous,growth_pct,change_pp,up_is_good,compared_has_data
    gross_revenue,Gross revenue,48210.50,45012.00,7.11,,true,true
                                   (empty line)
    daily_revenue,Daily revenue    -- one block per table: header = column names
    key,gross_revenue,orders          (the API's field names), rows in table order
    2024-03-01,1520.25,31
                                   (empty line)
    notes,Notes                    -- block "notes" (only when there are notes)
    note
    ...

Values: money with 2 decimals in the report's currency (the `currency` field of the
report block), counts as integers, rates as fractions (0.0523), growth as the API's
percentage (7.11 = +7.11 %), changes of rates in percentage points, machine names (event
types, categories, methods) as the API gives them, a compared period without any record
as `no data`, dates ISO (`2024-03-01`, hours
`2024-03-01T13:00:00+01:00`), empty for a missing value. Quoting per RFC 4180
(CRLF line ends, fields with `,` `"` or line breaks in double quotes). Encoding
UTF-8 with a byte-order mark, so Excel opens it as UTF-8 (read it in Python with
`encoding="utf-8-sig"`). Text that a spreadsheet would run as a formula (starting
with = + - @ tab or CR) gets a leading apostrophe. A data line is never empty (a
single empty field is written as `""`), so empty lines only separate blocks.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..model import NO_DATA, Kpi, ReportData, Table, ValueKind
from .values import cell_kinds, defuse_formula, plain

KPI_HEADER = ("name", "label", "value", "previous", "growth_pct", "change_pp", "up_is_good", "compared_has_data")


def write_csv(data: ReportData, path: Path) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        for line in csv_lines(data):
            writer.writerow(line)


def csv_lines(data: ReportData) -> Iterator[Sequence[str]]:
    """Every line of the file in order; a generator, so no table is ever copied whole."""
    yield from _block("report", data.title, ("field", "value"), _report_fields(data))
    yield from _block("kpis", "Key figures", KPI_HEADER, (_kpi_line(k) for k in data.kpis))
    for table in data.tables:
        yield from _block(table.name, table.title, [c.name for c in table.columns], _table_lines(table))
    if data.notes:
        yield from _block("notes", "Notes", ("note",), ([_text(n)] for n in data.notes))


def _block(name: str, title: str, header: Sequence[str], lines: Iterable[Sequence[str]]) -> Iterator[Sequence[str]]:
    yield [name, _text(title)]
    yield list(header)
    yield from lines
    yield []


def _report_fields(data: ReportData) -> Iterator[Sequence[str]]:
    fields = {
        "report_type": data.report_type,
        "title": data.title,
        "store_id": data.store_id or "",
        "period_start": data.period.get("start", ""),
        "period_end": data.period.get("end", ""),
        "tz": data.period.get("tz", ""),
        "interval": data.period.get("interval", ""),
        "currency": data.currency,
        "generated_at": data.generated_at.isoformat(),
        "row_count": str(data.row_count),
    }
    for key, value in fields.items():
        yield [key, _text(value)]


def _kpi_line(kpi: Kpi) -> Sequence[str]:
    return [
        kpi.name,
        _text(kpi.label),
        plain(kpi.value, kpi.kind),
        plain(kpi.previous, kpi.kind) if kpi.has_data else NO_DATA,
        plain(kpi.growth_pct, "pct"),
        plain(kpi.change_pp, "pp"),
        "true" if kpi.up_is_good else "false",
        "true" if kpi.has_data else "false",
    ]


def _table_lines(table: Table) -> Iterator[Sequence[str]]:
    for r, row in enumerate(table.rows):
        yield [_cell(value, kind) for value, kind in zip(row, cell_kinds(table, r))]


def _cell(value: Any, kind: ValueKind) -> str:
    text = plain(value, kind)
    return _text(text) if isinstance(value, str) else text


def _text(value: str) -> str:
    return defuse_formula(value)
