"""CSV rows -> order records: one order line per row, grouped into orders (docs/importing.md "Lines and orders")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from pydantic import JsonValue

from .amounts import LineAmounts, line_amounts
from .cells import CellError, Cells, CellValue
from .mapping import Mapping
from .report import ImportReport, Problem, line_list

Record: TypeAlias = dict[str, Any]  # an order (or line) as the Ingestor takes it, as JSON


@dataclass
class Line:
    number: int  # CSV line number (the header is line 1)
    item: Record
    amounts: LineAmounts


@dataclass
class Group:
    key: str
    first_line: int
    record: Record | None = None  # order fields from the first line
    created_at: datetime | None = None
    raw: dict[str, str] = field(default_factory=dict)  # the first line's order cells
    lines: list[Line] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)  # every line, good or bad
    conflicts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # column -> [(line, value)]
    failed: bool = False


def order_record(group: Group) -> Record:
    """The order as the Ingestor takes it: the first line's order fields and every line's item."""
    record = dict(group.record or {})
    items = []
    for line in group.lines:
        item = dict(line.item)
        item["unit_price"] = line.amounts.unit_price
        item["discount"] = line.amounts.discount
        if line.amounts.unit_cost is not None:
            item["unit_cost"] = line.amounts.unit_cost
        items.append(item)
    record["items"] = items
    return record


def _set_path(target: Record, dotted: str, value: JsonValue) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _json_value(value: CellValue) -> JsonValue:
    return value.isoformat() if isinstance(value, datetime) else value


class Orders:
    """Groups CSV rows into orders (`row`, then `finish`), recording every problem by line and column."""

    def __init__(
        self, mapping: Mapping, report: ImportReport, zone_for: Callable[[str | None], ZoneInfo], store_id: str | None
    ) -> None:
        self.mapping = mapping
        self.report = report
        self.cells = Cells(mapping)
        self.zone_for = zone_for
        self.store_id = store_id
        self.groups: dict[str, Group] = {}
        self.key_index: int | None = None
        # The columns of order-level fields, checked for agreement across an order's lines.
        self.order_columns = [s.column for s in mapping.order if s.column is not None and s.column != mapping.group_by]
        self.amount_columns = {k: s.column for k, s in mapping.amounts.items()}
        self.amount_columns["quantity"] = mapping.column_of("quantity")

    def error(self, message: str, line: int | None, column: str | None = None, order_id: str | None = None) -> None:
        self.report.errors.append(Problem(message, line, column, order_id))

    def warn(self, message: str, line: int | None, column: str | None = None, order_id: str | None = None) -> None:
        self.report.warnings.append(Problem(message, line, column, order_id))

    def finish(self) -> list[Group]:
        """Every order, in the order its first line appears (after reporting the lines that disagree)."""
        self.report_conflicts()
        return list(self.groups.values())

    def row(self, number: int, header: list[str], cells: list[str]) -> None:
        m = self.mapping
        key_index = self.key_index if self.key_index is not None else header.index(m.group_by)
        self.key_index = key_index
        key = cells[key_index].strip() if key_index < len(cells) else ""
        if not key or self.cells.is_null(key):
            self.error("no order id: the line belongs to no order", number, m.group_by)
            self.report.failed_rows += 1
            return
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(key, number)
        group.line_numbers.append(number)
        if len(cells) != len(header):
            self.error(f"has {len(cells)} fields, the header has {len(header)}", number, order_id=key)
            group.failed = True
            return
        row = dict(zip(header, cells, strict=True))
        if group.record is None and not group.failed:
            self.order_fields(group, number, row)
        elif group.record is not None:
            self.check_conflicts(group, number, row)
        self.line(group, number, row)

    def order_fields(self, group: Group, number: int, row: dict[str, str]) -> None:
        record: Record = {}
        store = self.store_id
        zone = self.zone_for(store)
        unreadable: set[str] = set()
        for source in self.mapping.order:
            try:
                value = self.cells.read(source, row, zone)
            except CellError as exc:
                self.error(exc.message, number, exc.column, group.key)
                group.failed = True
                unreadable.add(source.target)
                continue
            if source.target == "store_id" and value is not None and self.store_id is None:
                store = str(value)
                zone = self.zone_for(store)
            if value is None:
                continue
            if source.target == "created_at" and isinstance(value, datetime):
                group.created_at = value
            _set_path(record, source.target, _json_value(value))
        if self.store_id is not None:
            record["store_id"] = self.store_id
        for needed in ("order_id", "status", "created_at", "customer.customer_id"):
            source = next(s for s in self.mapping.order if s.target == needed)
            parent, _, leaf = needed.rpartition(".")
            holder = record.get(parent, {}) if parent else record
            if leaf not in holder and needed not in unreadable:
                self.error(f"{needed} is empty", number, source.column, group.key)
                group.failed = True
        group.raw = {column: row[column].strip() for column in self.order_columns}
        if not group.failed:
            group.record = record

    def check_conflicts(self, group: Group, number: int, row: dict[str, str]) -> None:
        for column in self.order_columns:
            value = row[column].strip()
            if value != group.raw[column]:
                group.conflicts.setdefault(column, []).append((number, value))
                if self.mapping.order_conflicts == "error":
                    group.failed = True

    def report_conflicts(self) -> None:
        """One problem per order and column whose lines disagree on an order-level value."""
        as_error = self.mapping.order_conflicts == "error"
        for group in self.groups.values():
            for column, found in group.conflicts.items():
                values = sorted({v for _, v in found})
                message = (
                    f"lines {line_list([n for n, _ in found])} have {', '.join(map(repr, values))} where the "
                    f"order's first line ({group.first_line}) has {group.raw[column]!r}"
                    + ("" if as_error else "; the first line's value is kept")
                )
                (self.error if as_error else self.warn)(message, found[0][0], column, group.key)

    def line(self, group: Group, number: int, row: dict[str, str]) -> None:
        item: Record = {}
        ok = True
        zone = self.zone_for(self.store_id)
        for source in self.mapping.item:
            try:
                value = self.cells.read(source, row, zone)
            except CellError as exc:
                self.error(exc.message, number, exc.column, group.key)
                ok = False
                continue
            if value is None:
                if source.target in ("product_id", "quantity"):
                    self.error(f"{source.target.replace('_', ' ')} is empty", number, source.column, group.key)
                    ok = False
                continue
            item[source.target] = _json_value(value)
        values: dict[str, float | None] = {}
        for key, source in self.mapping.amounts.items():
            try:
                values[key] = self.cells.amount(source, row, zone)
            except CellError as exc:
                self.error(exc.message, number, exc.column, group.key)
                ok = False
        amounts = None
        if ok:
            try:
                amounts = line_amounts(item["quantity"], values, self.amount_columns)
            except CellError as exc:
                self.error(exc.message, number, exc.column, group.key)
                ok = False
        if not ok or amounts is None:
            group.failed = True
            return
        if amounts.note:
            self.warn(amounts.note, number, self.amount_columns.get("discount_rate"), group.key)
        group.lines.append(Line(number, item, amounts))
