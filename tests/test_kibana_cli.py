"""`python -m analytics_service kibana import|export` against Kibana's documented HTTP API, mocked
with respx (Kibana cannot run here; docs/kibana.md).

Shapes, from Kibana's saved objects API reference: the import is `POST /api/saved_objects/_import
?overwrite=true`, a multipart/form-data body whose `file` part is the NDJSON (its filename must
end in `.ndjson`: the import route refuses other extensions), with a `kbn-xsrf` header; it
answers 200 `{success, successCount, successResults: [{type, id, meta, overwrite}], errors:
[{type, id, meta, error: {type: missing_references | conflict | unsupported_type | unknown,
...}}]}` (`success: false` with `errors` on a partial failure) or 400 `{statusCode, error,
message}`; a success result has `destinationId` when the object got a new id (its id is taken
in another space). The export is `POST /api/saved_objects/_export` with a JSON body `{objects,
includeReferencesDeep, excludeExportDetails}` and answers NDJSON, or 400 with the objects it could
not read in `attributes.objects` (the whole export is refused then). `GET /api/status` answers 503
while Kibana starts, then 200 with `status.overall.level` "available". A space is the
`/s/<space>` URL prefix.
"""

from __future__ import annotations

import base64
import email.parser
import json
import shutil
from pathlib import Path

import httpx
import pytest
import respx

from analytics_service import cli
from analytics_service.kibana import client as kibana_client
from analytics_service.kibana.saved_objects import (
    OBJECTS_DIR,
    all_objects,
    load_files,
    parse_ndjson,
    to_ndjson,
    with_prefix,
)

KIBANA = "http://kibana.test:5601"
OBJECTS = all_objects(load_files())
AVAILABLE = {"name": "kibana", "version": {"number": "8.19.21"}, "status": {"overall": {"level": "available"}}}


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no `.env` of the checkout
    for name in ("KIBANA_URL", "KIBANA_USERNAME", "KIBANA_PASSWORD", "KIBANA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INDEX_PREFIX", "shop2")
    monkeypatch.setenv("KIBANA_USERNAME", "elastic")
    monkeypatch.setenv("KIBANA_PASSWORD", "s3cret")
    monkeypatch.setattr(kibana_client, "POLL_SECONDS", 0)


def run(*args: str) -> int:
    return cli.main(["kibana", *args, "--url", KIBANA])


def success_for(objects: list[dict]) -> dict:
    return {
        "success": True,
        "successCount": len(objects),
        "successResults": [
            {"type": o["type"], "id": o["id"], "meta": {"title": o["attributes"]["title"]}, "overwrite": True}
            for o in objects
        ],
        "warnings": [],
    }


def multipart_file(request: httpx.Request) -> tuple[str, bytes]:
    """The filename and content of the `file` part of a multipart/form-data request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + request.content)
    assert message.is_multipart()
    (part,) = message.get_payload()
    assert part.get_param("name", header="content-disposition") == "file"
    return part.get_filename(), part.get_payload(decode=True)


@respx.mock
def test_import_posts_every_object_with_the_prefix(capsys):
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    route = respx.post(f"{KIBANA}/api/saved_objects/_import").respond(200, json=success_for(OBJECTS))

    assert run("import") == 0

    request = route.calls.last.request
    assert request.url.params["overwrite"] == "true"
    assert request.headers["kbn-xsrf"]
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    filename, content = multipart_file(request)
    assert filename.endswith(".ndjson")
    sent = parse_ndjson(content.decode())
    assert sent == with_prefix(OBJECTS, "shop2")
    assert {o["attributes"]["title"] for o in sent if o["type"] == "index-pattern"} >= {"shop2-orders", "shop2-events"}
    out = capsys.readouterr().out
    assert out.count("\nok ") + out.startswith("ok ") == len(OBJECTS)
    assert f"{len(OBJECTS)} of {len(OBJECTS)} objects imported into indices shop2-*" in out


@respx.mock
def test_space_and_api_key(monkeypatch):
    monkeypatch.setenv("KIBANA_API_KEY", "a2V5OnNlY3JldA==")
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    route = respx.post(f"{KIBANA}/s/marketing/api/saved_objects/_import").respond(200, json=success_for(OBJECTS))

    assert run("import", "--space", "marketing") == 0
    assert route.calls.last.request.headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="


@respx.mock
def test_partial_failure_prints_each_error_and_exits_non_zero(capsys):
    failed = [OBJECTS[-1], OBJECTS[-2]]
    answer = success_for(OBJECTS[:-2])
    answer.update(
        success=False,
        errors=[
            {
                "type": failed[0]["type"],
                "id": failed[0]["id"],
                "meta": {"title": failed[0]["attributes"]["title"]},
                "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": "gone"}]},
            },
            {
                "type": failed[1]["type"],
                "id": failed[1]["id"],
                "meta": {"title": failed[1]["attributes"]["title"]},
                "error": {"type": "unknown", "message": "mapping conflict", "statusCode": 400},
            },
        ],
    )
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    respx.post(f"{KIBANA}/api/saved_objects/_import").respond(200, json=answer)

    assert run("import") == 1
    out = capsys.readouterr().out
    assert f"ERROR  {failed[0]['type']}:{failed[0]['id']}" in out
    assert "missing references: index-pattern:gone" in out
    assert f"ERROR  {failed[1]['type']}:{failed[1]['id']}" in out and "unknown: mapping conflict" in out
    assert f"{len(OBJECTS) - 2} of {len(OBJECTS)} objects imported" in out


@respx.mock
def test_waits_while_kibana_starts(capsys):
    status = respx.get(f"{KIBANA}/api/status").mock(
        side_effect=[
            httpx.ConnectError("connection refused"),
            httpx.Response(503, text="Kibana server is not ready yet"),
            httpx.Response(503, json={"status": {"overall": {"level": "degraded"}}}),
            httpx.Response(200, json=AVAILABLE),
        ]
    )
    route = respx.post(f"{KIBANA}/api/saved_objects/_import").respond(200, json=success_for(OBJECTS))

    assert run("import", "--wait", "60") == 0
    assert status.call_count == 4 and route.call_count == 1
    out = capsys.readouterr().out
    assert "unreachable (ConnectError)" in out and "HTTP 503" in out and "degraded" in out
    assert f"Kibana at {KIBANA} is available" in out
    assert out.index("is available") < out.index("ok ")


@respx.mock
def test_gives_up_on_a_kibana_that_never_starts(capsys):
    respx.get(f"{KIBANA}/api/status").respond(503, json={"status": {"overall": {"level": "unavailable"}}})
    route = respx.post(f"{KIBANA}/api/saved_objects/_import")

    assert run("import", "--wait", "0") == 1
    assert not route.called
    assert "was not available after 0s (last: unavailable)" in capsys.readouterr().out


@respx.mock
def test_bad_credentials_are_named(capsys):
    respx.get(f"{KIBANA}/api/status").respond(401, json={"statusCode": 401, "error": "Unauthorized"})
    assert run("import") == 1
    assert "KIBANA_USERNAME/PASSWORD or KIBANA_API_KEY" in capsys.readouterr().out


@respx.mock
def test_a_refused_import_exits_non_zero(capsys):
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    message = "Non-unique import objects detected: [lens:x]"
    respx.post(f"{KIBANA}/api/saved_objects/_import").respond(
        400, json={"statusCode": 400, "error": "Bad Request", "message": message}
    )
    assert run("import") == 1
    assert f"import: HTTP 400: {message}" in capsys.readouterr().out


@respx.mock
def test_invalid_files_are_not_sent(tmp_path, capsys):
    folder = tmp_path / "objects"
    folder.mkdir()
    broken = [dict(OBJECTS[0]), dict(OBJECTS[0])]  # the same object twice
    (folder / "a.ndjson").write_text(to_ndjson(broken))
    status = respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)

    assert run("import", "--dir", str(folder)) == 1
    assert not status.called
    assert "appears more than once" in capsys.readouterr().out


def exported(objects: list[dict]) -> str:
    """The objects as Kibana's export writes them: the space's prefix in titles, save metadata added."""
    out = [
        {**o, "updated_at": "2026-12-01T10:00:00.000Z", "version": "WzEsMV0=", "namespaces": ["default"]}
        for o in objects
    ]
    return to_ndjson(with_prefix(out, "shop2"))


@pytest.fixture
def folder(tmp_path) -> Path:
    target = tmp_path / "kibana"
    shutil.copytree(OBJECTS_DIR, target)
    return target


@respx.mock
def test_export_writes_each_object_back_to_its_file(folder, capsys):
    edited = [dict(o) for o in OBJECTS]
    i = next(n for n, o in enumerate(edited) if o["type"] == "dashboard")
    edited[i] = {**edited[i], "attributes": {**edited[i]["attributes"], "title": "Renamed in Kibana"}}
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    route = respx.post(f"{KIBANA}/api/saved_objects/_export").respond(
        200, text=exported(list(reversed(edited))), headers={"content-type": "application/ndjson"}
    )

    assert run("export", "--dir", str(folder)) == 0

    request = route.calls.last.request
    assert request.headers["kbn-xsrf"]
    body = json.loads(request.content)
    assert body == {
        "objects": [{"type": o["type"], "id": o["id"]} for o in OBJECTS],
        "includeReferencesDeep": False,
        "excludeExportDetails": True,
    }
    files = load_files(folder)
    assert [f.path.name for f in files] == [f.path.name for f in load_files()]
    assert all_objects(files) == edited  # file order kept, prefix back to analytics, save metadata dropped
    assert "wrote" in capsys.readouterr().out


def not_fetched(objects: list[dict]) -> dict:
    """Kibana's answer to an export by objects when some cannot be read (saved_objects_exporter
    fetchByObjects -> SavedObjectsExportError.objectFetchError, answered as a 400 by the route)."""
    return {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "Error fetching objects to export",
        "attributes": {
            "objects": [
                {
                    "id": o["id"],
                    "type": o["type"],
                    "error": {
                        "statusCode": 404,
                        "error": "Not Found",
                        "message": f"Saved object [{o['type']}/{o['id']}] not found",
                    },
                }
                for o in objects
            ]
        },
    }


@respx.mock
def test_export_of_a_missing_object_keeps_it_and_exits_non_zero(folder, capsys):
    """Kibana refuses the whole export when one object is missing: the command asks again
    without it, writes the others and keeps the missing one as it was."""
    edited = [dict(o) for o in OBJECTS]
    i = next(n for n, o in enumerate(edited) if o["type"] == "dashboard")
    edited[i] = {**edited[i], "attributes": {**edited[i]["attributes"], "title": "Renamed in Kibana"}}
    gone = edited[0]
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    route = respx.post(f"{KIBANA}/api/saved_objects/_export")
    route.side_effect = [
        httpx.Response(400, json=not_fetched([gone])),
        httpx.Response(200, text=exported(edited[1:])),
    ]

    assert run("export", "--dir", str(folder)) == 1
    asked_again = json.loads(route.calls[1].request.content)["objects"]
    assert asked_again == [{"type": o["type"], "id": o["id"]} for o in OBJECTS[1:]]
    assert all_objects(load_files(folder)) == [OBJECTS[0], *edited[1:]]
    out = capsys.readouterr().out
    assert f"ERROR  {gone['type']}:{gone['id']}: Saved object [{gone['type']}/{gone['id']}] not found" in out


@respx.mock
def test_an_export_refused_for_another_reason_is_an_error(folder, capsys):
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    respx.post(f"{KIBANA}/api/saved_objects/_export").respond(
        400, json={"statusCode": 400, "error": "Bad Request", "message": "Trying to export non-exportable type(s)"}
    )
    assert run("export", "--dir", str(folder)) == 1
    assert all_objects(load_files(folder)) == OBJECTS
    assert "export: HTTP 400: Trying to export non-exportable type(s)" in capsys.readouterr().out


@respx.mock
def test_ids_taken_in_another_space_are_printed_with_their_new_id(capsys):
    """Kibana's ids are unique across spaces: importing the files into a second space gives
    each object a new id (`destinationId` in its success result), which the command prints."""
    answer = success_for(OBJECTS)
    for n, result in enumerate(answer["successResults"]):
        result["destinationId"] = f"00000000-0000-4000-8000-{n:012d}"
        del result["overwrite"]  # new objects in this space
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    respx.post(f"{KIBANA}/s/shop2/api/saved_objects/_import").respond(200, json=answer)

    assert run("import", "--space", "shop2") == 0
    out = capsys.readouterr().out
    first = OBJECTS[0]
    assert f"ok     {first['type']}:{first['id']}" in out
    assert f"(created as {first['type']}:00000000-0000-4000-8000-000000000000)" in out
    assert f"{len(OBJECTS)} objects got new ids because another space holds theirs" in out


@respx.mock
def test_export_reports_what_the_next_import_would_refuse(folder, capsys):
    edited = [dict(o) for o in OBJECTS]
    i = next(n for n, o in enumerate(edited) if o["type"] == "dashboard")
    edited[i] = {**edited[i], "attributes": {**edited[i]["attributes"], "timeRange": {}}}
    respx.get(f"{KIBANA}/api/status").respond(200, json=AVAILABLE)
    respx.post(f"{KIBANA}/api/saved_objects/_export").respond(200, text=exported(edited))

    assert run("export", "--dir", str(folder)) == 1
    assert "attributes the dashboard schema does not accept: timeRange" in capsys.readouterr().out
