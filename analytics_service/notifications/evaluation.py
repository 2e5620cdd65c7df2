"""Evaluating an alert rule at one time: the measure over the window, the condition, per subject.

Pure of the database: `evaluate(ctx, rule, at)` reads the measure (measures.py, the API's own
query objects) for the window ending at `at` and for the windows its condition compares with,
and says for each subject whether the condition holds (`firing`), does not (`False`), or cannot
be told (`None`: no value). incidents.py turns that into incidents, events and deliveries.

Conditions (docs/alerts.md and docs/metrics.md "Alerts"):
- threshold: `value <op> bound`;
- change: the change against the reference window (the window just before, or the same
  local wall-clock window one week earlier), in % as `growth_pct` defines it (none when the
  reference is 0) or absolute, then `change <op> bound`;
- anomaly: the same local window in each of the `weeks` weeks before; mean m and sample
  standard deviation s of those values; the band is m ± max(sensitivity * s, min_deviation);
  fires when the value is outside it (above: direction up or both; below: down or both).
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..analytics.comparison import growth_pct
from ..analytics.params import CommonParams, Period
from ..analytics.runner import QueryContext
from ..zones import zone_named
from .measures import MEASURES, Filters, Values, measure_values
from .rules import week_earlier, window_bounds
from .tables import AlertRule

_OPERATORS = {
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class SubjectOutcome:
    subject: str  # "" for the whole store, else a product id
    value: float | None
    firing: bool | None  # None: no value to tell
    details: dict[str, Any] = field(default_factory=dict)  # what the condition compared


@dataclass
class Evaluation:
    alert_id: str
    at: datetime
    window_start: datetime
    window_end: datetime
    subjects: list[SubjectOutcome]
    error: str | None = None
    exception: Exception | None = field(default=None, repr=False, compare=False)  # what `error` says

    @property
    def outcome(self) -> str:
        if self.error is not None:
            return "error"
        if any(s.firing for s in self.subjects):
            return "firing"
        if self.subjects and all(s.firing is None for s in self.subjects):
            return "no_data"
        return "ok"

    @property
    def value(self) -> float | None:
        """The whole-store value (None for per-product rules)."""
        return self.subjects[0].value if len(self.subjects) == 1 and self.subjects[0].subject == "" else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "at": iso(self.at),
            "window": {"start": iso(self.window_start), "end": iso(self.window_end)},
            "outcome": self.outcome,
            "value": self.value,
            "error": self.error,
            "subjects": [
                {"subject": s.subject, "value": s.value, "firing": s.firing, **s.details}
                for s in self.subjects
                if s.subject == "" or s.firing
            ],
        }


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _params(rule: AlertRule, start: datetime, end: datetime) -> CommonParams:
    tz = zone_named(rule.tz)
    interval = "day" if (end - start).total_seconds() >= 86400 else "hour"
    return CommonParams(period=Period(start.astimezone(tz), end.astimezone(tz), tz, interval), store_id=rule.store_id)


async def _values(ctx: QueryContext, rule: AlertRule, start: datetime, end: datetime) -> Values:
    measure = MEASURES[rule.measure]
    return await measure_values(ctx, measure, _params(rule, start, end), Filters.of(rule.filters or {}))


def reference_windows(rule: AlertRule, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The windows the condition compares the current one with (none for a threshold): each as
    long as the current one (elapsed time), starting at the same local wall-clock time one
    (or k) weeks before, so a summer-time change between them neither stretches nor empties it."""
    condition, tz = rule.condition, zone_named(rule.tz)
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # arithmetic on instants, not wall times
    length = end - start
    if condition["type"] == "change":
        if condition.get("compare_to") == "last_week":
            earlier = week_earlier(start, tz)
            return [(earlier, earlier + length)]
        return [(start - length, start)]
    if condition["type"] == "anomaly":
        starts = [week_earlier(start, tz, k) for k in range(1, int(condition["weeks"]) + 1)]
        return [(s, s + length) for s in starts]
    return []


def judge(condition: dict[str, Any], value: float | None, references: list[float | None]) -> SubjectOutcome:
    """Whether the condition holds for `value` against the reference values (subject left blank)."""
    kind = condition["type"]
    if value is None:
        return SubjectOutcome("", None, None, {})
    if kind == "threshold":
        return SubjectOutcome("", value, _OPERATORS[condition["operator"]](value, condition["value"]), {})
    if kind == "change":
        reference = references[0]
        if reference is None:
            return SubjectOutcome("", value, None, {"reference": None, "change": None})
        change = growth_pct(value, reference) if condition.get("unit", "pct") == "pct" else round(value - reference, 4)
        if change is None:  # a reference of 0: no % change
            return SubjectOutcome("", value, None, {"reference": reference, "change": None})
        firing = _OPERATORS[condition["operator"]](change, condition["value"])
        return SubjectOutcome("", value, firing, {"reference": reference, "change": change})
    history = [r for r in references if r is not None]
    if len(history) < 2:
        return SubjectOutcome("", value, None, {"history": history, "band": None})
    mean, stdev = statistics.fmean(history), statistics.stdev(history)
    half = max(float(condition.get("sensitivity", 3.0)) * stdev, float(condition.get("min_deviation", 0.0)))
    low, high = mean - half, mean + half
    direction = condition.get("direction", "both")
    firing = (value > high and direction in ("up", "both")) or (value < low and direction in ("down", "both"))
    details = {
        "history": history,
        "mean": round(mean, 4),
        "stdev": round(stdev, 4),
        "band": [round(low, 4), round(high, 4)],
    }
    return SubjectOutcome("", value, firing, details)


async def evaluate(ctx: QueryContext, rule: AlertRule, at: datetime) -> Evaluation:
    """The rule's condition at `at` (the end of its window), for every subject."""
    start, end = window_bounds(rule.window, at, zone_named(rule.tz))
    evaluation = Evaluation(rule.alert_id, at, start, end, [])
    try:
        references = reference_windows(rule, start, end)
        answers = await asyncio.gather(
            _values(ctx, rule, start, end), *(_values(ctx, rule, s, e) for s, e in references)
        )
    except Exception as exc:  # the node is down, ...: recorded on the evaluation, nothing changes
        evaluation.error = f"{type(exc).__name__}: {exc}"[:2000]
        evaluation.exception = exc
        return evaluation
    current, earlier = answers[0], answers[1:]
    for subject in sorted(current):
        judged = judge(rule.condition, current[subject], [values.get(subject) for values in earlier])
        evaluation.subjects.append(SubjectOutcome(subject, judged.value, judged.firing, judged.details))
    return evaluation
