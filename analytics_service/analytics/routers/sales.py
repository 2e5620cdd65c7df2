"""Routes of the sales area: each one runs one query object of analytics.sales."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from ...auth import require
from .. import sales
from ..params import Common, CommonParams
from ..runner import Ctx

router = APIRouter(prefix="/api/v1/analytics", tags=["sales"], dependencies=[Depends(require("read"))])


@router.get("/dashboard", response_model=sales.DashboardResponse, summary="KPIs, daily series, top products")
async def dashboard(params: Common, ctx: Ctx) -> sales.DashboardResponse:
    return await ctx.answer(sales.Dashboard(params))


@router.get("/revenue/trends", response_model=sales.RevenueTrendsResponse, summary="Revenue and orders per bucket")
async def revenue_trends(params: Common, ctx: Ctx) -> sales.RevenueTrendsResponse:
    return await ctx.answer(sales.RevenueTrends(params))


@router.get(
    "/products/top-selling", response_model=sales.TopSellingResponse, summary="Top products by revenue or units"
)
async def top_selling(
    params: Common,
    ctx: Ctx,
    by: Annotated[Literal["revenue", "units"], Query(description="ranking measure")] = "revenue",
) -> sales.TopSellingResponse:
    return await ctx.answer(sales.TopSelling(params, by))


@router.get("/sales/revenue", response_model=sales.SalesRevenueResponse, summary="Gross to net revenue")
async def sales_revenue(params: Common, ctx: Ctx) -> sales.SalesRevenueResponse:
    return await ctx.answer(sales.SalesRevenue(params))


@router.get("/sales/orders", response_model=sales.SalesOrdersResponse, summary="Orders by status, cancellation rate")
async def sales_orders(params: Common, ctx: Ctx) -> sales.SalesOrdersResponse:
    return await ctx.answer(sales.SalesOrders(params))


def explicit_limit(request: Request, params: CommonParams) -> int | None:
    """Breakdowns return every key unless `limit` is given (the common default of 10 would hide keys)."""
    return params.limit if "limit" in request.query_params else None


@router.get(
    "/sales/products",
    response_model=sales.SalesProductsResponse,
    summary="Per product: units, revenue, orders, average price, profit, margin",
)
async def sales_products(
    params: Common,
    ctx: Ctx,
    sort: Annotated[
        Literal["revenue", "units", "orders", "gross_profit"],
        Query(description="ranking measure (descending, ties by product id)"),
    ] = "revenue",
) -> sales.SalesProductsResponse:
    return await ctx.answer(sales.SalesProducts(params, sort))


@router.get(
    "/sales/categories",
    response_model=sales.SalesCategoriesResponse,
    summary="Line revenue, units and orders by category or subcategory",
)
async def sales_categories(
    request: Request,
    params: Common,
    ctx: Ctx,
    level: Annotated[Literal["category", "subcategory"], Query(description="breakdown level")] = "category",
) -> sales.SalesCategoriesResponse:
    top = explicit_limit(request, params)
    return await ctx.answer(sales.SalesCategories(params, level, top))


@router.get(
    "/sales/geographic",
    response_model=sales.SalesGeographicResponse,
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
) -> sales.SalesGeographicResponse:
    top = explicit_limit(request, params)
    return await ctx.answer(sales.SalesGeographic(params, level, top))
