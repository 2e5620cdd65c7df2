"""Routes of the search area: each one runs one query object of analytics.search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ...auth import require
from .. import search
from ..params import Common
from ..runner import Ctx

router = APIRouter(prefix="/api/v1/analytics", tags=["search"], dependencies=[Depends(require("read"))])


@router.get("/search", response_model=search.IndexSearchResponse, summary="Full-text search in one index of the store")
async def full_text_search(
    params: Common,
    ctx: Ctx,
    query: Annotated[
        str,
        Query(
            description=f'search text (simple query string syntax: `+ | - "phrase" prefix* '
            f"(group) term~1`), at most {search.MAX_QUERY_LENGTH} characters; "
            "terms are ANDed"
        ),
    ],
    index: Annotated[
        search.SearchIndex,
        Query(
            description="orders (period on created_at), events and activity (timestamp), products (no period filter)"
        ),
    ] = "orders",
    size: Annotated[int, Query(ge=1, le=search.MAX_SIZE, description=f"hits per page, 1..{search.MAX_SIZE}")] = 10,
    from_: Annotated[
        int,
        Query(
            alias="from",
            ge=0,
            le=search.MAX_WINDOW,
            description=f"offset of the first hit; from + size <= {search.MAX_WINDOW}",
        ),
    ] = 0,
) -> search.IndexSearchResponse:
    text = search.validated_query(query, size, from_)
    return await ctx.answer(search.IndexSearch(params, text, index, size, from_))
