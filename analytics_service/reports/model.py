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

# money, count, rate (a fraction 0..1), number, text, date; pct: a growth as the API gives it
# (12.5 = +12.5 %); pp: a change of a rate in percentage points; label: a machine name (an event
# type, expense category, payment method, ...) shown by its human label; measure: the kind of the
# row's measure (`Table.row_measures`); change: the row's change, a pct or (for rates) pp.
ValueKind = Literal["money", "count", "rate", "number", "text", "date", "pct", "pp", "label", "measure", "change"]

REPORT_TYPES = (
    "daily_sales",
    "weekly_performance",
    "monthly_business_review",
    "quarterly_executive_summary",
    "product_performance",
    "customer_behavior",
    "inventory",
    "marketing_campaign",
)
FORMATS = ("csv", "xlsx", "pdf", "json")
# What a cell holds for a value of a compared period that has no record (not 0).
NO_DATA = "no data"
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
    change_pp: float | None = None  # rates, margins and shares: the change in percentage points
    has_data: bool = True  # False: the compared period holds no record ("no data", not 0)
    up_is_good: bool = True  # whether a rise is good news: the colour of the change

    @property
    def change(self) -> tuple[float | None, ValueKind]:
        """The change to show: points for a rate, else the growth %."""
        return (self.change_pp, "pp") if self.kind == "rate" else (self.growth_pct, "pct")


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
    # A table whose rows are measures (profit and loss, a comparison of periods): the measure of
    # each row, which gives the kind of its `measure` cells and the direction of its `change` cells.
    row_measures: Sequence[str] | None = None
    sheet: str | None = None  # XLSX sheet name when the title is longer than Excel's 31 characters


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
    currency: str = "USD"  # BASE_CURRENCY: every money figure is in it

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    @property
    def row_count(self) -> int:
        """Data rows in the report (every table), recorded on the reports table row."""
        return sum(len(t.rows) for t in self.tables)
