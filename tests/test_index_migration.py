"""A new template version: new index, every document copied with its version, alias moved."""

from __future__ import annotations

import copy

from analytics_service.es import indices
from analytics_service.es.client import index_names
from analytics_service.es.indices import setup_indices
from tests.conftest import post_records, with_async_es


def order(order_id: str, status: str, updated_at: str) -> dict:
    return {
        "order_id": order_id,
        "status": status,
        "created_at": "2026-05-01T10:00:00Z",
        "updated_at": updated_at,
        "customer": {"customer_id": "c1"},
        "items": [{"product_id": "p1", "quantity": 2, "unit_price": 5.0}],
    }


def run_setup(settings) -> list[str]:
    return with_async_es(settings, lambda es: setup_indices(es, index_names(settings)))


def test_new_template_version_migrates_without_losing_or_reviving_anything(client, es, settings, prefix, monkeypatch):
    orders = [order(f"m-{n}", "shipped", "2026-05-03T00:00:00Z") for n in range(25)]
    assert post_records(client, "orders", orders).json()["indexed"] == 25
    post_records(client, "expenses", [{"expense_id": "x1", "date": "2026-05-01", "category": "rent", "amount": 100.0}])
    version_before = es.get(index=f"{prefix}-orders", id="default:m-0")["_version"]
    # A phantom line, as writers before converging orders could leave: line 2 of a 1-line order.
    line = es.get(index=f"{prefix}-order-items", id="default:m-2:1")
    es.index(
        index=f"{prefix}-order-items",
        id="default:m-2:2",
        document={**line["_source"], "line": 2},
        version=line["_version"],
        version_type="external_gte",
        refresh=True,
    )

    original = indices._raw_template
    old = {family: original(family)["version"] for family in ("orders", "order-items", "expenses")}
    new = {family: version + 1 for family, version in old.items()}

    def bumped(name: str) -> dict:
        template = copy.deepcopy(original(name))
        if name in new:
            template["version"] = new[name]
            template["template"]["mappings"]["properties"]["migration_note"] = {"type": "keyword"}
        return template

    monkeypatch.setattr(indices, "_raw_template", bumped)
    changes = run_setup(settings)
    assert any(c.startswith(f"migrated {prefix}-orders:") for c in changes), changes
    assert any(c.startswith(f"migrated {prefix}-expenses:") for c in changes), changes

    for family, count, old_count in (("orders", 25, 25), ("order-items", 25, 26), ("expenses", 1, 1)):
        assert list(es.indices.get_alias(name=f"{prefix}-{family}")) == [f"{prefix}-{family}-v{new[family]}"]
        es.indices.refresh(index=f"{prefix}-{family}")
        assert es.count(index=f"{prefix}-{family}")["count"] == count  # the phantom line is not copied
        # kept, read-only, until an operator drops it
        retired = f"{prefix}-{family}-v{old[family]}"
        assert es.count(index=retired)["count"] == old_count
        assert es.indices.get_settings(index=retired)[retired]["settings"]["index"]["blocks"]["write"] == "true"
    assert not es.exists(index=f"{prefix}-order-items", id="default:m-2:2")
    orders_v = f"{prefix}-orders-v{new['orders']}"
    new_mapping = es.indices.get_mapping(index=orders_v)[orders_v]["mappings"]
    assert "migration_note" in new_mapping["properties"]
    assert es.get(index=f"{prefix}-orders", id="default:m-0")["_version"] == version_before

    # Versions came along: an older state is still refused, a newer one still wins.
    stale = post_records(client, "orders", [order("m-0", "paid", "2026-05-02T00:00:00Z")]).json()
    assert stale["stale"] == 1
    newer = post_records(client, "orders", [order("m-1", "delivered", "2026-05-09T00:00:00Z")]).json()
    assert newer["indexed"] == 1
    assert es.get(index=orders_v, id="default:m-1")["_source"]["status"] == "delivered"
    assert run_setup(settings) == []  # idempotent once migrated
