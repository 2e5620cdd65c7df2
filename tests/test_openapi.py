"""Every analytics endpoint documents its response: a model, field descriptions, an example."""

from __future__ import annotations

from analytics_service.app import create_app
from analytics_service.config import Settings


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _undescribed(spec: dict, name: str, schema: dict, seen: set[str], path: str = "") -> list[str]:
    """Properties without a description, walking nested models once each."""
    missing = []
    for prop, sub in schema.get("properties", {}).items():
        where = f"{name}.{prop}"
        if "description" not in sub and prop not in ("period", "cached", "key"):
            missing.append(where)
        for candidate in [sub, sub.get("items", {}), *sub.get("anyOf", []), *sub.get("anyOf", [{}])[0:1]]:
            ref = candidate.get("$ref") or candidate.get("items", {}).get("$ref")
            if ref:
                child = ref.rsplit("/", 1)[-1]
                if child not in seen:
                    seen.add(child)
                    missing += _undescribed(spec, child, spec["components"]["schemas"][child], seen)
    return missing


def test_every_analytics_endpoint_has_a_documented_response_model():
    spec = create_app(Settings(api_keys="[]")).openapi()
    analytics = {
        p: ops["get"] for p, ops in spec["paths"].items() if p.startswith("/api/v1/analytics") and "get" in ops
    }
    assert len(analytics) >= 24  # 8 sales, 6 users, 4 products, 4 financial, search, health
    problems = []
    for path, op in analytics.items():
        content = op["responses"]["200"]["content"]
        if "text/event-stream" in content:  # the model of each event's data
            content = content["text/event-stream"]["schema"]["properties"]["data"]["contentSchema"]
        else:
            content = content["application/json"]["schema"]
        assert "$ref" in content, f"{path}: no response model"
        name = content["$ref"].rsplit("/", 1)[-1]
        schema = _resolve(spec, content)
        if "example" not in schema and "examples" not in schema:
            problems.append(f"{path}: {name} has no example")
        problems += [f"{path}: {m} has no description" for m in _undescribed(spec, name, schema, {name})]
        for param in op.get("parameters", []):
            if param["in"] == "query" and not param.get("description"):
                problems.append(f"{path}: query parameter {param['name']} has no description")
    assert not problems, "\n".join(sorted(set(problems)))


def test_every_error_status_is_documented_with_the_real_error_body():
    spec = create_app(Settings(api_keys="[]")).openapi()
    components = spec["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components
    assert set(components["ErrorBody"]["properties"]) == {"error"}
    assert set(components["ErrorDetail"]["required"]) == {"code", "message", "details"}
    problems = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            codes = set(op["responses"])
            expected = {"500"}
            if op.get("security"):
                expected |= {"401", "403"}
            if op.get("parameters") or op.get("requestBody"):
                expected.add("422")
            if op.get("requestBody"):
                expected |= {"400", "415"}
            if "{" in path:
                expected.add("404")
            if path.startswith(("/api/v1/analytics/", "/api/v1/export/")) and "health" not in path:
                expected |= {"502", "503"}
            if path.endswith(("/index", "/track")):
                expected.add("413")
                ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
                if not ok.endswith("/IngestResponse"):
                    problems.append(f"{where}: 200 is {ok}")
            problems += [f"{where}: {code} not documented" for code in sorted(expected - codes)]
            for code, response in op["responses"].items():
                if int(code) < 400 or (path == "/health" and code == "503"):
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") != "#/components/schemas/ErrorBody" and not ("health" in path and code == "503"):
                    problems.append(f"{where}: {code} has {schema or 'no body'}")
    assert not problems, "\n".join(problems)


def test_every_response_example_is_a_valid_answer_of_its_model():
    """The examples in analytics/response_examples.json validate against their response models,
    and every analytics response model has one."""
    import inspect
    import json

    from analytics_service.analytics import (
        breakdowns,
        financial,
        lifecycle,
        live,
        marketing,
        products,
        sales,
        search,
        site_search,
        users,
    )
    from analytics_service.analytics.fields import AnalyticsResponse
    from analytics_service.openapi import RESPONSE_EXAMPLES

    models = {
        name: cls
        for module in (sales, breakdowns, users, lifecycle, products, site_search, financial, search, live, marketing)
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, AnalyticsResponse) and cls is not AnalyticsResponse
    }
    examples = json.loads(RESPONSE_EXAMPLES.read_text())
    assert set(examples) == set(models)
    for name, example in examples.items():
        models[name].model_validate(example)
