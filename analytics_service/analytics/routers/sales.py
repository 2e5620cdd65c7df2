"""Routes of the sales area: each one runs one query object of analytics.sales."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from .. import sales
from ..params import Common
from ..runner import Ctx

router = APIRouter(prefix="/api/v1/analytics", tags=["sales"])


@router.get("/dashboard", response_model=sales.DashboardResponse, summary="KPIs, daily series, top products")
async def dashboard(params: Common, ctx: Ctx) -> sales.DashboardResponse:
    return await ctx.answer("dashboard", sales.Dashboard(params))


@router.get("/revenue/trends", response_model=sales.RevenueTrendsResponse, summary="Revenue and orders per bucket")
async def revenue_trends(params: Common, ctx: Ctx) -> sales.RevenueTrendsResponse:
    return await ctx.answer("revenue/trends", sales.RevenueTrends(params))


@router.get("/products/top-selling", response_model=sales.TopSellingResponse, summary="Top products by revenue or units")
async def top_selling(params: Common, ctx: Ctx,
                      by: Annotated[Literal["revenue", "units"], Query(description="ranking measure")] = "revenue",
                      ) -> sales.TopSellingResponse:
    return await ctx.answer("products/top-selling", sales.TopSelling(params, by), {"by": by})


@router.get("/sales/revenue", response_model=sales.SalesRevenueResponse, summary="Gross to net revenue")
async def sales_revenue(params: Common, ctx: Ctx) -> sales.SalesRevenueResponse:
    return await ctx.answer("sales/revenue", sales.SalesRevenue(params))


@router.get("/sales/orders", response_model=sales.SalesOrdersResponse, summary="Orders by status, cancellation rate")
async def sales_orders(params: Common, ctx: Ctx) -> sales.SalesOrdersResponse:
    return await ctx.answer("sales/orders", sales.SalesOrders(params))
