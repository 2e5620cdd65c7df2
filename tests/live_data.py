"""Records placed a few minutes before now, for the live stream and dashboard page tests:
generated records re-timed and given fresh ids, so they are valid and realistic."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import generate_records

ORDER_TIMES = ("created_at", "updated_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at")


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def order_at(template: dict[str, Any], at: datetime, order_id: str, **changes: Any) -> dict[str, Any]:
    """`template` placed at `at` (every time it carries), under a new id."""
    order = copy.deepcopy(template)
    for name in ORDER_TIMES:
        if name in order:
            order[name] = iso(at)
    order.update(order_id=order_id, **changes)
    return order


def activity_at(template: dict[str, Any], at: datetime, activity_id: str, session_id: str) -> dict[str, Any]:
    record = copy.deepcopy(template)
    record.update(activity_id=activity_id, timestamp=iso(at), session_id=session_id)
    return record


def store_with_recent_records(now: datetime, seed: int = 11) -> dict[str, list[dict[str, Any]]]:
    """A generated store over the 5 days before today, plus 12 orders 7..84 minutes before `now`
    and 20 activity records (0.75..10 minutes before it, in 8 sessions), all of store `default`."""
    records = generate_records(seed=seed, orders=80, activity=300, days=5)
    templates = generate_records(seed=seed + 1, orders=20, activity=40, days=5)
    records["orders"] += [
        order_at(templates["orders"][k], now - timedelta(minutes=7 * (k + 1)), f"live-o{seed}-{k}") for k in range(12)
    ]
    records["activities"] += [
        activity_at(
            templates["activities"][k], now - timedelta(seconds=30 * k + 45), f"live-a{seed}-{k}", f"live-s{k % 8}"
        )
        for k in range(20)
    ]
    return records
