"""Periods of the analytics tests: zones, periods around New York's DST changes, one period per
interval, the query parameters of a period, and bad values of the parameters every analytics
endpoint shares."""

from __future__ import annotations

from datetime import date

ZONES = ["UTC", "America/Sao_Paulo", "America/New_York"]
# New York changes to and from DST on 8 March and 1 November 2026, inside these periods.
SPRING = (date(2026, 2, 20), date(2026, 3, 20))
AUTUMN = (date(2026, 10, 20), date(2026, 11, 10))
YEAR = (date(2025, 11, 1), date(2026, 11, 1))
INTERVAL_PERIODS = {
    "hour": (date(2026, 10, 30), date(2026, 11, 3)),
    "day": AUTUMN,
    "week": SPRING,
    "month": YEAR,
    "quarter": YEAR,
    "year": (date(2025, 1, 1), date(2026, 11, 15)),
}
# Bad values of the query parameters the analytics endpoints share, with the field each 422 names.
COMMON_BAD_PARAMETERS = [
    ({"tz": "Mars/Olympus"}, "query.tz"),
    ({"interval": "fortnight"}, "query.interval"),
    ({"start": "2026-13-01"}, "query.start"),
    ({"start": "2026-02-01", "end": "2026-01-01"}, "query.end"),
    ({"compare": "last_week"}, "query.compare"),
    ({"limit": "0"}, "query.limit"),
    ({"limit": "x"}, "query.limit"),
]


def period_params(start: date, end: date, tz: str | None = None, **more) -> dict:
    """The query parameters of the period [start, end) (in `tz` when given), then `more`."""
    params = {"start": start.isoformat(), "end": end.isoformat()}
    if tz is not None:
        params["tz"] = tz
    return {**params, **more}
