"""An alert's windows around summer-time changes (no node needed): the window is the elapsed
time before the evaluation, and every reference window starts at the same local wall-clock
time one or k weeks before and lasts as long, whatever the offsets in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics_service.notifications.evaluation import reference_windows
from analytics_service.notifications.rules import window_bounds
from analytics_service.notifications.tables import AlertRule
from analytics_service.zones import zone_named

BERLIN = "Europe/Berlin"
# UTC evaluation times: the first and second 02:00-03:00 of 25 October 2026 (summer time ends),
# the week after it, and the hour summer time starts (29 March 2026).
TIMES = [
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 2, tzinfo=UTC),
    datetime(2026, 11, 1, 2, tzinfo=UTC),
    datetime(2026, 3, 29, 2, tzinfo=UTC),
    datetime(2026, 4, 5, 2, tzinfo=UTC),
]


def rule(condition: dict) -> AlertRule:
    return AlertRule(alert_id="a" * 32, tz=BERLIN, window="1h", condition=condition)


def pandas_reference(start: datetime, weeks: int) -> pd.Timestamp:
    """The same local wall-clock time `weeks` weeks before (an earlier occurrence when repeated)."""
    local = pd.Timestamp(start).tz_convert(BERLIN).tz_localize(None) - pd.Timedelta(weeks=weeks)
    return local.tz_localize(BERLIN, ambiguous=True, nonexistent="shift_forward")


@pytest.mark.parametrize("at", TIMES)
def test_the_window_is_the_hour_of_elapsed_time_before_the_evaluation(at):
    start, end = window_bounds("1h", at, zone_named(BERLIN))
    assert end.astimezone(UTC) == at and at - start.astimezone(UTC) == timedelta(hours=1)


@pytest.mark.parametrize("at", TIMES)
def test_reference_windows_last_as_long_and_start_at_the_same_local_time(at):
    start, end = window_bounds("1h", at, zone_named(BERLIN))
    (last_week,) = reference_windows(rule({"type": "change", "compare_to": "last_week"}), start, end)
    (previous,) = reference_windows(rule({"type": "change", "compare_to": "previous_window"}), start, end)
    first = start.astimezone(UTC)  # on instants: `start - 1h` on a Berlin time would be wall-clock arithmetic
    assert previous == (first - timedelta(hours=1), first)
    bands = reference_windows(rule({"type": "anomaly", "weeks": 4}), start, end)
    assert len(bands) == 4
    for a, b in [last_week, *bands]:
        assert b.astimezone(UTC) - a.astimezone(UTC) == timedelta(hours=1)
    for k, (a, _) in enumerate(bands, start=1):
        expected = pandas_reference(start, k)
        assert pd.Timestamp(a).tz_convert(BERLIN).tz_localize(None) == expected.tz_localize(None)
    assert pd.Timestamp(last_week[0]) == pd.Timestamp(bands[0][0])
