"""An independent oracle: docs/metrics.md computed with pandas from the raw records sent.

Nothing here imports the service's code: frames are built from the API records
(the dicts that were POSTed), following docs/metrics.md's definitions directly, so a test
that compares an endpoint's numbers with these is a real check of the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd

SALE_STATUSES = {"paid", "processing", "shipped", "delivered", "refunded"}


def _ts(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")


@dataclass
class Frames:
    orders: pd.DataFrame
    lines: pd.DataFrame
    events: pd.DataFrame
    activity: pd.DataFrame
    products: pd.DataFrame
    expenses: pd.DataFrame


def build_frames(records: dict[str, list[dict]], store_id: str = "default") -> Frames:
    """records: {"orders": [...], "events": [...], "activities": [...], "products": [...], "expenses": [...]}."""
    order_rows, line_rows = [], []
    for o in records.get("orders", []):
        fx = o.get("fx_rate") or 1.0
        gross = 0.0
        cogs = 0.0
        for n, it in enumerate(o["items"], start=1):
            revenue = (it["quantity"] * it["unit_price"] - it.get("discount", 0.0)) * fx
            cost = None if it.get("unit_cost") is None else it["quantity"] * it["unit_cost"] * fx
            gross += revenue
            cogs += cost or 0.0
            line_rows.append(
                {
                    "order_id": o["order_id"],
                    "line": n,
                    "store_id": o.get("store_id", store_id),
                    "status": o["status"],
                    "created_at": o["created_at"],
                    "channel": o.get("channel"),
                    "customer_id": str(o["customer"]["customer_id"]),
                    "product_id": str(it["product_id"]),
                    "name": it.get("name"),
                    "category": it.get("category"),
                    "subcategory": it.get("subcategory"),
                    "brand": it.get("brand"),
                    "quantity": it["quantity"],
                    "line_revenue": revenue,
                    "line_cogs": cost,
                }
            )
        discount = o.get("discount_amount", 0.0) * fx
        value = gross - discount
        if o.get("refunded_amount") is not None:
            refunded = o["refunded_amount"] * fx
        else:
            refunded = value if o["status"] == "refunded" else 0.0
        customer = o["customer"]
        order_rows.append(
            {
                "order_id": o["order_id"],
                "store_id": o.get("store_id", store_id),
                "status": o["status"],
                "created_at": o["created_at"],
                "channel": o.get("channel"),
                "customer_id": str(customer["customer_id"]),
                "country": customer.get("country"),
                "region": customer.get("region"),
                "state": customer.get("state"),
                "city": customer.get("city"),
                "segment": customer.get("segment"),
                "payment_method": (o.get("payment") or {}).get("method"),
                "utm_campaign": (o.get("utm") or {}).get("campaign"),
                "utm_source": (o.get("utm") or {}).get("source"),
                "utm_medium": (o.get("utm") or {}).get("medium"),
                "gross_revenue": gross,
                "order_discounts": discount,
                "refunds": refunded,
                "order_value": value,
                "net_revenue": value - refunded,
                "shipping": o.get("shipping_amount", 0.0) * fx,
                "tax": o.get("tax_amount", 0.0) * fx,
                "units": sum(it["quantity"] for it in o["items"]),
                "cogs": cogs,
            }
        )
    orders = pd.DataFrame(order_rows)
    lines = pd.DataFrame(line_rows)
    for frame in (orders, lines):
        if len(frame):
            frame["created_at"] = _ts(frame["created_at"])
            frame["is_sale"] = frame["status"].isin(SALE_STATUSES)
    events = pd.DataFrame(records.get("events", []))
    if len(events):
        events["timestamp"] = _ts(events["timestamp"])
        events["actor"] = events.get("user_id").fillna(events.get("anonymous_id")) if "user_id" in events else None
    activity = pd.DataFrame(records.get("activities", []))
    if len(activity):
        activity["timestamp"] = _ts(activity["timestamp"])
        uid = activity["user_id"] if "user_id" in activity else pd.Series([None] * len(activity))
        anon = activity["anonymous_id"] if "anonymous_id" in activity else pd.Series([None] * len(activity))
        activity["actor"] = uid.where(uid.notna(), anon)
    products = pd.DataFrame(records.get("products", []))
    expenses = pd.DataFrame(records.get("expenses", []))
    if len(expenses):
        expenses["amount_base"] = expenses["amount"] * expenses.get(
            "fx_rate", pd.Series(1.0, index=expenses.index)
        ).fillna(1.0)
        expenses["date"] = pd.to_datetime(expenses["date"]).dt.date
    return Frames(orders, lines, events, activity, products, expenses)


def local_start(day: date, tz: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.combine(day, datetime.min.time())).tz_localize(tz)


def in_period(frame: pd.DataFrame, column: str, start: date, end: date, tz: str) -> pd.DataFrame:
    """Rows whose `column` (UTC) lies in [start 00:00, end 00:00) local to tz."""
    lo, hi = local_start(start, tz), local_start(end, tz)
    return frame[(frame[column] >= lo) & (frame[column] < hi)]


def sale_orders(frames: Frames, start: date, end: date, tz: str) -> pd.DataFrame:
    """The orders that are sales (`is_sale`) placed in [start, end) local to tz."""
    orders = in_period(frames.orders, "created_at", start, end, tz)
    return orders[orders["is_sale"]]


def sale_lines(frames: Frames, start: date, end: date, tz: str) -> pd.DataFrame:
    """The order lines of sales placed in [start, end) local to tz."""
    lines = in_period(frames.lines, "created_at", start, end, tz)
    return lines[lines["is_sale"]]


def bucket(series: pd.Series, tz: str, interval: str) -> pd.Series:
    """The API's bucket key of each UTC timestamp: local calendar bucket start in tz."""
    if interval == "hour":
        floored = series.dt.floor("h")  # in UTC: a repeated DST hour stays two buckets
        return floored.dt.tz_convert(tz).map(lambda t: t.isoformat())
    local = series.dt.tz_convert(tz)
    d = local.dt.date
    if interval == "day":
        keys = d
    elif interval == "week":
        keys = d.map(lambda x: x - timedelta(days=x.weekday()))
    elif interval == "month":
        keys = d.map(lambda x: x.replace(day=1))
    elif interval == "quarter":
        keys = d.map(lambda x: x.replace(month=(x.month - 1) // 3 * 3 + 1, day=1))
    elif interval == "year":
        keys = d.map(lambda x: x.replace(month=1, day=1))
    else:
        raise ValueError(interval)
    return keys.map(lambda x: x.isoformat())


def all_keys(start: date, end: date, tz: str, interval: str) -> list[str]:
    """Every bucket key overlapping [start, end) local, by walking hours in UTC."""
    lo, hi = local_start(start, tz), local_start(end, tz)
    hours = pd.date_range(lo.tz_convert("UTC"), hi.tz_convert("UTC"), freq="h", inclusive="left")
    keys = bucket(pd.Series(hours), tz, interval)
    return list(dict.fromkeys(keys))


def latest_of(frame: pd.DataFrame, key: str, column: str, order: list[str]) -> pd.Series:
    """Each key's `column` on its last row by `order` (e.g. the name a product's latest line shows)."""
    return frame.sort_values(order).drop_duplicates(key, keep="last").set_index(key)[column]


# -- customers and actors: cohorts, funnels, RFM (docs/metrics.md) ---------------------------


def retention_oracle(
    frame: pd.DataFrame, id_col: str, time_col: str, start: date, end: date, tz: str, granularity: str
) -> list[dict]:
    """Cohorts: members by the bucket of their first record ever; counts[k]: members with a
    record in bucket cohort+k; nothing at or after the end counts."""
    frame = frame[frame[time_col] < local_start(end, tz)]
    keys = [k for k in all_keys(start, end, tz, granularity) if date.fromisoformat(k) >= start]
    if not keys:
        return []
    position = {k: i for i, k in enumerate(keys)}
    first = frame.groupby(id_col)[time_col].min()
    cohort = bucket(first, tz, granularity)
    cohort = cohort[cohort.isin(position)]
    active = frame[frame[time_col] >= local_start(date.fromisoformat(keys[0]), tz)]
    pairs = pd.DataFrame({"id": active[id_col], "k": bucket(active[time_col], tz, granularity)}).drop_duplicates()
    pairs["c"] = pairs["id"].map(cohort)
    pairs = pairs.dropna(subset=["c"])
    pairs["offset"] = pairs["k"].map(position) - pairs["c"].map(position)
    per = pairs.groupby(["c", "offset"]).size()
    out = []
    for c, i in position.items():
        size = int((cohort == c).sum())
        counts = [int(per.get((c, k), 0)) for k in range(len(keys) - i)]
        out.append(
            {"cohort": c, "size": size, "counts": counts, "retention": [x / size if size else None for x in counts]}
        )
    return out


def revenue_cohorts_oracle(
    sales: pd.DataFrame, start: date, end: date, tz: str, granularity: str, cumulative: bool
) -> list[dict]:
    """Revenue cohorts (docs/metrics.md): customers by the bucket of their first sale ever;
    gross[k] = the cohort's gross revenue in bucket cohort+k, revenue[k] = gross[k] / size
    (cumulative: summed over 0..k); nothing at or after the end counts."""
    sales = sales[sales["created_at"] < local_start(end, tz)]
    keys = [k for k in all_keys(start, end, tz, granularity) if date.fromisoformat(k) >= start]
    position = {k: i for i, k in enumerate(keys)}
    cohort = bucket(sales.groupby("customer_id")["created_at"].min(), tz, granularity)
    cohort = cohort[cohort.isin(position)]
    rows = sales[sales["customer_id"].isin(cohort.index)].copy()
    rows["c"] = rows["customer_id"].map(cohort)
    rows["offset"] = bucket(rows["created_at"], tz, granularity).map(position) - rows["c"].map(position)
    per = rows.groupby(["c", "offset"])["gross_revenue"].sum()
    out = []
    for c, i in position.items():
        size = int((cohort == c).sum())
        gross = [float(per.get((c, k), 0.0)) for k in range(len(keys) - i)]
        through = list(pd.Series(gross, dtype=float).cumsum()) if cumulative else gross
        out.append(
            {"cohort": c, "size": size, "gross": gross, "revenue": [g / size if size else None for g in through]}
        )
    return out


def funnel_oracle(activity: pd.DataFrame, steps: list[str]) -> list[int]:
    """Actors reaching each step: with an activity of every step up to it, in any order."""
    done = activity[activity["actor"].notna()].groupby("actor")["activity_type"].agg(set)
    return [int(sum(set(steps[: k + 1]) <= types for types in done)) for k in range(len(steps))]


# The RFM segments, in order: a customer is in the first one whose rule its scores (1-5) meet.
# (segment, lowest R, highest R, lowest F, lowest M)
RFM_RULES = [
    ("Champions", 4, 5, 4, 4),
    ("Loyal Customers", 1, 5, 4, 1),
    ("Potential Loyalists", 4, 5, 2, 1),
    ("New Customers", 4, 5, 1, 1),
    ("At Risk", 1, 2, 3, 1),
    ("Hibernating", 1, 2, 1, 1),
    ("Need Attention", 1, 5, 1, 1),
]
RFM_NAMES = [name for name, *_ in RFM_RULES]


def rfm_segment(r: int, f: int, m: int) -> str:
    return next(name for name, r_lo, r_hi, f_lo, m_lo in RFM_RULES if r_lo <= r <= r_hi and f >= f_lo and m >= m_lo)


def rfm_oracle(frames, start: date, end: date, tz: str) -> pd.DataFrame:
    """One row per customer with a sale in the period: recency, frequency, monetary, scores, segment."""
    orders = frames.orders[frames.orders["is_sale"]]
    s = in_period(orders, "created_at", start, end, tz)
    g = (
        s.groupby("customer_id")
        .agg(last=("created_at", "max"), frequency=("order_id", "count"), monetary=("order_value", "sum"))
        .reset_index()
    )
    g["monetary_raw"] = g["monetary"]
    g["monetary"] = g["monetary"].map(lambda v: round(v, 2))  # scored in cents
    g["recency_days"] = ((local_start(end, tz) - g["last"]).dt.total_seconds() // 86400).astype(int)
    n = len(g)

    def score(column, ascending):
        ordered = g.sort_values([column, "customer_id"], ascending=[ascending, True]).reset_index(drop=True)
        return g["customer_id"].map(dict(zip(ordered["customer_id"], [5 - (5 * i) // n for i in range(n)])))

    g["r"], g["f"], g["m"] = score("recency_days", True), score("frequency", False), score("monetary", False)
    g["segment"] = g.apply(lambda row: rfm_segment(row.r, row.f, row.m), axis=1)
    return g


# -- comparison (docs/metrics.md "Comparison and change") ---------------------------------------

# pandas period frequencies of the calendar units a period can be exactly (weeks Monday-Sunday).
_UNIT_FREQ = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}


def calendar_unit(start: date, end: date) -> str | None:
    """The calendar unit [start, end) is exactly, by pandas periods."""
    for unit, freq in _UNIT_FREQ.items():
        p = pd.Period(start, freq)
        if p.start_time.date() == start and (p + 1).start_time.date() == end:
            return unit
    return None


def compared_period(start: date, end: date, compare: str) -> tuple[date, date]:
    """The period [start, end) (whole local days) compares with."""
    unit = calendar_unit(start, end)
    if unit is None:
        if compare == "previous_year":
            year_ago = pd.DateOffset(years=1)  # 29 February -> 28 February
            return (pd.Timestamp(start) - year_ago).date(), (pd.Timestamp(end) - year_ago).date()
        return start - (end - start), start
    p = pd.Period(start, _UNIT_FREQ[unit])
    if compare == "previous_period":
        q = p - 1
    elif unit == "day":
        q = pd.Period((pd.Timestamp(start) - pd.DateOffset(years=1)).date(), "D")
    elif unit == "week":  # the same ISO week number a year earlier (53 -> 52)
        year, week, _ = start.isocalendar()
        weeks_then = date(year - 1, 12, 28).isocalendar()[1]
        q = pd.Period(date.fromisocalendar(year - 1, min(week, weeks_then), 1), "W-SUN")
    else:
        q = p - {"month": 12, "quarter": 4, "year": 1}[unit]
    return q.start_time.date(), (q + 1).start_time.date()


def growth_pct(current: float | None, previous: float | None, digits: int = 2) -> float | None:
    """(current - previous) / |previous| * 100 of the values as the API shows them (rounded to
    `digits`: 2 for money, 4 for fractions); None when previous is 0."""
    if current is None or previous is None or round(previous, digits) == 0:
        return None
    current, previous = round(current, digits), round(previous, digits)
    return (current - previous) / abs(previous) * 100


def change_pp(current: float | None, previous: float | None) -> float | None:
    """The change of a fraction in percentage points."""
    if current is None or previous is None:
        return None
    return (current - previous) * 100


def is_fraction(name: str) -> bool:
    """Rates, margins and shares (docs/metrics.md): they also change in percentage points."""
    return name in ("share", "margin", "stickiness", "rate") or name.endswith(("_rate", "_margin", "_share"))


def expected_changes(current: dict, previous: dict, has_data: bool = True) -> dict:
    """`<name>_growth_pct` (and `<name>_change_pp` for fractions) of every value in `current`."""
    out = {}
    for name, value in current.items():
        prev = previous[name]
        value = None if value is None or pd.isna(value) else float(value)
        prev = None if prev is None or pd.isna(prev) else float(prev)
        digits = 4 if is_fraction(name) else 2
        out[f"{name}_growth_pct"] = growth_pct(value, prev, digits) if has_data else None
        if is_fraction(name):
            out[f"{name}_change_pp"] = change_pp(value, prev) if has_data else None
    return out


# -- financial (docs/metrics.md "Orders and money", expenses) ---------------------------------


def expenses_in(f, start, end, tz=None):
    """Expenses dated start <= date < end (dates are calendar dates: no time zone needed)."""
    e = f.expenses
    return e[(e["date"] >= start) & (e["date"] < end)]


def revenue_sums(s: pd.DataFrame) -> dict[str, float]:
    out = {k: s[k].sum() for k in ("gross_revenue", "order_discounts", "refunds", "net_revenue", "shipping", "tax")}
    out["total_billed"] = out["gross_revenue"] - out["order_discounts"] + out["shipping"] + out["tax"]
    out["orders"] = len(s)
    return out


def lines_without_cost(lines: pd.DataFrame) -> int:
    return int(lines["line_cogs"].isna().sum())


def profit_sums(s: pd.DataFrame, lines: pd.DataFrame, expenses: float) -> dict[str, float | None]:
    net, cogs = s["net_revenue"].sum(), s["cogs"].sum()
    gross_profit = net - cogs
    return {
        "net_revenue": net,
        "cogs": cogs,
        "gross_profit": gross_profit,
        "gross_margin": gross_profit / net if net else None,
        "expenses": expenses,
        "net_profit": gross_profit - expenses,
        "net_margin": (gross_profit - expenses) / net if net else None,
        "lines_without_cost": lines_without_cost(lines),
    }


# -- campaigns (docs/metrics.md "Campaigns") --------------------------------------------------


def campaigns_oracle(frames: Frames, start: date, end: date, tz: str) -> dict[str, dict]:
    """Per campaign (last touch: the sale's utm.campaign; None: unattributed): spend (expenses
    with the campaign dated in [start, end)), orders, gross revenue, new customers (whose first
    sale ever is one of the campaign's sales in the period), sessions (distinct session ids of the
    period's activity with that utm.campaign), roas, cac and conversion."""
    sales = frames.orders[frames.orders["is_sale"]]
    in_period = sales[(sales["created_at"] >= local_start(start, tz)) & (sales["created_at"] < local_start(end, tz))]
    first_ever = sales.sort_values(["created_at", "utm_campaign"], na_position="first").groupby("customer_id").head(1)
    new = first_ever[first_ever["order_id"].isin(in_period["order_id"])]
    e = frames.expenses
    spent = e[(e["date"] >= start) & (e["date"] < end) & e.get("campaign", pd.Series(index=e.index)).notna()]
    a = frames.activity
    sessions = a[(a["timestamp"] >= local_start(start, tz)) & (a["timestamp"] < local_start(end, tz))]
    sessions = sessions.assign(
        campaign=sessions["utm"].map(lambda u: u.get("campaign") if isinstance(u, dict) else None)
    )
    sessions = sessions[sessions["campaign"].notna() & sessions["session_id"].notna()]
    names = set(in_period["utm_campaign"].dropna()) | set(spent["campaign"]) | set(sessions["campaign"])
    out = {}
    for name in [*sorted(names), None]:
        mine = (
            in_period[in_period["utm_campaign"].isna()]
            if name is None
            else in_period[in_period["utm_campaign"] == name]
        )
        won = int((new["utm_campaign"].isna()).sum()) if name is None else int((new["utm_campaign"] == name).sum())
        spend = float(spent.loc[spent["campaign"] == name, "amount_base"].sum()) if name else 0.0
        visits = int(sessions.loc[sessions["campaign"] == name, "session_id"].nunique()) if name else 0
        revenue = float(mine["gross_revenue"].sum())
        out[name] = {
            "spend": spend,
            "orders": len(mine),
            "gross_revenue": revenue,
            "new_customers": won,
            "sessions": visits,
            "roas": revenue / spend if spend else None,
            "cac": spend / won if won else None,
            "conversion_rate": len(mine) / visits if visits else None,
        }
    return out
