"""The bulk writer against the real node, behind a proxy that injects back-pressure.

The proxy forwards every request to Elasticsearch unchanged, except that it answers
some `_bulk` requests with 429/503 as a whole, and for others withholds one action
from Elasticsearch and reports it as rejected with 429 (what a full write queue does).
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from elasticsearch import AsyncElasticsearch

from analytics_service.es.bulk import BulkAction, BulkWriter
from analytics_service.metrics import REGISTRY


class FaultyProxy:
    def __init__(self, target: str, auth: tuple[str, str] | None, plan: list[str]) -> None:
        """`plan`: what to do with each successive _bulk request: 'ok', '429', '503', 'reject-last'."""
        self.target = target
        self.auth = auth
        self.plan = list(plan)
        self.bulk_calls = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = "ok"
                if self.path.split("?")[0].endswith("/_bulk"):
                    proxy.bulk_calls += 1
                    action = proxy.plan.pop(0) if proxy.plan else "ok"
                if action in ("429", "503"):
                    self._reply(
                        int(action), {"error": {"type": "es_rejected_execution_exception"}, "status": int(action)}
                    )
                    return
                withheld = None
                if action == "reject-last":
                    lines = body.decode().strip().split("\n")
                    header = json.loads(lines[-2]) if len(lines) >= 2 else json.loads(lines[-1])
                    op = next(iter(header))
                    keep = lines[:-2] if op != "delete" else lines[:-1]
                    withheld = op
                    if not keep:  # the only action: nothing reaches Elasticsearch
                        self._reply(
                            200,
                            {
                                "errors": True,
                                "took": 0,
                                "items": [
                                    {
                                        op: {
                                            "status": 429,
                                            "error": {
                                                "type": "es_rejected_execution_exception",
                                                "reason": "write queue full",
                                            },
                                        }
                                    }
                                ],
                            },
                        )
                        return
                    body = ("\n".join(keep) + "\n").encode()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                with httpx.Client(auth=proxy.auth, timeout=30) as client:
                    r = client.request(self.command, proxy.target + self.path, content=body, headers=headers)
                payload = r.content
                if withheld:
                    data = r.json()
                    data["items"].append(
                        {
                            withheld: {
                                "status": 429,
                                "error": {"type": "es_rejected_execution_exception", "reason": "write queue full"},
                            }
                        }
                    )
                    data["errors"] = True
                    payload = json.dumps(data).encode()
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _reply(self, status: int, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _auth(es_connection) -> tuple[str, str] | None:
    return es_connection["options"].get("basic_auth")


def _run(proxy_url: str, actions: list[BulkAction], **writer_options):
    async def go():
        client = AsyncElasticsearch(proxy_url, max_retries=0)
        try:
            writer = BulkWriter(client, initial_backoff=0.01, max_backoff=0.05, **writer_options)
            return await writer.write(actions, refresh="wait_for")
        finally:
            await client.close()

    return asyncio.run(go())


@pytest.fixture()
def index(es, prefix):
    name = f"{prefix}-bulk-scratch"
    es.indices.create(index=name, mappings={"properties": {"n": {"type": "integer"}}})
    yield name
    es.indices.delete(index=name)


def docs(index: str, n: int, op: str = "create") -> list[BulkAction]:
    return [BulkAction(op, index, f"d{i}", {"n": i}) for i in range(n)]


def retries_counted(reason: str) -> float:
    """analytics_bulk_retries_total{reason} as GET /metrics shows it."""
    return REGISTRY.get_sample_value("analytics_bulk_retries_total", {"reason": reason}) or 0.0


def test_whole_request_rejections_are_retried(es_connection, es, index):
    before = {reason: retries_counted(reason) for reason in ("429", "503")}
    proxy = FaultyProxy(es_connection["url"], _auth(es_connection), ["429", "503", "ok"])
    try:
        results = _run(proxy.url, docs(index, 10))
    finally:
        proxy.close()
    assert [r.status for r in results] == [201] * 10
    assert proxy.bulk_calls == 3
    assert {reason: retries_counted(reason) - n for reason, n in before.items()} == {"429": 1, "503": 1}
    assert es.count(index=index)["count"] == 10


def test_rejected_items_are_resent_alone(es_connection, es, index):
    before = retries_counted("items")
    proxy = FaultyProxy(es_connection["url"], _auth(es_connection), ["reject-last", "ok"])
    try:
        results = _run(proxy.url, docs(index, 5))
    finally:
        proxy.close()
    assert all(r.ok for r in results) and proxy.bulk_calls == 2
    assert retries_counted("items") - before == 1  # the one rejected item, sent again
    assert sorted(h["_id"] for h in es.search(index=index, size=10)["hits"]["hits"]) == [f"d{i}" for i in range(5)]


def test_items_still_rejected_after_the_retries_are_reported_not_dropped(es_connection, es, index):
    proxy = FaultyProxy(es_connection["url"], _auth(es_connection), ["reject-last"] * 10)
    try:
        results = _run(proxy.url, docs(index, 3), max_retries=2)
    finally:
        proxy.close()
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].status == 429 and results[2].retryable
    assert es.count(index=index)["count"] == 2


def test_chunks_by_count_and_size_keep_the_order_of_results(es_connection, es, index):
    proxy = FaultyProxy(es_connection["url"], _auth(es_connection), [])
    actions = [*docs(index, 25), BulkAction("create", index, "d3", {"n": 3})]  # a duplicate at the end
    try:
        results = _run(proxy.url, actions, chunk_actions=7, chunk_bytes=400)
    finally:
        proxy.close()
    assert proxy.bulk_calls >= 4
    assert [r.status for r in results[:25]] == [201] * 25
    assert results[25].status == 409 and results[25].conflict


def test_per_item_errors_are_returned(es_connection, es, index):
    proxy = FaultyProxy(es_connection["url"], _auth(es_connection), [])
    try:
        results = _run(
            proxy.url,
            [BulkAction("index", index, "bad", {"n": "not a number"}), BulkAction("index", index, "good", {"n": 1})],
        )
    finally:
        proxy.close()
    assert results[0].status == 400 and results[0].error_type == "document_parsing_exception"
    assert results[0].field == "n"  # named from "failed to parse field [n] ..."
    assert results[1].ok


def test_a_request_refused_as_a_whole_is_split_until_each_bad_action_stands_alone(es_connection, es, index):
    # A negative external version makes Elasticsearch refuse the whole request with 400.
    bad = {2, 7}
    actions = [
        BulkAction("index", index, a.id, a.source, {"version": -5, "version_type": "external"}) if i in bad else a
        for i, a in enumerate(docs(index, 9))
    ]
    proxy = FaultyProxy(es_connection["url"], _auth(es_connection), [])
    try:
        results = _run(proxy.url, actions)
    finally:
        proxy.close()
    assert [i for i, r in enumerate(results) if not r.ok] == sorted(bad)
    assert all(
        results[i].status == 400
        and results[i].error_type == "action_request_validation_exception"
        and not results[i].retryable
        for i in bad
    )
    assert es.count(index=index)["count"] == 9 - len(bad)
    assert proxy.bulk_calls <= 2 * len(actions)


def test_an_id_longer_than_elasticsearch_allows_is_refused_alone_before_sending(es_connection, es, index):
    proxy = FaultyProxy(es_connection["url"], _auth(es_connection), [])
    try:
        results = _run(proxy.url, [*docs(index, 3), BulkAction("create", index, "😀" * 130, {"n": 1})])
    finally:
        proxy.close()
    assert [r.ok for r in results] == [True, True, True, False]
    assert (
        results[3].status == 400 and results[3].error_type == "id_too_long" and "520 bytes" in results[3].error_reason
    )
    assert proxy.bulk_calls == 1 and es.count(index=index)["count"] == 3


def test_a_write_to_an_index_made_read_only_for_a_moment_is_retried(es_connection, es, prefix):
    """`setup` makes the old indices read-only while it migrates a family: writers wait
    (the block is retried like back-pressure) instead of failing."""
    import asyncio

    from analytics_service.config import Settings
    from analytics_service.es.bulk import BulkAction, BulkWriter
    from tests.conftest import with_async_es

    index = f"{prefix}-blocked"
    es.indices.create(index=index, settings={"index.blocks.write": True})

    async def go(client):
        writer = BulkWriter(client, max_retries=6, initial_backoff=0.2)

        async def unblock():
            await asyncio.sleep(1.0)
            await client.indices.put_settings(index=index, settings={"index.blocks.write": False})

        results, _ = await asyncio.gather(writer.write([BulkAction("index", index, "a", {"n": 1})]), unblock())
        return results

    results = with_async_es(Settings(elasticsearch_url=es_connection["url"]), go)
    assert [r.ok for r in results] == [True]
    assert es.get(index=index, id="a")["_source"] == {"n": 1}
