"""One export request, read and streamed out (docs/reports.md "Exports").

Every matching document is read with one `PitScan` (pages of PAGE_SIZE, `_source`
limited to the exported columns, the next page fetched while the current one is
written), so memory holds about two pages whatever the number of rows:

- CSV and NDJSON are streamed as the pages arrive;
- XLSX cannot be streamed while it is written (it is a zip whose directory comes
  last): the workbook is saved into an anonymous temp file, which is then streamed
  out with its Content-Length.

The point in time is closed when the export ends, fails, or the client goes away.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import anyio
from elasticsearch import AsyncElasticsearch
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Send

from ..analytics.params import CommonParams
from ..es.indices import IndexNames
from ..es.scan import PitScan
from .specs import ExportSpec
from .writers import MEDIA_TYPES, CsvWriter, NdjsonWriter, XlsxWriter

log = logging.getLogger(__name__)

PAGE_SIZE = 2000  # documents per search_after page
FILE_CHUNK = 256 * 1024  # bytes per chunk when the XLSX temp file is streamed out


@dataclass
class Export:
    """One export request: what to read, how to turn documents into rows, the file name."""

    spec: ExportSpec
    params: CommonParams
    fmt: str
    scan: PitScan

    @classmethod
    def create(
        cls, spec: ExportSpec, params: CommonParams, fmt: str, es: AsyncElasticsearch, names: IndexNames
    ) -> Export:
        scan = PitScan(
            es,
            names.alias(spec.family),
            spec.query(params),
            spec.sort_clause(),
            spec.source_fields,
            page_size=PAGE_SIZE,
        )
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

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
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
    target = tempfile.TemporaryFile(prefix="export-", suffix=".xlsx")  # noqa: SIM115 (closed by the caller)
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


async def run_export(
    request: Request, es: AsyncElasticsearch, names: IndexNames, spec: ExportSpec, params: CommonParams, fmt: str
) -> Response:
    params = spec.check(params)
    export = Export.create(spec, params, fmt, es, names)
    # The point in time and the first page are read before the response starts, so an
    # Elasticsearch failure here is still a proper error response (503 and so on).
    await export.scan.open()
    try:
        first = await export.scan.page(None)
    except BaseException:
        await export.scan.close()
        raise
    if fmt != "xlsx":
        return ClosingStreamingResponse(
            _text_stream(export, first), export.scan.close, media_type=MEDIA_TYPES[fmt], headers=export.headers()
        )
    handle = await _build_xlsx(export, first, request)
    if handle is None:
        return Response(status_code=499)  # nobody is listening any more
    size = handle.seek(0, io.SEEK_END)
    handle.seek(0)

    async def close_file() -> None:
        handle.close()

    return ClosingStreamingResponse(
        _file_stream(handle),
        close_file,
        media_type=MEDIA_TYPES["xlsx"],
        headers={**export.headers(), "Content-Length": str(size)},
    )
