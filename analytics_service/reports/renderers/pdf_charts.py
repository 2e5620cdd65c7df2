"""Charts for the PDF, drawn with reportlab's own graphics (no image files).

A `Chart` of the model names a table, its category column and value columns:
`line` charts (trends) become a `HorizontalLineChart`, `bar` charts (top items) a
`HorizontalBarChart` with the first item on top. Value columns of different kinds
(money and counts, say) get one drawing each, so no series is flattened by another's
scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from ..model import Chart, Column, Table, ValueKind
from .values import compact, display, number, to_date

SERIES_COLORS = [colors.HexColor(c) for c in ("#2E75B6", "#E07B39", "#5B9E4D", "#8E6BB8", "#C94C4C", "#7F8C8D")]
GRID = colors.HexColor("#DDE3EA")
AXIS = colors.HexColor("#8A96A3")
LABEL = colors.HexColor("#3C4650")
MAX_BARS = 20
MAX_BAR_LABEL = 34  # characters of an item name beside its bar


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str


@dataclass(frozen=True)
class Series:
    label: str
    kind: ValueKind
    values: list[float | None]


def chart_drawings(
    chart: Chart, table: Table, width: float, fonts: Fonts, currency: str = ""
) -> list[tuple[str, Drawing]]:
    """(caption, drawing) per group of same-kind series; empty when the table has no rows.
    A money chart's caption names the currency."""
    columns = {c.name: c for c in table.columns}
    if not table.rows or chart.category not in columns:
        return []
    rows = table.rows[:MAX_BARS] if chart.kind == "bar" else table.rows
    category_at = [c.name for c in table.columns].index(chart.category)
    categories = _category_labels([row[category_at] for row in rows], columns[chart.category])
    groups = _series_by_kind(chart, table, rows)
    out = []
    for kind, series in groups.items():
        caption = chart.title if len(groups) == 1 else f"{chart.title}: {', '.join(s.label for s in series)}"
        if kind == "money" and currency:
            caption += f" ({currency})"
        draw = _line_chart if chart.kind == "line" else _bar_chart
        out.append((caption, draw(categories, series, kind, width, fonts)))
    return out


def _series_by_kind(chart: Chart, table: Table, rows: list[list]) -> dict[ValueKind, list[Series]]:
    names = [c.name for c in table.columns]
    groups: dict[ValueKind, list[Series]] = {}
    for name in chart.values:
        if name not in names:
            continue
        column = table.columns[names.index(name)]
        values = [_as_float(row[names.index(name)]) for row in rows]
        groups.setdefault(column.kind, []).append(Series(column.label, column.kind, values))
    return groups


def _as_float(value: object) -> float | None:
    n = number(value)
    return None if n is None else float(n)


def _category_labels(values: list[object], column: Column) -> list[str]:
    """Axis labels: `05 Mar` for days, `13:00` for the hours of one day, `05 Mar 13:00` across days."""
    if column.kind != "date":
        return [display(v, column.kind) for v in values]
    moments = [to_date(v) for v in values]
    if not all(isinstance(m, datetime) for m in moments):
        return [m.strftime("%d %b") if isinstance(m, date) else display(v, "text") for m, v in zip(moments, values)]
    one_day = len({m.date() for m in moments}) == 1  # type: ignore[union-attr]
    return [m.strftime("%H:%M" if one_day else "%d %b %H:%M") for m in moments]  # type: ignore[union-attr]


def _value_range(series: Sequence[Series]) -> tuple[float, float]:
    values = [v for s in series for v in s.values if v is not None] or [0.0]
    low, high = min(0.0, min(values)), max(values)
    return low, high if high > low else low + 1.0


def _line_chart(categories: list[str], series: list[Series], kind: ValueKind, width: float, fonts: Fonts) -> Drawing:
    height = 190.0
    drawing = Drawing(width, height)
    chart = HorizontalLineChart()
    chart.x, chart.y = 46, 30
    chart.width, chart.height = width - chart.x - 10, height - chart.y - (28 if len(series) > 1 else 12)
    chart.data = [s.values for s in series]
    step = max(1, math.ceil(len(categories) / 10))
    chart.categoryAxis.categoryNames = [c if i % step == 0 else "" for i, c in enumerate(categories)]
    _style_category_axis(chart.categoryAxis, fonts)
    chart.categoryAxis.labels.angle = 0
    chart.categoryAxis.labels.boxAnchor = "n"
    low, high = _value_range(series)
    _style_value_axis(chart.valueAxis, low, high, kind, fonts)
    for i in range(len(series)):
        chart.lines[i].strokeColor = SERIES_COLORS[i % len(SERIES_COLORS)]
        chart.lines[i].strokeWidth = 1.8
    drawing.add(chart)
    if len(series) > 1:
        drawing.add(_legend(series, x=chart.x, y=height - 6, fonts=fonts))
    return drawing


def _bar_chart(categories: list[str], series: list[Series], kind: ValueKind, width: float, fonts: Fonts) -> Drawing:
    names = [_shorten(c) for c in categories]
    label_width = min(max(stringWidth(n, fonts.regular, 7.5) for n in names) + 10, width * 0.4)
    bar_space = 15.0 * len(series)
    height = bar_space * len(names) + 40 + (16 if len(series) > 1 else 0)
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = label_width, 22
    chart.width, chart.height = width - label_width - 56, bar_space * len(names)
    # Category axis runs bottom to top: reverse so the first (top) item is drawn first from the top.
    chart.data = [list(reversed(s.values)) for s in series]
    chart.categoryAxis.categoryNames = list(reversed(names))
    _style_category_axis(chart.categoryAxis, fonts)
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    low, high = _value_range(series)
    _style_value_axis(chart.valueAxis, low, high, kind, fonts)
    chart.barSpacing, chart.groupSpacing = 1, 4
    chart.barLabelFormat = lambda v: display(v, kind) if v is not None else ""
    chart.barLabels.fontName, chart.barLabels.fontSize = fonts.regular, 6.5
    chart.barLabels.fillColor = LABEL
    chart.barLabels.boxAnchor, chart.barLabels.dx = "w", 3
    for i in range(len(series)):
        chart.bars[i].fillColor = SERIES_COLORS[i % len(SERIES_COLORS)]
        chart.bars[i].strokeColor = None
    drawing.add(chart)
    if len(series) > 1:
        drawing.add(_legend(series, x=chart.x, y=height - 4, fonts=fonts))
    return drawing


def _style_category_axis(axis, fonts: Fonts) -> None:
    axis.labels.fontName, axis.labels.fontSize, axis.labels.fillColor = fonts.regular, 7, LABEL
    axis.strokeColor = AXIS
    axis.visibleTicks = 0


def _style_value_axis(axis, low: float, high: float, kind: ValueKind, fonts: Fonts) -> None:
    axis.valueMin = low
    axis.valueMax = high * 1.08
    axis.labels.fontName, axis.labels.fontSize, axis.labels.fillColor = fonts.regular, 7, LABEL
    axis.labelTextFormat = lambda v: compact(v, kind)
    axis.strokeColor = AXIS
    axis.visibleAxis = 0
    axis.visibleTicks = 0
    axis.visibleGrid = 1
    axis.gridStrokeColor = GRID
    axis.gridStrokeWidth = 0.5
    axis.maximumTicks = 6


def _legend(series: Sequence[Series], *, x: float, y: float, fonts: Fonts) -> Legend:
    legend = Legend()
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = 110
    legend.boxAnchor = "nw"
    legend.fontName, legend.fontSize = fonts.regular, 7.5
    legend.dx, legend.dy = 8, 8
    legend.strokeColor = None
    legend.colorNamePairs = [(SERIES_COLORS[i % len(SERIES_COLORS)], s.label) for i, s in enumerate(series)]
    return legend


def _shorten(name: str) -> str:
    return name if len(name) <= MAX_BAR_LABEL else name[: MAX_BAR_LABEL - 1].rstrip() + "…"
