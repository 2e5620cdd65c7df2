"""Customer lifecycle: cohort retention, the activity funnel, customer and actor segments.

Everything here is per customer (orders) or per actor (activity: `user_id`, else
`anonymous_id`, stored as `actor_id`), so the numbers of customers and actors are
unbounded: every per-member request is a paged composite aggregation read as it streams
(`ctx.stream`), or for RFM a terms aggregation read in hash partitions concurrently
(`ctx.partitioned`), and the per-member arithmetic (cohorts, funnel steps, RFM scores,
first-touch attribution) is done in Python. Nothing is sampled or estimated, so the
results stay exact with any number of customers or actors.
Every Elasticsearch body a query here sends is built in this module, in its query
object's `requests()` and `*_request` methods, from the pieces of analytics/shared.py.
Definitions: docs/metrics.md "Users and activity", "Retention", "Funnel" and "Segments".
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ..es.indices import ACTIVITY, ORDERS, IndexFamily
from ..ingest.schemas import ACTIVITY_TYPES
from . import customer_docs
from .fields import AnalyticsResponse, PeriodOut, ResponsePart
from .params import CommonParams, Period, invalid
from .requests import Composite, Partitioned, Search, terms_source
from .runner import AnalyticsQuery, QueryContext
from .shared import (
    CUSTOMER,
    NONE_KEY,
    SALE,
    activity_query,
    activity_types,
    doc_count,
    money,
    ranked,
    ratio,
    total_hits,
)

ACTOR = "actor_id"
DEFAULT_STEPS = ("product_view", "add_to_cart", "checkout_started", "purchase")
MAX_STEPS = 10
DAY_MS = 86_400_000

Basis = Literal["orders", "activity"]
Granularity = Literal["week", "month"]
CohortMeasure = Literal["customers", "revenue"]
SegmentType = Literal["rfm", "device", "source", "country", "new_returning"]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Members:
    """Who a cohort is made of and what counts as "active": customers and their sales, or
    actors and their activity."""

    family: IndexFamily
    id_field: str
    time_field: str
    sales_only: bool

    def query(self, params: CommonParams, since: str | None, until: str) -> dict[str, Any]:
        """Sales (or activity) in [since, until) of the requested store (and channel, for orders)."""
        bounds = {"lt": until, **({"gte": since} if since else {})}
        filters = [
            {"range": {self.time_field: bounds}},
            *params.filters(None, channel_field="channel" if self.sales_only else None),
        ]
        return {"bool": {"filter": [SALE, *filters] if self.sales_only else filters}}


MEMBERS: dict[str, Members] = {
    "orders": Members(ORDERS, CUSTOMER, "created_at", sales_only=True),
    "activity": Members(ACTIVITY, ACTOR, "timestamp", sales_only=False),
}


# -- retention ---------------------------------------------------------------------------


class Cohort(ResponsePart):
    cohort: str
    """local start (YYYY-MM-DD) of the week (Monday) or month of the members' first sale (or first activity) ever"""
    size: int
    """members of the cohort"""
    retention: list[float | None] = Field(
        description="retention[k]: share of the cohort with a sale (or activity) in the k-th week or month after "
        "the cohort's own (k=0 is 1.0), for every week or month that started before the period's end; "
        "null for an empty cohort"
    )
    counts: list[int]
    """counts[k]: members with a sale (or activity) in week or month k"""
    revenue: list[float | None] | None = Field(
        default=None,
        description="measure=revenue: revenue[k] = the cohort's gross revenue in its k-th week or month / cohort "
        "size (with cumulative=true: summed over 0..k, the lifetime value per member by cohort age); null for "
        "an empty cohort",
    )
    gross_revenue: list[float] | None = Field(
        default=None, description="measure=revenue: the cohort's gross revenue in each week or month k (not cumulative)"
    )


class RetentionResponse(AnalyticsResponse):
    basis: Basis
    """orders: customers and their sales; activity: actors and their activity"""
    granularity: Granularity
    """cohort and retention bucket: week (Monday) or month"""
    measure: CohortMeasure = "customers"
    """customers: retention shares; revenue: also the revenue per member of each cohort and bucket"""
    cumulative: bool = False
    """measure=revenue: revenue per member summed over the cohort's buckets so far (LTV)"""
    cohorts: list[Cohort]
    """every cohort whose start lies in the period, oldest first"""
    average: list[float | None] = Field(
        description="average[k]: members active in bucket k / members, over the cohorts that have a bucket k "
        "(size-weighted mean retention)"
    )
    average_revenue: list[float | None] | None = Field(
        default=None,
        description="measure=revenue: average_revenue[k] = gross revenue in bucket k (cumulative: through k) of the "
        "cohorts that have a bucket k / their members",
    )


@dataclass(frozen=True)
class Retention(AnalyticsQuery[RetentionResponse]):
    """Cohort retention: members by the bucket of their first sale (activity) ever, then, per
    later bucket, how many of them were active in it. Data at or after the period's end is
    ignored, so the last bucket counts only up to the end."""

    params: CommonParams
    basis: Basis = "orders"
    granularity: Granularity = "month"
    measure: CohortMeasure = "customers"
    cumulative: bool = False
    name: ClassVar = "users/retention"

    @property
    def grid(self) -> Period:
        return replace(self.params.period, interval=self.granularity)

    def cohort_starts(self) -> list[datetime]:
        """Local starts of the buckets that start inside the period."""
        return [b for b in self.grid.buckets() if b >= self.params.period.start]

    def first_seen_request(self) -> Composite:
        """Every member's first sale (activity) ever, up to the period's end."""
        m = MEMBERS[self.basis]
        return Composite(
            m.family,
            m.query(self.params, None, self.params.period.end_utc),
            [terms_source("id", m.id_field)],
            {"first": {"min": {"field": m.time_field}}},
        )

    def requests(self, *, from_orders: bool = False) -> dict[str, Search | Composite]:
        """Nothing when no cohort starts in the period. Sales: the cohorts counted over the customer
        documents, or, `from_orders` (a channel filter, documents not built yet), every customer's
        first sale, streamed; activity: every actor's first activity, streamed."""
        starts = self.cohort_starts()
        if not starts:
            return {}
        if (
            self.basis == "orders"
            and not from_orders
            and self.measure == "customers"
            and customer_docs.usable(self.params)
        ):
            return {"cohorts": customer_docs.cohorts_request(self.params, self.granularity, _utc(starts[0]))}
        return {"first_seen": self.first_seen_request()}

    def active_request(self, since: datetime) -> Composite:
        """Every (member, bucket) pair with a sale (activity), from the first cohort's start to the
        end: sent once the cohorts are known, its pairs read against them as they stream."""
        m = MEMBERS[self.basis]
        bucket = {
            "date_histogram": {
                "field": m.time_field,
                "calendar_interval": self.granularity,
                "time_zone": self.params.period.tz.key,
            }
        }
        revenue = {"revenue": {"sum": {"field": "gross_revenue"}}} if self.measure == "revenue" else None
        return Composite(
            m.family,
            m.query(self.params, _utc(since), self.params.period.end_utc),
            [terms_source("id", m.id_field), {"bucket": bucket}],
            revenue,
        )

    @staticmethod
    def counted(answer: dict[str, Any], bounds: list[int]) -> tuple[Counter[int], list[list[int]]]:
        """Cohort sizes and per-bucket counts from `cohorts_request` (bucket keys are local
        bucket starts, so each is a bound or lies between two)."""
        n = len(bounds) - 1
        sizes: Counter[int] = Counter()
        counts = [[0] * (n - c) for c in range(n)]
        for cohort in answer.get("aggregations", {}).get("cohorts", {}).get("buckets", []):
            c = bisect_right(bounds, cohort["key"]) - 1
            if not 0 <= c < n or not cohort["doc_count"]:
                continue
            sizes[c] += int(cohort["doc_count"])
            for b in cohort["sales"]["before_end"]["buckets"]["buckets"]:
                k = bisect_right(bounds, b["key"]) - 1 - c
                if 0 <= k < n - c:
                    counts[c][k] += int(b["customers"]["doc_count"])
        return sizes, counts

    async def streamed(
        self, ctx: QueryContext, starts: list[datetime], bounds: list[int]
    ) -> tuple[Counter[int], list[list[int]], list[list[float]]]:
        """Cohort sizes, per-bucket counts and (measure=revenue) per-bucket gross revenue from every
        member's first sale (activity) and the (member, bucket) pairs, both streamed."""
        n = len(starts)
        cohort_of: dict[str, int] = {}
        if n:
            async for b in ctx.stream(self.first_seen_request()):
                first = b["first"]["value"]
                if first is not None and first >= bounds[0]:
                    cohort_of[b["key"]["id"]] = bisect_right(bounds, first) - 1
        sizes = Counter(cohort_of.values())
        counts = [[0] * (n - c) for c in range(n)]
        revenue = [[0.0] * (n - c) for c in range(n)]
        if cohort_of:
            async for b in ctx.stream(self.active_request(starts[0])):
                c = cohort_of.get(b["key"]["id"])
                if c is not None:
                    k = bisect_right(bounds, b["key"]["bucket"]) - 1 - c
                    counts[c][k] += 1
                    if "revenue" in b:
                        revenue[c][k] += float(b["revenue"]["value"] or 0.0)
        return sizes, counts, revenue

    def revenue_per_member(self, size: int, revenue: list[float]) -> list[float | None]:
        """revenue[k] / size, summed over 0..k when cumulative; None for an empty cohort."""
        if not size:
            return [None] * len(revenue)
        values = list(accumulate(revenue)) if self.cumulative else revenue
        return [money(v / size) for v in values]

    async def run(self, ctx: QueryContext) -> RetentionResponse:
        starts = self.cohort_starts()
        bounds = [_ms(s) for s in starts] + [_ms(self.params.period.end)]
        n = len(starts)
        requests = self.requests(from_orders=self.basis == "orders" and not await ctx.customer_documents_ready())
        request = requests.get("cohorts")
        if isinstance(request, Search):
            sizes, counts = self.counted(await ctx.send(request), bounds)
            revenue: list[list[float]] = []
        else:
            sizes, counts, revenue = await self.streamed(ctx, starts, bounds)
        by_revenue = self.measure == "revenue"
        cohorts = [
            Cohort(
                cohort=self.grid.key_of(bounds[c]),
                size=sizes[c],
                retention=[ratio(x, sizes[c]) for x in counts[c]],
                counts=counts[c],
                revenue=self.revenue_per_member(sizes[c], revenue[c]) if by_revenue else None,
                gross_revenue=[money(v) for v in revenue[c]] if by_revenue else None,
            )
            for c in range(n)
        ]
        having = [[c for c in range(n) if len(counts[c]) > k] for k in range(n)]  # the cohorts with a bucket k
        average = [ratio(sum(counts[c][k] for c in having[k]), sum(sizes[c] for c in having[k])) for k in range(n)]
        average_revenue = None
        if by_revenue:
            through = [list(accumulate(row)) if self.cumulative else row for row in revenue]
            average_revenue = [
                money(sum(through[c][k] for c in having[k]) / members)
                if (members := sum(sizes[c] for c in having[k]))
                else None
                for k in range(n)
            ]
        return RetentionResponse(
            period=PeriodOut.of(self.grid),
            basis=self.basis,
            granularity=self.granularity,
            measure=self.measure,
            cumulative=self.cumulative,
            cohorts=cohorts,
            average=average,
            average_revenue=average_revenue,
        )


# -- conversion funnel -----------------------------------------------------------------------


def parse_steps(text: str | None) -> tuple[str, ...]:
    """`a,b,c` -> the funnel's activity types; 422 naming `steps` when they are not 2..10
    distinct activity types."""
    if text is None:
        return DEFAULT_STEPS
    steps = tuple(s.strip() for s in text.split(","))
    if any(not s for s in steps):
        raise invalid("steps", "a comma-separated list of activity types without empty entries")
    unknown = [s for s in steps if s not in ACTIVITY_TYPES]
    if unknown:
        raise invalid("steps", f"unknown activity type(s) {', '.join(unknown)}; use {', '.join(ACTIVITY_TYPES)}")
    if not 2 <= len(steps) <= MAX_STEPS:
        raise invalid("steps", f"give 2 to {MAX_STEPS} steps, not {len(steps)}")
    if len(set(steps)) != len(steps):
        raise invalid("steps", "each step may appear only once")
    return steps


class FunnelStep(ResponsePart):
    step: str
    """activity type"""
    actors: int
    """actors with at least one activity of this step and of every step before it in the period (in any order)"""
    conversion: float | None
    """actors of this step / actors of the first step"""
    step_conversion: float | None
    """actors of this step / actors of the previous step (1.0 for the first step)"""


class ConversionResponse(AnalyticsResponse):
    steps: list[FunnelStep]
    """every requested step, in the order given"""


@dataclass(frozen=True)
class Conversion(AnalyticsQuery[ConversionResponse]):
    """The funnel: per actor, which of the steps they did in the period; an actor reaches step k
    when they did steps 1..k (docs/metrics.md "Funnel": no order between them is required)."""

    params: CommonParams
    steps: tuple[str, ...] = DEFAULT_STEPS
    name: ClassVar = "users/conversion"

    def pairs_request(self) -> Composite:
        """Every (actor, step) pair of the period."""
        return Composite(
            ACTIVITY,
            activity_query(self.params, activity_types(*self.steps)),
            [terms_source("actor", ACTOR), terms_source("type", "activity_type")],
        )

    def requests(self) -> dict[str, Search | Composite]:
        """The (actor, step) pairs, streamed (a pair per actor and step)."""
        return {"pairs": self.pairs_request()}

    async def run(self, ctx: QueryContext) -> ConversionResponse:
        done: dict[str, set[str]] = defaultdict(set)
        async for b in ctx.stream(self.pairs_request()):
            done[b["key"]["actor"]].add(b["key"]["type"])
        reached = [0] * len(self.steps)
        for types in done.values():
            for k, step in enumerate(self.steps):
                if step not in types:
                    break
                reached[k] += 1
        steps = [
            FunnelStep(
                step=step,
                actors=reached[k],
                conversion=ratio(reached[k], reached[0]),
                step_conversion=ratio(reached[k], reached[k - 1] if k else reached[0]),
            )
            for k, step in enumerate(self.steps)
        ]
        return ConversionResponse(period=PeriodOut.of(self.params.period), steps=steps)


# -- segments ------------------------------------------------------------------------------


class CustomerSegment(ResponsePart):
    key: str
    """segment name"""
    customers: int
    """customers in the segment"""
    share: float | None
    """customers / customers with sales in the period"""
    orders: int
    """their sales in the period"""
    monetary: float
    """sum of their order values (gross revenue - order discount) in the period"""


class ActorSegment(ResponsePart):
    key: str = Field(
        description=f"device type, UTM source or country of the actor's first activity in the "
        f"period; {NONE_KEY!r} when that activity has none"
    )
    actors: int
    """actors whose first activity in the period has this value"""
    share: float | None
    """actors / actors with activity in the period"""


class RfmCustomer(ResponsePart):
    customer_id: str
    """customer.customer_id of the sales"""
    recency_days: int
    """whole days (24 h) from the customer's last sale to the period's end"""
    frequency: int
    """sales in the period"""
    monetary: float
    """sum of order values in the period"""
    r: int
    """recency score 1..5"""
    f: int
    """frequency score 1..5"""
    m: int
    """monetary score 1..5"""
    segment: str
    """RFM segment: the first rule the r, f, m scores match"""


class SegmentsResponse(AnalyticsResponse):
    type: SegmentType
    """the segmentation asked for"""
    total: int = Field(
        description="customers with sales in the period (rfm, new_returning) or actors with activity "
        "in the period (device, source, country)"
    )
    segments: list[CustomerSegment] | list[ActorSegment]
    """every segment, by customers (actors) descending, ties by key"""
    repeat_purchase_rate: float | None = None
    """new_returning: customers with 2+ sales in the period / customers"""
    customers: list[RfmCustomer] | None = None
    """rfm with include_customers=true: one page of customers, by monetary descending, ties by customer_id"""
    customers_total: int | None = None
    """customers matching (all pages)"""
    page: int | None = None
    """rfm with include_customers: the page listed (from 1), else null"""
    page_size: int | None = None
    """rfm with include_customers: customers per page, else null"""


@dataclass(frozen=True)
class CustomerStats:
    customer_id: str
    first_ms: float  # first sale ever (up to the period's end)
    orders: int  # sales in the period
    last_ms: float  # last sale in the period (it has one)
    monetary: float  # order values in the period


def customer_stats_request(params: CommonParams) -> Composite:
    """Per customer with a sale before the period's end: the first sale ever, and the sales,
    last sale and order value in the period."""
    period = params.period
    return Composite(
        ORDERS,
        MEMBERS["orders"].query(params, None, period.end_utc),
        [terms_source("customer", CUSTOMER)],
        {
            "first": {"min": {"field": "created_at"}},
            "in_period": {
                "filter": period.range_filter("created_at"),
                "aggs": {"last": {"max": {"field": "created_at"}}, "monetary": {"sum": {"field": "order_value"}}},
            },
        },
    )


def period_sales_query(params: CommonParams) -> dict[str, Any]:
    """The period's sales (of the requested store and channel)."""
    return MEMBERS["orders"].query(params, params.period.start_utc, params.period.end_utc)


def rfm_customers_request(params: CommonParams) -> Partitioned:
    """Per customer with a sale in the period: its sales (the bucket's doc_count), last sale
    and order value. Read in partitions (thousands of customers at a time, concurrently), for
    at most as many customers as the period has sales (`period_sales_request`)."""
    return Partitioned(
        ORDERS,
        period_sales_query(params),
        CUSTOMER,
        {"last": {"max": {"field": "created_at"}}, "monetary": {"sum": {"field": "order_value"}}},
    )


def period_sales_request(params: CommonParams) -> Search:
    """How many sales the period has (hits.total): no more customers than that."""
    return Search(ORDERS, {"query": period_sales_query(params)})


@dataclass(frozen=True)
class RfmTable:
    """The customers of `rfm_customers_request` as columns, in the buckets' order: hundreds of
    thousands of them are sorted three times to score them, which takes seconds as Python
    objects and a fraction of that as numpy arrays (212,136 customers, scored: 4.2 s as
    objects, 0.5 s as arrays)."""

    ids: list[str]
    id_rank: np.ndarray  # each customer's position in id order: ties in a sort go by id
    orders: np.ndarray  # sales in the period
    last_ms: np.ndarray  # last sale in the period
    monetary: np.ndarray  # order values in the period, as summed
    cents: np.ndarray  # the same rounded to cents, so sums that differ only by floating-point noise tie

    @classmethod
    def of(cls, buckets: list[dict[str, Any]]) -> RfmTable:
        ids = [b["key"] for b in buckets]
        monetary = [b["monetary"]["value"] for b in buckets]
        id_rank = np.empty(len(ids), dtype=np.int64)
        id_rank[np.argsort(np.array(ids, dtype=str), kind="stable")] = np.arange(len(ids))
        return cls(
            ids,
            id_rank,
            np.array([b["doc_count"] for b in buckets], dtype=np.int64),
            np.array([b["last"]["value"] for b in buckets], dtype=np.float64),
            np.array(monetary, dtype=np.float64),
            np.array([money(v) for v in monetary], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def position_scores(self, values: np.ndarray) -> np.ndarray:
        """Each customer's score 1..5 by position: sorted by `values` ascending, then id, position
        i of n gets 5 - floor(5 i / n). Values must already tie where they should (whole days,
        sales, cents)."""
        n = len(self)
        scores = np.empty(n, dtype=np.int64)
        if n:
            scores[np.lexsort((self.id_rank, values))] = 5 - (5 * np.arange(n)) // n
        return scores


async def period_customers(stats: AsyncIterator[dict[str, Any]]) -> list[CustomerStats]:
    """The customers with sales in the period, from the streamed `customer_stats_request`."""
    out = []
    async for b in stats:
        p = b["in_period"]
        if p["doc_count"]:
            out.append(
                CustomerStats(
                    b["key"]["customer"],
                    b["first"]["value"],
                    p["doc_count"],
                    p["last"]["value"],
                    p["monetary"]["value"],
                )
            )
    return out


def customer_segments(
    customers: list[CustomerStats], segment_of: Callable[[CustomerStats], str], keys: tuple[str, ...]
) -> list[CustomerSegment]:
    """Every segment in `keys`, with its customers, share, sales and order value."""
    members: dict[str, list[CustomerStats]] = {k: [] for k in keys}
    for c in customers:
        members[segment_of(c)].append(c)
    items = [
        CustomerSegment(
            key=k,
            customers=len(cs),
            share=ratio(len(cs), len(customers)),
            orders=sum(c.orders for c in cs),
            monetary=money(sum(c.monetary for c in cs)),
        )
        for k, cs in members.items()
    ]
    return ranked(items, lambda s: s.customers)


@dataclass(frozen=True)
class RfmRule:
    """A segment and the scores it takes: R within [r_min, r_max], F >= f_min, M >= m_min."""

    segment: str
    r_min: int = 1
    r_max: int = 5
    f_min: int = 1
    m_min: int = 1

    def matches(self, r: int, f: int, m: int) -> bool:
        return self.r_min <= r <= self.r_max and f >= self.f_min and m >= self.m_min


# The rules of docs/metrics.md "Segments", in order: the first that matches wins.
RFM_RULES = (
    RfmRule("Champions", r_min=4, f_min=4, m_min=4),
    RfmRule("Loyal Customers", f_min=4),
    RfmRule("Potential Loyalists", r_min=4, f_min=2),
    RfmRule("New Customers", r_min=4),
    RfmRule("At Risk", r_max=2, f_min=3),
    RfmRule("Hibernating", r_max=2),
    RfmRule("Need Attention"),
)
RFM_SEGMENTS = tuple(rule.segment for rule in RFM_RULES)


def rfm_segment(r: int, f: int, m: int) -> str:
    """The segment of the first rule the scores (each 1..5) match."""
    return next(rule.segment for rule in RFM_RULES if rule.matches(r, f, m))


# The index in RFM_SEGMENTS of the segment of scores (r, f, m), at [r - 1, f - 1, m - 1].
SEGMENT_OF_SCORES = np.array(
    [[[RFM_SEGMENTS.index(rfm_segment(r, f, m)) for m in range(1, 6)] for f in range(1, 6)] for r in range(1, 6)]
)


@dataclass(frozen=True)
class RfmSegments(AnalyticsQuery[SegmentsResponse]):
    """RFM over the customers with sales in the period; R, F and M each scored by its own sort."""

    params: CommonParams
    include_customers: bool = False
    segment: str | None = None  # list only this segment's customers
    page: int = 1
    page_size: int = 100
    name: ClassVar = "users/segments"

    def requests(self) -> dict[str, Search | Composite]:
        """The period's sales count; the customers follow (`rfm_customers_request`)."""
        return {"sales": period_sales_request(self.params)}

    def scored(
        self, buckets: list[dict[str, Any]]
    ) -> tuple[list[CustomerSegment], int, list[RfmCustomer] | None, int | None]:
        """(segments, customers, the listed page, customers listable) from the customers' buckets:
        every customer's recency, frequency and monetary value, scores and segment, as arrays
        (response models only for a listed page)."""
        t = RfmTable.of(buckets)
        n = len(t)
        recency = np.floor_divide(_ms(self.params.period.end) - t.last_ms, DAY_MS).astype(np.int64)
        r, f, m = t.position_scores(recency), t.position_scores(-t.orders), t.position_scores(-t.cents)
        segment = SEGMENT_OF_SCORES[r - 1, f - 1, m - 1]
        members = np.bincount(segment, minlength=len(RFM_SEGMENTS))
        orders = np.bincount(segment, weights=t.orders, minlength=len(RFM_SEGMENTS))
        monetary = np.bincount(segment, weights=t.monetary, minlength=len(RFM_SEGMENTS))
        segments = ranked(
            [
                CustomerSegment(
                    key=key,
                    customers=int(members[i]),
                    share=ratio(int(members[i]), n),
                    orders=int(orders[i]),
                    monetary=money(float(monetary[i])),
                )
                for i, key in enumerate(RFM_SEGMENTS)
            ],
            lambda s: s.customers,
        )
        listed = total = None
        if self.include_customers:
            chosen = (
                np.arange(n) if self.segment is None else np.flatnonzero(segment == RFM_SEGMENTS.index(self.segment))
            )
            # by monetary value descending (in cents, as `ranked` compares), then id
            chosen = chosen[np.lexsort((t.id_rank[chosen], -t.cents[chosen]))]
            total = len(chosen)
            page = chosen[(self.page - 1) * self.page_size : self.page * self.page_size]
            listed = [
                RfmCustomer(
                    customer_id=t.ids[i],
                    recency_days=int(recency[i]),
                    frequency=int(t.orders[i]),
                    monetary=float(t.cents[i]),
                    r=int(r[i]),
                    f=int(f[i]),
                    m=int(m[i]),
                    segment=RFM_SEGMENTS[segment[i]],
                )
                for i in page
            ]
        return segments, n, listed, total

    async def run(self, ctx: QueryContext) -> SegmentsResponse:
        sales = total_hits(await ctx.send(period_sales_request(self.params)))
        buckets = await ctx.partitioned(rfm_customers_request(self.params), sales) if sales else []
        # Scoring sorts every customer three times: off the event loop, so other requests go on.
        segments, customers, listed, total = await asyncio.to_thread(self.scored, buckets)
        return SegmentsResponse(
            period=PeriodOut.of(self.params.period),
            type="rfm",
            total=customers,
            segments=segments,
            customers=listed,
            customers_total=total,
            page=self.page if listed is not None else None,
            page_size=self.page_size if listed is not None else None,
        )


@dataclass(frozen=True)
class NewReturning(AnalyticsQuery[SegmentsResponse]):
    """Customers with sales in the period: new when their first sale ever is in it."""

    params: CommonParams
    name: ClassVar = "users/segments"

    def requests(self, *, from_orders: bool = False) -> dict[str, Search | Composite]:
        """The segments counted over the customer documents, or, `from_orders` (a channel filter,
        documents not built yet), every customer's first sale and sales in the period, streamed
        (a bucket per customer)."""
        if from_orders or not customer_docs.usable(self.params):
            return {"customers": customer_stats_request(self.params)}
        return {"segments": customer_docs.new_returning_request(self.params)}

    async def run(self, ctx: QueryContext) -> SegmentsResponse:
        requests = self.requests(from_orders=not await ctx.customer_documents_ready())
        request = requests.get("segments") or requests["customers"]
        if isinstance(request, Search):
            segments, total, repeat = self.from_documents(await ctx.send(request))
        else:
            segments, total, repeat = self.from_orders(await period_customers(ctx.stream(request)))
        return SegmentsResponse(
            period=PeriodOut.of(self.params.period),
            type="new_returning",
            total=total,
            segments=segments,
            repeat_purchase_rate=ratio(repeat, total),
        )

    @staticmethod
    def from_documents(answer: dict[str, Any]) -> tuple[list[CustomerSegment], int, int]:
        """(segments, customers, customers with 2+ sales) from `new_returning_request`."""
        aggs = answer.get("aggregations", {})
        buckets = aggs["segments"]["buckets"]
        total = sum(int(buckets[k]["doc_count"]) for k in ("new", "returning"))
        items = [
            CustomerSegment(
                key=k,
                customers=int(buckets[k]["doc_count"]),
                share=ratio(int(buckets[k]["doc_count"]), total),
                orders=int(buckets[k]["sales"]["in_period"]["doc_count"]),
                monetary=money(buckets[k]["sales"]["in_period"]["monetary"]["value"]),
            )
            for k in ("new", "returning")
        ]
        return ranked(items, lambda s: s.customers), total, doc_count(aggs, "repeat")

    def from_orders(self, customers: list[CustomerStats]) -> tuple[list[CustomerSegment], int, int]:
        start_ms = _ms(self.params.period.start)
        segments = customer_segments(
            customers, lambda c: "new" if c.first_ms >= start_ms else "returning", ("new", "returning")
        )
        return segments, len(customers), sum(c.orders >= 2 for c in customers)


ACTOR_DIMENSIONS = {"device": "device.type", "source": "utm.source", "country": "geo.country"}


@dataclass(frozen=True)
class ActorSegments(AnalyticsQuery[SegmentsResponse]):
    """Actors with activity in the period by the device type, UTM source or country of their
    first activity in the period (first touch), so every actor is in exactly one segment."""

    params: CommonParams
    dimension: Literal["device", "source", "country"] = "device"
    name: ClassVar = "users/segments"

    def pairs_request(self) -> Composite:
        """Every (actor, value) pair of the period with its first time."""
        return Composite(
            ACTIVITY,
            activity_query(self.params),
            [terms_source("actor", ACTOR), terms_source("value", ACTOR_DIMENSIONS[self.dimension], missing=True)],
            {"first": {"min": {"field": "timestamp"}}},
        )

    def requests(self) -> dict[str, Search | Composite]:
        """The (actor, value) pairs, streamed (a pair per actor and value)."""
        return {"pairs": self.pairs_request()}

    async def run(self, ctx: QueryContext) -> SegmentsResponse:
        first: dict[str, tuple[float, bool, str]] = {}
        async for b in ctx.stream(self.pairs_request()):
            value = b["key"]["value"]
            # earliest first; at the same instant a value before none, then by value
            candidate = (b["first"]["value"], value is None, value or "")
            actor = b["key"]["actor"]
            if actor not in first or candidate < first[actor]:
                first[actor] = candidate
        counts = Counter(NONE_KEY if missing else value for _, missing, value in first.values())
        segments = ranked(
            [ActorSegment(key=k, actors=n, share=ratio(n, len(first))) for k, n in counts.items()], lambda s: s.actors
        )
        return SegmentsResponse(
            period=PeriodOut.of(self.params.period), type=self.dimension, total=len(first), segments=segments
        )
