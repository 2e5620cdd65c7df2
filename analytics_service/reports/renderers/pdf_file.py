"""PDF (reportlab platypus): a report a finance team can send on.

Page 1: a title band (report type, title, store, period with its time zone), the
report facts (store, period, time zone, interval, generated at) and the KPI table
(this period, previous period, change in green or red). Then the charts (trend
lines, top items as bars, drawn with reportlab graphics), then every table with a
header row repeated on each page it spans, then the notes. Every page after the
first carries a running header (title, store, period); every page a footer with
the generation time and "Page n of m" (a two-pass canvas: numbers are drawn once
the page count is known). A4 portrait; the tables too wide for it (even with wrapped
text) come last, on landscape pages, so a report changes orientation at most once and
never leaves a page empty. Money carries its currency (KPI values "USD 1,234.56",
money columns "Gross revenue (USD)"); a change is green or red by whether it is good
news for that figure (its direction), not by its sign. The document's metadata (title,
author, subject, keywords, creation date = the report's generation time) are set. Text
uses DejaVu Sans when the system has it (full Unicode), Helvetica otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import TimeStamp, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from ..model import NO_DATA, Kpi, ReportData
from ..model import Table as DataTable
from .pdf_charts import Fonts, chart_drawings
from .values import (
    NUMERIC_KINDS,
    cell_kinds,
    change_is_good,
    display,
    generated_label,
    growth_is_good,
    header_label,
    money_text,
    period_label,
)

NAVY = colors.HexColor("#1F3A5F")
INK = colors.HexColor("#222B35")
MUTED = colors.HexColor("#5F6B7A")
RULE = colors.HexColor("#C9D2DC")
STRIPE = colors.HexColor("#F3F6F9")
PALE = colors.HexColor("#A9C4E3")
GOOD, BAD = colors.HexColor("#1E7B34"), colors.HexColor("#B3261E")

MARGIN = 18 * mm
BAND_HEIGHT = 118.0  # the title band on page 1
BODY_SIZE, TABLE_SIZE = 9.5, 8.0
CELL_PAD = 5.0  # left/right padding of a table cell
WINDOW_ROWS = 80  # rows laid out at once by PagedTable: more than a page holds (rows are >= 14.6 pt)
WIDTH_SAMPLE_ROWS = 5000  # rows measured to size columns
TEXT_MIN_WIDTH = 110.0  # a text column may shrink to this (and wrap) before a table goes landscape
KEEP_TOGETHER_ROWS = 40

DEJAVU_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
)


@cache
def fonts() -> Fonts:
    """DejaVu Sans (embedded, covers every script a store name may use) when installed, else Helvetica."""
    for folder in DEJAVU_DIRS:
        regular, bold = Path(folder, "DejaVuSans.ttf"), Path(folder, "DejaVuSans-Bold.ttf")
        if regular.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont("ReportSans", str(regular)))
            pdfmetrics.registerFont(TTFont("ReportSans-Bold", str(bold)))
            pdfmetrics.registerFontFamily(
                "ReportSans",
                normal="ReportSans",
                bold="ReportSans-Bold",
                italic="ReportSans",
                boldItalic="ReportSans-Bold",
            )
            return Fonts("ReportSans", "ReportSans-Bold")
    return Fonts("Helvetica", "Helvetica-Bold")


@dataclass(frozen=True)
class Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    h1: ParagraphStyle
    cell: ParagraphStyle
    header: ParagraphStyle
    header_right: ParagraphStyle


@cache
def styles() -> Styles:
    f = fonts()
    body = ParagraphStyle("body", fontName=f.regular, fontSize=BODY_SIZE, leading=BODY_SIZE * 1.35, textColor=INK)
    header = ParagraphStyle(
        "header", body, fontName=f.bold, fontSize=TABLE_SIZE, leading=TABLE_SIZE * 1.2, textColor=colors.white
    )
    return Styles(
        body=body,
        small=ParagraphStyle("small", body, fontSize=7.5, leading=10, textColor=MUTED),
        h1=ParagraphStyle(
            "h1", body, fontName=f.bold, fontSize=13, leading=16, textColor=NAVY, spaceBefore=10, spaceAfter=6
        ),
        cell=ParagraphStyle("cell", body, fontSize=TABLE_SIZE, leading=TABLE_SIZE * 1.2),
        header=header,
        header_right=ParagraphStyle("header_right", header, alignment=TA_RIGHT),
    )


# --- the document -------------------------------------------------------------------------------


def write_pdf(data: ReportData, path: Path) -> None:
    doc = ReportDoc(str(path), data)
    doc.build(_story(data, doc), canvasmaker=partial(NumberedCanvas, created=data.generated_at))


class ReportDoc(BaseDocTemplate):
    """Three page templates: the title page, portrait pages and landscape pages."""

    def __init__(self, filename: str, data: ReportData) -> None:
        super().__init__(
            filename,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=22 * mm,
            bottomMargin=18 * mm,
            title=data.title,
            author="Analytics service",
            creator="Analytics service report worker",
            subject=f"{data.title}: {_store(data)}, {period_label(data.period)}, money in {data.currency}",
            keywords=["report", data.report_type, data.store_id or "all stores", data.currency],
            invariant=True,  # reproducible bytes; the creation date is set from generated_at
        )
        self.data = data
        width, height = A4
        wide_w, wide_h = landscape(A4)
        self.addPageTemplates(
            [
                PageTemplate(
                    "first", [self._frame(width, height, top=BAND_HEIGHT + 14)], onPage=self._first_page, pagesize=A4
                ),
                PageTemplate("portrait", [self._frame(width, height)], onPage=self._later_page, pagesize=A4),
                PageTemplate(
                    "landscape", [self._frame(wide_w, wide_h)], onPage=self._later_page, pagesize=landscape(A4)
                ),
            ]
        )

    def _frame(self, page_w: float, page_h: float, top: float | None = None) -> Frame:
        top = self.topMargin if top is None else top
        return Frame(
            MARGIN,
            self.bottomMargin,
            page_w - 2 * MARGIN,
            page_h - top - self.bottomMargin,
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
        )

    @property
    def portrait_width(self) -> float:
        return A4[0] - 2 * MARGIN

    @property
    def landscape_width(self) -> float:
        return A4[1] - 2 * MARGIN

    def _first_page(self, canvas: Canvas, doc: BaseDocTemplate) -> None:
        f, data = fonts(), self.data
        width, height = canvas._pagesize
        canvas.saveState()
        canvas.setFillColor(NAVY)
        canvas.rect(0, height - BAND_HEIGHT, width, BAND_HEIGHT, stroke=0, fill=1)
        canvas.setFillColor(PALE)
        canvas.setFont(f.bold, 8.5)
        kind = data.report_type.replace("_", " ").upper()
        canvas.drawString(MARGIN, height - 34, kind)
        canvas.setFillColor(colors.white)
        size, lines = _title_lines(data.title, f.bold, width - 2 * MARGIN)
        y = height - 62 + (22 - size) / 2
        canvas.setFont(f.bold, size)
        for line in lines:
            canvas.drawString(MARGIN, y, line)
            y -= size * 1.15
        canvas.setFillColor(PALE)
        canvas.setFont(f.regular, 10)
        canvas.drawString(MARGIN, height - BAND_HEIGHT + 16, f"{_store(data)}   ·   {period_label(data.period)}")
        canvas.restoreState()
        self._footer(canvas)

    def _later_page(self, canvas: Canvas, doc: BaseDocTemplate) -> None:
        f, data = fonts(), self.data
        width, height = canvas._pagesize
        canvas.saveState()
        canvas.setFont(f.bold, 8)
        canvas.setFillColor(NAVY)
        title = simpleSplit(data.title, f.bold, 8, width / 2 - MARGIN)[0] if data.title else ""
        canvas.drawString(MARGIN, height - 12 * mm, title)
        canvas.setFont(f.regular, 8)
        canvas.setFillColor(MUTED)
        canvas.drawRightString(width - MARGIN, height - 12 * mm, f"{_store(data)} · {period_label(data.period)}")
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.6)
        canvas.line(MARGIN, height - 12 * mm - 5, width - MARGIN, height - 12 * mm - 5)
        canvas.restoreState()
        self._footer(canvas)

    def _footer(self, canvas: Canvas) -> None:
        width, _ = canvas._pagesize
        canvas.saveState()
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.6)
        canvas.line(MARGIN, 12 * mm + 10, width - MARGIN, 12 * mm + 10)
        canvas.setFont(fonts().regular, 7.5)
        canvas.setFillColor(MUTED)
        kind = self.data.title.split(" — ")[0]
        canvas.drawString(MARGIN, 12 * mm, f"Generated {generated_label(self.data.generated_at)} · {kind}")
        canvas.restoreState()


def _title_lines(title: str, font: str, width: float) -> tuple[float, list[str]]:
    """The title in at most two lines: 22 pt when it fits, smaller when not, cut with … at last."""
    for size in (22.0, 18.0, 15.0):
        lines = simpleSplit(title, font, size, width)
        if len(lines) <= (1 if size == 22.0 else 2):
            return size, lines
    return 15.0, [lines[0], lines[1].rstrip() + " …"]


def _timestamp(moment: datetime) -> TimeStamp:
    """reportlab's document time stamp (CreationDate, ModDate) at `moment`, in UTC."""
    stamp = TimeStamp(invariant=True)
    seconds = moment.replace(tzinfo=moment.tzinfo or UTC).timestamp()
    stamp.t, stamp.lt = seconds, time.gmtime(seconds)
    stamp.YMDhms, stamp.dhh, stamp.dmm, stamp.tzname = tuple(stamp.lt)[:6], 0, 0, "UTC"
    return stamp


class NumberedCanvas(Canvas):
    """Keeps every page until the end so each footer can say "Page n of m"; dates the
    document `created` (reportlab's invariant mode would say 2000-01-01)."""

    def __init__(self, *args: Any, created: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._doc._timeStamp = _timestamp(created)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for page, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            width, _ = self._pagesize
            self.setFont(fonts().regular, 7.5)
            self.setFillColor(MUTED)
            self.drawRightString(width - MARGIN, 12 * mm, f"Page {page} of {total}")
            super().showPage()
        super().save()


# --- the story ----------------------------------------------------------------------------------


def _story(data: ReportData, doc: ReportDoc) -> list[Flowable]:
    """Facts, KPIs, charts and the tables that fit portrait; the notes; then, on landscape pages,
    the tables too wide for portrait (one change of orientation at most)."""
    s = styles()
    story: list[Flowable] = [NextPageTemplate("portrait"), _facts(data, doc.portrait_width), Spacer(1, 10)]
    story += [Paragraph("Key figures", s.h1), _kpi_table(data, doc.portrait_width)]
    story += _charts(data, doc.portrait_width)
    wide: list[DataTable] = []
    for table in data.tables:
        widths = _column_widths(table, doc.portrait_width, data.currency) if table.rows else None
        if table.rows and widths is None:
            wide.append(table)
        else:
            story += _table_section(table, widths, data.currency)
    if data.notes:
        story += [CondPageBreak(60), Paragraph("Notes and definitions", s.h1)]
        story += [Paragraph(escape(note), s.small) for note in data.notes]
    if wide:
        story += [NextPageTemplate("landscape"), PageBreak()]
        for table in wide:
            widths = _column_widths(table, doc.landscape_width, data.currency) or _scaled(
                table, doc.landscape_width, data.currency
            )
            story += _table_section(table, widths, data.currency)
    return story


def _store(data: ReportData) -> str:
    return f"Store {data.store_id}" if data.store_id else "All stores"


def _facts(data: ReportData, width: float) -> Table:
    """The report's facts as a two-column key/value grid."""
    s = styles()
    tz = data.period.get("tz", "UTC")
    facts = [
        ("Store", data.store_id or "All stores"),
        ("Period", period_label(data.period)),
        ("Time zone", tz),
        ("Currency", data.currency),
        ("Generated", generated_label(data.generated_at)),
        ("Interval", data.period.get("interval", "") or "–"),
    ]
    label = ParagraphStyle("fact_label", s.small, fontName=fonts().bold)
    value = ParagraphStyle("fact_value", s.body, fontSize=9)
    cells = [[Paragraph(k.upper(), label), Paragraph(escape(v), value)] for k, v in facts]
    grid = [cells[i] + cells[i + 3] for i in range(3)]
    t = Table(grid, colWidths=[width * 0.12, width * 0.44, width * 0.14, width * 0.30])
    t.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return t


def _kpi_table(data: ReportData, width: float) -> Flowable:
    """Metric, value and, when the report compares, the previous value and the change."""
    s, kpis = styles(), data.kpis
    if not kpis:
        return Paragraph("No key figures for this report.", s.small)
    f = fonts()
    compared = any(k.previous is not None or not k.has_data for k in kpis)
    titles = ("Metric", "This period", "Previous period", "Change") if compared else ("Metric", "This period")
    header = [Paragraph(h, s.header if i == 0 else s.header_right) for i, h in enumerate(titles)]
    rows: list[list[Any]] = [header]
    style = [*_grid_style(f, size=9.5), ("ALIGN", (1, 1), (-1, -1), "RIGHT"), ("FONTNAME", (1, 1), (1, -1), f.bold)]
    for i, kpi in enumerate(kpis, start=1):
        row = [kpi.label, _kpi_value(kpi, kpi.value, data.currency)]
        if compared:
            row += [_previous(kpi, data.currency), _change(kpi)]
            good = growth_is_good(kpi)
            if good is not None:
                style.append(("TEXTCOLOR", (3, i), (3, i), GOOD if good else BAD))
                style.append(("FONTNAME", (3, i), (3, i), f.bold))
        rows.append(row)
    widths = [width * 0.40, width * 0.21, width * 0.21, width * 0.18] if compared else [width * 0.6, width * 0.4]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([*style, ("TOPPADDING", (0, 1), (-1, -1), 5), ("BOTTOMPADDING", (0, 1), (-1, -1), 5)]))
    return table


def _kpi_value(kpi: Kpi, value: Any, currency: str) -> str:
    return money_text(value, currency) if kpi.kind == "money" else display(value, kpi.kind)


def _previous(kpi: Kpi, currency: str) -> str:
    return NO_DATA if not kpi.has_data else _kpi_value(kpi, kpi.previous, currency)


def _change(kpi: Kpi) -> str:
    """ "▲ +12.5%", "▼ -6.0 pp" (rates), "no data" or "–" (nothing to compare with)."""
    if not kpi.has_data:
        return NO_DATA
    change, kind = kpi.change
    if change is None:
        return "–"
    arrow = "" if fonts().regular == "Helvetica" else ("▲ " if change > 0 else "▼ " if change < 0 else "")
    return arrow + display(change, kind)


def _charts(data: ReportData, width: float) -> list[Flowable]:
    s, out = styles(), []
    tables = {t.name: t for t in data.tables}
    for chart in data.charts:
        if chart.table not in tables:
            continue
        for caption, drawing in chart_drawings(chart, tables[chart.table], width, fonts(), data.currency):
            out.append(KeepTogether([Paragraph(escape(caption), s.h1), drawing]))
    return out


# --- data tables --------------------------------------------------------------------------------


def _table_section(table: DataTable, widths: list[float] | None, currency: str) -> list[Flowable]:
    """A table's heading and rows; a short table is kept whole on one page."""
    s = styles()
    rows = f"{len(table.rows):,} rows" if len(table.rows) != 1 else "1 row"
    if any(c.kind == "measure" for c in table.columns):  # money in rows, not in a column header
        rows += f" · money in {currency}"
    heading = [Paragraph(escape(table.title), s.h1), Paragraph(rows, s.small), Spacer(1, 4)]
    if not table.rows or widths is None:
        return [CondPageBreak(60), *heading, Paragraph("No data for this period.", s.body)]
    flowable = PagedTable(table, widths, currency)
    if len(table.rows) <= KEEP_TOGETHER_ROWS:  # a short table moves whole to the next page
        return [KeepTogether([*heading, flowable])]
    return [CondPageBreak(160), *heading, flowable]


@dataclass(frozen=True)
class Measures:
    """Per column, in points with padding: widest value, longest header word, whole header label."""

    values: list[float]
    words: list[float]
    labels: list[float]


def _measure(table: DataTable, currency: str) -> Measures:
    f = fonts()
    pad = 2 * CELL_PAD + 1
    values = [0.0] * len(table.columns)
    for r, row in enumerate(table.rows[:WIDTH_SAMPLE_ROWS]):
        for i, (value, kind) in enumerate(zip(row, cell_kinds(table, r))):
            values[i] = max(values[i], stringWidth(display(value, kind), f.regular, TABLE_SIZE))
    headers = [header_label(c, currency) for c in table.columns]
    words = [max(stringWidth(w, f.bold, TABLE_SIZE) for w in (h.split() or [""])) for h in headers]
    labels = [stringWidth(h, f.bold, TABLE_SIZE) for h in headers]
    return Measures([v + pad for v in values], [w + pad for w in words], [w + pad for w in labels])


def _column_widths(table: DataTable, width: float, currency: str) -> list[float] | None:
    """Widths filling `width`, or None when the table cannot fit it even with wrapped text.

    Ideal: every value and the whole header on one line. When that is too wide, numeric headers
    wrap at their words first, then text columns shrink (down to TEXT_MIN_WIDTH) and wrap;
    numbers themselves never wrap. With room to spare, every column gets an equal share of it.
    """
    m = _measure(table, currency)
    text = [c.kind not in NUMERIC_KINDS for c in table.columns]
    natural = [max(v, w) for v, w in zip(m.values, m.words)]
    ideal = [max(n, label) for n, label in zip(natural, m.labels)]
    lowest = [max(min(n, TEXT_MIN_WIDTH), w) if t else n for n, w, t in zip(natural, m.words, text)]
    if sum(lowest) > width:
        return None
    excess = sum(ideal) - width
    if excess <= 0:
        return [w - excess / len(ideal) for w in ideal]
    widths = list(ideal)
    for shrink_text in (False, True):
        give = [(i - lo) if t == shrink_text else 0.0 for i, lo, t in zip(ideal, lowest, text)]
        taken = min(excess, sum(give))
        if taken > 0:
            widths = [w - g * taken / sum(give) for w, g in zip(widths, give)]
            excess -= taken
    return widths


def _scaled(table: DataTable, width: float, currency: str) -> list[float]:
    """Last resort for a table too wide even in landscape: every column scaled down."""
    m = _measure(table, currency)
    natural = [max(v, w) for v, w in zip(m.values, m.words)]
    return [n * width / sum(natural) for n in natural]


class PagedTable(Flowable):
    """A data table laid out one page at a time, its header row repeated on every page.

    reportlab splits a long Table by copying and re-measuring all remaining rows at every page,
    which is quadratic in the row count. This flowable only ever builds a Table from the next
    WINDOW_ROWS rows (more than a page holds), lets reportlab split that, and carries the rest
    over, so a 100,000-row table costs the same per page as a 100-row one.
    """

    def __init__(self, table: DataTable, widths: list[float], currency: str, start: int = 0) -> None:
        super().__init__()
        self.table, self.widths, self.currency, self.start = table, widths, currency, start
        self._window: Table | None = None

    def _build(self) -> Table:
        if self._window is None:
            stop = self.start + WINDOW_ROWS
            self._window = _table_window(self.table, self.widths, self.currency, self.start, stop)
        return self._window

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        width, height = self._build().wrap(available_width, available_height)
        if self.start + WINDOW_ROWS < len(self.table.rows):
            height = max(height, available_height + 1)  # more rows follow: make the frame split us
        self.width, self.height = width, height
        return width, height

    def split(self, available_width: float, available_height: float) -> list[Flowable]:
        parts = self._build().split(available_width, available_height)
        if not parts:
            return []
        shown = len(parts[0]._cellvalues) - 1  # data rows on this page (row 0 is the header)
        rest = self.start + shown
        more = PagedTable(self.table, self.widths, self.currency, rest)
        return [parts[0], more] if rest < len(self.table.rows) else parts[:1]

    def draw(self) -> None:
        self._build().drawOn(self.canv, 0, 0)


def _table_window(table: DataTable, widths: list[float], currency: str, start: int, stop: int) -> Table:
    """A reportlab Table of the header and rows[start:stop]."""
    s, f = styles(), fonts()
    numeric = [c.kind in NUMERIC_KINDS for c in table.columns]
    header = [
        Paragraph(escape(header_label(c, currency)), s.header_right if numeric[i] else s.header)
        for i, c in enumerate(table.columns)
    ]
    cells: list[list[Any]] = [header]
    style = _grid_style(f, size=TABLE_SIZE)
    style += [("ALIGN", (i, 1), (i, -1), "RIGHT") for i, is_number in enumerate(numeric) if is_number]
    for r in range(start, min(stop, len(table.rows))):
        row, kinds, at = table.rows[r], cell_kinds(table, r), r - start + 1
        cells.append([_cell(value, kind, widths[i]) for i, (value, kind) in enumerate(zip(row, kinds))])
        for i, (value, column) in enumerate(zip(row, table.columns)):
            good = change_is_good(table, r, column, value)
            if good is not None:
                style.append(("TEXTCOLOR", (i, at), (i, at), GOOD if good else BAD))
    return Table(cells, colWidths=widths, repeatRows=1, style=TableStyle(style))


def _cell(value: Any, kind: str, width: float) -> Any:
    """A plain string (fast) unless it is text too wide for its column: then a wrapping Paragraph."""
    text = display(value, kind)  # type: ignore[arg-type]
    if kind not in NUMERIC_KINDS and stringWidth(text, fonts().regular, TABLE_SIZE) > width - 2 * CELL_PAD:
        return Paragraph(escape(text), styles().cell)
    return text


def _grid_style(f: Fonts, *, size: float) -> list[tuple]:
    """Navy header row with white bold text, thin rules, striped body."""
    return [
        ("FONTNAME", (0, 0), (-1, -1), f.regular),
        ("FONTSIZE", (0, 0), (-1, -1), size),
        ("LEADING", (0, 0), (-1, -1), size * 1.2),
        ("TEXTCOLOR", (0, 1), (-1, -1), INK),
        ("BACKGROUND", (0, 0), (-1, 0), NAVY),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("FONTNAME", (0, 0), (-1, 0), f.bold),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, STRIPE]),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
