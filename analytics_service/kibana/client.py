"""Kibana's HTTP API for saved objects (httpx): wait until Kibana is available, import, export.

Request and response shapes: Kibana's saved objects API (`POST /api/saved_objects/_import`,
`POST /api/saved_objects/_export`) and `GET /api/status`; a space is the `/s/<space>` prefix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from .saved_objects import SavedObject, parse_ndjson, to_ndjson

# Kibana refuses API writes without this header (its XSRF protection); any value is accepted.
XSRF_HEADERS = {"kbn-xsrf": "analytics-service"}
POLL_SECONDS = 5.0  # between two looks at /api/status while Kibana starts


class KibanaError(RuntimeError):
    """Kibana answered with an error, or did not become available in time."""


def space_path(space: str | None) -> str:
    """The URL path prefix of a space (none for the default space)."""
    return "" if not space or space == "default" else f"/s/{space}"


class KibanaClient:
    def __init__(
        self,
        url: str,
        *,
        space: str | None = None,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        headers = dict(XSRF_HEADERS)
        auth: httpx.BasicAuth | None = None
        if api_key:
            headers["Authorization"] = f"ApiKey {api_key}"
        elif username:
            auth = httpx.BasicAuth(username, password or "")
        self.url = url.rstrip("/")
        self.space = space
        self.http = httpx.Client(base_url=self.url, headers=headers, auth=auth, timeout=timeout)

    def __enter__(self) -> KibanaClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def _api(self, path: str) -> str:
        return f"{space_path(self.space)}{path}"

    def status_level(self) -> str:
        """`available`, `degraded`, ... from /api/status, or why it could not be read."""
        try:
            r = self.http.get("/api/status")
        except httpx.HTTPError as exc:
            return f"unreachable ({type(exc).__name__})"
        if r.status_code in (401, 403):
            raise KibanaError(f"GET /api/status: {r.status_code}: check KIBANA_USERNAME/PASSWORD or KIBANA_API_KEY")
        try:
            level = r.json()["status"]["overall"]["level"]
        except (ValueError, KeyError, TypeError):
            return f"HTTP {r.status_code}"
        return str(level)

    def wait_until_available(
        self,
        timeout: float = 300.0,
        progress: Callable[[str], None] = print,
    ) -> None:
        """Poll /api/status until its overall level is `available` (Kibana answers 503 while it
        starts, and `degraded` while a plugin is not ready), printing each state seen."""
        started = time.monotonic()
        last = None
        while True:
            level = self.status_level()
            if level == "available":
                if last is not None:
                    progress(f"Kibana at {self.url} is available")
                return
            waited = time.monotonic() - started
            if level != last or waited >= timeout:
                progress(f"waiting for Kibana at {self.url}: {level} ({waited:.0f}s)")
            last = level
            if waited >= timeout:
                raise KibanaError(f"Kibana at {self.url} was not available after {timeout:.0f}s (last: {level})")
            time.sleep(POLL_SECONDS)

    def import_objects(self, objects: list[SavedObject]) -> dict[str, Any]:
        """POST the objects as one NDJSON file with overwrite=true; Kibana's answer
        ({success, successCount, successResults, errors})."""
        files = {"file": ("saved_objects.ndjson", to_ndjson(objects).encode(), "application/ndjson")}
        r = self.http.post(self._api("/api/saved_objects/_import"), params={"overwrite": "true"}, files=files)
        if r.status_code != 200:
            raise KibanaError(f"import: HTTP {r.status_code}: {_message(r)}")
        body: dict[str, Any] = r.json()
        return body

    def export_objects(self, wanted: list[dict[str, str]]) -> tuple[list[SavedObject], list[dict[str, Any]]]:
        """(the saved objects `wanted` ([{type, id}]) as Kibana exports them, without their
        references' objects and the export summary line; the wanted ones Kibana does not have).

        Kibana refuses a whole export by objects when one of them cannot be read (HTTP 400
        "Error fetching objects to export", the objects in `attributes.objects`, each with its
        `error`), so those are left out and the rest asked for again."""
        missing: list[dict[str, Any]] = []
        while True:
            body = {"objects": wanted, "includeReferencesDeep": False, "excludeExportDetails": True}
            r = self.http.post(self._api("/api/saved_objects/_export"), json=body)
            refused = _objects_not_fetched(r)
            if refused and wanted:
                gone = {(o.get("type"), o.get("id")) for o in refused}
                if not gone & {(w["type"], w["id"]) for w in wanted}:
                    raise KibanaError(f"export: HTTP {r.status_code}: {_message(r)}")
                missing += refused
                wanted = [w for w in wanted if (w["type"], w["id"]) not in gone]
                if wanted:
                    continue
                return [], missing
            if r.status_code != 200:
                raise KibanaError(f"export: HTTP {r.status_code}: {_message(r)}")
            # Even with excludeExportDetails, drop a summary line if one comes back.
            return [obj for obj in parse_ndjson(r.text, "export") if "exportedCount" not in obj], missing


def _objects_not_fetched(r: httpx.Response) -> list[dict[str, Any]]:
    """The objects of an export refused because they could not be read (400 with
    `attributes.objects`), else []."""
    if r.status_code != 400:
        return []
    # Only this refusal names objects that are missing; "Error transforming objects to export"
    # (an export hook failed) carries `attributes.objects` too, and is an error.
    try:
        body = r.json()
        objects = body.get("attributes", {}).get("objects")
    except (ValueError, AttributeError):
        return []
    if body.get("message") != "Error fetching objects to export":
        return []
    return [o for o in objects if isinstance(o, dict)] if isinstance(objects, list) else []


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:300]
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)[:300]
