"""Report periods: each type's natural period, and the names reports give periods.

The natural periods (yesterday, the last full Monday week, month or quarter in `tz`, or
the last 30 whole days) are listed per type in docs/reports.md ("Report types"); periods
themselves are half-open [start, end) in `tz` (docs/metrics.md, "Common parameters and time").
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Literal

from ..analytics.params import Period

Natural = Literal["yesterday", "last_week", "last_month", "last_quarter", "last_30_days"]


def month_start(d: date, months_back: int = 0) -> date:
    """The first day of the month `months_back` months before d's (negative: after)."""
    total = d.year * 12 + d.month - 1 - months_back
    return date(total // 12, total % 12 + 1, 1)


def natural_dates(natural: Natural, today: date) -> tuple[date, date] | None:
    """[start, end) local dates of a natural period before `today`; None: parse_common's default
    (the 30 whole days before today)."""
    if natural == "yesterday":
        return today - timedelta(days=1), today
    if natural == "last_week":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday
    if natural == "last_month":
        first = month_start(today)
        return month_start(today, 1), first
    if natural == "last_quarter":
        quarter = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return month_start(quarter, 3), quarter
    return None


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def period_label(period: Period) -> str:
    """A human name for a period: "Tuesday 3 November 2026", "October 2026", "Q3 2026",
    "week of 26 October 2026", else "5 Oct 2026 – 3 Nov 2026" (the last day included)."""
    start, end = period.start, period.end
    if start.time() != time(0) or end.time() != time(0):
        return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({period.tz.key})"
    first, stop = start.date(), end.date()
    if stop - first == timedelta(days=1):
        return f"{first:%A} {first.day} {first:%B %Y}"
    if first.day == 1 and stop == month_start(first, -1):
        return f"{first:%B %Y}"
    if first.day == 1 and first.month % 3 == 1 and stop == month_start(first, -3):
        return f"Q{(first.month - 1) // 3 + 1} {first.year}"
    if first.day == 1 and first.month == 1 and stop == date(first.year + 1, 1, 1):
        return str(first.year)
    if first.weekday() == 0 and stop - first == timedelta(days=7):
        return f"week of {first.day} {first:%B %Y}"
    return f"{_day(first)} – {_day(last_day(period))}"


def last_day(period: Period) -> date:
    """The period's last local day (its end is exclusive)."""
    end = period.end
    return end.date() - timedelta(days=1) if end.time() == time(0) else end.date()


def compare_label(compare: str) -> str:
    """What `compare` compares with, in words ("" for none)."""
    return {"previous_period": "previous period", "previous_year": "same period last year"}.get(compare, "")
