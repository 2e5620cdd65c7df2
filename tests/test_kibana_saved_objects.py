"""kibana/*.ndjson: the rules Kibana 8.19's import applies, and the fields the objects name.

The validator is `analytics_service.kibana.saved_objects.validate` (the import command runs it
before posting anything). Each rule is tested twice: the shipped files pass, and a copy broken
in that one way is refused with a message naming the problem. Where each rule comes from
(repository elastic/kibana):

- one JSON object per line, blank lines skipped: createSavedObjectsStreamFromNdJson
  (packages/core/saved-objects/core-saved-objects-server-internal/src/routes/utils.ts);
- unique type:id: collectSavedObjects -> "Non-unique import objects detected"
  (packages/core/saved-objects/core-saved-objects-import-export-server-internal/src/import/lib/
  collect_saved_objects.ts), which also turns unknown types into `unsupported_type` errors;
- coreMigrationVersion a semver no newer than Kibana: assertValidCoreVersion, and
  typeMigrationVersion no newer than the type's latest migration: DocumentUpgradePipeline
  .assertCompatibility (src/core/packages/saved-objects/migration-server-internal/src/
  document_migrator/pipelines/utils.ts and upgrade_pipeline.ts);
- references resolve: validateReferences (import/lib/validate_references.ts) refuses missing
  index-pattern and search references; here every reference must resolve inside the files;
- every Lens layer has its `indexpattern-datasource-layer-<layerId>` reference and every accessor
  is a column of its layer: the shape Lens saves and reads back (x-pack/platform/plugins/shared/
  lens, and the eCommerce sample's saved objects, src/plugins/home/server/services/sample_data/
  data_sets/ecommerce/saved_objects.ts);
- dashboard attributes limited to the schema's keys (it forbids unknowns): src/platform/plugins/
  shared/dashboard/server/dashboard_saved_object/schema/v1/v1.ts; a panel's panelRefName must
  have its `<panelIndex>:<panelRefName>` reference: createInject in
  dashboard_saved_object/migrations/migrate_extract_panel_references/dashboard_container_references.ts;
  a control's data view is the reference `controlGroup_<id>:optionsListDataView`
  (src/platform/plugins/shared/controls/server/control_group/control_group_persistable_state.ts
  and the eCommerce sample);
- every `*JSON` string parses: the dashboard and search loaders JSON.parse them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from analytics_service.es.indices import FAMILIES, TEMPLATES_DIR, IndexNames
from analytics_service.kibana.saved_objects import (
    FILE_PREFIX,
    all_objects,
    key,
    load_files,
    parse_ndjson,
    validate,
    with_prefix,
    without_prefix,
)
from tests.kibana_lens import RECORDS, kql_fields

FILES = load_files()
OBJECTS = all_objects(FILES)
BY_KEY = {key(o): o for o in OBJECTS}


def lens_objects() -> list[dict]:
    return [o for o in OBJECTS if o["type"] == "lens"]


def first(type_: str) -> str:
    return next(key(o) for o in OBJECTS if o["type"] == type_)


# -- the shipped files ---------------------------------------------------------------------------


def test_the_files_pass_the_validator():
    assert validate(OBJECTS) == []


def test_the_files_cover_every_alias_and_dashboard():
    names = IndexNames(FILE_PREFIX)
    titles = {o["attributes"]["title"] for o in OBJECTS if o["type"] == "index-pattern"}
    assert titles == {names.alias(family) for family in FAMILIES}
    dashboards = {o["attributes"]["title"] for o in OBJECTS if o["type"] == "dashboard"}
    assert dashboards == {
        "[Store analytics] Revenue",
        "[Store analytics] Customers and activity",
        "[Store analytics] Products and inventory",
        "[Store analytics] Payments and finance",
    }
    assert any(o["type"] == "search" and o["attributes"]["title"] == "Orders" for o in OBJECTS)
    # Every Lens object is on a dashboard (nothing is shipped that no one sees).
    on_dashboards = {r["id"] for o in OBJECTS if o["type"] == "dashboard" for r in o["references"]}
    assert {o["id"] for o in lens_objects()} <= on_dashboards


def test_estimates_say_so():
    """unique_count is an Elasticsearch cardinality estimate: the panel's title says so."""
    for lens in lens_objects():
        for layer in lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values():
            if any(c["operationType"] == "unique_count" for c in layer["columns"].values()):
                assert "estimate" in lens["attributes"]["title"].lower(), lens["attributes"]["title"]
                # The tolerance tests/test_kibana_panels.py holds these panels to (ESTIMATE).
                assert "within 1 % of the exact count below 3,000" in lens["attributes"]["description"]


def test_sales_panels_filter_sales():
    """Every column over the orders or order lines that sums money or counts orders keeps sales only."""
    views = {o["id"]: o["attributes"]["title"] for o in OBJECTS if o["type"] == "index-pattern"}
    for lens in lens_objects():
        refs = {r["name"]: r["id"] for r in lens["references"]}
        for layer_id, layer in lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].items():
            title = views[refs[f"indexpattern-datasource-layer-{layer_id}"]]
            if title not in (f"{FILE_PREFIX}-orders", f"{FILE_PREFIX}-order-items"):
                continue
            for column in layer["columns"].values():
                if column["operationType"] in ("sum", "average", "count", "unique_count"):
                    assert "is_sale:true" in column.get("filter", {}).get("query", ""), (lens["id"], column["label"])


def test_prefix_rewrite_touches_only_data_view_titles():
    moved = with_prefix(OBJECTS, "shop2")
    changed = [(a, b) for a, b in zip(OBJECTS, moved, strict=True) if a != b]
    assert {a["type"] for a, _ in changed} == {"index-pattern"}
    assert all(b["attributes"]["title"].startswith("shop2-") for _, b in changed)
    assert without_prefix(moved, "shop2") == OBJECTS


# -- each rule refuses what breaks it ---------------------------------------------------------


def broken(change) -> list[str]:
    objects = copy.deepcopy(OBJECTS)
    change(objects)
    return validate(objects)


def find(objects: list[dict], k: str) -> dict:
    return next(o for o in objects if key(o) == k)


def lens_layer(obj: dict) -> tuple[str, dict]:
    return next(iter(obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].items()))


def _drop_layer_reference(objects):
    lens = find(objects, first("lens"))
    layer_id, _ = lens_layer(lens)
    lens["references"] = [r for r in lens["references"] if r["name"] != f"indexpattern-datasource-layer-{layer_id}"]


def _bad_accessor(objects):
    lens = find(objects, "lens:store-analytics-lens-revenue-gross")
    lens["attributes"]["state"]["visualization"]["metricAccessor"] = "no-such-column"


def _panels(objects, change):
    dashboard = find(objects, first("dashboard"))
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    change(panels)
    dashboard["attributes"]["panelsJSON"] = json.dumps(panels)


def _set(path: str, value: Any):
    def change(objects):
        k, *attrs = path.split(".")
        obj = find(objects, first(k))
        target = obj
        for name in attrs[:-1]:
            target = target[name]
        target[attrs[-1]] = value

    return change


RULES = [
    ("duplicate", lambda objects: objects.append(copy.deepcopy(objects[0])), "appears more than once"),
    ("unsupported type", _set("lens.type", "visualization-legacy"), "is not one of"),
    ("core version too new", _set("lens.coreMigrationVersion", "8.20.0"), "newer than Kibana"),
    ("core version not semver", _set("dashboard.coreMigrationVersion", "8.8"), "not a semver"),
    ("type version too new", _set("dashboard.typeMigrationVersion", "9.0.0"), "newer than Kibana 8.19"),
    (
        "reference to nothing",
        lambda objects: find(objects, first("dashboard"))["references"][0].update(id="missing"),
        "is not in the files",
    ),
    ("lens layer without its reference", _drop_layer_reference, "has no indexpattern-datasource-layer-"),
    ("accessor not a column", _bad_accessor, "is not a column of layer"),
    ("dashboard key outside the schema", _set("dashboard.attributes.timeRange", {}), "does not accept: timeRange"),
    ("panelsJSON not JSON", _set("dashboard.attributes.panelsJSON", "[{"), "panelsJSON does not parse"),
    ("optionsJSON not JSON", _set("dashboard.attributes.optionsJSON", "{x"), "optionsJSON does not parse"),
    (
        "panel without its reference",
        lambda objects: _panels(objects, lambda panels: panels[0].update(panelRefName="panel_other")),
        ":panel_other",
    ),
    (
        "control without its data view",
        lambda objects: find(objects, first("dashboard")).update(
            references=[r for r in find(objects, first("dashboard"))["references"] if "controlGroup_" not in r["name"]]
        ),
        "optionsListDataView",
    ),
    (
        "searchSourceJSON not JSON",
        _set("search.attributes.kibanaSavedObjectMeta.searchSourceJSON", "{"),
        "does not parse",
    ),
    ("fieldAttrs not JSON", _set("index-pattern.attributes.fieldAttrs", "{"), "fieldAttrs does not parse"),
]


@pytest.mark.parametrize(("change", "message"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_refuses_what_breaks_it(change, message):
    problems = broken(change)
    assert problems, "the broken copy passed"
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"type": "lens"}\n{not json}\n', ":2: not JSON"), ('[{"type": "lens"}]\n', ":1: not a JSON object")],
)
def test_one_json_object_per_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_ndjson(text, "f.ndjson")


def test_blank_lines_are_skipped():
    assert parse_ndjson('\n{"type": "lens", "id": "a"}\n\n') == [{"type": "lens", "id": "a"}]


# -- fields against index_templates -------------------------------------------------------------

AGGREGATABLE = {"keyword", "long", "integer", "short", "byte", "double", "float", "date", "boolean", "ip"}
NUMERIC = {"long", "integer", "short", "byte", "double", "float"}


def template_fields(family: str) -> dict[str, dict]:
    """path -> mapping of every field of a family's template, multi-fields (`name.keyword`) included."""
    mapping = json.loads((TEMPLATES_DIR / f"{family}.json").read_text())["template"]["mappings"]
    out: dict[str, dict] = {}

    def walk(props: dict, prefix: str) -> None:
        for name, spec in props.items():
            path = prefix + name
            out[path] = spec
            for sub, sub_spec in spec.get("fields", {}).items():
                out[f"{path}.{sub}"] = sub_spec
            if "properties" in spec:
                walk(spec["properties"], path + ".")

    walk(mapping["properties"], "")
    return out


def view_fields(view: dict) -> dict[str, dict]:
    """The fields of a data view: its family's template and its runtime fields."""
    family = view["attributes"]["title"].removeprefix(f"{FILE_PREFIX}-")
    fields = template_fields(family)
    for name, spec in json.loads(view["attributes"].get("runtimeFieldMap") or "{}").items():
        fields[name] = {"type": spec["type"]}
    return fields


def aggregatable(spec: dict) -> bool:
    return spec.get("type") in AGGREGATABLE and spec.get("doc_values", True) is not False


VIEWS = {o["id"]: o for o in OBJECTS if o["type"] == "index-pattern"}
FIELDS = {view_id: view_fields(view) for view_id, view in VIEWS.items()}


@pytest.mark.parametrize("view_id", sorted(VIEWS))
def test_data_view_fields_exist(view_id):
    attrs, fields = VIEWS[view_id]["attributes"], FIELDS[view_id]
    for name in [*json.loads(attrs["fieldAttrs"]), *json.loads(attrs["fieldFormatMap"])]:
        assert name in fields, f"{view_id}: {name} is not in the template"
    for name in json.loads(attrs["fieldFormatMap"]):
        assert fields[name]["type"] in NUMERIC, f"{view_id}: {name} has a number format but is not numeric"
    if "timeFieldName" in attrs:
        assert fields[attrs["timeFieldName"]]["type"] == "date"


def lens_columns():
    for lens in lens_objects():
        refs = {r["name"]: r["id"] for r in lens["references"]}
        state = lens["attributes"]["state"]
        for layer_id, layer in state["datasourceStates"]["formBased"]["layers"].items():
            view_id = refs[f"indexpattern-datasource-layer-{layer_id}"]
            yield lens["id"], view_id, state["query"]["query"], layer


@pytest.mark.parametrize(("lens_id", "view_id", "query", "layer"), list(lens_columns()), ids=lambda v: str(v)[:40])
def test_lens_fields_exist_and_aggregate(lens_id, view_id, query, layer):
    fields = FIELDS[view_id]
    queries = [query] if query else []
    for column in layer["columns"].values():
        op, name = column["operationType"], column.get("sourceField")
        if name and name != RECORDS:
            assert name in fields, f"{column['label']}: {name} is not a field of {view_id}"
            assert aggregatable(fields[name]), f"{column['label']}: {name} ({fields[name]['type']}) does not aggregate"
            if op in ("sum", "average", "min", "max"):
                assert fields[name]["type"] in NUMERIC, f"{column['label']}: {op} of a non-number {name}"
            if op == "date_histogram":
                assert fields[name]["type"] == "date"
        if "filter" in column:
            queries.append(column["filter"]["query"])
        for f in column.get("params", {}).get("filters", []):
            queries.append(f["input"]["query"])
        if op == "last_value":
            assert column["params"]["sortField"] in fields
    for text in queries:
        for name in kql_fields(text):
            assert name in fields, f"KQL {text!r}: {name} is not a field of {view_id}"


@pytest.mark.parametrize("dashboard", [o for o in OBJECTS if o["type"] == "dashboard"], ids=lambda o: o["id"])
def test_control_fields_exist_and_aggregate(dashboard):
    refs = {r["name"]: r["id"] for r in dashboard["references"]}
    controls = json.loads(dashboard["attributes"]["controlGroupInput"]["panelsJSON"])
    assert controls
    for control_id, control in controls.items():
        view_id = refs[f"controlGroup_{control_id}:optionsListDataView"]
        name = control["explicitInput"]["fieldName"]
        assert name in FIELDS[view_id] and aggregatable(FIELDS[view_id][name]), (view_id, name)


# Kibana applies a control's filter to every panel whose data view has a field of that name
# (filterMatchesIndex compares names only), so the name must mean the same in each of them.
# The families in which each control field means what its control says:
SAME_MEANING = {
    "store_id": {"orders", "order-items", "events", "activity", "products", "expenses", "customers"},
    "category": {"order-items", "products", "activity"},  # the product's category
    "brand": {"order-items", "products"},
    "channel": {"orders", "order-items"},  # the sales channel; an expense's channel is a marketing one
    "status": {"orders", "order-items"},
    "payment.method": {"orders", "order-items"},
    "payment_method": {"events"},  # a payment event's method (its properties.method)
    "utm.source": {"activity", "orders"},  # the visit's UTM source, kept on the order at ingest
    "device.type": {"activity"},
    "geo.country": {"activity"},
}


@pytest.mark.parametrize("dashboard", [o for o in OBJECTS if o["type"] == "dashboard"], ids=lambda o: o["id"])
def test_each_control_narrows_only_panels_where_its_field_means_the_same(dashboard):
    by_id = {o["id"]: o for o in OBJECTS}
    family = {
        o["id"]: o["attributes"]["title"].removeprefix(f"{FILE_PREFIX}-")
        for o in OBJECTS
        if o["type"] == "index-pattern"
    }
    views = {
        ref["id"]
        for panel_ref in dashboard["references"]
        if ":panel_" in panel_ref["name"]
        for ref in by_id[panel_ref["id"]]["references"]
        if ref["type"] == "index-pattern"
    }
    for control in json.loads(dashboard["attributes"]["controlGroupInput"]["panelsJSON"]).values():
        name = control["explicitInput"]["fieldName"]
        narrowed = {family[v] for v in views if name in FIELDS[v]}
        assert narrowed <= SAME_MEANING[name], f"{control['explicitInput']['title']}: {name} in {narrowed}"


def test_search_fields_exist():
    for search in (o for o in OBJECTS if o["type"] == "search"):
        view_id = search["references"][0]["id"]
        for name in [*search["attributes"]["columns"], *(s[0] for s in search["attributes"]["sort"])]:
            assert name in FIELDS[view_id], name


def test_kibana_folder_holds_only_ndjson():
    folder = Path(FILES[0].path).parent
    assert sorted(p.suffix for p in folder.iterdir()) == [".ndjson"] * len(FILES)
