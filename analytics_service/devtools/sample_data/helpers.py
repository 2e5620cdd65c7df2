"""Small pure helpers of the generator: weighted lookup tables, hashing, allocation, text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .reference import ASCII

MASK64 = (1 << 64) - 1


def _table(items: Sequence[tuple[Any, float]], size: int = 1000) -> list[Any]:
    """A lookup table for weighted picks: table[int(random() * len(table))]."""
    total = sum(w for _, w in items)
    table: list[Any] = []
    acc = 0.0
    for value, weight in items:
        acc += weight
        while len(table) < round(acc / total * size):
            table.append(value)
    return table


def _mix64(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def _allocate(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder)."""
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    raw = [total * w / s for w in weights]
    counts = [int(x) for x in raw]
    rest = total - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in order[:rest]:
        counts[i] += 1
    return counts


_TIMES: list[str] = []


def _time_strings() -> list[str]:
    """'HH:MM:SSZ' for every second of a day (formatting by lookup is the fast path)."""
    if not _TIMES:
        _TIMES.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400))
    return _TIMES


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower().translate(ASCII)).strip("-").replace("--", "-")


def _messy(query: str, r: float) -> str:
    """The same query as people type it: case and spacing vary (normalisation must merge them)."""
    if r < 0.55:
        return query
    if r < 0.68:
        return query.title()
    if r < 0.76:
        return query.upper()
    if r < 0.86:
        return "  " + query.replace(" ", "  ") + " "
    if r < 0.94:
        return query.capitalize() + " "
    return query.replace(" ", "   ")
