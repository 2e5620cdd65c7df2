"""User activity: review visits, purchase sessions tied to orders, and browsing sessions along the funnel."""

from __future__ import annotations

from typing import Any

from .helpers import _messy, _mix64
from .reference import (
    BROWSE_DEPTH,
    P_LOGGED_IN,
    P_PURCHASE_SESSION,
    P_SEARCH,
    P_ZERO_RESULTS,
    REFERRERS,
    REVIEW_TEXT,
    ZERO_RESULT_QUERIES,
)
from .state import StoreState


class ActivityMixin(StoreState):
    """`_activities`: one day's activity records, within the day's budget."""

    def _activities(
        self, d: int, hours: list[int], budget: int, linkable: list[tuple], reviews: list[tuple], out: list[dict]
    ) -> None:
        r = self.r_act.random
        end = self.end_ts
        for review_ts, cid, pi, order_id in reviews:
            if budget < 2 or review_ts >= end - 120:
                continue
            customer, _, gi = self._customer(cid)
            common = self._session_common(
                customer["customer_id"], None, self.device_table[int(r() * 200)], self.activity_geo_table[gi], None
            )
            rating = self.rating_table[int(r() * 100)]
            texts = REVIEW_TEXT[rating]
            pid, cat = self.product_info[pi][0], self.product_info[pi][1]
            steps = [
                (0, "page_view", {"page_url": "/account/orders", "duration_ms": 4000 + int(r() * 30000)}),
                (
                    15 + int(r() * 90),
                    "review",
                    {
                        "product_id": pid,
                        "category": cat,
                        "rating": rating,
                        "review_text": texts[int(r() * len(texts))],
                        "order_id": order_id,
                        "page_url": f"/account/orders/{order_id}/review",
                    },
                ),
            ]
            self._emit(common, review_ts, steps, out)
            budget -= 2
        self.r_act.shuffle(linkable)
        nh = len(self.hour_table)
        while budget > 0:
            if linkable and r() < P_PURCHASE_SESSION:
                steps, start, common = self._purchase_session(linkable.pop())
            else:
                steps, common = self._browse_session()
                start = hours[self.hour_table[int(r() * nh)]] + int(r() * 3600)
                if start + steps[-1][0] >= end:
                    start = end - 1 - steps[-1][0]
            if len(steps) > budget:
                steps = steps[:budget]
            budget -= len(steps)
            self._emit(common, start, steps, out)

    def _session_common(
        self, user: str | None, anon: str | None, device: dict, geo: dict, utm: dict | None
    ) -> dict[str, Any]:
        self.counters["session"] += 1
        common: dict[str, Any] = {"session_id": f"se{self.seed}-{self.counters['session']}", "store_id": self.store}
        if user:
            common["user_id"] = user
        else:
            common["anonymous_id"] = anon
        common["device"] = device
        common["geo"] = geo
        if utm:
            common["utm"] = utm
        return common

    def _emit(self, common: dict, start: int, steps: list[tuple[int, str, dict]], out: list[dict]) -> None:
        prefix = f"ac{self.seed}-"
        n = self.counters["activity"]
        day = start // 86400
        if start + steps[-1][0] < (day + 1) * 86400 and 0 <= day - self.first_day < len(self.day_prefix):
            # the whole session within one UTC day: format the time of day only
            date_part, times, base = self.day_prefix[day - self.first_day], self.times, start - day * 86400
            for offset, atype, fields in steps:
                n += 1
                out.append(
                    {
                        "activity_id": prefix + str(n),
                        "activity_type": atype,
                        "timestamp": date_part + times[base + offset],
                        **common,
                        **fields,
                    }
                )
        else:
            iso = self._iso
            for offset, atype, fields in steps:
                n += 1
                out.append(
                    {
                        "activity_id": prefix + str(n),
                        "activity_type": atype,
                        "timestamp": iso(start + offset),
                        **common,
                        **fields,
                    }
                )
        self.counters["activity"] = n
        # the referrer is where the session came from: its first record only
        if steps and "utm" in common:
            ref = REFERRERS.get(common["utm"].get("source", ""))
            if ref:
                out[-len(steps)]["referrer"] = ref

    def _product_steps(self, t: int, pi: int, steps: list, with_cart: bool, qty: int = 1) -> int:
        r = self.r_act.random
        pid, cat, _, price, _ = self.product_info[pi]
        url = f"/p/{pid}"
        dwell = 15 + int(r() * 150)
        steps.append(
            (
                t,
                "product_view",
                {"product_id": pid, "category": cat, "page_url": url, "duration_ms": dwell * 1000 + int(r() * 1000)},
            )
        )
        t += dwell
        if with_cart:
            steps.append(
                (
                    t,
                    "add_to_cart",
                    {"product_id": pid, "category": cat, "page_url": url, "value": round(price * qty, 2)},
                )
            )
            t += 5 + int(r() * 40)
        return t

    def _search_steps(self, t: int, steps: list) -> tuple[int, str | None]:
        """A search; returns the clock and the subcategory searched (None: nothing found)."""
        r = self.r_act.random
        if r() < P_ZERO_RESULTS:
            q = ZERO_RESULT_QUERIES[int(r() * len(ZERO_RESULT_QUERIES))]
            sub, count = None, 0
        else:
            q, sub = self.search_vocab[int(r() * len(self.search_vocab))]
            count = len(self.by_sub[sub]) * (1 + int(r() * 4)) + int(r() * 5)
        typed = _messy(q, r())
        steps.append(
            (
                t,
                "search",
                {"search_query": typed, "results_count": count, "page_url": "/search?q=" + "+".join(typed.split())},
            )
        )
        return t + 5 + int(r() * 40), sub

    def _pick_product(self, sub: str | None) -> int:
        r = self.r_act.random
        if sub is not None and r() < 0.8:
            candidates = self.by_sub[sub]
            return candidates[int(r() * len(candidates))]
        return self.product_table[int(r() * len(self.product_table))]

    def _visitor(self, logged_in: bool) -> tuple[str | None, str | None, dict, dict]:
        """(user_id, anonymous_id, device, geo) of a browsing visitor."""
        r = self.r_act.random
        if logged_in and self.n_customers:
            cid = int(r() * self.n_customers)
            gi = (_mix64(cid ^ self.cust_salt) & 0xFFFF) * len(self.geo_table) >> 16  # as in _customer
            return (f"c{self.seed}-{cid + 1:06d}", None, self.device_table[int(r() * 200)], self.activity_geo_table[gi])
        # guests come back too: pick from a pool that grows with the traffic
        pool = 20 + int(self.counters["session"] * 0.6)
        if r() < 0.3 and self.counters["anon"]:
            k = 1 + int(r() * min(pool, self.counters["anon"]))
        else:
            self.counters["anon"] += 1
            k = self.counters["anon"]
        h = _mix64(k * 31 + self.cust_salt)
        device = self.device_table[h % 200]
        geo = self.activity_geo_table[(h >> 16) % len(self.activity_geo_table)]
        return None, f"an{self.seed}-{k}", device, geo

    def _browse_session(self) -> tuple[list, dict]:
        r = self.r_act.random
        user, anon, device, geo = self._visitor(r() < P_LOGGED_IN)
        utm = self.utm_table[int(r() * 200)] if r() < 0.4 else None
        common = self._session_common(user, anon, device, geo, utm)
        steps: list[tuple[int, str, dict]] = []
        x = r()
        depth = 3 if x < BROWSE_DEPTH[0] else 2 if x < BROWSE_DEPTH[1] else 1 if x < BROWSE_DEPTH[2] else 0
        t = 0
        if user and r() < 0.4:
            steps.append((t, "login", {"page_url": "/account/login"}))
            t += 8 + int(r() * 20)
        elif not user and r() < 0.025:
            steps.append((t, "signup", {"page_url": "/account/signup"}))
            t += 30 + int(r() * 60)
        landing = r()
        if landing < 0.5:
            url = "/"
        elif landing < 0.8:
            url = self.category_urls[self.product_info[self.product_table[int(r() * len(self.product_table))]][1]]
        else:
            url = "/deals"
        dwell = 3 + int(r() * 90)
        steps.append((t, "page_view", {"page_url": url, "duration_ms": dwell * 1000 + int(r() * 1000)}))
        t += dwell
        if depth == 0:
            # about half of the shallow sessions are bounces (one page, nothing else)
            if r() < 0.55 and not steps[:-1]:
                return steps, common
            if r() < P_SEARCH:
                t, _ = self._search_steps(t, steps)
            for _ in range(1 + int(r() * 3)):
                dwell = 5 + int(r() * 60)
                steps.append(
                    (
                        t,
                        "page_view",
                        {
                            "page_url": ["/", "/deals", "/new", "/help/shipping"][int(r() * 4)],
                            "duration_ms": dwell * 1000,
                        },
                    )
                )
                t += dwell
            return steps, common
        sub = None
        if r() < P_SEARCH:
            t, sub = self._search_steps(t, steps)
            if sub is None and r() < 0.5:
                t, sub = self._search_steps(t, steps)
        views = 1 + int(r() * 3)
        carted: list[int] = []
        for v in range(views):
            pi = self._pick_product(sub)
            with_cart = depth >= 2 and v == 0
            t = self._product_steps(t, pi, steps, with_cart)
            if with_cart:
                carted.append(pi)
            elif r() < 0.08:
                pid, cat = self.product_info[pi][0], self.product_info[pi][1]
                steps.append((t, "wishlist_add", {"product_id": pid, "category": cat, "page_url": f"/p/{pid}"}))
                t += 3 + int(r() * 10)
        if depth >= 2 and carted and r() < 0.2:
            pid, cat = self.product_info[carted[0]][0], self.product_info[carted[0]][1]
            steps.append((t, "remove_from_cart", {"product_id": pid, "category": cat, "page_url": "/cart"}))
            t += 5 + int(r() * 30)
            if depth == 3:
                t = self._product_steps(t, self._pick_product(sub), steps, True)
        if depth == 3:
            value = round(sum(self.product_info[i][3] for i in carted), 2)
            steps.append((t, "checkout_started", {"page_url": "/checkout", "value": value}))
        return steps, common

    def _purchase_session(self, order: tuple) -> tuple[list, int, dict]:
        r = self.r_act.random
        ts, cid, order_id, channel, value, chosen, is_new, customer = order
        _, _, gi = self._customer(cid)
        if channel == "mobile":
            device = self.app_device_table[int(r() * 100)]
        else:
            device = self.device_table[int(r() * 200)]
        utm = self.utm_table[int(r() * 200)] if r() < 0.4 else None
        common = self._session_common(customer["customer_id"], None, device, self.activity_geo_table[gi], utm)
        steps: list[tuple[int, str, dict]] = []
        t = 0
        if not is_new and r() < 0.5:
            steps.append((t, "login", {"page_url": "/account/login"}))
            t += 8 + int(r() * 20)
        dwell = 3 + int(r() * 60)
        steps.append((t, "page_view", {"page_url": "/", "duration_ms": dwell * 1000}))
        t += dwell
        sub = None
        if r() < P_SEARCH:
            t, _ = self._search_steps(t, steps)
        if r() < 0.3:  # looked at something else first
            pi = self._pick_product(sub)
            t = self._product_steps(t, pi, steps, False)
        for pi in chosen:
            t = self._product_steps(t, pi, steps, True)
        if is_new:
            steps.append((t, "signup", {"page_url": "/account/signup"}))
            t += 30 + int(r() * 60)
        steps.append((t, "checkout_started", {"page_url": "/checkout", "value": value}))
        t += 40 + int(r() * 240)
        steps.append((t, "purchase", {"order_id": order_id, "value": value, "page_url": "/checkout/success"}))
        # the purchase is the order's creation time
        return steps, ts - t, common
