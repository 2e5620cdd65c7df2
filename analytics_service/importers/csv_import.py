"""Import orders from a CSV export, described by a JSON column mapping.

    python -m analytics_service import-csv FILE --mapping superstore [--store-id S]
        [--batch-size 2000] [--limit N] [--dry-run] [--errors-csv PATH] [--no-progress]

The mapping (docs/importing.md) says which column holds what: the CSV lines are
grouped into orders by one column (`group_by`), each line becomes an order line, and
the order's own fields come from the first line of the order. Amounts are derived by
one of a few named conventions (`amounts`), so a file that gives the line revenue, a
discount rate and the line profit (Superstore) is stored with the same line revenue
and cost it has in the file.

Nothing is dropped silently: a line that cannot be read (a bad number, a bad date, a
missing id) is reported with its CSV line number and column, and its whole order is
left out (storing the rest of the order would store a wrong order, and a later
corrected import could not replace it: the state would be the same). Orders the
Ingestor refuses are reported with their id and line. The command exits 1 when
anything was refused, 2 on a usage or mapping error.

Every write goes through the Ingestor, so a re-import is idempotent: each order is
upserted by id with the same state and counts as a duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import ValidationError

from ..config import Settings
from ..errors import validation_details
from ..ingest.schemas import ORDER_STATUSES, Customer, IngestError, Order, OrderItem, Payment, Utm

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

TYPES = ("str", "int", "float", "bool", "date")

# --- what a mapping may target --------------------------------------------------------

_ORDER_DATES = {"created_at", "updated_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at"}
_ORDER_FLOATS = {"discount_amount", "shipping_amount", "tax_amount", "refunded_amount", "fx_rate"}
_NESTED = {"customer": Customer, "payment": Payment, "utm": Utm}
# Scalar Order fields a column may fill (nested objects by dotted path, items via `item`).
ORDER_TARGETS: dict[str, str] = {
    name: ("date" if name in _ORDER_DATES else "float" if name in _ORDER_FLOATS else "str")
    for name in Order.model_fields if name not in {"items", "attributes", *_NESTED}
}
for _parent, _model in _NESTED.items():
    for _name in _model.model_fields:
        ORDER_TARGETS[f"{_parent}.{_name}"] = "int" if _name == "installments" else "str"

# Item fields a column may fill; amounts (unit_price, discount, unit_cost) come from `amounts`.
ITEM_TARGETS: dict[str, str] = {
    name: ("int" if name == "quantity" else "str")
    for name in OrderItem.model_fields if name not in {"unit_price", "discount", "unit_cost"}
}

# The named amount conventions: at most one of each group, exactly one price source.
PRICE_KEYS = ("unit_price", "line_gross", "line_revenue")
DISCOUNT_KEYS = ("discount_amount", "discount_rate")
COST_KEYS = ("unit_cost", "line_cost", "line_profit")
AMOUNT_KEYS = PRICE_KEYS + DISCOUNT_KEYS + COST_KEYS

TOP_LEVEL_KEYS = {
    "name", "description", "encoding", "delimiter", "quotechar", "decimal", "thousands", "null_values",
    "date_format", "timezone", "group_by", "order_conflicts", "order", "item", "amounts", "products",
}
SPEC_KEYS = {"column", "value", "type", "format", "scale", "default", "map"}

# Amount arithmetic is done in floats; this is the slack for "exactly zero".
EPSILON = 1e-9


class MappingError(ValueError):
    """The mapping (or the file's header) cannot be used; nothing was imported."""


class CellError(ValueError):
    """One cell (or one line) cannot be read."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


# --- the mapping ----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where one target field comes from: a column (converted to `type`) or a constant."""

    target: str
    column: str | None = None
    value: Any = None
    type: str = "str"
    formats: tuple[str, ...] = ()
    scale: float | None = None
    default: Any = None
    map: dict[str, Any] | None = None

    @property
    def constant(self) -> bool:
        return self.column is None


@dataclass
class Mapping:
    name: str
    group_by: str
    order: list[Source]
    item: list[Source]
    amounts: dict[str, Source]
    description: str = ""
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    quotechar: str = '"'
    decimal: str = "."
    thousands: str = ""
    null_values: frozenset[str] = frozenset({""})
    date_formats: tuple[str, ...] = ("iso",)
    timezone: str | None = None
    order_conflicts: str = "warn"
    products: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str = "mapping") -> Mapping:
        return _parse_mapping(data, name)

    def columns(self) -> list[str]:
        """Every CSV column the mapping reads."""
        seen: dict[str, None] = {self.group_by: None}
        for source in [*self.order, *self.item, *self.amounts.values()]:
            if source.column is not None:
                seen[source.column] = None
        return list(seen)

    def column_of(self, target: str) -> str | None:
        for source in [*self.order, *self.item]:
            if source.target == target:
                return source.column
        return None


def _fail(where: str, message: str) -> MappingError:
    return MappingError(f"{where}: {message}" if where else message)


def _formats(value: Any, where: str) -> tuple[str, ...]:
    formats = [value] if isinstance(value, str) else value
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) and f for f in formats):
        raise _fail(where, "must be a strptime format (e.g. \"%d/%m/%y\"), \"iso\", or a list of them")
    return tuple(formats)


def _source(target: str, spec: Any, default_type: str, where: str, date_formats: tuple[str, ...]) -> Source:
    if isinstance(spec, str):
        if not spec.strip():
            raise _fail(where, "column name must not be empty")
        return Source(target, column=spec.strip(), type=default_type,
                      formats=date_formats if default_type == "date" else ())
    if not isinstance(spec, dict):
        raise _fail(where, 'must be a column name, {"column": ...} or {"value": ...}')
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise _fail(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(SPEC_KEYS)}")
    if ("column" in spec) == ("value" in spec):
        raise _fail(where, 'needs exactly one of "column" and "value"')
    kind = spec.get("type", default_type)
    if kind not in TYPES:
        raise _fail(where, f"type must be one of {list(TYPES)}, not {kind!r}")
    if "value" in spec:
        extra = set(spec) - {"value", "type"}
        if extra:
            raise _fail(where, f"a constant takes no {sorted(extra)}")
        return Source(target, value=spec["value"], type=kind, formats=date_formats if kind == "date" else ())
    column = spec["column"]
    if not isinstance(column, str) or not column.strip():
        raise _fail(where, "column must be a non-empty string")
    formats: tuple[str, ...] = ()
    if "format" in spec:
        if kind != "date":
            raise _fail(where, "format applies to dates only")
        formats = _formats(spec["format"], f"{where}.format")
    elif kind == "date":
        formats = date_formats
    scale = spec.get("scale")
    if scale is not None:
        if kind != "float" or isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale == 0:
            raise _fail(where, "scale must be a non-zero number, for float columns only")
    mapping = spec.get("map")
    if mapping is not None and (not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping)):
        raise _fail(where, "map must be an object from cell text to value")
    return Source(target, column=column.strip(), type=kind, formats=formats,
                  scale=None if scale is None else float(scale), default=spec.get("default"), map=mapping)


def _parse_mapping(data: Any, name: str) -> Mapping:
    if not isinstance(data, dict):
        raise MappingError("a mapping must be a JSON object")
    unknown = {k for k in data if not k.startswith("_")} - TOP_LEVEL_KEYS
    if unknown:
        raise MappingError(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(TOP_LEVEL_KEYS)} "
                           "(keys starting with _ are comments)")

    def text(key: str, default: str, one_char: bool = False, allow_empty: bool = False) -> str:
        value = data.get(key, default)
        if value is None:
            value = default
        if not isinstance(value, str) or (one_char and len(value) != 1) or (not allow_empty and not value):
            raise _fail(key, "must be a single character" if one_char else "must be a string")
        return value

    encoding = text("encoding", "utf-8-sig")
    try:
        "".encode(encoding)
    except LookupError as exc:
        raise _fail("encoding", f"unknown encoding {encoding!r}") from exc
    delimiter = text("delimiter", ",", one_char=True)
    if delimiter == "\\t":
        delimiter = "\t"
    quotechar = text("quotechar", '"', one_char=True)
    decimal = text("decimal", ".", one_char=True)
    thousands = text("thousands", "", allow_empty=True)
    if len(thousands) > 1 or thousands == decimal:
        raise _fail("thousands", "must be one character (or empty) and differ from decimal")
    nulls = data.get("null_values", [""])
    if not isinstance(nulls, list) or not all(isinstance(v, str) for v in nulls):
        raise _fail("null_values", "must be a list of strings")
    date_formats = _formats(data.get("date_format") or "iso", "date_format")
    zone = data.get("timezone")
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise _fail("timezone", f"unknown IANA time zone {zone!r}") from exc
    conflicts = data.get("order_conflicts", "warn")
    if conflicts not in ("warn", "error"):
        raise _fail("order_conflicts", 'must be "warn" or "error"')
    products = data.get("products", False)
    if not isinstance(products, bool):
        raise _fail("products", "must be true or false")

    sections: dict[str, dict[str, Any]] = {}
    for key in ("order", "item", "amounts"):
        section = data.get(key)
        if not isinstance(section, dict) or not section:
            raise _fail(key, "is required: an object from field name to column")
        sections[key] = section

    order: list[Source] = []
    for target, spec in sections["order"].items():
        where = f"order.{target}"
        if target.startswith("attributes.") and len(target) > len("attributes."):
            order.append(_source(target, spec, "str", where, date_formats))
        elif target in ORDER_TARGETS:
            order.append(_source(target, spec, ORDER_TARGETS[target], where, date_formats))
        else:
            hint = " (line amounts go under \"amounts\")" if target in {"unit_price", "discount", "unit_cost"} else ""
            raise _fail(where, f"not an Order field{hint}; allowed: {', '.join(ORDER_TARGETS)}, attributes.<name>")
    item: list[Source] = []
    for target, spec in sections["item"].items():
        where = f"item.{target}"
        if target in {"unit_price", "discount", "unit_cost"}:
            raise _fail(where, "line amounts go under \"amounts\" (e.g. \"unit_price\", \"discount_amount\", \"unit_cost\")")
        if target not in ITEM_TARGETS:
            raise _fail(where, f"not an order line field; allowed: {', '.join(ITEM_TARGETS)}")
        item.append(_source(target, spec, ITEM_TARGETS[target], where, date_formats))
    amounts: dict[str, Source] = {}
    for target, spec in sections["amounts"].items():
        where = f"amounts.{target}"
        if target not in AMOUNT_KEYS:
            raise _fail(where, f"unknown amount; allowed: {', '.join(AMOUNT_KEYS)}")
        source = _source(target, spec, "float", where, date_formats)
        if source.type != "float":
            raise _fail(where, "amounts are numbers (type float)")
        amounts[target] = source

    for group, required in ((PRICE_KEYS, True), (DISCOUNT_KEYS, False), (COST_KEYS, False)):
        present = [k for k in group if k in amounts]
        if len(present) > 1 or (required and not present):
            what = "exactly one" if required else "at most one"
            raise _fail("amounts", f"needs {what} of {', '.join(group)} (found {present or 'none'})")

    targets = {s.target for s in order}
    group_by = data.get("group_by")
    if group_by is None:
        id_source = next((s for s in order if s.target == "order_id"), None)
        if id_source is None or id_source.constant:
            raise _fail("group_by", "is required (the column that holds the order id)")
        group_by = id_source.column
    if not isinstance(group_by, str) or not group_by.strip():
        raise _fail("group_by", "must be a column name")
    group_by = group_by.strip()
    if "order_id" not in targets:
        order.insert(0, Source("order_id", column=group_by))
        targets.add("order_id")
    for needed in ("status", "created_at", "customer.customer_id"):
        if needed not in targets:
            hint = ' (a constant: {"value": "delivered"})' if needed == "status" else ""
            raise _fail(f"order.{needed}", f"is required{hint}")
    status = next(s for s in order if s.target == "status")
    if status.constant and status.value not in ORDER_STATUSES:
        raise _fail("order.status", f"must be one of {list(ORDER_STATUSES)}")
    item_targets = {s.target for s in item}
    for needed in ("product_id", "quantity"):
        if needed not in item_targets:
            hint = ' (one unit per line: {"value": 1})' if needed == "quantity" else ""
            raise _fail(f"item.{needed}", f"is required{hint}")
    # store_id first: an order's time zone may depend on its store.
    order.sort(key=lambda s: s.target != "store_id")

    return Mapping(
        name=str(data.get("name") or name), description=str(data.get("description") or ""), group_by=group_by,
        order=order, item=item, amounts=amounts, encoding=encoding, delimiter=delimiter, quotechar=quotechar,
        decimal=decimal, thousands=thousands, null_values=frozenset(v.strip() for v in nulls),
        date_formats=date_formats, timezone=zone, order_conflicts=conflicts, products=products,
    )


def builtin_mappings() -> list[str]:
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.json"))


def load_mapping(name_or_path: str | os.PathLike[str] | dict[str, Any]) -> Mapping:
    """A built-in mapping by name (`superstore`), a JSON file by path, or a dict."""
    if isinstance(name_or_path, dict):
        return Mapping.from_dict(name_or_path)
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = path.suffix.lower() == ".json" or os.sep in text or "/" in text
    if not looks_like_path and not path.is_file():
        path = MAPPINGS_DIR / f"{text}.json"
        if not path.is_file():
            raise MappingError(f"no built-in mapping {text!r} (built-in: {', '.join(builtin_mappings())}); "
                               "pass a path to a .json file for your own")
    if not path.is_file():
        raise MappingError(f"mapping file not found: {text}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return Mapping.from_dict(data, name=path.stem)
    except MappingError as exc:
        raise MappingError(f"{path}: {exc}") from exc


# --- reading cells --------------------------------------------------------------------


class Cells:
    """Converts the text of cells by a Source, with the mapping's number and date rules."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self._dates: dict[tuple[str, tuple[str, ...], str], datetime] = {}

    def is_null(self, raw: str) -> bool:
        return raw.strip() in self.mapping.null_values

    def number(self, column: str | None, raw: str) -> float:
        text = raw.strip().replace(" ", "").replace("\u00a0", "")
        if self.mapping.thousands:
            text = text.replace(self.mapping.thousands, "")
        if self.mapping.decimal != ".":
            if "." in text:
                raise CellError(column, f"not a number: {raw!r} (decimal separator is {self.mapping.decimal!r})")
            text = text.replace(self.mapping.decimal, ".")
        try:
            value = float(text)
        except ValueError:
            raise CellError(column, f"not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise CellError(column, f"not a finite number: {raw!r}")
        return value

    def date(self, column: str | None, raw: str, formats: tuple[str, ...], zone: ZoneInfo) -> datetime:
        key = (raw, formats, zone.key)
        found = self._dates.get(key)
        if found is not None:
            return found
        text = raw.strip()
        parsed: datetime | None = None
        for fmt in formats:
            try:
                parsed = (datetime.fromisoformat(text.replace("Z", "+00:00")) if fmt == "iso"
                          else datetime.strptime(text, fmt))
                break
            except ValueError:
                continue
        if parsed is None:
            shown = " or ".join("ISO 8601" if f == "iso" else repr(f) for f in formats)
            raise CellError(column, f"not a date in format {shown}: {raw!r}")
        if parsed.tzinfo is None:
            # A date without a time is 00:00 local; a local time is taken in `zone`.
            parsed = parsed.replace(tzinfo=zone)
        self._dates[key] = parsed
        return parsed

    def read(self, source: Source, row: dict[str, str], zone: ZoneInfo) -> Any:
        """The value for `source` from `row`, converted; None when the cell is empty."""
        if source.constant:
            if isinstance(source.value, str) and source.type != "str":
                return self.convert(source, source.value, zone)  # {"value": "1", "type": "int"}
            return source.value
        raw = row[source.column]
        if source.map is not None and raw.strip() in source.map:
            mapped = source.map[raw.strip()]
            if not isinstance(mapped, str):
                return mapped
            raw = mapped
        if self.is_null(raw):
            if isinstance(source.default, str) and source.type != "str":
                return self.convert(source, source.default, zone)
            return source.default
        return self.convert(source, raw, zone)

    def convert(self, source: Source, raw: str, zone: ZoneInfo) -> Any:
        column = source.column
        if source.type == "str":
            return raw.strip()
        if source.type == "date":
            return self.date(column, raw, source.formats, zone)
        if source.type == "bool":
            text = raw.strip().lower()
            if text in ("true", "yes", "y", "1"):
                return True
            if text in ("false", "no", "n", "0"):
                return False
            raise CellError(column, f"not a boolean (true/false/yes/no/1/0): {raw!r}")
        value = self.number(column, raw)
        if source.type == "int":
            if value != int(value):
                raise CellError(column, f"not a whole number: {raw!r}")
            return int(value)
        return value * source.scale if source.scale is not None else value


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass
class LineAmounts:
    unit_price: float
    discount: float
    unit_cost: float | None
    note: str | None = None


def line_amounts(quantity: int, values: dict[str, float | None], columns: dict[str, str | None]) -> LineAmounts:
    """unit_price, discount (an amount) and unit_cost from the mapping's amount convention.

    The results satisfy quantity * unit_price - discount == line revenue and
    quantity * unit_cost == line cost, whichever way the file gives them.
    """

    def col(key: str) -> str | None:
        return columns.get(key)

    def non_negative(key: str) -> float | None:
        value = values.get(key)
        if value is not None and value < 0:
            raise CellError(col(key), f"{key.replace('_', ' ')} must not be negative: {value}")
        return value

    if quantity <= 0:
        raise CellError(columns.get("quantity"), f"quantity must be greater than 0: {quantity}")
    price_key = next(k for k in PRICE_KEYS if k in columns)
    price = non_negative(price_key)
    if price is None:
        raise CellError(col(price_key), f"{price_key.replace('_', ' ')} is empty")
    amount = non_negative("discount_amount")
    rate = values.get("discount_rate")
    if rate is not None and not 0 <= rate <= 1:
        raise CellError(col("discount_rate"), f"discount rate must be between 0 and 1: {rate}")
    note = None

    if price_key == "unit_price" or price_key == "line_gross":
        unit_price = price if price_key == "unit_price" else price / quantity
        gross = quantity * unit_price
        discount = amount if amount is not None else gross * rate if rate else 0.0
        if discount > gross + EPSILON:
            key = "discount_amount" if amount is not None else "discount_rate"
            raise CellError(col(key), f"discount {discount:.2f} exceeds the line's list price {gross:.2f}")
        discount = min(discount, gross)
        revenue = gross - discount
    else:  # line_revenue: the amount after the line discount
        revenue = price
        if amount is not None:
            unit_price, discount = (revenue + amount) / quantity, amount
        elif rate and rate < 1:
            unit_price = revenue / (quantity * (1 - rate))
            discount = quantity * unit_price - revenue
            if discount < 0:  # only by rounding
                unit_price, discount = revenue / quantity, 0.0
        else:
            if rate == 1 and revenue > 0:
                note = f"discount rate 1 with a revenue of {revenue}: stored at that price without a discount"
            unit_price, discount = revenue / quantity, 0.0

    unit_cost: float | None = None
    if "unit_cost" in columns:
        unit_cost = non_negative("unit_cost")
    elif "line_cost" in columns:
        cost = non_negative("line_cost")
        unit_cost = None if cost is None else cost / quantity
    elif "line_profit" in columns and values.get("line_profit") is not None:
        cost = revenue - values["line_profit"]  # type: ignore[operator]
        if cost < -EPSILON:
            raise CellError(col("line_profit"),
                            f"line cost (revenue {revenue} - profit {values['line_profit']}) is negative: {cost:.4f}")
        unit_cost = max(cost, 0.0) / quantity
    return LineAmounts(unit_price, discount, unit_cost, note)


# --- the report -----------------------------------------------------------------------


@dataclass
class Problem:
    """An error (not imported) or a warning (imported, but look at it), where it was found."""

    message: str
    line: int | None = None
    column: str | None = None
    order_id: str | None = None

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column {self.column!r}")
        if self.order_id:
            where.append(f"order {self.order_id}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass
class ImportReport:
    path: str
    mapping: str
    dry_run: bool = False
    rows: int = 0                # data lines read
    orders_in_file: int = 0      # distinct order ids among them
    # What the file now has in the store (orders not refused), and their totals.
    lines: int = 0
    orders: int = 0
    customers: int = 0
    products: int = 0
    sales: float = 0.0           # sum of line revenue
    cogs: float = 0.0            # sum of quantity * unit_cost (lines with a cost)
    quantity: int = 0
    lines_without_cost: int = 0
    # Ingestor outcomes for the orders, and for the catalog records (`products: true`).
    indexed: int = 0
    duplicates: int = 0
    stale: int = 0
    product_indexed: int = 0
    product_duplicates: int = 0
    product_stale: int = 0
    failed_rows: int = 0         # lines not stored (their own error or their order's)
    failed_orders: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def profit(self) -> float:
        return self.sales - self.cogs

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, max_problems: int = 20) -> str:
        verb = "would be" if self.dry_run else "were"
        out = [
            f"{'Dry run: ' if self.dry_run else ''}imported {self.path} with mapping {self.mapping!r} "
            f"in {self.seconds:.1f} s",
            f"  lines read       {self.rows:>12,}  ({self.orders_in_file:,} orders)",
            f"  lines            {self.lines:>12,}",
            f"  orders           {self.orders:>12,}",
            f"  customers        {self.customers:>12,}",
            f"  products         {self.products:>12,}",
            f"  quantity total   {self.quantity:>12,}",
            f"  sales total      {self.sales:>15,.2f}",
            f"  profit total     {self.profit:>15,.2f}"
            + (f"  ({self.lines_without_cost:,} lines without a cost)" if self.lines_without_cost else ""),
        ]
        if self.dry_run:
            out.append(f"  nothing {verb} written (dry run)")
        else:
            out.append(f"  orders: indexed {self.indexed:,}, duplicates {self.duplicates:,}, stale {self.stale:,}, "
                       f"errors {self.failed_orders:,}")
            if self.product_indexed or self.product_duplicates or self.product_stale:
                out.append(f"  products: indexed {self.product_indexed:,}, duplicates {self.product_duplicates:,}, "
                           f"stale {self.product_stale:,}")
        if self.failed_rows or self.failed_orders:
            out.append(f"  NOT imported: {self.failed_rows:,} lines in {self.failed_orders:,} orders")
        for title, problems in (("warnings", self.warnings), ("errors", self.errors)):
            if problems:
                out.append(f"{len(problems):,} {title}{' (first %d)' % max_problems if len(problems) > max_problems else ''}:")
                out.extend(f"  {p}" for p in problems[:max_problems])
        return "\n".join(out)

    def write_problems(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["severity", "line", "column", "order_id", "message"])
            for severity, problems in (("error", self.errors), ("warning", self.warnings)):
                for p in problems:
                    writer.writerow([severity, p.line or "", p.column or "", p.order_id or "", p.message])


# --- grouping lines into orders -------------------------------------------------------


@dataclass
class Line:
    number: int               # CSV line number (the header is line 1)
    item: dict[str, Any]
    amounts: LineAmounts


@dataclass
class Group:
    key: str
    first_line: int
    record: dict[str, Any] | None = None        # order fields from the first line
    created_at: datetime | None = None
    raw: dict[str, str] = field(default_factory=dict)  # the first line's order cells
    lines: list[Line] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)  # every line, good or bad
    conflicts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # column -> [(line, value)]
    failed: bool = False


class Reader:
    """Reads the CSV into groups (orders), recording every problem by line and column."""

    def __init__(self, mapping: Mapping, report: ImportReport, zone_for: Any, store_id: str | None) -> None:
        self.mapping = mapping
        self.report = report
        self.cells = Cells(mapping)
        self.zone_for = zone_for
        self.store_id = store_id
        self.groups: dict[str, Group] = {}
        self.key_index: int | None = None
        self.order_columns = [s for s in mapping.order if not s.constant and s.column != mapping.group_by]
        self.amount_columns = {k: s.column for k, s in mapping.amounts.items()}
        self.amount_columns["quantity"] = mapping.column_of("quantity")

    def error(self, message: str, line: int | None, column: str | None = None, order_id: str | None = None) -> None:
        self.report.errors.append(Problem(message, line, column, order_id))

    def warn(self, message: str, line: int | None, column: str | None = None, order_id: str | None = None) -> None:
        self.report.warnings.append(Problem(message, line, column, order_id))

    def read(self, path: Path) -> list[Group]:
        m = self.mapping
        try:
            f = open(path, encoding=m.encoding, newline="")
        except OSError as exc:
            raise MappingError(f"cannot open {path}: {exc.strerror or exc}") from exc
        with f:
            reader = csv.reader(f, delimiter=m.delimiter, quotechar=m.quotechar)
            try:
                header = next(reader, None)
                if header is None:
                    raise MappingError(f"{path} is empty (no header line)")
                header = [h.strip() for h in header]
                missing = [c for c in m.columns() if c not in header]
                if missing:
                    raise MappingError(f"column(s) {missing} of mapping {m.name!r} are not in the header of {path}; "
                                       f"its columns are: {header} (check `encoding` and `delimiter`)")
                duplicated = sorted({c for c in m.columns() if header.count(c) > 1})
                if duplicated:
                    raise MappingError(f"column(s) {duplicated} appear more than once in the header of {path}")
                while True:
                    start = reader.line_num + 1
                    try:
                        cells = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        self.report.rows += 1
                        self.error(f"cannot be read as CSV: {exc}", start)
                        self.report.failed_rows += 1
                        continue
                    if not cells or all(not c.strip() for c in cells):
                        continue  # blank line
                    self.report.rows += 1
                    self.row(start, header, cells)
            except UnicodeDecodeError as exc:
                raise MappingError(f"{path} near line {reader.line_num + 1} is not valid {m.encoding} ({exc.reason}); "
                                   "set `encoding` in the mapping (e.g. \"cp1252\")") from exc
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
        row = dict(zip(header, cells))
        if group.record is None and not group.failed:
            self.order_fields(group, number, row)
        elif group.record is not None:
            self.check_conflicts(group, number, row)
        self.line(group, number, row)

    def order_fields(self, group: Group, number: int, row: dict[str, str]) -> None:
        record: dict[str, Any] = {}
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
            if source.target == "created_at":
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
        group.raw = {s.column: row[s.column].strip() for s in self.order_columns}  # type: ignore[index]
        if not group.failed:
            group.record = record

    def check_conflicts(self, group: Group, number: int, row: dict[str, str]) -> None:
        for source in self.order_columns:
            column = source.column
            value = row[column].strip()  # type: ignore[index]
            if value != group.raw[column]:  # type: ignore[index]
                group.conflicts.setdefault(column, []).append((number, value))  # type: ignore[arg-type]
                if self.mapping.order_conflicts == "error":
                    group.failed = True

    def report_conflicts(self) -> None:
        """One problem per order and column whose lines disagree on an order-level value."""
        as_error = self.mapping.order_conflicts == "error"
        for group in self.groups.values():
            for column, found in group.conflicts.items():
                values = sorted({v for _, v in found})
                message = (f"lines {_numbers([n for n, _ in found])} have {', '.join(map(repr, values))} where the "
                           f"order's first line ({group.first_line}) has {group.raw[column]!r}"
                           + ("" if as_error else "; the first line's value is kept"))
                (self.error if as_error else self.warn)(message, found[0][0], column, group.key)

    def line(self, group: Group, number: int, row: dict[str, str]) -> None:
        item: dict[str, Any] = {}
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
                values[key] = self.cells.read(source, row, zone)
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


# --- import ---------------------------------------------------------------------------


def _order_record(group: Group) -> dict[str, Any]:
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


def _api_problem(error: IngestError, group: Group, mapping: Mapping, what: str = "order") -> Problem:
    """An Ingestor error, placed at the CSV line and column it comes from when known."""
    line, column = group.first_line, None
    if error.field:
        parts = error.field.split(".")
        if what == "order" and parts[0] == "items" and len(parts) > 1 and parts[1].isdigit():
            n = int(parts[1])
            if n < len(group.lines):
                line = group.lines[n].number
            target = ".".join(parts[2:])
            column = (mapping.column_of(target) if target in ITEM_TARGETS
                      else ", ".join(s.column for s in mapping.amounts.values() if s.column))
        elif what == "order":
            column = mapping.column_of(error.field)
    return Problem(f"refused by the ingest validation: {error.error}", line, column, group.key)


def _validate_locally(records: list[dict[str, Any]]) -> list[IngestError]:
    """The Ingestor's validation, without writing (for --dry-run)."""
    errors = []
    for i, record in enumerate(records):
        try:
            Order.model_validate_json(orjson.dumps(record))
        except ValidationError as exc:
            details = validation_details(list(exc.errors(include_url=False, include_input=False)))
            first = details[0] if details else {"field": None, "message": "invalid record"}
            errors.append(IngestError(index=i, id=record.get("order_id"), field=first["field"] or None,
                                      error=f"{first['field']}: {first['message']}" if first["field"] else first["message"]))
    return errors


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def import_csv(
    path: str | os.PathLike[str],
    mapping: Mapping | str | dict[str, Any],
    ingestor: Any,
    store_id: str | None = None,
    batch_size: int = 2000,
    progress: bool = True,
    *,
    limit: int | None = None,
    settings: Settings | None = None,
) -> ImportReport:
    """Import `path` with `mapping` through `ingestor` (an `Ingestor`; None: a dry run).

    Raises MappingError when the mapping does not fit the file (nothing is imported).
    """
    started = time.monotonic()
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    settings = settings or (ingestor.settings if ingestor is not None else Settings())
    path = Path(path)
    report = ImportReport(path=str(path), mapping=mapping.name, dry_run=ingestor is None)

    zones: dict[str | None, ZoneInfo] = {}

    def zone_for(store: str | None) -> ZoneInfo:
        if store not in zones:
            zones[store] = (ZoneInfo(mapping.timezone) if mapping.timezone
                            else settings.store_timezone(store or settings.default_store_id))
        return zones[store]

    reader = Reader(mapping, report, zone_for, store_id)
    groups = reader.read(path)
    report.orders_in_file = len(groups)
    if limit is not None:
        groups = groups[:limit]
        kept = {g.key for g in groups}
        # Problems of orders beyond the limit are not this import's business.
        report.errors = [p for p in report.errors if p.order_id is None or p.order_id in kept]
        report.warnings = [p for p in report.warnings if p.order_id is None or p.order_id in kept]

    good: list[Group] = []
    error_lines = {p.line for p in report.errors}
    for group in groups:
        if group.failed or group.record is None:
            others = [n for n in group.line_numbers if n not in error_lines]
            bad = [n for n in group.line_numbers if n in error_lines]
            if others:
                report.errors.append(Problem(
                    f"order not imported because of the error(s) on line(s) {_numbers(bad)}; "
                    f"its other line(s) {_numbers(others)} were not stored either", others[0], None, group.key))
            report.failed_rows += len(group.line_numbers)
            report.failed_orders += 1
        else:
            good.append(group)

    accepted: list[Group] = []
    bar = _progress(len(good), progress)
    try:
        for batch in _batches(good, batch_size):
            records = [_order_record(g) for g in batch]
            if ingestor is None:
                errors = _validate_locally(records)
            else:
                response = await ingestor.orders(records, None)
                report.indexed += response.indexed
                report.duplicates += response.duplicates
                report.stale += response.stale
                errors = response.errors
            refused = set()
            for error in errors:
                group = batch[error.index]
                refused.add(error.index)
                report.errors.append(_api_problem(error, group, mapping))
                report.failed_rows += len(group.line_numbers)
                report.failed_orders += 1
            accepted.extend(g for i, g in enumerate(batch) if i not in refused)
            bar.update(len(batch))
    finally:
        bar.close()

    customers: set[str] = set()
    products: dict[str, tuple[Line, datetime]] = {}
    names: dict[str, set[str]] = {}
    for group in accepted:
        report.orders += 1
        customers.add(str((group.record or {}).get("customer", {}).get("customer_id")))
        for line in group.lines:
            report.lines += 1
            q = line.item["quantity"]
            report.quantity += q
            report.sales += q * line.amounts.unit_price - line.amounts.discount
            if line.amounts.unit_cost is None:
                report.lines_without_cost += 1
            else:
                report.cogs += q * line.amounts.unit_cost
            pid = line.item["product_id"]
            seen = products.get(pid)
            when = group.created_at or datetime.now(timezone.utc)
            products[pid] = (line, max(when, seen[1]) if seen else when)  # the last line in the file wins
            if "name" in line.item:
                names.setdefault(pid, set()).add(line.item["name"])
    report.customers = len(customers)
    report.products = len(products)

    if mapping.products and products:
        await _import_products(products, names, mapping, ingestor, store_id, batch_size, report)
    report.errors.sort(key=lambda p: (p.line or 0))
    report.warnings.sort(key=lambda p: (p.line or 0))
    report.seconds = time.monotonic() - started
    return report


async def _import_products(products: dict[str, tuple[Line, datetime]], names: dict[str, set[str]], mapping: Mapping,
                           ingestor: Any, store_id: str | None, batch_size: int, report: ImportReport) -> None:
    """Upsert each distinct product into the catalog: the last line's values win.

    `updated_at` is the latest order date the product appears on, so a re-import sends
    the same state (a duplicate) and a newer catalog record is never overwritten (stale).
    """
    fields = [t for t in ("name", "sku", "category", "subcategory", "brand") if mapping.column_of(t) is not None]
    records = []
    for pid, (line, when) in products.items():
        record: dict[str, Any] = {"product_id": pid, "updated_at": when.isoformat()}
        record.update({k: line.item[k] for k in fields if k in line.item})
        if store_id is not None:
            record["store_id"] = store_id
        records.append(record)
        if len(names.get(pid, ())) > 1:
            report.warnings.append(Problem(
                f"product {pid} has {len(names[pid])} names in the file; the catalog keeps the last one "
                f"({line.item.get('name')!r}, line {line.number}); order lines keep their own", line.number,
                mapping.column_of("name")))
    if ingestor is None:
        return
    for batch in _batches(records, batch_size):
        response = await ingestor.products(list(batch), None)
        report.product_indexed += response.indexed
        report.product_duplicates += response.duplicates
        report.product_stale += response.stale
        for error in response.errors:
            pid = batch[error.index]["product_id"]
            line = products[pid][0]
            report.errors.append(Problem(f"product {pid} refused by the ingest validation: {error.error}",
                                         line.number, None, None))


def _numbers(numbers: list[int], shown: int = 10) -> str:
    text = ", ".join(str(n) for n in numbers[:shown])
    return text + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="order", desc="importing", file=sys.stderr, leave=False)


# --- the command ----------------------------------------------------------------------


def _store_id_argument(value: str) -> str:
    """--store-id follows the records' store_id rule (ingest.limits.check_store_id)."""
    from ..ingest.limits import check_store_id

    try:
        return check_store_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"store id {value!r} {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analytics_service import-csv",
        description="Import orders from a CSV export using a column mapping (see docs/importing.md).")
    parser.add_argument("file", help="the CSV file")
    parser.add_argument("--mapping", required=True,
                        help=f"a built-in mapping ({', '.join(builtin_mappings())}) or a path to a JSON mapping")
    parser.add_argument("--store-id", type=_store_id_argument,
                        help="store of every imported order and product (default: DEFAULT_STORE_ID)")
    parser.add_argument("--batch-size", type=int, default=2000, help="orders per ingest batch (default 2000, max 5000)")
    parser.add_argument("--limit", type=int, help="import only the first N orders of the file")
    parser.add_argument("--dry-run", action="store_true", help="read and validate everything, write nothing")
    parser.add_argument("--errors-csv", metavar="PATH", help="write every error and warning to this CSV file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


async def _run(args: argparse.Namespace, mapping: Mapping, settings: Settings) -> ImportReport:
    if args.dry_run:
        return await import_csv(args.file, mapping, None, args.store_id, args.batch_size, not args.no_progress,
                                limit=args.limit, settings=settings)
    from ..es.client import make_async_client
    from ..es.indices import IndexGuard
    from ..ingest.service import Ingestor

    es = make_async_client(settings)
    try:
        ingestor = Ingestor.for_settings(es, settings)
        await IndexGuard(es, ingestor.names, auto_setup=True).ensure()
        return await import_csv(args.file, mapping, ingestor, args.store_id, args.batch_size, not args.no_progress,
                                limit=args.limit, settings=settings)
    finally:
        await es.close()


def main(argv: list[str] | None = None) -> int:
    """The `import-csv` command: 0 when every line was imported, 1 when some were not, 2 on usage errors."""
    parser = build_parser()
    # One line per bulk request would bury the progress bar and the summary.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not 1 <= args.batch_size <= 5000:
        parser.print_usage(sys.stderr)
        print("error: --batch-size must be between 1 and 5000", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    if not Path(args.file).is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    try:
        mapping = load_mapping(args.mapping)
        settings = Settings()
    except (MappingError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_run(args, mapping, settings))
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Elasticsearch unreachable, refused credentials...
        from elasticsearch import ApiError as ESApiError
        from elasticsearch import ConnectionError as ESConnectionError

        from ..errors import ApiError

        if isinstance(exc, (ESConnectionError, ESApiError, ApiError)):
            print(f"error: Elasticsearch at {settings.elasticsearch_url}: {exc}", file=sys.stderr)
            print("nothing was lost: every write is idempotent, run the same import again", file=sys.stderr)
            return 1
        raise
    print(report.summary())
    if args.errors_csv:
        report.write_problems(args.errors_csv)
        print(f"all errors and warnings written to {args.errors_csv}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
