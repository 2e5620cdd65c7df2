"""Reading one CSV cell by its mapping Source: text, numbers, booleans, dates (docs/importing.md "Conversions")."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias
from zoneinfo import ZoneInfo

from pydantic import JsonValue

if TYPE_CHECKING:
    from .mapping import Mapping, Source

# A converted cell: a mapping constant, default or `map` value as written, or the cell's text converted.
CellValue: TypeAlias = JsonValue | datetime


class CellError(ValueError):
    """One cell (or one line) cannot be read."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


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
                parsed = (
                    datetime.fromisoformat(text.replace("Z", "+00:00"))
                    if fmt == "iso"
                    else datetime.strptime(text, fmt)
                )
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

    def read(self, source: Source, row: dict[str, str], zone: ZoneInfo) -> CellValue:
        """The value for `source` from `row`, converted; None when the cell is empty."""
        if source.column is None:
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

    def amount(self, source: Source, row: dict[str, str], zone: ZoneInfo) -> float | None:
        """read() for an `amounts` source (a float): None when the cell is empty."""
        value = self.read(source, row, zone)
        if value is None or isinstance(value, int | float):  # a cell, or a constant, default or `map` number
            return value
        raise CellError(source.column, f"not a number: {value!r}")

    def convert(self, source: Source, raw: str, zone: ZoneInfo) -> str | bool | int | float | datetime:
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
