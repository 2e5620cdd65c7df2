"""Index layout settings (README "Scaling out"): another shard count moves a single-index
family to a new index by the migration's copy-and-switch; replicas change in place."""

from __future__ import annotations

from analytics_service.es.client import index_names
from analytics_service.es.indices import setup_indices
from tests.conftest import post_records, with_async_es
from tests.test_index_migration import order


def run_setup(settings) -> list[str]:
    return with_async_es(settings, lambda es: setup_indices(es, index_names(settings)))


def test_another_shard_count_moves_the_family_to_a_new_index(client, es, settings, prefix):
    """INDEX_SHARDS for a single-index family: a new `-v<version>-<n>shards` index, filled by
    the same copy-and-switch; INDEX_REPLICAS changes the live indices in place."""
    orders = [order(f"s-{n}", "paid", "2026-05-04T00:00:00Z") for n in range(12)]
    assert post_records(client, "orders", orders).json()["indexed"] == 12
    es.indices.refresh(index=f"{prefix}-orders")
    before = es.count(index=f"{prefix}-orders")["count"]
    (current,) = es.indices.get_alias(name=f"{prefix}-orders")

    resized = settings.model_copy(update={"index_shards": {"orders": 2}, "index_replicas": {"expenses": 0}})
    changes = run_setup(resized)
    target = f"{current}-2shards"
    assert any(c.startswith(f"migrated {prefix}-orders: {current} -> {target}") for c in changes), changes
    assert list(es.indices.get_alias(name=f"{prefix}-orders")) == [target]
    assert es.indices.get_settings(index=target)[target]["settings"]["index"]["number_of_shards"] == "2"
    es.indices.refresh(index=target)
    assert es.count(index=f"{prefix}-orders")["count"] == before
    (expenses,) = es.indices.get_alias(name=f"{prefix}-expenses")
    given = es.indices.get_settings(index=expenses)[expenses]["settings"]["index"]
    assert (given["number_of_replicas"], given.get("auto_expand_replicas")) == ("0", "false")
    assert any(c == f"replicas 0: {expenses}" for c in changes), changes
    assert run_setup(resized) == []  # idempotent
    # Writes go on through the alias into the new index.
    later = post_records(client, "orders", [order("s-0", "shipped", "2026-05-05T00:00:00Z")]).json()
    assert later["indexed"] == 1
    assert es.get(index=target, id="default:s-0")["_source"]["status"] == "shipped"
