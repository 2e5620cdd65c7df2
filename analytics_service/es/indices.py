"""The index layout: names under INDEX_PREFIX, templates from index_templates/, setup.

Single indices are versioned (`<prefix>-orders-v1`) and read and written through an
alias (`<prefix>-orders`); a new template version gets a new index. Time-based
families get one index per month of the record's timestamp (`<prefix>-events-2026.11`)
that the template puts behind the family alias (`<prefix>-events`), so a retried record
lands in the same index and is caught as a duplicate by `op_type=create`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError

from .bulk import BulkAction, BulkWriter
from .scan import Hits, PitScan

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "index_templates"


@dataclass(frozen=True)
class IndexFamily:
    name: str  # file stem in index_templates/, and the alias suffix
    monthly: bool

    @property
    def version(self) -> int:
        return int(_raw_template(self.name)["version"])


ORDERS = IndexFamily("orders", monthly=False)
ORDER_ITEMS = IndexFamily("order-items", monthly=False)
EVENTS = IndexFamily("events", monthly=True)
ACTIVITY = IndexFamily("activity", monthly=True)
PRODUCTS = IndexFamily("products", monthly=False)
EXPENSES = IndexFamily("expenses", monthly=False)
CUSTOMERS = IndexFamily("customers", monthly=False)  # derived from orders at ingest (ingest/customers.py)
FAMILIES = (ORDERS, ORDER_ITEMS, EVENTS, ACTIVITY, PRODUCTS, EXPENSES, CUSTOMERS)
FAMILY_NAMES = tuple(f.name for f in FAMILIES)
EVERY_FAMILY = "*"  # INDEX_SHARDS / INDEX_REPLICAS: the count for the families not named


@dataclass(frozen=True)
class IndexLayout:
    """Primary shards and replicas per family (settings INDEX_SHARDS, INDEX_REPLICAS).

    A family named in neither map (nor under "*") keeps its template's: one shard, and
    replicas auto-expanded to 0-1 (a replica once a second node joins).
    """

    shards: Mapping[str, int] = field(default_factory=dict)
    replicas: Mapping[str, int] = field(default_factory=dict)

    def shards_of(self, family: IndexFamily) -> int | None:
        return self.shards.get(family.name, self.shards.get(EVERY_FAMILY))

    def replicas_of(self, family: IndexFamily) -> int | None:
        return self.replicas.get(family.name, self.replicas.get(EVERY_FAMILY))

    def index_settings(self, family: IndexFamily) -> dict[str, Any]:
        """The template's index settings with this layout's counts."""
        settings = dict(_raw_template(family.name)["template"]["settings"])
        shards, replicas = self.shards_of(family), self.replicas_of(family)
        if shards is not None:
            settings["number_of_shards"] = shards
        if replicas is not None:
            settings.pop("auto_expand_replicas", None)
            settings["number_of_replicas"] = replicas
        return settings


@cache
def _raw_template(name: str) -> dict[str, Any]:
    return json.loads((TEMPLATES_DIR / f"{name}.json").read_text())


def _load_template(family: IndexFamily, prefix: str, layout: IndexLayout) -> dict[str, Any]:
    """The template for `prefix` and `layout`, stamped with a checksum of its content.

    Elasticsearch normalises settings when it stores a template, so "is the installed
    one ours?" is answered by the checksum in `_meta`, not by comparing bodies.
    """
    raw = _raw_template(family.name)
    raw = {**raw, "template": {**raw["template"], "settings": layout.index_settings(family)}}
    text = json.dumps(raw, sort_keys=True).replace("{{prefix}}", prefix)
    template = json.loads(text)
    template["_meta"]["checksum"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return template


class IndexNames:
    """Every index, alias and template name, derived from the prefix, and the templates
    for the layout."""

    def __init__(self, prefix: str, layout: IndexLayout | None = None) -> None:
        self.prefix = prefix
        self.layout = layout or IndexLayout()

    def template(self, family: IndexFamily) -> dict[str, Any]:
        return _load_template(family, self.prefix, self.layout)

    def alias(self, family: IndexFamily) -> str:
        return f"{self.prefix}-{family.name}"

    def template_name(self, family: IndexFamily) -> str:
        return f"{self.prefix}-{family.name}"

    def versioned(self, family: IndexFamily) -> str:
        """`<prefix>-orders-v3`, or `<prefix>-orders-v3-3shards` when the layout changes the
        template's shard count (a new index: the count of a live one cannot change)."""
        name = f"{self.prefix}-{family.name}-v{family.version}"
        shards = self.layout.shards_of(family)
        if shards is not None and shards != _raw_template(family.name)["template"]["settings"]["number_of_shards"]:
            name += f"-{shards}shards"
        return name

    def monthly(self, family: IndexFamily, when: datetime) -> str:
        return f"{self.prefix}-{family.name}-{when:%Y.%m}"

    def all_pattern(self) -> str:
        return f"{self.prefix}-*"


def _template_differs(installed: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return installed.get("version") != wanted["version"] or installed.get("_meta") != wanted["_meta"]


async def template_status(es: AsyncElasticsearch, names: IndexNames) -> dict[str, str]:
    """Per family: 'ok', 'missing' or 'outdated'."""
    status: dict[str, str] = {}
    for family in FAMILIES:
        try:
            found = await es.indices.get_index_template(name=names.template_name(family))
        except NotFoundError:
            status[family.name] = "missing"
            continue
        installed = found["index_templates"][0]["index_template"]
        wanted = names.template(family)
        status[family.name] = "outdated" if _template_differs(installed, wanted) else "ok"
    return status


async def setup_indices(es: AsyncElasticsearch, names: IndexNames) -> list[str]:
    """Install templates and create the indices and aliases; idempotent.

    A single-index family whose template version went up gets a new index
    (`-v<version>`): its documents are copied over and the alias moved (see
    `migrate_family`). Returns what was changed (empty when everything was in place).
    """
    changes: list[str] = []
    for family in FAMILIES:
        wanted = names.template(family)
        name = names.template_name(family)
        try:
            found = await es.indices.get_index_template(name=name)
            installed = found["index_templates"][0]["index_template"]
        except NotFoundError:
            installed = None
        if installed is None or _template_differs(installed, wanted):
            await es.indices.put_index_template(name=name, **wanted)
            changes.append(f"template {name} v{family.version}")

        if family.monthly:
            # The alias only exists once a monthly index does: create this month's.
            changes += await _create_index(es, names.monthly(family, datetime.now(UTC)), {})
        else:
            current = await _indices_behind(es, names.alias(family))
            target = names.versioned(family)
            if not current:
                changes += await _create_index(es, target, {names.alias(family): {"is_write_index": True}})
            elif current != [target]:
                changes += await migrate_family(es, names, family, current)
        changes += await _apply_replicas(es, names, family)
    if changes:
        await es.cluster.health(index=names.all_pattern(), wait_for_status="yellow", timeout="30s")
    return changes


async def _apply_replicas(es: AsyncElasticsearch, names: IndexNames, family: IndexFamily) -> list[str]:
    """Give the family's live indices the layout's replica count (unlike shards, it can change
    in place); the template gives it to indices created later."""
    replicas = names.layout.replicas_of(family)
    if replicas is None:
        return []
    found = await es.indices.get_settings(index=names.alias(family), flat_settings=True)
    differ = sorted(
        index
        for index, given in found.items()
        if given["settings"].get("index.number_of_replicas") != str(replicas)
        or given["settings"].get("index.auto_expand_replicas", "false") != "false"
    )
    if not differ:
        return []
    await es.indices.put_settings(
        index=",".join(differ), settings={"index.auto_expand_replicas": False, "index.number_of_replicas": replicas}
    )
    return [f"replicas {replicas}: {', '.join(differ)}"]


async def _create_index(es: AsyncElasticsearch, index: str, aliases: dict[str, Any]) -> list[str]:
    if await es.indices.exists(index=index):
        return []
    try:
        await es.indices.create(index=index, aliases=aliases)
    except BadRequestError as exc:  # created concurrently by another process
        if exc.error != "resource_already_exists_exception":
            raise
        return []
    return [f"index {index}"]


async def _indices_behind(es: AsyncElasticsearch, alias: str) -> list[str]:
    try:
        return sorted(await es.indices.get_alias(name=alias))
    except NotFoundError:
        return []


async def migrate_family(
    es: AsyncElasticsearch, names: IndexNames, family: IndexFamily, current: list[str]
) -> list[str]:
    """Move a family to its new template version without editing a live mapping.

    The new index is created from the new template and every document is copied with
    its version (`external_gte`) while writes still reach the old indices. Then the old
    indices are made read-only (writers get a block error, which the bulk writer retries
    for a few seconds), copied once more to catch what reached them meanwhile, and the
    alias is moved in one atomic step: no write is missed, and no copy can overwrite a
    write that reached the new index. The old indices are kept, read-only (delete them
    once satisfied); reads through the alias see only the new one. Order lines beyond
    their order's line count (left by writers before orders converged) are not copied.
    """
    alias, target = names.alias(family), names.versioned(family)
    old = [index for index in current if index != target]
    keep = _lines_of_stored_states(es, names) if family is ORDER_ITEMS else None
    changes = await _create_index(es, target, {})
    copied = await copy_documents(es, current, target, keep)
    if old:
        await es.indices.put_settings(index=",".join(old), settings={"index.blocks.write": True})
        copied += await copy_documents(es, current, target, keep)
    await es.indices.update_aliases(
        actions=[
            *({"remove": {"index": index, "alias": alias}} for index in old),
            {"add": {"index": target, "alias": alias, "is_write_index": True}},
        ]
    )
    return [*changes, f"migrated {alias}: {', '.join(current)} -> {target} ({copied} document copies)"]


def _lines_of_stored_states(es: AsyncElasticsearch, names: IndexNames) -> Callable[[Hits], Awaitable[Hits]]:
    """A copy filter for order lines: drop a line numbered beyond its order's `item_count`
    (a phantom of an older state); a line whose order is not found is kept."""

    async def keep(hits: Hits) -> Hits:
        ids = sorted({f"{h['_source']['store_id']}:{h['_source']['order_id']}" for h in hits})
        found = await es.mget(index=names.alias(ORDERS), ids=ids, source_includes=["item_count"])
        counts = {d["_id"]: int(d["_source"].get("item_count") or 0) for d in found["docs"] if d.get("found")}
        return [
            h
            for h in hits
            if h["_source"]["line"]
            <= counts.get(f"{h['_source']['store_id']}:{h['_source']['order_id']}", h["_source"]["line"])
        ]

    return keep


async def copy_documents(es: AsyncElasticsearch, sources: list[str], target: str, keep=None, page: int = 2000) -> int:
    """Copy every document of `sources` into `target`, keeping ids and versions.

    The server core has no `_reindex`: a point in time is read page by page (`PitScan`)
    and written with the bulk writer. `keep` (async, a page of hits -> the hits to copy)
    filters what is copied.
    """
    sources = [s for s in sources if s != target]
    if not sources:
        return 0
    writer = BulkWriter(es)
    scan = PitScan(
        es, ",".join(sources), None, ["_shard_doc"], None, page_size=page, version=True, ignore_unavailable=False
    )
    copied = 0
    try:
        await scan.open()
        async with aclosing(scan.hit_pages(await scan.page(None))) as pages:
            async for hits in pages:
                copied += await _write_copies(writer, target, await keep(hits) if keep is not None else hits)
        return copied
    finally:
        await scan.close()


async def _write_copies(writer: BulkWriter, target: str, hits: Hits) -> int:
    """Index `hits` into `target` with their ids and versions (`external_gte`): how many."""
    if not hits:
        return 0
    actions = [
        BulkAction("index", target, h["_id"], h["_source"], {"version": h["_version"], "version_type": "external_gte"})
        for h in hits
    ]
    failed = [res for res in await writer.write(actions) if not res.ok and not res.conflict]
    if failed:
        raise RuntimeError(f"copying into {target} failed: {failed[0].error_type}: {failed[0].error_reason}")
    return len(hits)


class IndexGuard:
    """Makes sure templates, indices and aliases are in place before the first write.

    A write to a monthly index that does not exist yet auto-creates it from its
    template; without the template Elasticsearch would guess the mapping, so no
    document is written until the templates are known to be installed.
    """

    def __init__(self, es: AsyncElasticsearch, names: IndexNames, auto_setup: bool) -> None:
        self.es = es
        self.names = names
        self.auto_setup = auto_setup
        self.ready = False
        self._lock = asyncio.Lock()

    async def ensure(self) -> None:
        if self.ready:
            return
        async with self._lock:
            if self.ready:
                return
            status = await template_status(self.es, self.names)
            for family in FAMILIES:
                if not family.monthly and not await self.es.indices.exists_alias(name=self.names.alias(family)):
                    status[family.name] = "index missing"
            if any(s != "ok" for s in status.values()):
                if not self.auto_setup:
                    from ..errors import ApiError

                    raise ApiError(
                        503,
                        "index templates are missing or outdated: run `python -m analytics_service setup`",
                        code="setup_required",
                        details=[status],
                    )
                log.info("installing index templates: %s", await setup_indices(self.es, self.names))
            self.ready = True
