"""Orders and their payment events, one day at a time."""

from __future__ import annotations

from datetime import timedelta

from .reference import FAIL_REASONS, P_CONTINUE, P_RETURN, PAYMENT_STATUS, REFUND_REASONS, TAX_RATE
from .state import StoreState


class OrdersMixin(StoreState):
    """`_orders`: one day's orders (new and returning customers) and their payment events."""

    def _orders(
        self, d: int, hours: list[int], n: int, out: list[dict], events: list[dict]
    ) -> tuple[list[tuple], list[tuple]]:
        r = self.r_ord.random
        end = self.end_ts
        iso = self._iso
        hour_table = self.hour_table
        nh = len(hour_table)
        times = sorted(hours[hour_table[int(r() * nh)]] + int(r() * 3600) for _ in range(n))
        due = self.queue.pop(d, [])
        if len(due) > n:
            for entry in due[n:]:  # a busy day: these customers come back a few days later
                self._schedule(d + 1 + int(r() * 4), entry)
            due = due[:n]
        shoppers = [(e >> 5, e & 31, False) for e in due]
        for _ in range(n - len(due)):
            cid = self.n_customers
            self.n_customers += 1
            more = 0
            if r() < P_RETURN:
                more = 1
                while more < 31 and r() < P_CONTINUE:
                    more += 1
            shoppers.append((cid, more, True))
        self.r_ord.shuffle(shoppers)

        products, ptable, npt, qty_table, lines_table = (
            self.products,
            self.product_table,
            len(self.product_table),
            self.qty_table,
            self.lines_table,
        )
        pinfo = self.product_info
        day = self.start_date + timedelta(days=d)
        month = day.month
        seed, store, base_fx = self.seed, self.store, self.fx_range
        p_foreign_de = min(1.0, 0.05 / self.de_share)
        linkable: list[tuple] = []
        reviews: list[tuple] = []
        week = self.week
        for ts, (cid, more, is_new) in zip(times, shoppers, strict=False):
            if more:
                self._schedule(d + self._gap(), cid << 5 | (more - 1))
            self.order_seq += 1
            order_id = f"o{seed}-{self.order_seq:07d}"
            customer, country, _ = self._customer(cid)
            foreign = country == "DE" and r() < p_foreign_de
            fx = round(base_fx[0] + (base_fx[1] - base_fx[0]) * r(), 4) if foreign else 1.0
            channel = self.channel_table[int(r() * 100)]
            # lines
            items = []
            lines_total = 0.0
            n_lines = lines_table[int(r() * 100)]
            chosen: list[int] = []
            for _ in range(n_lines):
                pi = ptable[int(r() * npt)]
                if pi in chosen:
                    pi = ptable[int(r() * npt)]
                    if pi in chosen:
                        continue
                chosen.append(pi)
                _, _, _, price, cost = pinfo[pi]
                q = qty_table[int(r() * 100)]
                up = price if not foreign else round(price / fx, 2)
                line = {**products[pi], "quantity": q, "unit_price": up}
                if r() < 0.08:
                    disc = round(q * up * (0.05 + 0.2 * r()), 2)
                    line["discount"] = disc
                else:
                    disc = 0.0
                if r() >= 0.03:  # a few lines without a known cost (docs/metrics.md: lines_without_cost)
                    line["unit_cost"] = cost if not foreign else round(cost / fx, 2)
                items.append(line)
                lines_total += q * up - disc
            # order-level amounts
            coupon = None
            x = r()
            if is_new and x < 0.25:
                coupon, pct = "WELCOME10", 0.10
            elif x < 0.08:
                if month == 11:
                    coupon, pct = "BLACKFRIDAY25", 0.25
                elif month in (6, 7, 8):
                    coupon, pct = "SUMMER20", 0.20
                else:
                    coupon, pct = "SAVE15", 0.15
            discount_amount = round(lines_total * pct, 2) if coupon else 0.0
            value = lines_total - discount_amount
            shipping = 0.0 if channel == "marketplace" or value * fx >= 99 else round(4.99 + int(r() * 4) * 2.5, 2)
            tax = round(value * TAX_RATE[country], 2)
            billed = round(value + shipping + tax, 2)
            # payment
            method, fail_rate = self.pay_tables["BR" if country == "BR" else "default"][int(r() * 200)]
            installments = self.installments_br[int(r() * 100)] if method == "card" and country == "BR" else 1
            # status and its timeline
            x = r()
            paid = shipped = delivered = cancelled = refunded_ts = None
            refunded_amount: float | None = None
            if x < 0.05:
                status = "pending"
            elif x < 0.11:
                status = "cancelled"
                cancelled = ts + 600 + int(r() * 2 * 86400)
                if cancelled >= end:
                    cancelled = ts + int((end - ts) * (0.2 + 0.7 * r()))
            else:
                if method == "boleto":
                    paid = ts + 7200 + int(r() * 3 * 86400)
                elif method == "pix":
                    paid = ts + 30 + int(r() * 1800)
                else:
                    paid = ts + 5 + int(r() * 300)
                if paid >= end:
                    paid = None
                    status = "pending"
                else:
                    processing = paid + 3600 + int(r() * 20 * 3600)
                    shipped = paid + 12 * 3600 + int(r() * 2.5 * 86400)
                    delivered = shipped + 86400 + int(r() * (12 if channel == "marketplace" else 8) * 86400)
                    if delivered < end:
                        status = "delivered"
                        if x > 0.958:
                            refunded_ts = delivered + 86400 + int(r() * 20 * 86400)
                            if refunded_ts < end:
                                status = "refunded"
                            else:
                                refunded_ts = None
                    elif shipped < end:
                        status, delivered = "shipped", None
                    else:
                        shipped = delivered = None
                        status = "processing" if processing < end else "paid"
            # events of the payment
            user = customer["customer_id"]
            cur = self.foreign if foreign else None
            fxv = fx if foreign else None
            fail_p = fail_rate * (4 if status in ("pending", "cancelled") else 1)
            if r() < fail_p:
                events.append(
                    self._event(
                        "payment_failed",
                        ts + 2 + int(r() * 60),
                        user,
                        order_id,
                        billed,
                        {"method": method, "reason": FAIL_REASONS[int(r() * len(FAIL_REASONS))]},
                        cur,
                        fxv,
                    )
                )
            if paid is not None:
                events.append(
                    self._event(
                        "payment_succeeded",
                        paid,
                        user,
                        order_id,
                        billed,
                        {"method": method, "installments": installments},
                        cur,
                        fxv,
                    )
                )
                if method in ("card", "paypal") and r() < 0.006:
                    cb = paid + 15 * 86400 + int(r() * 45 * 86400)
                    if cb < end:
                        events.append(
                            self._event(
                                "chargeback_opened",
                                cb,
                                user,
                                order_id,
                                billed,
                                {"method": method, "reason": "fraud" if r() < 0.6 else "not_received"},
                                cur,
                                fxv,
                            )
                        )
            if refunded_ts is not None:
                y = r()
                if y < 0.45:  # partial: some of the order value back
                    refunded_amount = round(value * (0.15 + 0.5 * r()), 2)
                    refund_value = refunded_amount
                elif y < 0.60:
                    refunded_amount = round(value, 2)
                    refund_value = refunded_amount
                else:  # no amount: the whole order value counts (docs/metrics.md)
                    refund_value = round(value, 2)
                events.append(
                    self._event(
                        "refund_issued",
                        refunded_ts,
                        user,
                        order_id,
                        refund_value,
                        {
                            "method": method,
                            "reason": REFUND_REASONS[int(r() * len(REFUND_REASONS))],
                            "partial": refunded_amount is not None and refunded_amount < value - 0.005,
                        },
                        cur,
                        fxv,
                    )
                )
            # the record
            # the latest of the order's times (each step comes after the one before)
            updated = refunded_ts or delivered or shipped or paid or cancelled or ts
            order = {
                "order_id": order_id,
                "store_id": store,
                "channel": channel,
                "status": status,
                "created_at": iso(ts),
                "updated_at": iso(updated),
            }
            if paid is not None:
                order["paid_at"] = iso(paid)
            if shipped is not None:
                order["shipped_at"] = iso(shipped)
            if delivered is not None:
                order["delivered_at"] = iso(delivered)
            if cancelled is not None:
                order["cancelled_at"] = iso(cancelled)
            if foreign:
                order["currency"] = self.foreign
                order["fx_rate"] = fx
            order["customer"] = customer
            order["items"] = items
            order["discount_amount"] = discount_amount
            order["shipping_amount"] = shipping
            order["tax_amount"] = tax
            if refunded_amount is not None:
                order["refunded_amount"] = refunded_amount
            order["payment"] = {
                "method": method,
                "installments": installments,
                "status": PAYMENT_STATUS.get(status, "captured")
                if refunded_amount is None or refunded_amount >= value - 0.005
                else "partially_refunded",
            }
            if coupon:
                order["coupon_code"] = coupon
            if r() < 0.35:
                order["utm"] = self.utm_table[int(r() * 200)]
            out.append(order)
            # what activity and expenses need
            if paid is not None:
                week["orders"] += 1
                week["billed"] += billed * fx
                week["payments"] += 1
                if channel != "marketplace" and ts - self.start_ts > 7200:
                    linkable.append((ts, cid, order_id, channel, round(value * fx, 2), chosen, is_new, customer))
                if delivered is not None and r() < self.p_review:
                    reviews.append((delivered + 86400 + int(r() * 13 * 86400), cid, chosen[0], order_id))
                if order.get("utm", {}).get("source") == "affiliate":
                    week["affiliate"] += value * fx * 0.08
        return linkable, reviews
