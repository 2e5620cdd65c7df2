"""The HTML pages the API serves without a key: the built-in dashboard (`/dashboard`) and the
API docs (`/docs` Swagger UI, `/redoc` ReDoc).

Every script, stylesheet and font they load comes from `/static` (the package's `static/`
folder: the dashboard's own files and the vendored libraries of `static/vendor`, fetched
from npm at pinned versions by scripts/vendor_assets.py), so the pages work with no internet
access. The dashboard page holds no data: its script asks the analytics endpoints with the
key the user types in, sent as the `X-API-Key` header, never in a URL.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_MANIFEST = STATIC_DIR / "vendor" / "assets.json"

router = APIRouter(include_in_schema=False)

# The pages may load only from this server: a library that tries to reach elsewhere (ReDoc
# fetches its logo from its CDN) is stopped by the browser before any request leaves, so
# the pages behave the same with or without internet access. Swagger UI, ReDoc and the
# dashboard's pickers need inline scripts and styles; ReDoc builds its search in a blob: worker.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}


@functools.cache
def vendored(package: str, file: str) -> str:
    """The `/static` URL of a vendored file, at the version recorded in assets.json (read once)."""
    manifest = json.loads(VENDOR_MANIFEST.read_text())
    return f"/static/vendor/{manifest[package]['directory']}/{file}"


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Store analytics: API",
        swagger_js_url=vendored("swagger-ui-dist", "swagger-ui-bundle.js"),
        swagger_css_url=vendored("swagger-ui-dist", "swagger-ui.css"),
        swagger_favicon_url=vendored("swagger-ui-dist", "favicon-32x32.png"),
        swagger_ui_parameters={"persistAuthorization": False, "tryItOutEnabled": False, "validatorUrl": None},
    )
    page.headers.update(PAGE_HEADERS)
    return page


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    # FastAPI's get_redoc_html links Google Fonts; this page uses the system fonts instead.
    script = vendored("redoc", "redoc.standalone.js")
    return HTMLResponse(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Store analytics: API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{vendored("swagger-ui-dist", "favicon-32x32.png")}">
<style>body {{ margin: 0; padding: 0; }}</style></head>
<body><div id="redoc"></div>
<script src="{script}"></script>
<script>Redoc.init("/openapi.json", {{hideDownloadButton: false, expandResponses: "200"}},
  document.getElementById("redoc"));</script>
</body></html>""",
        headers=PAGE_HEADERS,
    )


@router.get("/dashboard")
async def dashboard() -> FileResponse:
    return FileResponse(STATIC_DIR / "dashboard" / "index.html", headers=PAGE_HEADERS)


def install_pages(app: FastAPI) -> None:
    """The pages' routes and the `/static` files they load."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
