"""Routes of the lifecycle area: each one runs one query object of analytics.lifecycle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ...auth import require
from .. import lifecycle
from ..params import MAX_PAGE, Common, invalid
from ..runner import AnalyticsQuery, Ctx

router = APIRouter(prefix="/api/v1/analytics", tags=["lifecycle"], dependencies=[Depends(require("read"))])


@router.get(
    "/users/retention",
    response_model=lifecycle.RetentionResponse,
    summary="Cohort retention by first sale or first activity",
)
async def retention(
    params: Common,
    ctx: Ctx,
    basis: Annotated[
        lifecycle.Basis, Query(description="orders: customers by first sale; activity: actors by first activity")
    ] = "orders",
    granularity: Annotated[lifecycle.Granularity, Query(description="cohort bucket: week (Monday) or month")] = "month",
    measure: Annotated[
        lifecycle.CohortMeasure,
        Query(description="customers: retention shares; revenue: also gross revenue per cohort member (basis=orders)"),
    ] = "customers",
    cumulative: Annotated[
        bool, Query(description="measure=revenue: revenue per member summed over the buckets so far (LTV by age)")
    ] = False,
) -> lifecycle.RetentionResponse:
    if measure == "revenue" and basis != "orders":
        raise invalid("measure", "revenue cohorts need basis=orders (activity has no revenue)")
    if cumulative and measure != "revenue":
        raise invalid("cumulative", "applies to measure=revenue (revenue per member summed over the cohort's age)")
    return await ctx.answer(lifecycle.Retention(params, basis, granularity, measure, cumulative))


@router.get("/users/conversion", response_model=lifecycle.ConversionResponse, summary="Activity funnel")
async def conversion(
    params: Common,
    ctx: Ctx,
    steps: Annotated[
        str | None,
        Query(description="2..10 comma-separated activity types; default " + ",".join(lifecycle.DEFAULT_STEPS)),
    ] = None,
) -> lifecycle.ConversionResponse:
    parsed = lifecycle.parse_steps(steps)
    return await ctx.answer(lifecycle.Conversion(params, parsed))


@router.get(
    "/users/segments",
    response_model=lifecycle.SegmentsResponse,
    summary="RFM, new/returning customers, actors by device, source or country",
)
async def segments(
    params: Common,
    ctx: Ctx,
    type: Annotated[
        lifecycle.SegmentType,
        Query(description="rfm, new_returning (customers with sales in the period); device, source, country (actors)"),
    ] = "rfm",
    include_customers: Annotated[bool, Query(description="rfm: also list the customers with their scores")] = False,
    segment: Annotated[
        str | None, Query(description="rfm with include_customers: only this segment's customers")
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"rfm customers: page number, 1..{MAX_PAGE}")] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000, description="rfm customers per page, 1..1000")] = 100,
) -> lifecycle.SegmentsResponse:
    if segment is not None and segment not in lifecycle.RFM_SEGMENTS:
        raise invalid("segment", f"must be one of {', '.join(lifecycle.RFM_SEGMENTS)}")
    query: AnalyticsQuery[lifecycle.SegmentsResponse]
    if type == "rfm":
        query = lifecycle.RfmSegments(params, include_customers, segment, page, page_size)
    elif type == "new_returning":
        query = lifecycle.NewReturning(params)
    else:
        query = lifecycle.ActorSegments(params, type)
    return await ctx.answer(query)
