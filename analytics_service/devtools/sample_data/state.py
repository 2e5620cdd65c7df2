"""The state of one generation run, shared by the parts that generate each kind of record."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .base import SampleConfig
from .helpers import _mix64
from .reference import EMAIL_DOMAINS, NAMES


class StoreState:
    """Attributes set by `_Store` (generator.py), and the helpers that orders and activity share."""

    # run settings (_Store.__init__)
    cfg: SampleConfig
    seed: int
    store: str
    tz: ZoneInfo
    end_date: date
    start_date: date
    end_ts: int
    start_ts: int
    base: str
    foreign: str
    fx_range: tuple[float, float]
    r_plan: random.Random
    r_cat: random.Random
    r_ord: random.Random
    r_act: random.Random
    r_exp: random.Random
    cust_salt: int
    times: list[str]
    first_day: int
    day_prefix: list[str]
    n_customers: int
    queue: dict[int, list[int]]
    counters: dict[str, int]
    generated: dict[str, int]
    # lookup tables (_Store._tables): weighted picks built by helpers._table
    geo_table: list[Any]  # (country, region, state, city, postal code)
    activity_geo_table: list[dict[str, Any]]
    de_share: float
    segment_table: list[Any]
    pay_tables: dict[str, list[Any]]  # (method, failure rate) per "BR" / "default"
    channel_table: list[Any]
    utm_table: list[Any]
    device_table: list[Any]
    app_device_table: list[Any]
    hour_table: list[Any]
    rating_table: list[Any]
    lines_table: list[Any]
    qty_table: list[Any]
    installments_br: list[Any]
    # the catalog (_Store._catalog)
    products: list[dict[str, Any]]  # the line fields of each product
    product_info: list[tuple[str, str, str, float, float | None]]  # id, category, sub, price, cost
    by_sub: dict[str, list[int]]
    catalog_records: list[dict[str, Any]]
    category_urls: dict[str, str]
    product_table: list[Any]  # product indexes, by popularity
    search_vocab: list[tuple[str, str]]
    aov_estimate: float
    # per run (_Store.run)
    week: dict[str, float]
    order_seq: int
    p_review: float

    # -- helpers ------------------------------------------------------------------------

    def _iso(self, ts: int) -> str:
        """ISO 8601 UTC of an epoch second, by table lookups (the hot path of the generator)."""
        day = ts // 86400
        offset = day - self.first_day
        if 0 <= offset < len(self.day_prefix):  # a negative offset would index from the end
            return self.day_prefix[offset] + self.times[ts - day * 86400]
        return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%dT") + self.times[ts - day * 86400]

    def _customer(self, cid: int) -> tuple[dict[str, Any], str, int]:
        """(customer object, country, geo index), derived from the id alone (nothing stored)."""
        h = _mix64(cid ^ self.cust_salt)
        gi = (h & 0xFFFF) * len(self.geo_table) >> 16
        country, region, state, city, postal = self.geo_table[gi]
        firsts, lasts = NAMES[country]
        first, first_ascii = firsts[(h >> 16) % len(firsts)]
        last, last_ascii = lasts[(h >> 24) % len(lasts)]
        email = f"{first_ascii}.{last_ascii}{(h >> 32) % 1000}@{EMAIL_DOMAINS[(h >> 42) % len(EMAIL_DOMAINS)]}"
        return (
            {
                "customer_id": f"c{self.seed}-{cid + 1:06d}",
                "email": email,
                "name": f"{first} {last}",
                "segment": self.segment_table[(h >> 48) % 100],
                "country": country,
                "region": region,
                "state": state,
                "city": city,
                "postal_code": postal,
            },
            country,
            gi,
        )

    def _schedule(self, day: int, entry: int) -> None:
        if day < self.cfg.days:
            self.queue.setdefault(day, []).append(entry)

    def _gap(self) -> int:
        """Days until a returning customer's next order: weeks to months."""
        return 9 + int(self.r_ord.expovariate(1 / 38.0))

    def _event(
        self,
        etype: str,
        ts: int,
        user: str,
        order_id: str,
        value: float,
        props: dict[str, Any],
        currency: str | None,
        fx: float | None,
    ) -> dict[str, Any]:
        self.counters["event"] += 1
        rec = {
            "event_id": f"ev{self.seed}-{self.counters['event']}",
            "event_type": etype,
            "timestamp": self._iso(ts),
            "user_id": user,
            "store_id": self.store,
            "source": "server",
            "order_id": order_id,
            "value": value,
            "properties": props,
        }
        if currency is not None:
            rec["currency"] = currency
            rec["fx_rate"] = fx
        return rec
