"""Products: performance, inventory (cover, ABC, slow movers) and reviews (site search is in
analytics/site_search.py).

Sources: sale lines in the order-items index (units, revenue, cost of goods), the
user-activity indices (product views, add-to-carts, reviews, purchases) and the
products index (the latest catalog record of each product, kept by external versioning
on `updated_at`, read from one point in time). Activity indices are monthly with one
shard each, so every per-product and per-actor list is read by a paged composite
aggregation (exact at any size, never cut at 10,000 buckets) and ranked in Python.
Activity records carry no sales channel: `channel` narrows the order-based numbers only.
Every Elasticsearch body a query here sends is built in this module (its query object's
`requests()` and `*_request` methods, `product_lines_request`, `names_request`), from the
pieces of analytics/shared.py.
Definitions: docs/metrics.md "Products and inventory" and "Users and activity".
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from ..es.indices import ACTIVITY, ORDER_ITEMS, PRODUCTS, IndexFamily
from ..es.scan import PitScan, with_tiebreaker
from .fields import AnalyticsResponse, BucketKey, Cogs, GrossRevenue, PeriodOut, ProductOrders, ResponsePart, Units
from .params import CommonParams
from .requests import Composite, Search, terms_source
from .runner import AnalyticsQuery, QueryContext
from .shared import (
    CUSTOMER,
    NO_SALES,
    TERMS_CHUNK,
    LineSums,
    activity_query,
    activity_types,
    agg_value,
    aggregations,
    bucket_series,
    by_key,
    chunks,
    keyed,
    latest_name,
    line_sum_aggs,
    money,
    orders_containing,
    orders_lacking_line_value,
    orders_with_line_value,
    ranked,
    ratio,
    rounded,
    sales_query,
    total_hits,
)

PerformanceSort = Literal["revenue", "units", "views", "margin"]
InventorySort = Literal["revenue", "units", "stock", "stock_value", "days_of_cover", "turnover", "key"]
AbcClass = Literal["A", "B", "C"]

# ABC thresholds, in percent of the period's gross revenue (docs/metrics.md "Products and inventory").
ABC_A_PCT, ABC_B_PCT = 80, 95
# Catalog documents read per page of the point in time (read when the catalog is read).
CATALOG_PAGE = 5000


# -- sales per product (order-items) ------------------------------------------------------


def product_lines_request(params: CommonParams) -> Composite:
    """Every product sold in the period with its line sums (shared.line_sum_aggs: revenue, units,
    cogs over the lines with a known cost and their revenue); read by `line_sums`."""
    return keyed(ORDER_ITEMS, sales_query(params), "product_id", line_sum_aggs())


def line_sums(buckets: list[dict[str, Any]]) -> dict[str, LineSums]:
    """The buckets of `product_lines_request` by product id, read."""
    return {key: LineSums.of(b) for key, b in by_key(buckets).items()}


# -- product names --------------------------------------------------------------------------

# The field whose newest value names a product: catalog records by updated_at, order lines by created_at.
NEWEST_FIRST: dict[str, str] = {PRODUCTS.name: "updated_at", ORDER_ITEMS.name: "created_at"}


def names_request(params: CommonParams, family: IndexFamily, ids: list[str]) -> Search:
    """The newest `name` per product id in the catalog (PRODUCTS) or the order lines (ORDER_ITEMS)."""
    return Search(
        family,
        {
            "query": {"bool": {"filter": [{"terms": {"product_id": ids}}, *params.filters(None, channel_field=None)]}},
            "aggs": {
                "products": {
                    "terms": {"field": "product_id", "size": len(ids)},
                    "aggs": {
                        "latest": {
                            "top_hits": {"size": 1, "sort": [{NEWEST_FIRST[family.name]: "desc"}], "_source": ["name"]}
                        }
                    },
                }
            },
        },
    )


async def newest_names(ctx: QueryContext, params: CommonParams, family: IndexFamily, ids: list[str]) -> dict[str, str]:
    """The ids of `ids` whose newest record in `family` has a name, with that name."""
    response = await ctx.send(names_request(params, family, ids))
    names: dict[str, str] = {}
    for b in aggregations(response).get("products", {}).get("buckets", []):
        name = latest_name(b)
        if name:
            names[b["key"]] = name
    return names


async def product_names(ctx: QueryContext, params: CommonParams, ids: list[str]) -> dict[str, str | None]:
    """Names from the catalog, else (a second request, for the ids still without one) from the
    newest order line naming the product."""
    names = await newest_names(ctx, params, PRODUCTS, ids)
    missing = [i for i in ids if i not in names]
    if missing:
        names.update(await newest_names(ctx, params, ORDER_ITEMS, missing))
    return {i: names.get(i) for i in ids}


# -- performance --------------------------------------------------------------------------

# A product's name as `product_names` finds it.
ProductName = Annotated[str | None, Field(description="latest catalog name, else the newest order line's")]


class PerformanceItem(ResponsePart):
    key: str
    """product_id"""
    name: ProductName
    units: int
    """units sold in sales of the period"""
    gross_revenue: float
    """sum of line revenue of the product's sale lines"""
    orders: ProductOrders
    avg_price: float | None
    """gross_revenue / units; null without units"""
    cogs: Cogs
    gross_profit: float | None
    """line revenue - line cogs over the lines with a known cost; null when no sale line has a cost"""
    margin: float | None
    """gross_profit / line revenue of the lines with a known cost"""
    lines_without_cost: int
    """sale lines without a unit cost (left out of gross_profit and margin)"""
    views: int
    """product_view activities in the period"""
    viewers: int
    """distinct actors (user_id, else anonymous_id) with a product_view"""
    add_to_carts: int
    """add_to_cart activities in the period"""
    viewers_who_bought: int
    """viewers who are a customer (user_id = customer_id) with a sale containing the product in the period"""
    view_to_purchase: float | None
    """viewers_who_bought / viewers; null without viewers"""


class ProductPerformanceResponse(AnalyticsResponse):
    sort: str
    """ranking measure: revenue, units, views or margin"""
    products: int
    """products with a sale line or a product activity in the period (before limit)"""
    items: list[PerformanceItem]
    """top `limit` products by `sort`, descending (no value last), ties by key"""


@dataclass
class _Engagement:
    """Product activity of one product: views, carts, and who viewed it."""

    views: int = 0
    add_to_carts: int = 0
    viewers: int = 0
    user_viewers: set[str] = field(default_factory=set)
    viewers_who_bought: int = 0


@dataclass(frozen=True)
class ProductPerformance(AnalyticsQuery[ProductPerformanceResponse]):
    """Sales and activity per product; the names of the returned products follow (`product_names`)."""

    params: CommonParams
    sort: PerformanceSort = "revenue"
    name: ClassVar = "products/performance"
    MEASURES: ClassVar[dict[str, str]] = {
        "revenue": "gross_revenue",
        "units": "units",
        "views": "views",
        "margin": "margin",
    }

    def activity_request(self) -> Composite:
        """One bucket per (product, actor): its views; the rest of the bucket are add-to-carts.
        `user` tells an identified actor (user_id) from an anonymous one."""
        return Composite(
            ACTIVITY,
            activity_query(
                self.params, activity_types("product_view", "add_to_cart"), {"exists": {"field": "product_id"}}
            ),
            [
                terms_source("product", "product_id"),
                terms_source("actor", "actor_id", missing=True),
                terms_source("user", "user_id", missing=True),
            ],
            {"views": {"filter": {"term": {"activity_type": "product_view"}}}},
        )

    def buyers_request(self, customers: Sequence[str]) -> Composite:
        """The (product, customer) pairs with a sale line in the period, of these customers: the
        identified viewers, the only customers who can be viewers who bought (a chunk of
        TERMS_CHUNK ids a request), so the pairs read follow the viewers, not every sale line."""
        query = sales_query(self.params)
        query["bool"]["filter"].append({"terms": {CUSTOMER: list(customers)}})
        return Composite(
            ORDER_ITEMS, query, [terms_source("product", "product_id"), terms_source("customer", CUSTOMER)]
        )

    def requests(self) -> dict[str, Search | Composite]:
        """Line sums and distinct sales per product, and the (product, actor) pairs; `run` streams
        the pairs (a bucket per actor), then asks for the viewers' purchases (`buyers_request`)."""
        query = sales_query(self.params)
        return {
            "lines": product_lines_request(self.params),
            "orders": orders_with_line_value(query, "product_id"),
            "orders_lacking": orders_lacking_line_value(query, "product_id"),
            "activity": self.activity_request(),
        }

    @staticmethod
    async def activity_engagement(activity: AsyncIterator[dict[str, Any]]) -> dict[str, _Engagement]:
        """Views, carts and viewers per product from the streamed (product, actor, user) buckets."""
        out: dict[str, _Engagement] = defaultdict(_Engagement)
        last_viewer = None  # buckets come sorted by (product, actor, user): one actor's are adjacent
        async for b in activity:
            product, actor, user = b["key"]["product"], b["key"]["actor"], b["key"]["user"]
            e = out[product]
            views = int(b["views"]["doc_count"])
            e.views += views
            e.add_to_carts += int(b["doc_count"]) - views
            if views and actor is not None:
                if (product, actor) != last_viewer:
                    e.viewers += 1
                    last_viewer = (product, actor)
                if user is not None:
                    e.user_viewers.add(user)
        return out

    async def engagement(self, ctx: QueryContext, activity: Composite) -> dict[str, _Engagement]:
        """The activity's engagement per product, then its viewers who bought: the identified
        viewers' (product, customer) purchase pairs, fetched concurrently a chunk at a time."""
        out = await self.activity_engagement(ctx.stream(activity))
        viewers = sorted(set().union(*(e.user_viewers for e in out.values())))
        bought = await ctx.fetch(
            {str(i): self.buyers_request(chunk) for i, chunk in enumerate(chunks(viewers, TERMS_CHUNK))}
        )
        for pairs in bought.values():
            for b in pairs:
                viewed = out.get(b["key"]["product"])
                if viewed is not None and b["key"]["customer"] in viewed.user_viewers:
                    viewed.viewers_who_bought += 1
        return out

    async def run(self, ctx: QueryContext) -> ProductPerformanceResponse:
        p = self.params
        requests = self.requests()
        activity = requests.pop("activity")
        assert isinstance(activity, Composite)
        engagement, a = await asyncio.gather(self.engagement(ctx, activity), ctx.fetch(requests))
        sales = line_sums(a["lines"])
        orders = orders_containing(a["orders"], a["orders_lacking"])
        rows = []
        for key in sales.keys() | engagement.keys():
            t, e = sales.get(key, NO_SALES), engagement.get(key, _Engagement())
            rows.append(
                PerformanceItem(
                    key=key,
                    name=None,
                    orders=orders.get(key, 0),
                    avg_price=money(t.revenue / t.units) if t.units else None,
                    **t.product_numbers(),
                    views=e.views,
                    viewers=e.viewers,
                    add_to_carts=e.add_to_carts,
                    viewers_who_bought=e.viewers_who_bought,
                    view_to_purchase=ratio(e.viewers_who_bought, e.viewers),
                )
            )
        measure = self.MEASURES[self.sort]
        top = ranked(rows, lambda r: getattr(r, measure), limit=p.limit)
        names = await product_names(ctx, p, [r.key for r in top]) if top else {}
        for row in top:
            row.name = names.get(row.key)
        return ProductPerformanceResponse(period=PeriodOut.of(p.period), sort=self.sort, products=len(rows), items=top)


# -- inventory ------------------------------------------------------------------------------


@dataclass
class CatalogEntry:
    """A product's latest catalog record; with several stores in view, their records summed."""

    name: str | None = None
    updated_at: str = ""
    stock: int | None = None
    reorder_point: int | None = None
    stock_value: float | None = None
    active: bool | None = None

    def add(self, doc: dict[str, Any]) -> None:
        if doc.get("updated_at", "") >= self.updated_at:
            self.updated_at = doc.get("updated_at", "")
            self.name = doc.get("name") or self.name
        stock, reorder, cost = doc.get("stock_quantity"), doc.get("reorder_point"), doc.get("cost")
        if stock is not None:
            self.stock = (self.stock or 0) + stock
        if reorder is not None:
            self.reorder_point = (self.reorder_point or 0) + reorder
        if stock is not None and cost is not None:
            self.stock_value = (self.stock_value or 0.0) + stock * cost
        if doc.get("active") is not None:
            self.active = bool(self.active) or doc["active"]


def abc_classes(revenue: dict[str, float]) -> dict[str, str]:
    """ABC by gross revenue (rounded to cents, so the classes follow the numbers shown).

    Products by revenue descending, ties by key: A while the cumulative share before the
    product is under 80 % (so the product crossing 80 % is A), then B while it is under
    95 %, then C. Products without positive revenue are C.
    """
    cents = {k: round(v * 100) for k, v in revenue.items()}
    total = sum(c for c in cents.values() if c > 0)
    out = dict.fromkeys(revenue, "C")
    before = 0
    for key in sorted((k for k, c in cents.items() if c > 0), key=lambda k: (-cents[k], k)):
        # Integer arithmetic: before / total < 80 %  <=>  100 * before < 80 * total.
        out[key] = "A" if 100 * before < ABC_A_PCT * total else "B" if 100 * before < ABC_B_PCT * total else "C"
        before += cents[key]
    return out


class InventoryItem(ResponsePart):
    key: str
    """product_id"""
    name: ProductName
    active: bool | None
    """catalog `active` flag (null when not in the catalog)"""
    in_catalog: bool
    """false for a product sold in the period but missing from the catalog"""
    stock: int | None
    """stock_quantity of the latest catalog record"""
    reorder_point: int | None
    """reorder_point of the latest catalog record (summed over the stores in view)"""
    days_of_cover: float | None
    """stock / avg_daily_units; null without sales in the period"""
    low_stock: bool
    """stock <= reorder_point"""
    out_of_stock: bool
    """stock = 0"""
    abc_class: AbcClass
    """A: top 80 % of the period's gross revenue, B: next 15 %, C: the rest and products without sales"""
    stock_value: float | None
    """stock * cost of the latest catalog record"""
    turnover: float | None
    """cogs of the period's sales / stock_value now"""
    avg_daily_units: float
    """units sold in the period / days in the period"""
    units: Units
    gross_revenue: GrossRevenue
    cogs: Cogs
    slow_mover: bool
    """stock > 0 and no units sold in the period"""


class AbcCounts(ResponsePart):
    A: int
    """products in class A"""
    B: int
    """products in class B"""
    C: int
    """products in class C"""


class InventorySummary(ResponsePart):
    products: int
    """catalog products plus products sold in the period without a catalog record"""
    matched: int
    """products matching the filters (before limit)"""
    low_stock: int
    """products with stock <= reorder_point"""
    out_of_stock: int
    """products with stock = 0"""
    slow_movers: int
    """products with stock > 0 and no units sold in the period"""
    stock_value: float
    """sum of stock * cost over the catalog"""
    units: int
    """units sold in the period"""
    gross_revenue: GrossRevenue
    cogs: Cogs
    abc: AbcCounts
    """products per ABC class"""


class InventoryResponse(AnalyticsResponse):
    sort: str
    """order of items: revenue, units, stock_value, turnover (desc); stock, days_of_cover, key (asc)"""
    days: float
    """days in the period (local wall-clock days: a DST day counts as one day)"""
    summary: InventorySummary
    """over every product, whatever the filters"""
    items: list[InventoryItem]
    """products matching low_stock and abc_class, in `sort` order, first `limit`"""


@dataclass(frozen=True)
class ProductInventory(AnalyticsQuery[InventoryResponse]):
    """The catalog joined with the period's sales per product; names missing from both follow
    (`product_names`)."""

    params: CommonParams
    sort: InventorySort = "revenue"
    low_stock: bool | None = None
    abc_class: AbcClass | None = None
    name: ClassVar = "products/inventory"
    # sort -> (item field, descending)
    SORTS: ClassVar[dict[str, tuple[str, bool]]] = {
        "revenue": ("gross_revenue", True),
        "units": ("units", True),
        "stock_value": ("stock_value", True),
        "turnover": ("turnover", True),
        "stock": ("stock", False),
        "days_of_cover": ("days_of_cover", False),
    }

    def requests(self) -> dict[str, Search | Composite]:
        """The line sums per product; the catalog is paged alongside (`catalog_documents`)."""
        return {"lines": product_lines_request(self.params)}

    def catalog_request(self, after: list[Any] | None) -> Search:
        """One page of catalog documents (one per store and product) in a total order (a sort
        ending with es/scan.py's tiebreaker); the next page starts after the previous page's
        last sort values. `catalog_documents` sends it within one point in time (es/scan.py)."""
        body: dict[str, Any] = {
            "query": {"bool": {"filter": self.params.filters(None, channel_field=None)}},
            "size": CATALOG_PAGE,
            "track_total_hits": False,
            "sort": with_tiebreaker(["product_id", "store_id"]),
            "source": ["product_id", "name", "stock_quantity", "reorder_point", "cost", "active", "updated_at"],
        }
        if after is not None:
            body["search_after"] = after
        return Search(PRODUCTS, body)

    async def catalog_documents(self, ctx: QueryContext) -> AsyncGenerator[dict[str, Any], None]:
        """Every catalog document in view: the pages of `catalog_request`, read with `PitScan`
        from one point in time, which is closed when the reading ends, fails or is given up."""
        body = self.catalog_request(None).body
        scan = PitScan(ctx.es, ctx.index(PRODUCTS), body["query"], body["sort"], body["source"], page_size=body["size"])
        try:
            await scan.open()
            hits = await scan.page(None)
            while hits:
                for hit in hits:
                    yield hit["_source"]
                hits = await scan.page(hits[-1]["sort"]) if len(hits) >= scan.page_size else []
        finally:
            await scan.close()

    async def catalog(self, ctx: QueryContext) -> dict[str, CatalogEntry]:
        out: dict[str, CatalogEntry] = defaultdict(CatalogEntry)
        async with aclosing(self.catalog_documents(ctx)) as documents:  # the point in time closes here
            async for doc in documents:
                out[doc["product_id"]].add(doc)
        return out

    def _item(self, key: str, entry: CatalogEntry | None, sales: LineSums, abc: str, days: float) -> InventoryItem:
        c = entry or CatalogEntry()
        daily = sales.units / days
        return InventoryItem(
            key=key,
            name=c.name,
            active=c.active,
            in_catalog=entry is not None,
            stock=c.stock,
            reorder_point=c.reorder_point,
            days_of_cover=round(c.stock / daily, 2) if c.stock is not None and sales.units > 0 else None,
            low_stock=c.stock is not None and c.reorder_point is not None and c.stock <= c.reorder_point,
            out_of_stock=c.stock == 0,
            abc_class=abc,
            stock_value=None if c.stock_value is None else money(c.stock_value),
            turnover=ratio(sales.cogs, c.stock_value) if c.stock_value else None,
            avg_daily_units=round(daily, 4),
            units=sales.units,
            gross_revenue=money(sales.revenue),
            cogs=money(sales.cogs),
            slow_mover=(c.stock or 0) > 0 and sales.units == 0,
        )

    def matches(self, item: InventoryItem) -> bool:
        return (self.low_stock is None or item.low_stock == self.low_stock) and (
            self.abc_class is None or item.abc_class == self.abc_class
        )

    def order(self, items: list[InventoryItem]) -> list[InventoryItem]:
        if self.sort == "key":
            return sorted(items, key=lambda i: i.key)
        name, descending = self.SORTS[self.sort]
        return ranked(items, lambda i: getattr(i, name), descending=descending)

    async def run(self, ctx: QueryContext) -> InventoryResponse:
        p = self.params
        catalog, a = await asyncio.gather(self.catalog(ctx), ctx.fetch(self.requests()))
        sales = line_sums(a["lines"])
        abc = abc_classes({k: s.revenue for k, s in sales.items()})
        days = p.period.days
        items = [
            self._item(key, catalog.get(key), sales.get(key, NO_SALES), abc.get(key, "C"), days)
            for key in catalog.keys() | sales.keys()
        ]
        missing = [i.key for i in items if i.name is None]
        if missing:  # the catalog's names are read already: the rest come from the order lines
            names = await newest_names(ctx, p, ORDER_ITEMS, missing)
            for item in items:
                item.name = item.name or names.get(item.key)
        matched = [i for i in items if self.matches(i)]
        summary = InventorySummary(
            products=len(items),
            matched=len(matched),
            low_stock=sum(i.low_stock for i in items),
            out_of_stock=sum(i.out_of_stock for i in items),
            slow_movers=sum(i.slow_mover for i in items),
            stock_value=money(sum(c.stock_value or 0.0 for c in catalog.values())),
            units=sum(s.units for s in sales.values()),
            gross_revenue=money(sum(s.revenue for s in sales.values())),
            cogs=money(sum(s.cogs for s in sales.values())),
            abc=AbcCounts(**{c: sum(i.abc_class == c for i in items) for c in "ABC"}),
        )
        return InventoryResponse(
            period=PeriodOut.of(p.period),
            sort=self.sort,
            days=round(days, 4),
            summary=summary,
            items=self.order(matched)[: p.limit],
        )


# -- reviews -------------------------------------------------------------------------------


class RatingCount(ResponsePart):
    rating: int
    """1..5"""
    count: int
    """reviews with this rating in the period"""


class ReviewedProduct(ResponsePart):
    key: str
    """product_id"""
    name: ProductName
    count: int
    """reviews with a rating in the period"""
    average_rating: float
    """mean rating, 4 decimals"""


class ReviewPoint(ResponsePart):
    key: BucketKey
    count: int
    """reviews in the bucket"""
    average_rating: float | None
    """null in a bucket without reviews"""


class ReviewsResponse(AnalyticsResponse):
    count: int
    """reviews (activity_type review with a rating) in the period"""
    average_rating: float | None
    """mean rating; null without reviews"""
    distribution: list[RatingCount]
    """every rating 1..5, zeros included"""
    min_reviews: int
    """the minimum review count of a listed product"""
    reviewed_products: int
    """products with at least min_reviews reviews (before limit)"""
    products: list[ReviewedProduct]
    """by average_rating desc, count desc, key asc"""
    series: list[ReviewPoint]
    """every bucket of the period, zeros when it has no reviews"""


@dataclass(frozen=True)
class ProductReviews(AnalyticsQuery[ReviewsResponse]):
    """Ratings of the period's reviews; the names of the listed products follow (`product_names`)."""

    params: CommonParams
    min_reviews: int = 3
    name: ClassVar = "products/reviews"

    def query(self) -> dict[str, Any]:
        return activity_query(self.params, activity_types("review"), {"exists": {"field": "rating"}})

    def reviews_request(self) -> Search:
        mean = {"average_rating": {"avg": {"field": "rating"}}}
        return Search(
            ACTIVITY,
            {
                "query": self.query(),
                "aggs": {
                    **mean,
                    # Ratings are 1..5: a histogram with fixed bounds returns every one of them.
                    "distribution": {
                        "histogram": {
                            "field": "rating",
                            "interval": 1,
                            "min_doc_count": 0,
                            "extended_bounds": {"min": 1, "max": 5},
                        }
                    },
                    "series": {**self.params.period.date_histogram("timestamp"), "aggs": mean},
                },
            },
        )

    def products_request(self) -> Composite:
        return Composite(
            ACTIVITY,
            self.query(),
            [terms_source("product", "product_id")],
            {"rating_sum": {"sum": {"field": "rating"}}},
        )

    def requests(self) -> dict[str, Search | Composite]:
        """The totals, distribution and series; and the ratings per product (streamed by `run`)."""
        return {"reviews": self.reviews_request(), "products": self.products_request()}

    async def reviewed(self, buckets: AsyncIterator[dict[str, Any]]) -> list[ReviewedProduct]:
        """The products with at least `min_reviews` reviews, by average desc, count desc, key."""
        reviewed = []
        async for b in buckets:
            if b["doc_count"] >= self.min_reviews:
                reviewed.append(
                    ReviewedProduct(
                        key=b["key"]["product"],
                        name=None,
                        count=b["doc_count"],
                        average_rating=round(agg_value(b, "rating_sum") / b["doc_count"], 4),
                    )
                )
        reviewed.sort(key=lambda i: (-i.average_rating, -i.count, i.key))
        return reviewed

    async def run(self, ctx: QueryContext) -> ReviewsResponse:
        p = self.params
        reviewed, a = await ctx.stream_and_fetch(self.requests(), "products", self.reviewed)
        r = a["reviews"]
        aggs = aggregations(r)
        by_rating = {int(b["key"]): b["doc_count"] for b in aggs.get("distribution", {}).get("buckets", [])}
        series = bucket_series(
            p.period,
            aggs,
            lambda key, b: ReviewPoint(
                key=key, count=b["doc_count"], average_rating=rounded(b.get("average_rating", {}).get("value"), 4)
            ),
        )
        top = reviewed[: p.limit]
        names = await product_names(ctx, p, [i.key for i in top]) if top else {}
        for item in top:
            item.name = names.get(item.key)
        return ReviewsResponse(
            period=PeriodOut.of(p.period),
            count=total_hits(r),
            average_rating=rounded(aggs.get("average_rating", {}).get("value"), 4),
            distribution=[RatingCount(rating=n, count=by_rating.get(n, 0)) for n in range(1, 6)],
            min_reviews=self.min_reviews,
            reviewed_products=len(reviewed),
            products=top,
            series=series,
        )
