"""`generate(config)`: the catalog, the daily plan and the run that yields the batches (see the package docstring)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .activity import ActivityMixin
from .base import BATCH_SIZE, KINDS, SampleConfig
from .expenses import ExpensesMixin
from .helpers import _allocate, _mix64, _slug, _table, _time_strings
from .orders import OrdersMixin
from .reference import (
    APP_DEVICES,
    CATALOG,
    CATEGORY_WEIGHT,
    CHANNELS,
    COUNTRY_MIX,
    DEVICES,
    GEO,
    HOME_BY_ZONE,
    HOUR_WEIGHTS,
    MODELS,
    MONTH_FACTOR,
    PAYMENT_MIX,
    RATINGS,
    SEGMENTS,
    UTMS,
    WEEKDAY_FACTOR,
)


class _Store(OrdersMixin, ActivityMixin, ExpensesMixin):
    """All state of one generation run; `run()` yields the batches."""

    def __init__(self, config: SampleConfig) -> None:
        if config.orders < 0 or config.days < 1:
            raise ValueError("orders must be >= 0 and days >= 1")
        if config.activity_count < 0:
            raise ValueError("activity must be >= 0")
        self.cfg = config
        self.seed = config.seed
        self.store = config.store_id
        self.tz = ZoneInfo(config.timezone)
        self.end_date = config.end_date
        self.start_date = self.end_date - timedelta(days=config.days)
        self.end_ts = int(
            datetime(self.end_date.year, self.end_date.month, self.end_date.day, tzinfo=self.tz).timestamp()
        )
        self.start_ts = int(
            datetime(self.start_date.year, self.start_date.month, self.start_date.day, tzinfo=self.tz).timestamp()
        )
        self.base = config.base_currency
        self.foreign = "EUR" if self.base != "EUR" else "USD"
        self.fx_range = (1.05, 1.12) if self.foreign == "EUR" else (0.89, 0.95)
        # Independent streams, so that e.g. more activity does not change the orders.
        s = config.seed
        self.r_plan = random.Random(f"{s}:plan")
        self.r_cat = random.Random(f"{s}:catalog")
        self.r_ord = random.Random(f"{s}:orders")
        self.r_act = random.Random(f"{s}:activity")
        self.r_exp = random.Random(f"{s}:expenses")
        self.cust_salt = _mix64(s * 7919 + 17)
        self.times = _time_strings()
        self.first_day = self.start_ts // 86400 - 3
        self.day_prefix = [
            datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%dT")
            for day in range(self.first_day, self.end_ts // 86400 + 3)
        ]
        self._tables()
        self._catalog()
        self.n_customers = 0
        self.queue: dict[int, list[int]] = {}
        self.counters = {"event": 0, "activity": 0, "session": 0, "anon": 0}
        self.generated = dict.fromkeys(KINDS, 0)

    # -- set-up -----------------------------------------------------------------------

    def _tables(self) -> None:
        home = HOME_BY_ZONE.get(self.cfg.timezone, "US")
        mix = COUNTRY_MIX[home]
        geo_items = []
        for country, share in mix.items():
            places = GEO[country]
            total = sum(p[4] for p in places)
            for region, state, city, postal, weight in places:
                geo_items.append(((country, region, state, city, postal), share * weight / total))
        self.geo_table = _table(geo_items, 2048)
        self.activity_geo_table = [{"country": g[0], "region": g[1], "city": g[3]} for g in self.geo_table]
        self.de_share = mix["DE"]
        self.segment_table = _table(SEGMENTS, 100)
        self.pay_tables = {k: _table([((m, f), w) for m, w, f in v], 200) for k, v in PAYMENT_MIX.items()}
        self.channel_table = _table(CHANNELS, 100)
        self.utm_table = _table(UTMS, 200)
        self.device_table = _table(DEVICES, 200)
        self.app_device_table = _table(APP_DEVICES, 100)
        self.hour_table = _table(list(enumerate(HOUR_WEIGHTS)), 1000)
        self.rating_table = _table(RATINGS, 100)
        self.lines_table = _table([(1, 50), (2, 25), (3, 13), (4, 8), (5, 4)], 100)
        self.qty_table = _table([(1, 70), (2, 18), (3, 8), (4, 4)], 100)
        self.installments_br = _table([(1, 40), (2, 10), (3, 15), (4, 5), (5, 5), (6, 10), (10, 10), (12, 5)], 100)

    def _catalog(self) -> None:
        """Products: static line data, popularity, and the catalog records."""
        r = self.r_cat
        n = self.cfg.product_count
        subs: list[tuple[str, str, list[str], float, float, list[str], float]] = []
        for cat, (brands, subcats) in CATALOG.items():
            for sub, (median, sd, nouns) in subcats.items():
                subs.append((cat, sub, brands, median, sd, nouns, CATEGORY_WEIGHT[cat]))
        sub_table = _table([(i, s[6]) for i, s in enumerate(subs)], 1000)
        ranks = list(range(1, n + 1))
        r.shuffle(ranks)
        self.products = []  # the line fields of each product
        self.product_info = []  # id, category, sub, price, cost
        self.by_sub = {}
        weights: list[float] = []
        self.catalog_records = []
        names_seen: set[str] = set()
        expected_units = self.cfg.orders * 1.96 * 1.46 / max(1, self.cfg.days)
        for i in range(n):
            si = sub_table[int(r.random() * len(sub_table))] if i >= len(subs) else i
            cat, sub, brands, median, sd, nouns, _ = subs[si]
            brand = brands[int(r.random() * len(brands))]
            noun = nouns[int(r.random() * len(nouns))]
            name = f"{brand} {noun} {MODELS[int(r.random() * len(MODELS))]}"
            k = 2
            while name in names_seen:
                name = f"{brand} {noun} {MODELS[int(r.random() * len(MODELS))]} {k}"
                k += 1
            names_seen.add(name)
            price = round(min(median * 25, median * math.exp(r.gauss(0, sd))), 0) - 0.01
            price = max(1.99, price)
            cost = round(price * (0.40 + 0.35 * r.random()), 2)
            pid = f"p{self.seed}-{i + 1:04d}"
            sku = f"{_slug(cat)[:3].upper()}-{_slug(sub)[:3].upper()}-{i + 1:05d}"
            active = r.random() >= 0.05
            weight = 1.0 / ranks[i] ** 0.9 * (0.15 if not active else 1.0)
            # Cheap things sell more units, expensive ones less.
            weight *= (30.0 / (price + 30.0)) ** 0.35
            weights.append(weight)
            line = {"product_id": pid, "sku": sku, "name": name, "category": cat, "subcategory": sub, "brand": brand}
            self.products.append(line)
            self.product_info.append((pid, cat, sub, price, cost))
            self.by_sub.setdefault(sub, []).append(i)
            self.catalog_records.append(
                {
                    "product_id": pid,
                    "store_id": self.store,
                    "name": name,
                    "sku": sku,
                    "category": cat,
                    "subcategory": sub,
                    "brand": brand,
                    "price": price,
                    "cost": cost,
                    "active": active,
                }
            )
        total_w = sum(weights)
        self.category_urls = {cat: f"/c/{_slug(cat)}" for cat in CATALOG}
        for i, rec in enumerate(self.catalog_records):
            daily = expected_units * weights[i] / total_w
            reorder = max(2, round(daily * 14))
            x = r.random()
            if x < 0.06:
                stock = 0
            elif x < 0.20:
                stock = 1 + int(r.random() * reorder)
            else:
                stock = reorder + 1 + int(r.random() * max(10, daily * 90))
            rec["stock_quantity"] = stock
            rec["reorder_point"] = reorder
            # The catalog's state as of some time in the last month of the period.
            rec["updated_at"] = self._iso(self.end_ts - 60 - int(r.random() * 30 * 86400))
        self.product_table = _table([(i, w) for i, w in enumerate(weights)], 20000)
        subs_present = sorted(self.by_sub)
        self.search_vocab = []
        for sub in subs_present:
            self.search_vocab.append((sub.lower(), sub))
            for noun in CATALOG[self.products[self.by_sub[sub][0]]["category"]][1][sub][2]:
                self.search_vocab.append((noun.lower(), sub))
        for brands, subcats in CATALOG.values():
            for brand in brands:
                present = [s for s in subcats if s in self.by_sub]
                if present:
                    self.search_vocab.append((brand.lower(), present[0]))
        # Average order value in base currency, for sizing expenses before orders exist.
        mean_price = sum(w * self.product_info[i][3] for i, w in enumerate(weights)) / total_w
        self.aov_estimate = mean_price * 1.46 * 1.96 * 0.97

    # -- the plan -----------------------------------------------------------------------

    def _plan(self) -> tuple[list[int], list[int]]:
        """Orders and activity records per day."""
        r = self.r_plan
        weights = []
        black_fridays = set()
        for year in range(self.start_date.year, self.end_date.year + 1):
            nov1 = date(year, 11, 1)
            thanksgiving = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
            black_fridays.add(thanksgiving + timedelta(days=1))
        for d in range(self.cfg.days):
            day = self.start_date + timedelta(days=d)
            w = WEEKDAY_FACTOR[day.weekday()] * MONTH_FACTOR[day.month - 1]
            if day.month == 12 and day.day > 20:
                w *= 0.75
            if day in black_fridays:
                w *= 2.6
            elif day - timedelta(days=3) in black_fridays:  # Cyber Monday
                w *= 1.9
            w *= 1.0 + 0.3 * d / 365.0  # a growing store
            w *= math.exp(r.gauss(0, 0.1))
            weights.append(w)
        orders = _allocate(self.cfg.orders, weights)
        mean = self.cfg.orders / self.cfg.days
        activity = _allocate(self.cfg.activity_count, [o + 0.3 * mean + 0.01 for o in orders])
        return orders, activity

    # -- the run ------------------------------------------------------------------------

    def run(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        for i in range(0, len(self.catalog_records), BATCH_SIZE):
            batch = self.catalog_records[i : i + BATCH_SIZE]
            self.generated["products"] += len(batch)
            yield "products", batch
        order_counts, activity_counts = self._plan()
        buffers: dict[str, list[dict[str, Any]]] = {k: [] for k in ("orders", "events", "activities", "expenses")}
        self.week = {"orders": 0, "billed": 0.0, "payments": 0, "affiliate": 0.0}
        self.order_seq = 0
        self.p_review = min(0.6, 0.015 * self.cfg.activity_count / max(1.0, 0.8 * self.cfg.orders))
        for d in range(self.cfg.days):
            day = self.start_date + timedelta(days=d)
            hours = [int(datetime(day.year, day.month, day.day, h, tzinfo=self.tz).timestamp()) for h in range(24)]
            linkable, reviews = self._orders(d, hours, order_counts[d], buffers["orders"], buffers["events"])
            self._activities(d, hours, activity_counts[d], linkable, reviews, buffers["activities"])
            self._expenses(d, day, order_counts[d], buffers["expenses"])
            for kind, buf in buffers.items():
                if len(buf) >= BATCH_SIZE:
                    while len(buf) >= BATCH_SIZE:
                        batch = buf[:BATCH_SIZE]
                        del buf[:BATCH_SIZE]
                        self.generated[kind] += len(batch)
                        yield kind, batch
        for kind, buf in buffers.items():
            if buf:
                self.generated[kind] += len(buf)
                yield kind, buf
        self.queue.clear()


def generate(config: SampleConfig) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(kind, batch) pairs: all products first, then the rest day by day; batches of <= 5,000."""
    return _Store(config).run()
