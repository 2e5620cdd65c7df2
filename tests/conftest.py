"""Shared fixtures: one real Elasticsearch node per session, one index prefix per module.

The node is the project's own local node (`analytics_service.devtools.local_es`), started once
and reused when it already runs (e.g. the Quick start's on port 9200). Set
ELASTICSEARCH_URL (and credentials) to test against another cluster instead.

TEST_ES_NODES=3 starts a local three-node cluster on TEST_ES_PORT, +1, +2 instead, and
TEST_INDEX_SHARDS (INDEX_SHARDS's syntax) gives every test's indices that many shards: the
oracle tests' second run (`./dev test`, README "Tests") uses both.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import pytest
import uvicorn
from elasticsearch import AsyncElasticsearch, Elasticsearch
from fastapi.testclient import TestClient

from analytics_service.analytics.params import CommonParams, parse_common
from analytics_service.app import create_app
from analytics_service.auth import Principal
from analytics_service.config import Settings
from analytics_service.devtools import local_es as local
from analytics_service.devtools.local_servers import free_port, pg_bin_dir, postgres_server
from analytics_service.devtools.local_servers import redis_server as local_redis

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SUPERSTORE = SHARED_DATA / "superstore_2019_2022.csv"

# Keys for every auth rule of README "Auth": one per scope, and store-bound ones.
KEYS = {
    "admin": {"key": "test-admin-key", "scopes": ["admin"]},
    "ingest": {"key": "test-ingest-key", "scopes": ["ingest"]},
    "read": {"key": "test-read-key", "scopes": ["read"]},
    "reports": {"key": "test-reports-key", "scopes": ["reports"]},
    "ingest_s1": {"key": "test-ingest-s1-key", "scopes": ["ingest"], "store_id": "s1"},
    "read_s1": {"key": "test-read-s1-key", "scopes": ["read"], "store_id": "s1"},
}


def headers(name: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[name]["key"]}


def analytics_get(client: TestClient, path: str, key: str = "read", **params) -> dict:
    """GET /api/v1/analytics/<path> with one of KEYS; asserts 200 and returns the JSON."""
    r = client.get(f"/api/v1/analytics/{path}", params=params, headers=headers(key))
    assert r.status_code == 200, r.text
    return r.json()


def common_params(start: str, end: str, *, store_id: str | None = None, **given) -> CommonParams:
    """The common parameters of a query object built without a request (a read key of
    `store_id`, or of all stores); `given` sets tz, interval, compare, limit, now, ..."""
    principal = Principal(key_id="test", scopes=frozenset({"read"}), store_id=store_id)
    defaults = {"tz": None, "interval": None, "store_id": None, "channel": None, "compare": None, "limit": None}
    return parse_common(start=start, end=end, principal=principal, **{**defaults, **given})


# What says how an answer was served rather than what it is.
SERVING_FIELDS = ("cached", "as_of", "stale")


def numbers_of(body: dict) -> dict:
    """An analytics answer without its serving fields: two answers of the same data are equal."""
    return {k: v for k, v in body.items() if k not in SERVING_FIELDS}


def assert_bad_parameter(client: TestClient, path: str, params: dict, field: str) -> None:
    """GET /api/v1/analytics/<path> with the read key: a 422 whose first detail names `field`."""
    r = client.get(f"/api/v1/analytics/{path}", params=params, headers=headers("read"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == field


def bad_parameters_test(cases: list[tuple[str, dict, str]]) -> Callable[..., None]:
    """A test of `cases` (path, params, field): each GET is a 422 naming `field` (see assert_bad_parameter)."""

    @pytest.mark.parametrize("path, params, field", cases)
    def test(client: TestClient, path: str, params: dict, field: str) -> None:
        assert_bad_parameter(client, path, params, field)

    return test


def assert_rfm_customers(expected: pd.DataFrame, got: pd.DataFrame) -> pd.DataFrame:
    """The API's RFM customers (`got`) are the oracle's, number for number; returns both, merged."""
    merged = expected.merge(
        got, on="customer_id", how="outer", suffixes=("", "_api"), indicator=True, validate="one_to_one"
    )
    assert (merged["_merge"] == "both").all()
    for column in ("recency_days", "frequency", "r", "f", "m", "segment"):
        assert (merged[column] == merged[f"{column}_api"]).all(), column
    assert (merged["monetary"] - merged["monetary_api"]).abs().max() <= 0.01
    return merged


def _answers(url: str, settings: Settings) -> bool:
    """True when a node with our local credentials answers at `url` (one we or `./dev up` started)."""
    try:
        with Elasticsearch(
            url,
            request_timeout=5,
            max_retries=0,
            **{k: v for k, v in settings.es_client_options().items() if k != "request_timeout"},
        ) as client:
            client.cluster.health()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def es_connection() -> Iterator[dict]:
    """URL and client options of the node the tests use."""
    url = os.environ.get("ELASTICSEARCH_URL")
    started = None
    nodes = 1
    if not url:
        port = int(os.environ.get("TEST_ES_PORT", "9200"))
        nodes = int(os.environ.get("TEST_ES_NODES", "1"))
        data_dir = Path(os.environ.get("ES_LOCAL_DIR", ROOT / "data" / "elasticsearch"))
        url = f"http://127.0.0.1:{port}"
        os.environ["ES_LOCAL_DIR"] = str(data_dir)
        if not _answers(url, Settings(elasticsearch_url=url, es_local_dir=data_dir)):
            started = local.start(port=port, data_dir=data_dir, nodes=nodes, heap="1g" if nodes > 1 else "2g")
            url = started.url
    settings = Settings(elasticsearch_url=url)
    yield {"url": url, "options": settings.es_client_options(), "es_local_dir": settings.es_local_dir}
    if started is not None and os.environ.get("TEST_ES_KEEP") != "1":
        local.stop(port=started.port, data_dir=started.data_dir, nodes=nodes)


@pytest.fixture(scope="session")
def es(es_connection) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_connection["url"], **es_connection["options"])
    yield client
    client.close()


def make_settings(es_connection: dict, prefix: str, tmp: Path, **overrides) -> Settings:
    values = {
        "elasticsearch_url": es_connection["url"],
        "es_local_dir": es_connection["es_local_dir"],
        "index_prefix": prefix,
        "api_keys": json.dumps(list(KEYS.values())),
        "database_url": f"sqlite:///{tmp / 'analytics.db'}",
        "reports_dir": tmp / "reports",
        "redis_url": None,
        "bulk_initial_backoff": 0.05,
        # Tests read their numbers right after ingesting: no stale answers unless a test asks.
        "cache_max_staleness_seconds": 0,
        # A test that reads the live stream to its end (a TestClient does) waits this long at most.
        "live_stream_max_seconds": 30,
        "index_shards": os.environ.get("TEST_INDEX_SHARDS") or None,
        # Tests send far more requests a minute with one key than a client would: no rate limits
        # unless a test sets them (tests/test_operations.py).
        "rate_limit_ingest": "",
        "rate_limit_read": "",
        "rate_limit_reports": "",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def prefix(es: Elasticsearch, request) -> Iterator[str]:
    """A fresh index prefix for the module; its indices and templates are removed after."""
    name = f"t-{uuid.uuid4().hex[:8]}-{request.module.__name__.rsplit('.', 1)[-1].removeprefix('test_')[:20]}"
    name = name.lower().replace("_", "-")
    yield name
    es.indices.delete(index=f"{name}-*", ignore_unavailable=True, allow_no_indices=True, expand_wildcards="all")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{name}-*")


@pytest.fixture(scope="module")
def settings(es_connection, prefix, tmp_path_factory) -> Settings:
    return make_settings(es_connection, prefix, tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def client(settings) -> Iterator[TestClient]:
    """The app, lifespan and all, against the real node."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


# -- reports: a row, and waiting for it ----------------------------------------------------


def request_report(client: TestClient, report_type: str, fmt: str, parameters: dict, key: str = "reports") -> str:
    """POST /api/v1/reports/generate with one of KEYS; asserts 202 and returns the report id."""
    r = client.post(
        "/api/v1/reports/generate",
        headers=headers(key),
        json={"report_type": report_type, "format": fmt, "parameters": parameters},
    )
    assert r.status_code == 202, r.text
    return r.json()["report_id"]


def report_row(client: TestClient, report_id: str, key: str = "reports") -> dict:
    """GET /api/v1/reports/<id> with one of KEYS; asserts 200 and returns the row."""
    r = client.get(f"/api/v1/reports/{report_id}", headers=headers(key))
    assert r.status_code == 200, r.text
    return r.json()


def wait_for_report(
    client: TestClient, report_id: str, states: tuple[str, ...] = ("completed", "failed"), timeout: float = 120
) -> dict:
    """The report's row once its status is one of `states` (fails after `timeout` s)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        row = report_row(client, report_id)
        if row["status"] in states:
            return row
        assert time.monotonic() < deadline, f"report still {row['status']} after {timeout}s: {row}"
        time.sleep(0.2)


# -- analytics data: generated records, ingested through the API ------------------------

INGEST_ROUTES = {
    "products": ("/api/v1/analytics/products/index", "products"),
    "orders": ("/api/v1/analytics/orders/index", "orders"),
    "events": ("/api/v1/analytics/events/track", "events"),
    "activities": ("/api/v1/analytics/user-activity/index", "activities"),
    "expenses": ("/api/v1/analytics/expenses/index", "expenses"),
}


def generate_records(**config) -> dict[str, list[dict]]:
    """All records of a generated store, by kind (see analytics_service.devtools.sample_data)."""
    from analytics_service.devtools.sample_data import SampleConfig, generate

    out: dict[str, list[dict]] = {kind: [] for kind in INGEST_ROUTES}
    for kind, batch in generate(SampleConfig(**config)):
        out[kind].extend(batch)
    return out


def post_records(client: TestClient, kind: str, records: list, key: str = "ingest", refresh: str | None = "wait_for"):
    """POST one batch of a kind of INGEST_ROUTES with one of KEYS; returns the response, unchecked."""
    route, body_key = INGEST_ROUTES[kind]
    params = None if refresh is None else {"refresh": refresh}
    return client.post(route, json={body_key: records}, headers=headers(key), params=params)


def ingest_records(client: TestClient, records: dict[str, list[dict]]) -> None:
    """POST every record through the API (so the numbers are the API's), all accepted."""
    for kind in INGEST_ROUTES:
        batch = records.get(kind, [])
        for i in range(0, len(batch), 2000):
            r = post_records(client, kind, batch[i : i + 2000])
            assert r.status_code == 200, r.text
            body = r.json()
            assert not body["errors"], body["errors"][:3]


# -- a real Redis server for the tests that use REDIS_URL --------------------------------


@contextmanager
def redis_server(workdir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A redis-server of our own on a free port (devtools/local_servers.py): URL, process. Where
    it is not installed the test fails in CI and is skipped elsewhere."""
    import shutil

    if shutil.which("redis-server") is None:
        server_missing("redis-server is not installed")
    with local_redis(workdir) as server:
        yield server


def server_missing(why: str) -> NoReturn:
    """A server a test needs is not installed: a failure in CI (./dev installs it from Debian's
    packages), a skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{why} (./dev installs it from Debian's packages)")
    pytest.skip(f"{why}: run ./dev test, which installs it")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """The session's redis-server (see redis_server)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _):
        yield url


# -- partitioned reads (analytics/requests.py Partitioned) ------------------------------------


@pytest.fixture
def partitions_sent(monkeypatch) -> list[int]:
    """The `num_partitions` of every partitioned terms read the app sends, in order (the
    partitioned reads' left-over check is tested by making their partitions far too small)."""
    from analytics_service.analytics import runner

    sent: list[int] = []
    search = runner.QueryContext._search

    async def spy(self, family, body):
        terms = body.get("aggs", {}).get("values", {}).get("terms", {})
        if "include" in terms:
            sent.append(terms["include"]["num_partitions"])
        return await search(self, family, body)

    monkeypatch.setattr(runner.QueryContext, "_search", spy)
    return sent


# -- a real PostgreSQL server for the reports table (DATABASE_URL=postgresql+psycopg://...) --


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL cluster on a free port (devtools/local_servers.py) with an empty
    database: its SQLAlchemy URL. TEST_POSTGRES_URL uses an existing server instead."""
    if os.environ.get("TEST_POSTGRES_URL"):
        yield os.environ["TEST_POSTGRES_URL"]
        return
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        server_missing("PostgreSQL server binaries are not installed")
    with postgres_server() as port:
        create = [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "analytics_test"]
        subprocess.run(create, check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/analytics_test"


# -- the real Superstore order history (../shared/data, outside the repository) -----------


@pytest.fixture(scope="module")
def superstore_path() -> Path:
    if not SUPERSTORE.is_file():
        pytest.skip(f"{SUPERSTORE} is not there: the Superstore sample lives outside the repository (../shared/data)")
    return SUPERSTORE


def with_async_es(settings: Settings, work: Callable[[AsyncElasticsearch], Awaitable[T]]) -> T:
    """asyncio.run(work(es)) with an async client made for `settings`, closed after."""
    from analytics_service.es.client import make_async_client

    async def go() -> T:
        es = make_async_client(settings)
        try:
            return await work(es)
        finally:
            await es.close()

    return asyncio.run(go())


def run_import(settings: Settings, path: Path, mapping, **kwargs):
    """What `import-csv` does: guard the indices, build an Ingestor, import, publish, close."""
    from analytics_service.es.indices import IndexGuard
    from analytics_service.importers.csv_import import import_csv
    from analytics_service.ingest.service import Ingestor

    async def go(es):
        ingestor = Ingestor.for_settings(es, settings)
        await IndexGuard(es, ingestor.names, auto_setup=True).ensure()
        try:
            return await import_csv(path, mapping, ingestor, progress=False, **kwargs)
        finally:
            await ingestor.finish()

    return with_async_es(settings, go)


@contextmanager
def served(app, log_level: str = "warning") -> Iterator[str]:
    """`app` in a real uvicorn server on a free port, in a thread of this process (so
    monkeypatches apply); yields its base URL and stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def served_api(settings) -> Iterator[str]:
    """The module's app in a real uvicorn server (for streams and browsers); its base URL."""
    with served(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def http(served_api):
    """An HTTP client of `served_api` (the same calls as the TestClient `client`)."""
    import httpx

    with httpx.Client(base_url=served_api, timeout=30) as client:
        yield client


def assert_changes(comparison: dict, current: dict, previous: dict, has_data: bool = True) -> None:
    """`comparison`'s growth and percentage-point figures equal the oracle's
    (`tests.oracle.expected_changes`) for every value of `current`, and it says `has_data`."""
    from tests.oracle import expected_changes

    assert comparison["has_data"] is bool(has_data)
    for name, want in expected_changes(current, previous, has_data).items():
        got = comparison[name]
        if want is None:
            assert got is None, (name, got)
        else:
            # growth of values rounded to 2 decimals, pp of fractions rounded to 4
            assert got == pytest.approx(want, abs=0.011 if name.endswith("_change_pp") else 0.01), (name, got, want)
