"""What an import did: counts, totals and every problem by CSV line (docs/importing.md "The command")."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field


def line_list(numbers: list[int], shown: int = 10) -> str:
    """Line numbers for a message: the first `shown`, then how many more."""
    text = ", ".join(str(n) for n in numbers[:shown])
    return text + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


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
    """What one import read, stored and refused; `summary()` is what the command prints."""

    path: str
    mapping: str
    dry_run: bool = False
    rows: int = 0  # data lines read
    orders_in_file: int = 0  # distinct order ids among them
    # What the file now has in the store (orders not refused), and their totals.
    lines: int = 0
    orders: int = 0
    customers: int = 0
    products: int = 0
    sales: float = 0.0  # sum of line revenue
    cogs: float = 0.0  # sum of quantity * unit_cost (lines with a cost)
    quantity: int = 0
    lines_without_cost: int = 0
    # Ingestor outcomes for the orders, and for the catalog records (`products: true`).
    indexed: int = 0
    duplicates: int = 0
    stale: int = 0
    product_indexed: int = 0
    product_duplicates: int = 0
    product_stale: int = 0
    failed_rows: int = 0  # lines not stored (their own error or their order's)
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
            out.append("  nothing would be written (dry run)")
        else:
            out.append(
                f"  orders: indexed {self.indexed:,}, duplicates {self.duplicates:,}, stale {self.stale:,}, "
                f"errors {self.failed_orders:,}"
            )
            if self.product_indexed or self.product_duplicates or self.product_stale:
                out.append(
                    f"  products: indexed {self.product_indexed:,}, duplicates {self.product_duplicates:,}, "
                    f"stale {self.product_stale:,}"
                )
        if self.failed_rows or self.failed_orders:
            out.append(f"  NOT imported: {self.failed_rows:,} lines in {self.failed_orders:,} orders")
        for title, problems in (("warnings", self.warnings), ("errors", self.errors)):
            if problems:
                shown = f" (first {max_problems})" if len(problems) > max_problems else ""
                out.append(f"{len(problems):,} {title}{shown}:")
                out.extend(f"  {p}" for p in problems[:max_problems])
        return "\n".join(out)

    def write_problems(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["severity", "line", "column", "order_id", "message"])
            for severity, problems in (("error", self.errors), ("warning", self.warnings)):
                for p in problems:
                    writer.writerow([severity, p.line or "", p.column or "", p.order_id or "", p.message])
