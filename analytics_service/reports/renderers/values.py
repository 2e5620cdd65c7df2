"""How one value of a given kind is written, shared by every renderer.

A report cell is a Python value plus its column's `kind` (model.ValueKind):
money (a number, 2 decimals), count (an integer), rate (a fraction 0..1), pct (a
growth percentage as the API returns it, 12.5 = +12.5 %), pp (a change in percentage
points), number, date (a `date`, a `datetime` or an ISO string such as the API's bucket
keys), text, and label (a machine name such as `product_view`, shown as "Product view").
A table whose rows are measures resolves its `measure` and `change` columns per row
(`cell_kinds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from numbers import Number
from typing import Any

from ...analytics.comparison import up_is_good
from ..labels import MEASURES, value_label
from ..model import Column, Kpi, Table, ValueKind

# Text a spreadsheet would run as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Kinds whose values are numbers (right-aligned).
NUMERIC_KINDS = frozenset({"money", "count", "rate", "pct", "pp", "number", "measure", "change"})
CHANGE_SUFFIXES = ("_growth_pct", "_change_pp")


def number(value: Any) -> float | int | None:
    """A finite int/float, or None (missing, NaN, infinite or not a number)."""
    if isinstance(value, int):  # bool included: True -> 1
        return int(value)
    if isinstance(value, (float, Decimal, Number)):
        f = float(value)  # type: ignore[arg-type]
        return f if math.isfinite(f) else None
    return None


def money(value: Any) -> float | None:
    n = number(value)
    return None if n is None else round(float(n), 2) + 0.0  # + 0.0 turns -0.0 into 0.0


def count(value: Any) -> int | float | None:
    n = number(value)
    if isinstance(n, float) and n.is_integer():
        return int(n)
    return n


def to_date(value: Any) -> date | datetime | None:
    """A date or (local wall-clock) datetime from a date, datetime or ISO string; None if unparsable.

    A datetime keeps its offset here; writers that cannot store one (Excel) drop it: the wall-clock
    time is the time in the report's zone, which is what the API's bucket keys are.
    """
    if isinstance(value, date):  # datetime included
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def typed(value: Any, kind: ValueKind) -> Any:
    """The value as the type its kind calls for (numbers rounded, dates parsed); None stays None.

    What cannot be converted (a label in a numeric column, a malformed date) is returned as text.
    """
    if value is None:
        return None
    if kind == "money":
        converted: Any = money(value)
    elif kind == "count":
        converted = count(value)
    elif kind in ("rate", "pct", "pp", "number"):
        converted = number(value)
    elif kind == "date":
        converted = to_date(value)
    else:
        return value if isinstance(value, str) else str(value)
    if converted is None:  # NaN/infinity are missing values; anything else unconvertible stays as text
        return None if isinstance(value, Number) else str(value)
    return converted


def _written(value: Any, kind: ValueKind, missing: str, form: Callable[[Any, ValueKind], str]) -> str:
    """`typed` value -> `missing` when None, as is when text, else `form(value, kind)`."""
    v = typed(value, kind)
    if v is None:
        return missing
    if isinstance(v, str):
        return v
    return form(v, kind)


def _plain_form(v: Any, kind: ValueKind) -> str:
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if kind == "money":
        return f"{v:.2f}"
    return repr(v) if isinstance(v, float) else str(v)


def _display_form(v: Any, kind: ValueKind) -> str:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.isoformat()
    if kind == "money":
        return f"{v:,.2f}"
    if kind == "count":
        return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"
    if kind == "rate":
        return f"{v * 100:.1f}%"
    if kind == "pct":
        return f"{v:+.1f}%"
    if kind == "pp":
        return f"{v:+.1f} pp"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.2f}"


def plain(value: Any, kind: ValueKind) -> str:
    """The machine form of a value (CSV): money with 2 decimals, rates as fractions, ISO dates,
    machine names as they are."""
    return _written(value, kind, "", _plain_form)


def display(value: Any, kind: ValueKind) -> str:
    """The human form of a value (PDF, XLSX text, column widths): 1,234.56 / 1,234 / 12.3% /
    +12.3% / +6.0 pp / 2024-03-01 / "Product view"."""
    if kind == "label" and isinstance(value, str):
        return value_label(value)
    if isinstance(value, bool) and kind in ("text", "label"):
        return "Yes" if value else "No"
    return _written(value, kind, "–", _display_form)


def money_text(value: Any, currency: str) -> str:
    """A money figure with its currency: "USD 1,234.56" ("–" when missing)."""
    shown = display(value, "money")
    return shown if shown == "–" else f"{currency} {shown}"


def header_label(column: Column, currency: str) -> str:
    """A column's header: money columns name their currency ("Gross revenue (USD)")."""
    return f"{column.label} ({currency})" if column.kind == "money" else column.label


def cell_kinds(table: Table, row: int) -> list[ValueKind]:
    """The kind of each cell of a row: the column's, or for a table of measures the row
    measure's (`measure` columns) and its change's (`change` columns: pp for a rate, else pct)."""
    measure = table.row_measures[row] if table.row_measures else None
    kind_of_measure: ValueKind = MEASURES[measure][1] if measure in MEASURES else "number"
    out: list[ValueKind] = []
    for column in table.columns:
        if column.kind == "measure":
            out.append(kind_of_measure)
        elif column.kind == "change":
            out.append("pp" if kind_of_measure == "rate" else "pct")
        else:
            out.append(column.kind)
    return out


def change_is_good(table: Table, row: int, column: Column, value: Any) -> bool | None:
    """Whether a change cell is good news (the measure's direction, not the sign); None when it
    is no change or not a change cell."""
    n = number(value)
    if not n or column.kind not in ("pct", "pp", "change"):
        return None
    if table.row_measures:
        measure = table.row_measures[row]
    else:
        measure = column.name
        for suffix in CHANGE_SUFFIXES:
            measure = measure.removesuffix(suffix)
    return (n > 0) == up_is_good(measure)


def compact(value: float, kind: ValueKind) -> str:
    """Short axis labels: 12.5k, 1.2M, 35%."""
    if kind == "rate":
        return f"{value * 100:.0f}%"
    if kind == "pct":
        return f"{value:+.0f}%"
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.0f}" if float(value).is_integer() or size >= 10 else f"{value:.1f}"


def defuse_formula(text: str) -> str:
    """Prefix text a spreadsheet would evaluate with an apostrophe (CSV only; XLSX stores strings as strings)."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def growth_is_good(kpi: Kpi) -> bool | None:
    """True/False when the KPI's change is good/bad news (by its direction, not the sign), None
    when there is no change to judge."""
    change, _ = kpi.change
    if not kpi.has_data or change is None or change == 0:
        return None
    return (change > 0) == kpi.up_is_good


def period_bounds(period: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    def parse(text: str | None) -> datetime | None:
        try:
            return datetime.fromisoformat(text) if text else None
        except ValueError:
            return None

    return parse(period.get("start")), parse(period.get("end"))


def period_label(period: dict[str, str]) -> str:
    """`2024-03-01 – 2024-03-31 (Europe/Berlin)`: the half-open [start, end) shown with its last day.

    When start and end fall on local midnights the end is shown as the last included day;
    otherwise both ends are shown with their times (end exclusive).
    """
    start, end = period_bounds(period)
    zone = period.get("tz") or "UTC"
    if start is None or end is None:
        return f"{period.get('start', '?')} – {period.get('end', '?')} ({zone})"
    if start.time() == time(0) and end.time() == time(0):
        last = (end - timedelta(days=1)).date()
        span = start.date().isoformat() if last <= start.date() else f"{start.date()} – {last}"
    else:
        span = f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} (end exclusive)"
    return f"{span} ({zone})"


def generated_label(moment: datetime) -> str:
    """`2024-04-01 06:00 UTC` (a naive datetime is taken as UTC, like every stored time)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{utc:%Y-%m-%d %H:%M} UTC"
