"""Streamed exports of every matching record (scope `read`), API.md "Reports".

`GET /api/v1/export/{orders|sales|users|products}?format=csv|ndjson|xlsx` plus the
common period parameters. Every matching document is read with a point in time and
`search_after` (pages of PAGE_SIZE, `_source` limited to the exported columns, the
next page fetched while the current one is written), so memory holds about two pages
whatever the number of rows:

- CSV and NDJSON are streamed as the pages arrive;
- XLSX cannot be streamed while it is written (it is a zip whose directory comes
  last): rows go into an openpyxl write-only workbook (itself streamed to a temp
  file by openpyxl), saved into an anonymous temp file, which is then streamed out
  with its Content-Length. More than XLSX_MAX_ROWS rows continue on a new sheet.

The point in time is closed when the export ends, fails, or the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Annotated, Any, Literal
from zoneinfo import ZoneInfo

import anyio
import orjson
from elasticsearch import AsyncElasticsearch, NotFoundError
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from starlette.types import Send

from ..analytics.params import Common, CommonParams, invalid
from ..analytics.users import check_activity_params
from ..es.indices import ACTIVITY, ORDER_ITEMS, ORDERS, PRODUCTS, IndexFamily, IndexNames

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/export", tags=["exports"])

PAGE_SIZE = 2000  # documents per search_after page
KEEP_ALIVE = "2m"  # how long the point in time lives between two pages
XLSX_MAX_ROWS = 1_048_575  # data rows per sheet: Excel's 1,048,576 rows minus the header
FILE_CHUNK = 256 * 1024  # bytes per chunk when the XLSX temp file is streamed out

ExportFormat = Literal["csv", "ndjson", "xlsx"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# -- columns ---------------------------------------------------------------------------------

# text, int, number (a float as stored), money (rounded to 2 decimals), bool,
# datetime (an instant, shown in the request's tz), local_date (the date of `source`, an
# instant, in the request's tz).
ValueKind = Literal["text", "int", "number", "money", "bool", "datetime", "local_date"]


@dataclass(frozen=True)
class Col:
    """One exported column: its header, its kind, and where it comes from in `_source`."""

    name: str
    kind: ValueKind = "text"
    source: str = ""  # dotted path in the document; default: the column name
    description: str = ""

    @property
    def path(self) -> str:
        return self.source or self.name


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """doc -> the value at a dotted path (exported fields are at most one object deep)."""
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return lambda doc: doc.get(key)
    outer, inner = parts

    def nested(doc: dict[str, Any]) -> Any:
        obj = doc.get(outer)
        return obj.get(inner) if isinstance(obj, dict) else None
    return nested


def _instant(value: Any, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):  # epoch millis, should a document hold one
        return datetime.fromtimestamp(value / 1000, tz)
    return datetime.fromisoformat(value).astimezone(tz)


def _money(value: Any) -> float | None:
    return None if value is None else round(float(value), 2) + 0.0  # + 0.0: no "-0.00"


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


_PLAIN: dict[str, Callable[[Any], Any]] = {
    "money": _money,
    "int": lambda v: None if v is None else int(v),
    "number": lambda v: None if v is None else float(v),
    "bool": lambda v: None if v is None else bool(v),
    "text": _text,
}


def _converter(col: Col, tz: ZoneInfo) -> Callable[[dict[str, Any]], Any]:
    """doc -> the column's typed value (None when absent)."""
    get = _getter(col.path)
    if col.kind == "datetime":
        return lambda doc: _instant(get(doc), tz)
    if col.kind == "local_date":
        return lambda doc: None if (v := _instant(get(doc), tz)) is None else v.date()
    convert = _PLAIN[col.kind]
    return lambda doc: convert(get(doc))


def _customer(prefix: str = "customer") -> list[Col]:
    return [
        Col("customer_id", source=f"{prefix}.customer_id"),
        Col("segment", source=f"{prefix}.segment"),
        Col("country", source=f"{prefix}.country"),
        Col("region", source=f"{prefix}.region"),
        Col("state", source=f"{prefix}.state"),
        Col("city", source=f"{prefix}.city"),
    ]


_UTM = [Col("utm_source", source="utm.source"), Col("utm_medium", source="utm.medium"),
        Col("utm_campaign", source="utm.campaign")]


@dataclass(frozen=True)
class ExportSpec:
    """What one export reads: index family, time field, filters, order, columns."""

    kind: str
    family: IndexFamily
    title: str
    columns: tuple[Col, ...]
    time_field: str | None  # None: no period filter (the catalog)
    sort: tuple[str, ...]  # sort fields before the `_shard_doc` tiebreaker
    sales_only: bool = False
    has_channel: bool = True

    @property
    def source_fields(self) -> list[str]:
        return sorted({c.path for c in self.columns})

    def check(self, params: CommonParams) -> CommonParams:
        """422 for a filter this kind cannot apply (activity and the catalog have no channel)."""
        if self.family is ACTIVITY:
            return check_activity_params(params)
        if not self.has_channel and params.channel is not None:
            raise invalid("channel", f"{self.kind} have no sales channel; remove the channel filter")
        return params

    def query(self, params: CommonParams) -> dict[str, Any]:
        filters = params.filters(self.time_field, channel_field="channel" if self.has_channel else None)
        if self.sales_only:
            filters.append({"term": {"is_sale": True}})
        return {"bool": {"filter": filters}}

    def sort_clause(self) -> list[dict[str, Any]]:
        return [*({f: {"order": "asc"}} for f in self.sort), {"_shard_doc": {"order": "asc"}}]

    def row_function(self, tz: ZoneInfo) -> Callable[[dict[str, Any]], list[Any]]:
        converters = [_converter(c, tz) for c in self.columns]
        return lambda doc: [convert(doc) for convert in converters]

    def describe(self) -> str:
        lines = [self.title, "", "Columns, in this order:", ""]
        lines += [f"- `{c.name}` ({c.kind}){': ' + c.description if c.description else ''}" for c in self.columns]
        return "\n".join(lines)


ORDERS_EXPORT = ExportSpec(
    kind="orders", family=ORDERS, time_field="created_at", sort=("created_at",),
    title="One row per order (every status) created in the period, latest state, sorted by `created_at`.",
    columns=(
        Col("order_id"), Col("store_id"), Col("status"),
        Col("created_at", "datetime", description="in `tz`"),
        Col("local_date", "local_date", source="created_at", description="date of created_at in `tz`"),
        Col("updated_at", "datetime"), Col("paid_at", "datetime"), Col("shipped_at", "datetime"),
        Col("delivered_at", "datetime"), Col("cancelled_at", "datetime"),
        Col("channel"), *_customer(), Col("postal_code", source="customer.postal_code"),
        Col("currency", description="the order's own currency; amounts are in the base currency"),
        Col("fx_rate", "number", description="order currency -> base currency"),
        Col("gross_revenue", "money", description="sum of line revenue"),
        Col("discount_amount", "money", description="order-level discount"),
        Col("order_value", "money", description="gross_revenue - discount_amount"),
        Col("refunded_amount", "money"),
        Col("net_revenue", "money", description="order_value - refunded_amount"),
        Col("shipping_amount", "money"), Col("tax_amount", "money"),
        Col("total_billed", "money", description="order_value + shipping_amount + tax_amount"),
        Col("cogs", "money", description="sum of line costs (lines with a cost)"),
        Col("units", "int"), Col("item_count", "int", description="order lines"),
        Col("payment_method", source="payment.method"), Col("payment_status", source="payment.status"),
        Col("installments", "int", source="payment.installments"),
        Col("coupon_code"), *_UTM,
    ),
)

SALES_EXPORT = ExportSpec(
    kind="sales", family=ORDER_ITEMS, time_field="created_at", sort=("created_at", "order_id", "line"),
    sales_only=True,
    title="One row per line of a sale (paid, processing, shipped, delivered, refunded) created in the period, "
          "sorted by `created_at`, `order_id`, `line`.",
    columns=(
        Col("order_id"), Col("line", "int", description="1-based line number in the order"), Col("store_id"),
        Col("status"),
        Col("created_at", "datetime", description="the order's, in `tz`"),
        Col("local_date", "local_date", source="created_at", description="date of created_at in `tz`"),
        Col("channel"), Col("product_id"), Col("sku"), Col("name"), Col("category"), Col("subcategory"),
        Col("brand"), Col("quantity", "int"),
        Col("unit_price", "money", description="in the base currency"),
        Col("discount", "money", description="line discount"),
        Col("line_revenue", "money", description="quantity x unit_price - discount, before rounding"),
        Col("unit_cost", "money"), Col("line_cogs", "money", description="quantity x unit_cost"),
        Col("currency"), Col("fx_rate", "number"), *_customer(),
        Col("payment_method", source="payment.method"), Col("coupon_code"), *_UTM,
    ),
)

USERS_EXPORT = ExportSpec(
    kind="users", family=ACTIVITY, time_field="timestamp", sort=("timestamp",), has_channel=False,
    title="One row per user activity record in the period, sorted by `timestamp`.",
    columns=(
        Col("activity_id"), Col("store_id"), Col("timestamp", "datetime", description="in `tz`"),
        Col("local_date", "local_date", source="timestamp", description="date of timestamp in `tz`"),
        Col("activity_type"),
        Col("actor_id", description="user_id, else anonymous_id"), Col("user_id"), Col("anonymous_id"),
        Col("session_id"), Col("page_url"), Col("referrer"), Col("product_id"), Col("category"),
        Col("search_query"), Col("results_count", "int"), Col("order_id"), Col("value", "money"),
        Col("rating", "int"), Col("review_text"), Col("duration_ms", "int"),
        Col("device_type", source="device.type"), Col("device_os", source="device.os"),
        Col("device_browser", source="device.browser"),
        Col("country", source="geo.country"), Col("region", source="geo.region"), Col("city", source="geo.city"),
        *_UTM,
    ),
)

PRODUCTS_EXPORT = ExportSpec(
    kind="products", family=PRODUCTS, time_field=None, sort=("product_id",), has_channel=False,
    title="The catalog: one row per product (its latest record), sorted by `product_id`. "
          "No period filter: `start`/`end` are ignored.",
    columns=(
        Col("product_id"), Col("store_id"), Col("sku"), Col("name"), Col("category"), Col("subcategory"),
        Col("brand"), Col("price", "money"), Col("cost", "money"), Col("stock_quantity", "int"),
        Col("reorder_point", "int"), Col("active", "bool"),
        Col("updated_at", "datetime", description="of the catalog record, in `tz`"),
    ),
)

EXPORTS: dict[str, ExportSpec] = {s.kind: s for s in (ORDERS_EXPORT, SALES_EXPORT, USERS_EXPORT, PRODUCTS_EXPORT)}

# -- reading: point in time + search_after ---------------------------------------------------


@dataclass
class PitScan:
    """Every document matching `query`, page by page, from one point in time."""

    es: AsyncElasticsearch
    index: str
    query: dict[str, Any]
    sort: list[dict[str, Any]]
    source: list[str]
    page_size: int = field(default_factory=lambda: PAGE_SIZE)
    pit_id: str | None = None

    async def open(self) -> None:
        # ignore_unavailable: an alias that does not exist yet (no data) is an empty export.
        response = await self.es.open_point_in_time(index=self.index, keep_alive=KEEP_ALIVE, ignore_unavailable=True)
        self.pit_id = response["id"]

    async def page(self, after: list[Any] | None) -> list[dict[str, Any]]:
        """One page of hits (`_source` and `sort`) after the sort values `after`."""
        extra = {"search_after": after} if after is not None else {}
        response = await self.es.search(
            pit={"id": self.pit_id, "keep_alive": KEEP_ALIVE}, size=self.page_size, query=self.query,
            sort=self.sort, source_includes=self.source, track_total_hits=False,
            filter_path=["pit_id", "hits.hits._source", "hits.hits.sort"], **extra)
        self.pit_id = response.get("pit_id", self.pit_id)
        return response.get("hits", {}).get("hits", [])

    async def pages(self, first: list[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
        """`first` and every page after it as lists of `_source`; the next page is fetched
        while the caller works on the current one."""
        hits = first
        while hits:
            ahead = asyncio.create_task(self.page(hits[-1]["sort"])) if len(hits) >= self.page_size else None
            await asyncio.sleep(0)  # let the next request go out before this page is worked on
            try:
                yield [hit.get("_source", {}) for hit in hits]
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                raise
            hits = await ahead if ahead is not None else []

    async def close(self) -> None:
        """Close the point in time, even from a cancelled task (client gone)."""
        if self.pit_id is None:
            return
        pit_id, self.pit_id = self.pit_id, None
        with anyio.CancelScope(shield=True):
            try:
                await self.es.close_point_in_time(id=pit_id)
            except NotFoundError:
                pass  # already expired
            except Exception as exc:  # it expires after KEEP_ALIVE anyway
                log.warning("could not close point in time: %s", exc)


# -- writing ---------------------------------------------------------------------------------


def _csv_text(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind == "money":
        return f"{value:.2f}"
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("datetime", "local_date"):
        return value.isoformat()
    return value


class CsvWriter:
    """RFC 4180 CSV (csv module, `\\r\\n` rows), UTF-8 without BOM; empty cell = null."""

    def __init__(self, spec: ExportSpec) -> None:
        self.names = [c.name for c in spec.columns]
        self.kinds = [c.kind for c in spec.columns]

    def header(self) -> bytes:
        return self._encode([self.names])

    def rows(self, rows: list[list[Any]]) -> bytes:
        kinds = self.kinds
        return self._encode([_csv_text(v, k) for v, k in zip(row, kinds)] for row in rows)

    @staticmethod
    def _encode(rows: Iterable[list[Any]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue().encode("utf-8")


class NdjsonWriter:
    """One JSON object per line with every column (null when absent); no header line."""

    def __init__(self, spec: ExportSpec) -> None:
        self.names = [c.name for c in spec.columns]

    def header(self) -> bytes:
        return b""

    def rows(self, rows: list[list[Any]]) -> bytes:
        names = self.names
        return b"".join(orjson.dumps(dict(zip(names, row))) + b"\n" for row in rows)


# Characters XML 1.0 (and so XLSX) cannot hold; dropped from text cells.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WIDTHS = {"datetime": 20, "local_date": 11, "money": 12, "number": 10, "int": 8, "bool": 7, "text": 14}


class XlsxWriter:
    """An openpyxl write-only workbook: one sheet per XLSX_MAX_ROWS rows, a bold frozen
    header with filters, typed cells (money `#,##0.00`, dates, local datetimes)."""

    def __init__(self, spec: ExportSpec) -> None:
        self.spec = spec
        self.workbook = Workbook(write_only=True)
        self.sheet: WriteOnlyWorksheet | None = None
        self.sheet_rows = 0
        self.rows_written = 0
        self.kinds = [c.kind for c in spec.columns]
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._close_sheet()
        number = len(self.workbook.worksheets) + 1
        ws = self.workbook.create_sheet(self.spec.kind if number == 1 else f"{self.spec.kind} {number}")
        for i, col in enumerate(self.spec.columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(len(col.name) + 3, _WIDTHS[col.kind])
        ws.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for col in self.spec.columns:
            cell = WriteOnlyCell(ws, col.name)
            cell.font = bold
            header.append(cell)
        ws.append(header)
        self.sheet, self.sheet_rows = ws, 0

    def _close_sheet(self) -> None:
        if self.sheet is not None:
            last = get_column_letter(len(self.spec.columns))
            self.sheet.auto_filter.ref = f"A1:{last}{self.sheet_rows + 1}"

    def _cells(self, row: list[Any]) -> list[Any]:
        ws = self.sheet
        out: list[Any] = []
        for value, kind in zip(row, self.kinds):
            if value is None:
                out.append(None)
            elif kind == "money":
                cell = WriteOnlyCell(ws, value)
                cell.number_format = "#,##0.00"
                out.append(cell)
            elif kind == "datetime":
                out.append(value.replace(tzinfo=None))  # Excel has no zones: local wall-clock time in tz
            elif isinstance(value, str):
                out.append(self._text(value))
            else:
                out.append(value)
        return out

    def _text(self, value: str) -> Any:
        value = _ILLEGAL_XML.sub("", value)
        if value.startswith("="):  # a string, never a formula
            cell = WriteOnlyCell(self.sheet, value)
            cell.data_type = "s"
            return cell
        return value

    def rows(self, rows: list[list[Any]]) -> None:
        for row in rows:
            if self.sheet_rows >= XLSX_MAX_ROWS:
                self._new_sheet()
            self.sheet.append(self._cells(row))  # type: ignore[union-attr]
            self.sheet_rows += 1
        self.rows_written += len(rows)

    def save(self, target: IO[bytes]) -> None:
        self._close_sheet()
        self.workbook.save(target)

    def discard(self) -> None:
        """Remove openpyxl's per-sheet temp files of a workbook that will not be saved
        (openpyxl only removes them on save, or at interpreter exit)."""
        for ws in self.workbook.worksheets:
            writer = getattr(ws, "_writer", None)
            if writer is None:
                continue
            try:  # end the row stream, then the sheet's XML stream, which closes its file
                if ws._rows is not None:
                    ws._rows.close()
                writer.close()
            except Exception as exc:
                log.debug("closing an abandoned sheet: %s", exc)
            with contextlib.suppress(OSError, ValueError):
                writer.cleanup()


# -- the export ------------------------------------------------------------------------------


@dataclass
class Export:
    """One export request: what to read, how to turn documents into rows, the file name."""

    spec: ExportSpec
    params: CommonParams
    fmt: str
    scan: PitScan

    @classmethod
    def create(cls, spec: ExportSpec, params: CommonParams, fmt: str, es: AsyncElasticsearch,
               names: IndexNames) -> Export:
        scan = PitScan(es, names.alias(spec.family), spec.query(params), spec.sort_clause(), spec.source_fields)
        return cls(spec, params, fmt, scan)

    @property
    def filename(self) -> str:
        period = self.params.period
        if self.spec.time_field is None:  # the catalog as of today
            span = datetime.now(period.tz).date().isoformat()
        else:
            span = f"{_stamp(period.start)}-{_stamp(period.end)}"
        return f"{self.spec.kind}-{span}.{self.fmt}"

    def headers(self) -> dict[str, str]:
        return {"Content-Disposition": f'attachment; filename="{self.filename}"'}

    def renderer(self, write: Callable[[list[list[Any]]], Any]) -> Callable[[list[dict[str, Any]]], Any]:
        """documents -> rows -> `write`; run in a worker thread, page by page."""
        to_row = self.spec.row_function(self.params.period.tz)
        return lambda docs: write([to_row(doc) for doc in docs])


def _stamp(moment: datetime) -> str:
    """A local date, or date and time when the bound is not a midnight (for file names)."""
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H%M%S")


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that always ends its body iterator and then calls `on_close`,
    when the body was sent, failed, or the client disconnected (even before the first
    chunk, when the generator never started and its own `finally` would never run)."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], Awaitable[None]],
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
                await self.on_close()


async def _text_stream(export: Export, first: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    writer: CsvWriter | NdjsonWriter = CsvWriter(export.spec) if export.fmt == "csv" else NdjsonWriter(export.spec)
    rows = 0
    try:
        header = writer.header()
        if header:
            yield header
        render = export.renderer(writer.rows)
        async for docs in export.scan.pages(first):
            chunk = await asyncio.to_thread(render, docs)
            rows += len(docs)
            yield chunk
    except Exception as exc:
        # The status line is long gone: the connection is dropped, so the client sees a
        # truncated transfer, never a complete-looking file.
        log.error("%s export failed after %d rows: %r", export.spec.kind, rows, exc)
        raise
    finally:
        await export.scan.close()


class _ClientGone(Exception):
    """The client disconnected while the workbook was being built."""


async def _build_xlsx(export: Export, first: list[dict[str, Any]], request: Request) -> IO[bytes] | None:
    """The whole workbook in an anonymous temp file (rewound), or None when the client left."""
    writer = XlsxWriter(export.spec)
    target = tempfile.TemporaryFile(prefix="export-", suffix=".xlsx")
    try:
        render = export.renderer(writer.rows)
        async for docs in export.scan.pages(first):
            await asyncio.to_thread(render, docs)
            if await request.is_disconnected():
                raise _ClientGone
        await asyncio.to_thread(writer.save, target)
    except BaseException as exc:
        writer.discard()
        target.close()
        if isinstance(exc, _ClientGone):
            return None
        raise
    finally:
        await export.scan.close()
    target.seek(0)
    return target


async def _file_stream(handle: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(handle.read, FILE_CHUNK):
        yield chunk


async def run_export(request: Request, spec: ExportSpec, params: CommonParams, fmt: str) -> Response:
    params = spec.check(params)
    state = request.app.state
    export = Export.create(spec, params, fmt, state.es, state.names)
    # The point in time and the first page are read before the response starts, so an
    # Elasticsearch failure here is still a proper error response (503 and so on).
    await export.scan.open()
    try:
        first = await export.scan.page(None)
    except BaseException:
        await export.scan.close()
        raise
    if fmt != "xlsx":
        return ClosingStreamingResponse(_text_stream(export, first), export.scan.close,
                                        media_type=MEDIA_TYPES[fmt], headers=export.headers())
    handle = await _build_xlsx(export, first, request)
    if handle is None:
        return Response(status_code=499)  # nobody is listening any more
    size = handle.seek(0, io.SEEK_END)
    handle.seek(0)

    async def close_file() -> None:
        handle.close()

    return ClosingStreamingResponse(_file_stream(handle), close_file, media_type=MEDIA_TYPES["xlsx"],
                                    headers={**export.headers(), "Content-Length": str(size)})


FormatQ = Annotated[ExportFormat, Query(alias="format", description="csv (default), ndjson or xlsx")]


def _route(spec: ExportSpec) -> Callable[..., Any]:
    async def export(request: Request, params: Common, fmt: FormatQ = "csv") -> Response:
        return await run_export(request, spec, params, fmt)

    export.__name__ = f"export_{spec.kind}"
    return export


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the file, streamed (`Content-Disposition: attachment`)",
          "content": {media: {} for media in MEDIA_TYPES.values()}},
}

for _spec in EXPORTS.values():
    router.add_api_route(
        f"/{_spec.kind}", _route(_spec), methods=["GET"], response_class=StreamingResponse,
        summary=f"Export every matching {_spec.kind} record as CSV, NDJSON or XLSX",
        description=_spec.describe() + "\n\nStore scoping as the analytics endpoints; `interval`, `compare` "
                                       "and `limit` are accepted and ignored.",
        responses=_FILE_RESPONSES,
    )

