"""JSON: the ReportData as one UTF-8 JSON object, written table row by table row.

    {"report_type", "title", "store_id", "period": {"start", "end", "tz", "interval"},
     "currency", "generated_at", "row_count",
     "kpis": [{"name", "label", "kind", "value", "previous", "growth_pct", "change_pp",
               "up_is_good", "compared_has_data"}],
     "tables": [{"name", "title", "columns": [{"name", "label", "kind"}],
                 "rows": [{<column name>: value, ...}]}],
     "charts": [{"kind", "title", "table", "category", "values"}],
     "notes": [...]}

Money is a number with 2 decimals in `currency`, rates fractions, growth the API's
percentage, changes of rates in percentage points, dates ISO strings, a missing value
null; a compared period without any record gives `previous: null, compared_has_data:
false`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from ..model import Kpi, ReportData, Table
from .values import cell_kinds, typed


def write_json(data: ReportData, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json_pieces(data))


def summary_json(data: ReportData) -> dict[str, Any]:
    """The headline of a report (its title, period, currency and KPIs), kept on its row."""
    return {
        "title": data.title,
        "period": data.period,
        "currency": data.currency,
        "kpis": [kpi_json(k) for k in data.kpis],
    }


def json_pieces(data: ReportData) -> Iterator[str]:
    head = {
        "report_type": data.report_type,
        "title": data.title,
        "store_id": data.store_id,
        "period": data.period,
        "currency": data.currency,
        "generated_at": data.generated_at.isoformat(),
        "row_count": data.row_count,
        "kpis": [kpi_json(k) for k in data.kpis],
    }
    yield _dumps(head)[:-1] + ', "tables": ['
    for i, table in enumerate(data.tables):
        yield from _table(table, first=i == 0)
    tail = {"charts": [asdict(c) for c in data.charts], "notes": data.notes}
    yield "], " + _dumps(tail)[1:] + "\n"


def _table(table: Table, *, first: bool) -> Iterator[str]:
    meta = {
        "name": table.name,
        "title": table.title,
        "columns": [{"name": c.name, "label": c.label, "kind": c.kind} for c in table.columns],
    }
    yield ("" if first else ", ") + _dumps(meta)[:-1] + ', "rows": ['
    for i, row in enumerate(table.rows):
        item = {c.name: _value(v, kind) for c, v, kind in zip(table.columns, row, cell_kinds(table, i))}
        yield ("\n" if i == 0 else ",\n") + _dumps(item)
    yield "]}"


def kpi_json(kpi: Kpi) -> dict[str, Any]:
    """A KPI as the JSON format writes it (also the report row's `summary`, for the e-mail of a schedule)."""
    return {
        "name": kpi.name,
        "label": kpi.label,
        "kind": kpi.kind,
        "value": _value(kpi.value, kpi.kind),
        "previous": _value(kpi.previous, kpi.kind) if kpi.has_data else None,
        "growth_pct": _value(kpi.growth_pct, "pct"),
        "change_pp": _value(kpi.change_pp, "pp"),
        "up_is_good": kpi.up_is_good,
        "compared_has_data": kpi.has_data,
    }


def _value(value: Any, kind: Any) -> Any:
    v = typed(value, kind)
    return v.isoformat() if isinstance(v, date) else v


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=str)
