"""`GET /api/v1/export/{orders|sales|users|products}` (scope `read`; docs/reports.md "Exports")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from ..analytics.params import Common
from ..auth import require
from ..dependencies import EsDep, NamesDep
from .specs import EXPORTS, ExportSpec
from .stream import run_export
from .writers import MEDIA_TYPES, ExportFormat

router = APIRouter(prefix="/api/v1/export", tags=["exports"], dependencies=[Depends(require("read"))])

FormatQ = Annotated[ExportFormat, Query(alias="format", description="csv (default), ndjson or xlsx")]


def _route(spec: ExportSpec) -> Callable[..., Any]:
    async def export(request: Request, es: EsDep, names: NamesDep, params: Common, fmt: FormatQ = "csv") -> Response:
        return await run_export(request, es, names, spec, params, fmt)

    export.__name__ = f"export_{spec.kind}"
    return export


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the file, streamed (`Content-Disposition: attachment`)",
        "content": {media: {} for media in MEDIA_TYPES.values()},
    },
}

for _spec in EXPORTS.values():
    router.add_api_route(
        f"/{_spec.kind}",
        _route(_spec),
        methods=["GET"],
        response_class=StreamingResponse,
        summary=f"Export every matching {_spec.kind} record as CSV, NDJSON or XLSX",
        description=_spec.describe() + "\n\nStore scoping as the analytics endpoints; `interval`, `compare` "
        "and `limit` are accepted and ignored.",
        responses=_FILE_RESPONSES,
    )
