"""Expenses: daily ad spend, weekly shipping, fees and commissions, monthly fixed costs."""

from __future__ import annotations

from datetime import date

from .state import StoreState


class ExpensesMixin(StoreState):
    """`_expenses`: one day's expense records."""

    def _expenses(self, d: int, day: date, orders_today: int, out: list[dict]) -> None:
        r = self.r_exp.random
        ds = day.isoformat()
        seed, store = self.seed, self.store
        daily_revenue = (orders_today + 0.2 * self.cfg.orders / self.cfg.days) * self.aov_estimate

        def add(
            category: str,
            amount: float,
            description: str,
            channel: str | None = None,
            campaign: str | None = None,
            key: str | None = None,
        ) -> None:
            rec = {
                "expense_id": f"ex{seed}-{ds}-{category}-{key or channel or 'all'}",
                "store_id": store,
                "date": ds,
                "category": category,
                "amount": round(max(0.0, amount), 2),
                "description": description,
            }
            if channel:
                rec["channel"] = channel
            if campaign:
                rec["campaign"] = campaign
            out.append(rec)

        season = (
            "black-friday"
            if day.month == 11
            else "holiday"
            if day.month == 12
            else "summer-sale"
            if day.month in (6, 7, 8)
            else "always-on"
        )
        # Campaign names are the orders' and sessions' utm.campaign (reference.UTMS), so that
        # marketing/campaigns sets spend against attributed orders; the season is in the text.
        add(
            "marketing",
            daily_revenue * 0.045 * (0.8 + 0.4 * r()),
            f"Google Ads daily spend ({season})",
            "google_ads",
            "search-always-on",
        )
        add(
            "marketing",
            daily_revenue * 0.035 * (0.8 + 0.4 * r()),
            f"Meta Ads daily spend ({season})",
            "meta_ads",
            "retargeting" if r() < 0.5 else "prospecting",
        )
        if day.weekday() in (3, 4, 5):
            add(
                "marketing",
                daily_revenue * 0.03 * (0.6 + 0.8 * r()),
                f"TikTok creators campaign ({season})",
                "tiktok_ads",
                "creators",
            )
        last_day = d == self.cfg.days - 1
        if day.weekday() == 6 or last_day:
            w = self.week
            add("shipping", w["orders"] * (6.0 + 3.0 * r()), "Carrier invoice for the week's shipments", key="carriers")
            add("payment_fees", w["billed"] * 0.029 + w["payments"] * 0.30, "Payment processor fees", key="processor")
            if w["affiliate"]:
                add("marketing", w["affiliate"], "Affiliate commissions", "affiliates", "partners")
            self.week = {"orders": 0, "billed": 0.0, "payments": 0, "affiliate": 0.0}
        monthly = self.cfg.orders / self.cfg.days * 30.4 * self.aov_estimate
        if day.day == 1:
            add("rent", max(900.0, round(monthly * 0.03, -2)), "Warehouse and office rent", key="warehouse")
            add(
                "marketing",
                max(49.0, round(monthly * 0.004, 0)),
                "Email platform subscription",
                "email",
                "weekly-digest",
                key="email-platform",
            )
        if day.day == 5:
            add(
                "salaries",
                max(3500.0, round(monthly * 0.12 * (1.04 if day.month >= 7 else 1.0), -2)),
                "Monthly payroll",
                key="payroll",
            )
        if day.day == 10:
            add("software", max(79.0, round(monthly * 0.006, 0)), "E-commerce platform plan", key="platform")
            add("software", max(29.0, round(monthly * 0.002, 0)), "Analytics and support tools", key="tools")
