"""Routes of the products area: each one runs one query object of analytics.products, or of
analytics.site_search for products/search.

(`/products/top-selling` lives with the sales routes.)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ...auth import require
from .. import products, site_search
from ..params import Common
from ..runner import Ctx
from .routes import query_route

router = APIRouter(prefix="/api/v1/analytics", tags=["products"], dependencies=[Depends(require("read"))])


@router.get(
    "/products/performance",
    response_model=products.ProductPerformanceResponse,
    summary="Per product: sales, profit, views, add-to-carts, view-to-purchase",
)
async def performance(
    params: Common,
    ctx: Ctx,
    sort: Annotated[
        products.PerformanceSort, Query(description="ranking measure (descending, ties by key)")
    ] = "revenue",
) -> products.ProductPerformanceResponse:
    return await ctx.answer(products.ProductPerformance(params, sort))


@router.get(
    "/products/inventory",
    response_model=products.InventoryResponse,
    summary="Stock, days of cover, low stock, ABC class, turnover, slow movers",
)
async def inventory(
    params: Common,
    ctx: Ctx,
    sort: Annotated[
        products.InventorySort,
        Query(
            description="revenue, units, stock_value, turnover: descending; stock, days_of_cover, key: ascending; "
            "empty values last, ties by key"
        ),
    ] = "revenue",
    low_stock: Annotated[
        bool | None, Query(description="true: only low-stock products; false: only the others")
    ] = None,
    abc_class: Annotated[products.AbcClass | None, Query(description="only products of this ABC class")] = None,
) -> products.InventoryResponse:
    return await ctx.answer(products.ProductInventory(params, sort, low_stock, abc_class))


@router.get(
    "/products/reviews",
    response_model=products.ReviewsResponse,
    summary="Rating distribution, mean, per-product means, series",
)
async def reviews(
    params: Common,
    ctx: Ctx,
    min_reviews: Annotated[int, Query(ge=1, le=100000, description="minimum reviews of a listed product")] = 3,
) -> products.ReviewsResponse:
    return await ctx.answer(products.ProductReviews(params, min_reviews))


query_route(
    router,
    "/products/search",
    site_search.SiteSearch,
    "Top queries, zero-result rate and queries, search conversion",
    name="site_search",
)
