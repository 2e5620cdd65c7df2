"""What a report is, independent of its file format.

Builders (builders.py) turn analytics answers into a `ReportData`; renderers
(renderers/) turn a `ReportData` into a CSV, XLSX, PDF or JSON file. Numbers in a
report are the analytics endpoints' numbers for the same parameters: builders call
the same query objects the routes call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ValueKind = Literal["money", "count", "rate", "number", "text", "date", "pct"]

REPORT_TYPES = (
    "daily_sales",
    "weekly_performance",
    "monthly_business_review",
    "quarterly_executive_summary",
    "product_performance",
    "customer_behavior",
    "inventory",
)
FORMATS = ("csv", "xlsx", "pdf", "json")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "json": "application/json",
}


@dataclass(frozen=True)
class Kpi:
    """A headline number with its comparison (previous period) when there is one."""

    name: str  # machine name, e.g. "gross_revenue"
    label: str  # "Gross revenue"
    value: float | int | None
    kind: ValueKind = "number"
    previous: float | int | None = None
    growth_pct: float | None = None


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    kind: ValueKind = "text"


@dataclass
class Table:
    """Rows of one kind (a series, a top-N list, a breakdown). Rows are lists in column order."""

    name: str  # sheet / section name, e.g. "daily_revenue"
    title: str
    columns: Sequence[Column]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Chart:
    """A chart drawn from a table: `category` column on x, `values` columns as series."""

    kind: Literal["line", "bar"]
    title: str
    table: str  # Table.name
    category: str  # column name
    values: tuple[str, ...]  # column names


@dataclass
class ReportData:
    report_type: str
    title: str
    store_id: str | None  # None: all stores
    period: dict[str, str]  # {"start", "end", "tz", "interval"} as in every analytics response
    generated_at: datetime
    kpis: list[Kpi] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # definitions, caveats

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    @property
    def row_count(self) -> int:
        """Data rows in the report (every table), recorded on the reports table row."""
        return sum(len(t.rows) for t in self.tables)
