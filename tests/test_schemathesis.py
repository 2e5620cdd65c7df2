"""Schemathesis against the app's own OpenAPI: every operation, in-process, on the real node.

Each operation gets EXAMPLES generated requests (valid and invalid ones, a fixed seed),
sent to the ASGI app with an admin key, a store-bound admin key or a store-bound read
key, and every response is checked: no 5xx, the body matches the documented schema, the
status is documented, and so is the Content-Type. Every finding is collected (the run
does not stop at the first one) and printed; any finding fails the operation's test.

The indices start with a small generated store, and the ingest operations run first,
so the analytics, reports and exports calls read both sane and hostile records.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from analytics_service.app import create_app
from analytics_service.config import Settings
from tests.conftest import KEYS, generate_records, headers, make_settings

SEED = 20261107
EXAMPLES = 50  # per operation
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]

# Keys the examples are sent with: all stores, bound to one store, and none at all.
FUZZ_KEYS: dict[str, str | None] = {
    "admin": KEYS["admin"]["key"],
    "admin_s1": "test-admin-s1-key",
    "read_s1": KEYS["read_s1"]["key"],
    "none": None,
}

# Operation labels, from the document itself (no node needed to list them).
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, ops in create_app(Settings(api_keys="[]")).openapi()["paths"].items()
    for method in ops
]

# Bounded by the example count (about 90 s here), not by a timed assertion.
TALLY: dict[str, Any] = {"examples": Counter(), "statuses": Counter(), "findings": {}, "started": None}


@pytest.fixture(scope="module")
def api(es_connection, prefix, tmp_path_factory):
    """The schema bound to the app (its lifespan started once by schemathesis' ASGI client)."""
    TALLY["started"] = time.monotonic()
    keys = [*KEYS.values(), {"key": FUZZ_KEYS["admin_s1"], "scopes": ["admin"], "store_id": "s1"}]
    # The live stream ends after half a second, so that each of its examples gets a whole answer.
    settings = make_settings(
        es_connection, prefix, tmp_path_factory.mktemp("fuzz"), api_keys=json.dumps(keys), live_stream_max_seconds=0.5
    )
    app = create_app(settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The key is chosen per example (FUZZ_KEYS), not generated: invalid data then always meets a valid key.
    schema.config.generation.update(with_security_parameters=False)
    _seed_data(app)
    yield schema
    asgi.shutdown_lifespans()


def _seed_data(app) -> None:
    """A small generated store, ingested through the API so the analytics have data to read."""
    client = asgi.get_client(app)
    records = generate_records(orders=120, activity=400, days=60, store_id="s1")
    routes = {
        "products": "products/index",
        "orders": "orders/index",
        "events": "events/track",
        "activities": "user-activity/index",
        "expenses": "expenses/index",
    }
    for kind, route in routes.items():
        r = client.post(
            f"http://{asgi.HOST}/api/v1/analytics/{route}",
            json={kind: records[kind]},
            headers=headers("ingest"),
            params={"refresh": "wait_for"},
        )
        assert r.status_code == 200, r.text


def _finding_key(failure: Failure, status: int) -> str:
    return f"{type(failure).__name__}: {failure.title} (status {status})"


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_its_openapi(api, label):
    operation = api[label.split(" ", 1)[1]][label.split(" ", 1)[0]]
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    findings: dict[str, str] = {}

    @seed(SEED)
    @hsettings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, key=st.sampled_from(sorted(FUZZ_KEYS)))
    def run(case, key):
        TALLY["examples"][label] += 1
        response = case.call(headers={"X-API-Key": FUZZ_KEYS[key]} if FUZZ_KEYS[key] else None)
        TALLY["statuses"][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.setdefault(_finding_key(failure, response.status_code), f"key={key}\n{group.args[0][:3000]}")
        except Failure as failure:
            findings.setdefault(_finding_key(failure, response.status_code), f"key={key}\n{failure}"[:3000])

    run()
    TALLY["findings"][label] = len(findings)
    assert not findings, f"{label}: {len(findings)} finding(s)\n\n" + "\n\n".join(
        f"== {name}\n{detail}" for name, detail in findings.items()
    )


def test_every_operation_got_examples(api):
    """Runs last: every operation of the document got examples (and the run's figures are printed)."""
    seconds = time.monotonic() - TALLY["started"]
    ran = TALLY["examples"]
    print(
        f"\nschemathesis: {len(ran)} of {len(OPERATIONS)} operations, {sum(ran.values())} examples, "
        f"{sum(TALLY['findings'].values())} findings, {seconds:.0f} s; "
        f"statuses {dict(sorted(TALLY['statuses'].items()))}"
    )
    assert set(ran) == set(OPERATIONS), f"operations without examples: {sorted(set(OPERATIONS) - set(ran))}"
