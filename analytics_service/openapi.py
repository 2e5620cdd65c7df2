"""The OpenAPI document: the generated one, plus the hand-validated ingest request schemas and
every error status an operation can return, each with the real error body (errors.ErrorBody).

Statuses that follow from an operation's shape are added here for every operation
(`document_errors`); those that depend on what a router does (Elasticsearch behind it,
a size limit, ...) are declared once per router where app.py includes it (`errors(...)`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .analytics.routers.live import STREAMED_MODELS
from .errors import ErrorBody
from .ingest.router import OPENAPI_MODELS
from .rate_limits import configured_limits

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
# An example answer of every analytics response model, by model name (checked against the
# models by tests/test_openapi.py); documentation data, so kept out of the models' code.
RESPONSE_EXAMPLES = Path(__file__).parent / "analytics" / "response_examples.json"

DESCRIPTIONS: dict[int, str] = {
    400: "the body is not valid JSON (`invalid_json`)",
    401: "missing or unknown X-API-Key",
    403: "the key lacks the scope, or is bound to another store",
    404: "no such resource for this key",
    409: "the resource is not in a state that allows this",
    410: "the resource or link has expired",
    413: "the body or the batch is too large",
    415: "the body is not JSON (Content-Type must be application/json)",
    422: "a parameter or field is invalid (named in `details`)",
    429: "this API key is over its rate limit for the route's class (`rate_limited`); retry after `Retry-After` "
    'seconds (README "Rate limits")',
    500: "unexpected error (a bug; logged)",
    502: "Elasticsearch refused the request (`elasticsearch_error`), or an analytics number cannot be computed "
    "from the stored data (`uncomputable_result`, naming the fields)",
    503: "a dependency (Elasticsearch, the database) is unavailable; retry after `Retry-After`",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for include_router/route: these statuses with the error body."""
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS[status]} for status in statuses}


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": dict(ERROR_REF)}}


def document_errors(schema: dict[str, Any]) -> None:
    """Add the statuses every operation of its shape can return, and give every 4xx/5xx the error body
    (replacing FastAPI's default `HTTPValidationError`)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            implied = [500]
            if operation.get("security"):
                implied += [401, 403]
                if "operations" not in operation.get("tags", ()):  # admin routes are not rate limited
                    implied.append(429)
            if operation.get("parameters") or operation.get("requestBody"):
                implied.append(422)
            if operation.get("requestBody"):
                implied += [400, 415]
            if any(param.get("in") == "path" for param in operation.get("parameters", [])):
                implied.append(404)
            for status in implied:
                responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
            if "429" in responses:
                responses["429"]["headers"] = {
                    "Retry-After": {
                        "description": "seconds until a request is let through",
                        "schema": {"type": "integer"},
                    }
                }
            for status, response in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                content = response.get("content", {}).get("application/json", {})
                ref = content.get("schema", {}).get("$ref", "")
                if not content or ref.endswith("/HTTPValidationError"):
                    response["content"] = _error_content()
                    if response.get("description") in (None, "", "Validation Error"):
                        response["description"] = DESCRIPTIONS.get(int(status), "error")
            operation["responses"] = dict(sorted(responses.items()))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # in this order: the first refers to the second
        definition = components.pop(unused, None)
        if definition is not None and f'"#/components/schemas/{unused}"' in json.dumps(schema):
            components[unused] = definition


def custom_openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document plus the ingest request schemas (validated by hand in the routes)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description + rate_limits_text(app), routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in {**OPENAPI_MODELS, **STREAMED_MODELS}.items():
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[name] = model_schema
    components["EventOrEventBatch"] = {
        "oneOf": [{"$ref": "#/components/schemas/Event"}, {"$ref": "#/components/schemas/EventBatch"}]
    }
    if "ErrorBody" not in components:
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs", {}))
        components["ErrorBody"] = error_schema
    for name, example in json.loads(RESPONSE_EXAMPLES.read_text()).items():
        components[name]["example"] = example
    document_errors(schema)
    schema["components"]["securitySchemes"] = {"APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    app.openapi_schema = schema
    return schema


def rate_limits_text(app: FastAPI) -> str:
    """The rate limits this app applies, for the document's description."""
    parts = [f"{name}: {text or 'unlimited'}" for name, text in configured_limits(app.state.settings).items()]
    return (
        "\n\nRate limits per API key and route class (the scope a route needs), over a moving window: "
        + "; ".join(parts)
        + ". Past a limit: 429 with `Retry-After` (RATE_LIMIT_INGEST, RATE_LIMIT_READ, RATE_LIMIT_REPORTS)."
    )
