"""The saved-object files in kibana/: load them, give the data views the INDEX_PREFIX, and check
them with the rules Kibana 8.19's import applies (docs/kibana.md "Checks").

The files are written for the default prefix (`analytics`): only data view titles name indices
(every other object reaches its indices through references to a data view), so moving to another
prefix rewrites those titles and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OBJECTS_DIR = Path(__file__).resolve().parents[2] / "kibana"
FILE_PREFIX = "analytics"  # the INDEX_PREFIX the files are written for
KIBANA_VERSION = (8, 19, 21)  # the pinned Kibana (docker-compose.yml)

SavedObject = dict[str, Any]

# Types the files hold; all are importable and exportable in Kibana 8.19.
TYPES = ("index-pattern", "search", "lens", "dashboard")
# Attributes the dashboard schema accepts (it forbids unknown keys): model version 1 of
# src/platform/plugins/shared/dashboard/server/dashboard_saved_object/schema/v1/v1.ts.
DASHBOARD_KEYS = frozenset(
    {
        "title",
        "description",
        "kibanaSavedObjectMeta",
        "timeRestore",
        "timeFrom",
        "timeTo",
        "refreshInterval",
        "controlGroupInput",
        "panelsJSON",
        "optionsJSON",
        "hits",
        "version",
    }
)
# controlGroupInput: schema v1, and showApplySelections from model version 2 (schema/v2/v2.ts).
CONTROL_GROUP_KEYS = frozenset(
    {"panelsJSON", "controlStyle", "chainingSystem", "ignoreParentSettingsJSON", "showApplySelections"}
)
# Attributes of an index-pattern that hold serialized JSON (DataViewAttributes).
DATA_VIEW_JSON = ("fieldAttrs", "fieldFormatMap", "fields", "runtimeFieldMap", "sourceFilters", "typeMeta")
# Keys the export adds that say when and where an object was saved, not what it is.
VOLATILE_KEYS = ("updated_at", "created_at", "updated_by", "created_by", "version", "namespaces", "originId")

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
# A type on model versions reports `10.<model version>.0` (modelVersionToVirtualVersion).
_MODEL_VERSION_MAJOR = 10


@dataclass
class ObjectFile:
    path: Path
    objects: list[SavedObject]


def key(obj: SavedObject) -> str:
    return f"{obj.get('type')}:{obj.get('id')}"


def parse_ndjson(text: str, source: str = "<ndjson>") -> list[SavedObject]:
    """One JSON object per line; blank lines are skipped (Kibana's createSavedObjectsStreamFromNdJson)."""
    objects = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{source}:{number}: not a JSON object")
        objects.append(obj)
    return objects


def to_ndjson(objects: Iterable[SavedObject]) -> str:
    return "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects)


def load_files(directory: Path = OBJECTS_DIR) -> list[ObjectFile]:
    paths = sorted(directory.glob("*.ndjson"))
    if not paths:
        raise FileNotFoundError(f"no *.ndjson files in {directory}")
    return [ObjectFile(path, parse_ndjson(path.read_text(), path.name)) for path in paths]


def all_objects(files: Iterable[ObjectFile]) -> list[SavedObject]:
    return [obj for f in files for obj in f.objects]


def _retitle(objects: Iterable[SavedObject], old: str, new: str) -> list[SavedObject]:
    out = []
    for obj in objects:
        title = obj.get("attributes", {}).get("title")
        if obj.get("type") == "index-pattern" and isinstance(title, str) and title.startswith(f"{old}-"):
            obj = {**obj, "attributes": {**obj["attributes"], "title": new + title[len(old) :]}}
        out.append(obj)
    return out


def with_prefix(objects: Iterable[SavedObject], prefix: str) -> list[SavedObject]:
    """The objects for INDEX_PREFIX `prefix`: data view titles `analytics-*` become `<prefix>-*`."""
    return _retitle(objects, FILE_PREFIX, prefix)


def without_prefix(objects: Iterable[SavedObject], prefix: str) -> list[SavedObject]:
    """The reverse of `with_prefix`, for objects exported from a Kibana that reads `prefix`."""
    return _retitle(objects, prefix, FILE_PREFIX)


def as_stored(obj: SavedObject) -> SavedObject:
    """An exported object without the keys that change on every save (so the files diff cleanly)."""
    return {k: v for k, v in obj.items() if k not in VOLATILE_KEYS}


# -- validation -------------------------------------------------------------------------------


def _version(text: object) -> tuple[int, int, int] | None:
    match = _SEMVER.match(text) if isinstance(text, str) else None
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _check_versions(obj: SavedObject) -> Iterator[str]:
    # assertValidCoreVersion (document_migrator/pipelines/utils.ts): semver, not above Kibana's version.
    core = obj.get("coreMigrationVersion")
    if core is not None:
        parsed = _version(core)
        if parsed is None:
            yield f"coreMigrationVersion {core!r} is not a semver version"
        elif parsed > KIBANA_VERSION:
            yield f"coreMigrationVersion {core} is newer than Kibana {'.'.join(map(str, KIBANA_VERSION))}"
    # DocumentUpgradePipeline.assertCompatibility: no newer than the type's latest migration. A
    # model-version type reports 10.<n>.0; the exact n per type in 8.19 is not checked here.
    type_version = obj.get("typeMigrationVersion")
    if type_version is not None and type_version != "":
        parsed = _version(type_version)
        if parsed is None:
            yield f"typeMigrationVersion {type_version!r} is not a semver version"
        elif parsed > KIBANA_VERSION and not (parsed[0] == _MODEL_VERSION_MAJOR and parsed[2] == 0):
            yield f"typeMigrationVersion {type_version} is newer than Kibana 8.19"


def _json_attribute(value: object, where: str, problems: list[str]) -> Any:
    if not isinstance(value, str):
        problems.append(f"{where} is not a string of JSON")
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        problems.append(f"{where} does not parse as JSON ({exc.msg})")
        return None


def _json_strings(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every `*JSON` attribute (at any depth) with its path."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith("JSON"):
                yield f"{path}.{k}", v
            yield from _json_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_strings(v, f"{path}[{i}]")


def _lens_accessors(vis_type: str, vis: dict[str, Any]) -> Iterator[tuple[str | None, str]]:
    """(layer id, column id) of every accessor of a Lens visualization state."""
    if vis_type == "lnsXY":
        for layer in vis.get("layers", []):
            for name in ("xAccessor", "splitAccessor"):
                if layer.get(name):
                    yield layer["layerId"], layer[name]
            for acc in layer.get("accessors", []):
                yield layer["layerId"], acc
    elif vis_type == "lnsPie":
        for layer in vis.get("layers", []):
            for acc in [*layer.get("primaryGroups", []), *layer.get("secondaryGroups", []), *layer.get("metrics", [])]:
                yield layer["layerId"], acc
    elif vis_type == "lnsDatatable":
        for column in vis.get("columns", []):
            yield vis.get("layerId"), column["columnId"]
    else:  # lnsMetric, lnsHeatmap, lnsChoropleth: one layer, accessors named *Accessor
        for name, acc in vis.items():
            if name.endswith("Accessor") and isinstance(acc, str):
                yield vis.get("layerId"), acc


def _check_lens(obj: SavedObject, refs: dict[str, SavedObject]) -> Iterator[str]:
    attrs = obj["attributes"]
    state = attrs.get("state", {})
    layers = state.get("datasourceStates", {}).get("formBased", {}).get("layers", {})
    if not layers:
        yield "has no formBased layers"
    for layer_id, layer in layers.items():
        # Lens injects each layer's data view from this reference (lens extract/inject of references).
        ref = refs.get(f"indexpattern-datasource-layer-{layer_id}")
        if ref is None or ref.get("type") != "index-pattern":
            yield f"layer {layer_id} has no indexpattern-datasource-layer-{layer_id} reference"
        columns = layer.get("columns", {})
        if sorted(layer.get("columnOrder", [])) != sorted(columns):
            yield f"layer {layer_id}: columnOrder does not list exactly its columns"
        for column_id, column in columns.items():
            for inner in column.get("references", []):
                if inner not in columns:
                    yield f"layer {layer_id}: column {column_id} refers to {inner}, not a column of the layer"
            if "operationType" not in column:
                yield f"layer {layer_id}: column {column_id} has no operationType"
    for layer_id, accessor in _lens_accessors(attrs.get("visualizationType", ""), state.get("visualization", {})):
        if layer_id not in layers:
            yield f"visualization names layer {layer_id}, not a layer of the datasource"
        elif accessor not in layers[layer_id].get("columns", {}):
            yield f"accessor {accessor} is not a column of layer {layer_id}"


def _check_dashboard(obj: SavedObject, refs: dict[str, SavedObject], problems: list[str]) -> None:
    attrs = obj["attributes"]
    extra = sorted(set(attrs) - DASHBOARD_KEYS)
    if extra:
        problems.append(f"attributes the dashboard schema does not accept: {', '.join(extra)}")
    if not isinstance(attrs.get("title"), str):
        problems.append("has no title")
    panels = _json_attribute(attrs.get("panelsJSON", "[]"), "panelsJSON", problems)
    for panel in panels if isinstance(panels, list) else []:
        index = panel.get("panelIndex")
        if panel.get("gridData", {}).get("i") != index:
            problems.append(f"panel {index}: gridData.i differs from panelIndex")
        if "type" not in panel:  # extractReferences: '"type" attribute is missing from panel'
            problems.append(f"panel {index} has no type")
        name = panel.get("panelRefName")
        # createInject (dashboard_container_references.ts): "Could not find reference".
        if name is not None and f"{index}:{name}" not in refs:
            problems.append(f"panel {index}: no reference {index}:{name}")
    group = attrs.get("controlGroupInput")
    if group is not None:
        extra = sorted(set(group) - CONTROL_GROUP_KEYS)
        if extra:
            problems.append(f"controlGroupInput keys the schema does not accept: {', '.join(extra)}")
        controls = _json_attribute(group.get("panelsJSON", "{}"), "controlGroupInput.panelsJSON", problems) or {}
        for control_id, control in controls.items():
            ref = f"controlGroup_{control_id}:{control.get('type', '').removesuffix('Control')}DataView"
            if ref not in refs:
                problems.append(f"control {control_id}: no reference {ref}")


def _check_search(obj: SavedObject, refs: dict[str, SavedObject], problems: list[str]) -> None:
    meta = obj["attributes"].get("kibanaSavedObjectMeta", {})
    source = _json_attribute(meta.get("searchSourceJSON"), "searchSourceJSON", problems) or {}
    name = source.get("indexRefName")
    if name is None or name not in refs:
        problems.append("searchSourceJSON has no indexRefName with a reference")


def validate(objects: list[SavedObject]) -> list[str]:
    """What Kibana 8.19's import would reject or fail to render, one line per problem (empty: fine)."""
    problems: list[str] = []
    seen: set[str] = set()
    for obj in objects:
        if isinstance(obj.get("type"), str) and isinstance(obj.get("id"), str):
            if key(obj) in seen:  # collectSavedObjects: "Non-unique import objects detected"
                problems.append(f"{key(obj)}: appears more than once")
            seen.add(key(obj))
    for obj in objects:
        problems += [f"{key(obj)}: {p}" for p in _object_problems(obj, seen)]
    return problems


def _object_problems(obj: SavedObject, known: set[str]) -> list[str]:
    problems: list[str] = []
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        return ["has no id"]
    if obj.get("type") not in TYPES:  # collectSavedObjects: unsupported_type
        return [f"type {obj.get('type')!r} is not one of {', '.join(TYPES)}"]
    if not isinstance(obj.get("attributes"), dict):
        return ["has no attributes object"]
    problems += _check_versions(obj)
    refs: dict[str, SavedObject] = {}
    for ref in obj.get("references", []):
        if not all(isinstance(ref.get(k), str) for k in ("name", "type", "id")):
            problems.append(f"reference {ref} lacks a name, type or id")
            continue
        if ref["name"] in refs:
            problems.append(f"reference name {ref['name']} is used twice")
        refs[ref["name"]] = ref
        # validateReferences checks index-pattern and search references; every reference here
        # must resolve inside the files, so an import into an empty space works.
        if f"{ref['type']}:{ref['id']}" not in known:
            problems.append(f"reference {ref['name']} -> {ref['type']}:{ref['id']} is not in the files")
    for where, value in _json_strings(obj["attributes"], "attributes"):
        _json_attribute(value, where, problems)
    if obj["type"] == "index-pattern":
        for name in DATA_VIEW_JSON:
            if name in obj["attributes"]:
                _json_attribute(obj["attributes"][name], name, problems)
        if not isinstance(obj["attributes"].get("title"), str):
            problems.append("data view has no title (its index pattern)")
    elif obj["type"] == "lens":
        problems += _check_lens(obj, refs)
    elif obj["type"] == "dashboard":
        _check_dashboard(obj, refs, problems)
    elif obj["type"] == "search":
        _check_search(obj, refs, problems)
    return problems
