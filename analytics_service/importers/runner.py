"""One CSV import: read the file, send its orders (and products) in batches, fill the ImportReport.

The rules are in docs/importing.md ("What happens to bad lines", "Products").
"""

from __future__ import annotations

import csv
import os
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from ..config import Settings
from ..errors import validation_details
from ..ingest.schemas import IngestError, Order
from .mapping import ITEM_TARGETS, Mapping, MappingError, load_mapping
from .report import ImportReport, Problem, line_list
from .rows import Group, Line, Orders, Record, order_record

if TYPE_CHECKING:
    from ..ingest.service import Ingestor

T = TypeVar("T")


def read_file(path: Path, orders: Orders) -> list[Group]:
    """Every data line of `path` into `orders`; raises MappingError when the file does not fit the mapping."""
    m = orders.mapping
    report = orders.report
    try:
        f = open(path, encoding=m.encoding, newline="")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise MappingError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with f:
        reader = csv.reader(f, delimiter=m.delimiter, quotechar=m.quotechar)
        try:
            first = next(reader, None)
            if first is None:
                raise MappingError(f"{path} is empty (no header line)")
            header = [h.strip() for h in first]
            missing = [c for c in m.columns() if c not in header]
            if missing:
                raise MappingError(
                    f"column(s) {missing} of mapping {m.name!r} are not in the header of {path}; "
                    f"its columns are: {header} (check `encoding` and `delimiter`)"
                )
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
                    report.rows += 1
                    orders.error(f"cannot be read as CSV: {exc}", start)
                    report.failed_rows += 1
                    continue
                if not cells or all(not c.strip() for c in cells):
                    continue  # blank line
                report.rows += 1
                orders.row(start, header, cells)
        except UnicodeDecodeError as exc:
            raise MappingError(
                f"{path} near line {reader.line_num + 1} is not valid {m.encoding} ({exc.reason}); "
                'set `encoding` in the mapping (e.g. "cp1252")'
            ) from exc
    return orders.finish()


def _api_problem(error: IngestError, group: Group, mapping: Mapping) -> Problem:
    """An Ingestor error, placed at the CSV line and column it comes from when known."""
    line, column = group.first_line, None
    if error.field:
        parts = error.field.split(".")
        if parts[0] == "items" and len(parts) > 1 and parts[1].isdigit():
            n = int(parts[1])
            if n < len(group.lines):
                line = group.lines[n].number
            target = ".".join(parts[2:])
            column = (
                mapping.column_of(target)
                if target in ITEM_TARGETS
                else ", ".join(s.column for s in mapping.amounts.values() if s.column)
            )
        else:
            column = mapping.column_of(error.field)
    return Problem(f"refused by the ingest validation: {error.error}", line, column, group.key)


def _validate_locally(records: list[Record]) -> list[IngestError]:
    """The Ingestor's validation, without writing (for --dry-run)."""
    errors = []
    for i, record in enumerate(records):
        try:
            Order.model_validate_json(orjson.dumps(record))
        except ValidationError as exc:
            found = cast("list[dict[str, Any]]", exc.errors(include_url=False, include_input=False))
            details = validation_details(found)
            first = details[0] if details else {"field": None, "message": "invalid record"}
            message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
            errors.append(IngestError(index=i, id=record.get("order_id"), field=first["field"] or None, error=message))
    return errors


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Bar(Protocol):
    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> _Bar:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    bar: _Bar = tqdm(total=total, unit="order", desc="importing", file=sys.stderr, leave=False)
    return bar


async def import_csv(
    path: str | os.PathLike[str],
    mapping: Mapping | str | dict[str, Any],
    ingestor: Ingestor | None,
    store_id: str | None = None,
    batch_size: int = 2000,
    progress: bool = True,
    *,
    limit: int | None = None,
    settings: Settings | None = None,
) -> ImportReport:
    """Import `path` with `mapping` through `ingestor` (None: a dry run).

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
            zones[store] = (
                ZoneInfo(mapping.timezone)
                if mapping.timezone
                else settings.store_timezone(store or settings.default_store_id)
            )
        return zones[store]

    groups = read_file(path, Orders(mapping, report, zone_for, store_id))
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
                report.errors.append(
                    Problem(
                        f"order not imported because of the error(s) on line(s) {line_list(bad)}; "
                        f"its other line(s) {line_list(others)} were not stored either",
                        others[0],
                        None,
                        group.key,
                    )
                )
            report.failed_rows += len(group.line_numbers)
            report.failed_orders += 1
        else:
            good.append(group)

    accepted: list[Group] = []
    bar = _progress(len(good), progress)
    try:
        for batch in _batches(good, batch_size):
            records = [order_record(g) for g in batch]
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
            when = group.created_at or datetime.now(UTC)
            products[pid] = (line, max(when, seen[1]) if seen else when)  # the last line in the file wins
            if "name" in line.item:
                names.setdefault(pid, set()).add(line.item["name"])
    report.customers = len(customers)
    report.products = len(products)

    if mapping.products and products:
        await _import_products(products, names, mapping, ingestor, store_id, batch_size, report)
    report.errors.sort(key=lambda p: p.line or 0)
    report.warnings.sort(key=lambda p: p.line or 0)
    report.seconds = time.monotonic() - started
    return report


async def _import_products(
    products: dict[str, tuple[Line, datetime]],
    names: dict[str, set[str]],
    mapping: Mapping,
    ingestor: Ingestor | None,
    store_id: str | None,
    batch_size: int,
    report: ImportReport,
) -> None:
    """Upsert each distinct product into the catalog: the last line's values win.

    `updated_at` is the latest order date the product appears on, so a re-import sends
    the same state (a duplicate) and a newer catalog record is never overwritten (stale).
    """
    fields = [t for t in ("name", "sku", "category", "subcategory", "brand") if mapping.column_of(t) is not None]
    records = []
    for pid, (line, when) in products.items():
        record: Record = {"product_id": pid, "updated_at": when.isoformat()}
        record.update({k: line.item[k] for k in fields if k in line.item})
        if store_id is not None:
            record["store_id"] = store_id
        records.append(record)
        if len(names.get(pid, ())) > 1:
            report.warnings.append(
                Problem(
                    f"product {pid} has {len(names[pid])} names in the file; the catalog keeps the last one "
                    f"({line.item.get('name')!r}, line {line.number}); order lines keep their own",
                    line.number,
                    mapping.column_of("name"),
                )
            )
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
            report.errors.append(
                Problem(f"product {pid} refused by the ingest validation: {error.error}", line.number, None, None)
            )
