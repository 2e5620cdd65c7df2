"""A schedule's `range` turned into the period of a run, in the run's local time: checked
against pandas' calendar offsets at ordinary times, on the 1st of a month, on a Monday, and
on the days summer time starts and ends."""

from __future__ import annotations

from typing import get_args

import pandas as pd
import pytest

from analytics_service.notifications.rules import ScheduleRange, cron_times
from analytics_service.notifications.tables import ReportSchedule
from analytics_service.notifications.worker import latest_due, run_parameters
from analytics_service.zones import zone_named

RUNS = [
    "2026-11-18 06:00",
    "2026-12-01 06:00",
    "2026-11-16 00:30",
    "2026-03-29 03:30",
    "2026-10-25 02:30",
    "2027-01-01 06:00",
]
RANGES = get_args(ScheduleRange)  # every range a schedule accepts


def expected(name: str, today: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) local dates from pandas' offsets (an independent computation)."""
    yesterday = today - pd.Timedelta(days=1)
    monday = today - pd.Timedelta(days=today.weekday())
    month = today - pd.offsets.MonthBegin(1) if today.day != 1 else today
    quarter = pd.Period(today, "Q").start_time
    return {
        "yesterday": (yesterday, today),
        "last_week": (monday - pd.Timedelta(weeks=1), monday),
        "last_month": (month - pd.offsets.MonthBegin(1), month),
        "last_quarter": ((pd.Period(today, "Q") - 1).start_time, quarter),
        "month_to_date": (pd.Period(yesterday, "M").start_time, today),
        "week_to_date": (yesterday - pd.Timedelta(days=yesterday.weekday()), today),
        "last_7_days": (today - pd.Timedelta(days=7), today),
        "last_30_days": (today - pd.Timedelta(days=30), today),
    }[name]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("name", RANGES)
def test_a_range_is_the_period_before_the_run_in_its_time_zone(run, name):
    tz = "Europe/Berlin"
    at = pd.Timestamp(run).tz_localize(tz, ambiguous=True)  # 02:30 on 25 October happens twice: the first
    schedule = ReportSchedule(parameters={"range": name, "store_id": "s1"}, tz=tz)
    got = run_parameters(schedule, at.to_pydatetime(), "UTC")
    start, end = expected(name, pd.Timestamp(at.date()))
    assert (got["start"], got["end"]) == (start.date().isoformat(), end.date().isoformat())
    assert got["tz"] == tz and got["store_id"] == "s1" and "range" not in got


def test_missed_runs_make_one_run_at_the_latest_due_time():
    tz = zone_named("Europe/Berlin")
    due = pd.Timestamp("2026-11-01 06:00", tz="Europe/Berlin").to_pydatetime()
    now = pd.Timestamp("2026-11-04 07:00", tz="Europe/Berlin").to_pydatetime()
    latest, following = latest_due("0 6 * * *", tz, due, now)
    assert latest == pd.Timestamp("2026-11-04 06:00", tz="Europe/Berlin")
    assert following == pd.Timestamp("2026-11-05 06:00", tz="Europe/Berlin")
    # Across the end of summer time, 06:00 stays 06:00 local time.
    latest, following = latest_due(
        "0 6 * * *",
        tz,
        pd.Timestamp("2026-10-24 06:00", tz="Europe/Berlin").to_pydatetime(),
        pd.Timestamp("2026-10-24 07:00", tz="Europe/Berlin").to_pydatetime(),
    )
    assert following == pd.Timestamp("2026-10-25 06:00", tz="Europe/Berlin")
    assert following.astimezone(tz).utcoffset().total_seconds() == 3600  # CET, no longer CEST


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        # Fixed hours: a time of the repeated hour (02:00-03:00 happens twice on 25 October) runs once.
        ("30 2 * * *", ["00:30"]),
        ("0,30 2 * * *", ["00:00", "00:30"]),
        # Hourly or more often: by elapsed time, in both passes of the repeated hour.
        ("0 * * * *", ["00:00", "01:00"]),
        ("*/30 * * * *", ["00:00", "00:30", "01:00", "01:30"]),
    ],
)
def test_cron_times_in_the_repeated_hour_are_the_ones_cron_runs(cron, expected):
    tz = zone_named("Europe/Berlin")
    start = pd.Timestamp("2026-10-24 23:55", tz="UTC").to_pydatetime()  # 01:55 local, before the repeated hour
    times = []
    for moment in cron_times(cron, tz, start):
        if moment >= pd.Timestamp("2026-10-25 02:00", tz="UTC"):  # 03:00 local: past the repeated hour
            break
        times.append(moment.strftime("%H:%M"))
    assert times == expected
