"""Routes of the sales area: each one runs one query object of analytics.sales, or of
analytics.breakdowns for sales/products, sales/categories and sales/geographic."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from ...auth import require
from .. import breakdowns, sales
from ..params import Common, CommonParams, invalid
from ..runner import Ctx
from .routes import query_route

router = APIRouter(prefix="/api/v1/analytics", tags=["sales"], dependencies=[Depends(require("read"))])


query_route(router, "/dashboard", sales.Dashboard, "KPIs, daily series, top products")
query_route(router, "/revenue/trends", sales.RevenueTrends, "Revenue and orders per bucket")


@router.get(
    "/products/top-selling", response_model=sales.TopSellingResponse, summary="Top products by revenue or units"
)
async def top_selling(
    params: Common,
    ctx: Ctx,
    by: Annotated[Literal["revenue", "units"], Query(description="ranking measure")] = "revenue",
) -> sales.TopSellingResponse:
    return await ctx.answer(sales.TopSelling(params, by))


query_route(router, "/sales/revenue", sales.SalesRevenue, "Gross to net revenue")
query_route(router, "/sales/orders", sales.SalesOrders, "Orders by status, cancellation rate")

WINDOW = re.compile(r"^(\d{1,3})d$")


@router.get(
    "/sales/aov",
    response_model=sales.RollingAovResponse,
    summary="Rolling average order value: the AOV of the trailing window at the end of every bucket",
)
async def rolling_aov(
    params: Common,
    ctx: Ctx,
    window: Annotated[
        str, Query(description=f"trailing window in local days: 7d, 30d, 90d (any 1d..{sales.MAX_WINDOW_DAYS}d)")
    ] = "30d",
) -> sales.RollingAovResponse:
    match = WINDOW.match(window)
    if match is None or not 1 <= int(match.group(1)) <= sales.MAX_WINDOW_DAYS:
        raise invalid("window", f"must be a number of days such as 7d, 30d or 90d (1d..{sales.MAX_WINDOW_DAYS}d)")
    if params.period.interval not in sales.ROLLING_INTERVALS:
        raise invalid("interval", f"must be one of {', '.join(sales.ROLLING_INTERVALS)} for a rolling AOV")
    return await ctx.answer(sales.RollingAov(params, int(match.group(1))))


def explicit_limit(request: Request, params: CommonParams) -> int | None:
    """Breakdowns return every key unless `limit` is given (the common default of 10 would hide
    keys). A plain function, not a dependency: a second dependency on `Common` would report a
    bad `limit` twice."""
    return params.limit if "limit" in request.query_params else None


@router.get(
    "/sales/products",
    response_model=breakdowns.SalesProductsResponse,
    summary="Per product: units, revenue, orders, average price, profit, margin",
)
async def sales_products(
    params: Common,
    ctx: Ctx,
    sort: Annotated[
        Literal["revenue", "units", "orders", "gross_profit"],
        Query(description="ranking measure (descending, ties by product id)"),
    ] = "revenue",
) -> breakdowns.SalesProductsResponse:
    return await ctx.answer(breakdowns.SalesProducts(params, sort))


@router.get(
    "/sales/categories",
    response_model=breakdowns.SalesCategoriesResponse,
    summary="Line revenue, units and orders by category or subcategory",
)
async def sales_categories(
    request: Request,
    params: Common,
    ctx: Ctx,
    level: Annotated[Literal["category", "subcategory"], Query(description="breakdown level")] = "category",
) -> breakdowns.SalesCategoriesResponse:
    return await ctx.answer(breakdowns.SalesCategories(params, level, explicit_limit(request, params)))


@router.get(
    "/sales/geographic",
    response_model=breakdowns.SalesGeographicResponse,
    summary="Order revenue, orders and customers by country, region, state or city",
)
async def sales_geographic(
    request: Request,
    params: Common,
    ctx: Ctx,
    level: Annotated[
        Literal["country", "region", "state", "city"],
        Query(description="breakdown level (the customer's place on the order)"),
    ] = "country",
) -> breakdowns.SalesGeographicResponse:
    return await ctx.answer(breakdowns.SalesGeographic(params, level, explicit_limit(request, params)))
