"""`python -m analytics_service kibana import|export [--url URL] [--space SPACE]` (docs/kibana.md).

import: check kibana/*.ndjson, give the data views INDEX_PREFIX's indices, wait for Kibana, post
every object in one import with overwrite=true, print each object's outcome; exit 1 on any error.
export: read the same objects back from Kibana and write each into the file that holds it, with
the default prefix again, so an edit made in Kibana can be committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import Settings
from .client import KibanaClient, KibanaError
from .saved_objects import (
    OBJECTS_DIR,
    ObjectFile,
    SavedObject,
    all_objects,
    as_stored,
    key,
    load_files,
    to_ndjson,
    validate,
    with_prefix,
    without_prefix,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kibana", help="import or export the Kibana saved objects in kibana/")
    p.add_argument("action", choices=("import", "export"))
    p.add_argument("--url", help="Kibana's URL (default: KIBANA_URL)")
    p.add_argument("--space", help="Kibana space id (default: the default space)")
    p.add_argument("--dir", type=Path, default=OBJECTS_DIR, help="folder of the *.ndjson files (default: kibana/)")
    p.add_argument("--wait", type=float, default=300.0, help="seconds to wait for Kibana to be available")
    p.set_defaults(func=main)


def client_for(settings: Settings, args: argparse.Namespace) -> KibanaClient:
    return KibanaClient(
        args.url or settings.kibana_url,
        space=args.space,
        username=settings.kibana_username,
        password=settings.kibana_password.get_secret_value() if settings.kibana_password else None,
        api_key=settings.kibana_api_key.get_secret_value() if settings.kibana_api_key else None,
    )


def main(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        files = load_files(args.dir)
    except (OSError, ValueError) as exc:
        print(f"cannot read the saved objects: {exc}")
        return 1
    problems = validate(all_objects(files))
    if problems and args.action == "import":
        print(f"{len(problems)} problems in {args.dir}, nothing imported:")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    try:
        with client_for(settings, args) as kibana:
            kibana.wait_until_available(timeout=args.wait)
            if args.action == "import":
                return import_files(kibana, all_objects(files), settings.index_prefix)
            return export_files(kibana, files, settings.index_prefix)
    except KibanaError as exc:
        print(f"error: {exc}")
        return 1


def import_files(kibana: KibanaClient, objects: list[SavedObject], prefix: str) -> int:
    answer = kibana.import_objects(with_prefix(objects, prefix))
    titles = {key(o): o["attributes"].get("title", "") for o in objects}
    moved = 0
    for result in answer.get("successResults", []):
        k = f"{result['type']}:{result['id']}"
        how = "overwritten" if result.get("overwrite") else "created"
        if result.get("destinationId"):  # the id is taken in another space: Kibana gave it a new one
            how += f" as {result['type']}:{result['destinationId']}"
            moved += 1
        print(f"ok     {k}  {titles.get(k, '')} ({how})")
    errors: list[dict[str, Any]] = answer.get("errors", [])
    for error in errors:
        k = f"{error['type']}:{error['id']}"
        print(f"ERROR  {k}  {titles.get(k, '')}: {describe(error.get('error', {}))}")
    count = answer.get("successCount", 0)
    print(f"{count} of {len(objects)} objects imported into indices {prefix}-*")
    if moved:
        print(
            f"{moved} objects got new ids because another space holds theirs (Kibana's ids are unique"
            " across spaces); `kibana export` reads the files' ids, so export from the space that has them"
        )
    return 0 if answer.get("success") and not errors and count == len(objects) else 1


def describe(error: dict[str, Any]) -> str:
    """One line for an import error (types: conflict, ambiguous_conflict, missing_references,
    unsupported_type, unknown)."""
    kind = error.get("type", "unknown")
    if kind == "missing_references":
        refs = ", ".join(f"{r['type']}:{r['id']}" for r in error.get("references", []))
        return f"missing references: {refs}"
    message = error.get("message")
    return f"{kind}: {message}" if message else kind


def export_files(kibana: KibanaClient, files: list[ObjectFile], prefix: str) -> int:
    wanted = [{"type": o["type"], "id": o["id"]} for o in all_objects(files)]
    objects, refused = kibana.export_objects(wanted)
    exported = {key(o): as_stored(o) for o in without_prefix(objects, prefix)}
    why = {f"{o.get('type')}:{o.get('id')}": (o.get("error") or {}).get("message") for o in refused}
    missing = [f"{w['type']}:{w['id']}" for w in wanted if f"{w['type']}:{w['id']}" not in exported]
    for f in files:
        f.path.write_text(to_ndjson(exported.get(key(o), o) for o in f.objects))
        print(f"wrote {f.path} ({len(f.objects)} objects)")
    for k in missing:
        print(f"ERROR  {k}: {why.get(k) or 'not found in Kibana'} (kept as it was)")
    # What Kibana saved may break a rule the next import checks: say so now, not at that import.
    problems = validate([exported.get(key(o), o) for f in files for o in f.objects])
    for problem in problems:
        print(f"ERROR  {problem}")
    return 1 if missing or problems else 0
