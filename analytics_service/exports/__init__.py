"""Streamed exports of every matching record (docs/reports.md "Exports").

- `specs`: what each export kind reads (index family, period field, filters, order) and its columns;
- `writers`: CSV, NDJSON and XLSX writers, and each format's media type;
- `stream`: one export request, read with the point-in-time scanner (`es.scan.PitScan`) and streamed out;
- `router`: the `GET /api/v1/export/{kind}` routes.
"""

from .specs import EXPORTS, ORDERS_EXPORT, PRODUCTS_EXPORT, SALES_EXPORT, USERS_EXPORT, Col, ExportSpec
from .writers import MEDIA_TYPES, ExportFormat

__all__ = [
    "EXPORTS",
    "MEDIA_TYPES",
    "ORDERS_EXPORT",
    "PRODUCTS_EXPORT",
    "SALES_EXPORT",
    "USERS_EXPORT",
    "Col",
    "ExportFormat",
    "ExportSpec",
]
