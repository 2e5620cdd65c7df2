"""Marketing campaigns: spend against the sales each campaign brought, by last touch
(docs/metrics.md "Campaigns").

An order belongs to the campaign of its `utm.campaign` (its last touch before buying);
a campaign's spend is the expenses carrying that `campaign`, dated in the period. So a
campaign row joins three indices on the campaign name: the orders (sales, revenue and
the customers it won), the expenses (spend, by the expense's channel) and the activity
(the sessions that arrived with that campaign, for the conversion rate). Everything is
read by paged composite aggregations and counted exactly in Python.

`channel` filters the sales channel of the orders (as everywhere); spend and sessions are
the campaign's whatever the sales channel.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..es.indices import ACTIVITY, EXPENSES, ORDERS
from .fields import AnalyticsResponse, PeriodOut, ResponsePart
from .financial import expense_dates
from .params import CommonParams
from .requests import Composite, terms_source
from .runner import AnalyticsQuery, QueryContext
from .shared import (
    CUSTOMER,
    NONE_KEY,
    SALE,
    TERMS_CHUNK,
    agg_value,
    chunks,
    distinct,
    money,
    ratio,
    sales_query,
    values,
)

CAMPAIGN = "utm.campaign"


class UtmSource(ResponsePart):
    source: str | None
    """utm.source of the campaign's orders (null when they carry none)"""
    medium: str | None
    """utm.medium"""
    orders: int
    """the campaign's sales with this source and medium"""
    gross_revenue: float
    """their gross revenue"""


class ChannelSpend(ResponsePart):
    channel: str
    """the expense's channel ("(none)" for expenses without one)"""
    spend: float
    """the campaign's expenses of this channel dated in the period"""


class CampaignItem(ResponsePart):
    campaign: str
    """utm.campaign of the orders and sessions, `campaign` of the expenses"""
    channel: str | None
    """where the campaign runs: the expense channel with the most spend, else the orders' top
    "source / medium"; null when neither is known"""
    spend: float
    """expenses with this campaign dated in the period (base currency)"""
    orders: int
    """sales of the period whose utm.campaign is this campaign (last touch)"""
    gross_revenue: float
    """gross revenue of those sales"""
    new_customers: int
    """customers whose first sale ever is one of those sales"""
    sessions: int
    """distinct sessions of the period's activity with this utm.campaign"""
    conversion_rate: float | None
    """orders / sessions; null without sessions"""
    roas: float | None
    """return on ad spend: gross_revenue / spend; null without spend"""
    cac: float | None
    """customer acquisition cost: spend / new_customers; null without new customers"""
    utm: list[UtmSource]
    """the campaign's orders by utm source and medium, by gross revenue"""
    spend_by_channel: list[ChannelSpend]
    """the campaign's spend by expense channel"""


class CampaignTotals(ResponsePart):
    spend: float
    """spend of every campaign"""
    orders: int
    """sales attributed to a campaign"""
    gross_revenue: float
    """their gross revenue"""
    new_customers: int
    """customers won by campaigns (first sale ever attributed to one)"""
    sessions: int
    """sessions that arrived with a campaign"""
    conversion_rate: float | None
    """orders / sessions; null without sessions"""
    roas: float | None
    """blended: attributed gross revenue / spend"""
    cac: float | None
    """blended: spend / new customers won by campaigns"""


class Unattributed(ResponsePart):
    orders: int
    """sales without utm.campaign (direct, organic, untagged)"""
    gross_revenue: float
    """their gross revenue"""
    new_customers: int
    """customers whose first sale ever is one of them"""


class CampaignsResponse(AnalyticsResponse):
    items: list[CampaignItem]
    """every campaign with spend, sales or sessions in the period, by gross revenue then spend, ties by name"""
    totals: CampaignTotals
    """over the campaigns (not the unattributed sales)"""
    unattributed: Unattributed
    """the period's sales that no campaign brought"""


@dataclass
class CampaignSums:
    """What the order pairs say about one campaign."""

    orders: int = 0
    gross_revenue: float = 0.0
    new_customers: int = 0


@dataclass
class FirstSales:
    """Per campaign its orders and revenue, and per customer of the period the campaign of
    their first sale in it (the candidates for new customers)."""

    campaigns: dict[str | None, CampaignSums] = field(default_factory=lambda: defaultdict(CampaignSums))
    first: dict[str, tuple[float, str | None]] = field(default_factory=dict)  # customer -> (time, campaign)

    @classmethod
    async def read(cls, buckets: AsyncIterator[dict[str, Any]]) -> FirstSales:
        out = cls()
        async for b in buckets:
            campaign, customer = b["key"]["campaign"], b["key"]["customer"]
            sums = out.campaigns[campaign]
            sums.orders += int(b["doc_count"])
            sums.gross_revenue += agg_value(b, "gross_revenue")
            at = float(b["first"]["value"])
            known = out.first.get(customer)
            # the customer's first sale in the period; a tie between campaigns: the smaller name
            if known is None or (at, campaign or "") < (known[0], known[1] or ""):
                out.first[customer] = (at, campaign)
        return out


@dataclass(frozen=True)
class MarketingCampaigns(AnalyticsQuery[CampaignsResponse]):
    params: CommonParams
    name: ClassVar = "marketing/campaigns"

    def order_pairs_request(self) -> Composite:
        """Every (customer, campaign) pair of the period's sales: orders, gross revenue and the
        first sale's time (a sale without utm.campaign has a null campaign)."""
        return Composite(
            ORDERS,
            sales_query(self.params),
            [terms_source("customer", CUSTOMER), terms_source("campaign", CAMPAIGN, missing=True)],
            {"gross_revenue": {"sum": {"field": "gross_revenue"}}, "first": {"min": {"field": "created_at"}}},
        )

    def utm_request(self) -> Composite:
        """The period's sales per (campaign, utm.source, utm.medium)."""
        return Composite(
            ORDERS,
            sales_query(self.params),
            [
                terms_source("campaign", CAMPAIGN, missing=True),
                terms_source("source", "utm.source", missing=True),
                terms_source("medium", "utm.medium", missing=True),
            ],
            {"gross_revenue": {"sum": {"field": "gross_revenue"}}},
        )

    def spend_request(self) -> Composite:
        """Expenses with a campaign dated in the period, per (campaign, channel), of the store
        (not filtered by the sales channel)."""
        first, last = expense_dates(self.params.period)
        dates = {"range": {"date": {"gte": first.isoformat(), "lt": last.isoformat(), "format": "yyyy-MM-dd"}}}
        query = {
            "bool": {
                "filter": [dates, {"exists": {"field": "campaign"}}, *self.params.filters(None, channel_field=None)]
            }
        }
        return Composite(
            EXPENSES,
            query,
            [terms_source("campaign", "campaign"), terms_source("channel", "channel", missing=True)],
            {"spend": {"sum": {"field": "amount"}}},
        )

    def sessions_request(self) -> Composite:
        """Every (campaign, session) pair of the period's activity that carries a utm.campaign."""
        filters = [
            *self.params.filters("timestamp", channel_field=None),
            {"exists": {"field": CAMPAIGN}},
            {"exists": {"field": "session_id"}},
        ]
        return Composite(
            ACTIVITY,
            {"bool": {"filter": filters}},
            [terms_source("campaign", CAMPAIGN), terms_source("session", "session_id")],
        )

    def earlier_customers_request(self, customers: list[str]) -> Composite:
        """Which of `customers` had a sale before the period (so are not new in it)."""
        earlier = {"range": {"created_at": {"lt": self.params.period.start_utc}}}
        query = {"bool": {"filter": [SALE, earlier, {"terms": {CUSTOMER: customers}}, *self.params.filters(None)]}}
        return distinct(ORDERS, query, CUSTOMER)

    def requests(self) -> dict[str, Composite]:
        """`pairs` and `sessions` are streamed, the others fetched (`run`)."""
        return {
            "pairs": self.order_pairs_request(),
            "utm": self.utm_request(),
            "spend": self.spend_request(),
            "sessions": self.sessions_request(),
        }

    @staticmethod
    async def session_counts(buckets: AsyncIterator[dict[str, Any]]) -> Counter[str]:
        counts: Counter[str] = Counter()
        async for b in buckets:
            counts[b["key"]["campaign"]] += 1
        return counts

    async def new_customers(self, ctx: QueryContext, sales: FirstSales) -> Counter[str | None]:
        """Per campaign, the customers whose first sale ever is one of its sales in the period:
        their first sale in the period, unless they had a sale before it."""
        customers = list(sales.first)
        earlier = await ctx.fetch(
            {
                str(i): self.earlier_customers_request(list(chunk))
                for i, chunk in enumerate(chunks(customers, TERMS_CHUNK))
            }
        )
        returning = {v for found in earlier.values() for v in values(found)}
        return Counter(campaign for customer, (_, campaign) in sales.first.items() if customer not in returning)

    async def run(self, ctx: QueryContext) -> CampaignsResponse:
        a = await ctx.fetch_reading(self.requests(), {"pairs": FirstSales.read, "sessions": self.session_counts})
        sales: FirstSales = a["pairs"]
        sessions: Counter[str] = a["sessions"]
        new = await self.new_customers(ctx, sales)
        spend: dict[str, dict[str, float]] = defaultdict(dict)
        for b in a["spend"]:
            channel = b["key"]["channel"] or NONE_KEY
            spend[b["key"]["campaign"]][channel] = agg_value(b, "spend")
        utm: dict[str | None, list[UtmSource]] = defaultdict(list)
        for b in a["utm"]:
            k = b["key"]
            utm[k["campaign"]].append(
                UtmSource(
                    source=k["source"],
                    medium=k["medium"],
                    orders=int(b["doc_count"]),
                    gross_revenue=money(agg_value(b, "gross_revenue")),
                )
            )
        names = {c for c in sales.campaigns if c is not None} | set(spend) | set(sessions)
        items = [self.item(c, sales.campaigns.get(c), new[c], sessions[c], spend.get(c, {}), utm[c]) for c in names]
        items.sort(key=lambda i: (-i.gross_revenue, -i.spend, i.campaign))
        none = sales.campaigns.get(None, CampaignSums())
        return CampaignsResponse(
            period=PeriodOut.of(self.params.period),
            items=items,
            totals=self.totals(items),
            unattributed=Unattributed(
                orders=none.orders, gross_revenue=money(none.gross_revenue), new_customers=new[None]
            ),
        )

    @staticmethod
    def item(
        campaign: str,
        sums: CampaignSums | None,
        new_customers: int,
        sessions: int,
        spend: dict[str, float],
        utm: list[UtmSource],
    ) -> CampaignItem:
        sums = sums or CampaignSums()
        spent = sum(spend.values())
        utm = sorted(utm, key=lambda u: (-u.gross_revenue, u.source or "", u.medium or ""))
        by_channel = sorted(spend.items(), key=lambda kv: (-kv[1], kv[0]))
        if by_channel:
            channel: str | None = by_channel[0][0]
        elif utm and (utm[0].source or utm[0].medium):
            channel = " / ".join(x for x in (utm[0].source, utm[0].medium) if x)
        else:
            channel = None
        return CampaignItem(
            campaign=campaign,
            channel=channel,
            spend=money(spent),
            orders=sums.orders,
            gross_revenue=money(sums.gross_revenue),
            new_customers=new_customers,
            sessions=sessions,
            conversion_rate=ratio(sums.orders, sessions),
            roas=round(sums.gross_revenue / spent, 4) if spent else None,
            cac=money(spent / new_customers) if new_customers else None,
            utm=utm,
            spend_by_channel=[ChannelSpend(channel=c, spend=money(v)) for c, v in by_channel],
        )

    @staticmethod
    def totals(items: list[CampaignItem]) -> CampaignTotals:
        spend = sum(i.spend for i in items)
        revenue = sum(i.gross_revenue for i in items)
        orders, new, sessions = (sum(getattr(i, n) for i in items) for n in ("orders", "new_customers", "sessions"))
        return CampaignTotals(
            spend=money(spend),
            orders=orders,
            gross_revenue=money(revenue),
            new_customers=new,
            sessions=sessions,
            conversion_rate=ratio(orders, sessions),
            roas=round(revenue / spend, 4) if spend else None,
            cac=money(spend / new) if new else None,
        )
