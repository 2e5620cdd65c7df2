"""Routes of the users area (activity, behaviour, engagement): each one runs one query object."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ...auth import require
from .. import users
from ..params import Common, CommonParams
from ..runner import Ctx

router = APIRouter(prefix="/api/v1/analytics", tags=["users"], dependencies=[Depends(require("read"))])


async def activity_params(params: Common) -> CommonParams:
    """The common parameters, for endpoints that read activity only (no `channel`)."""
    return users.check_activity_params(params)


ActivityParams = Annotated[CommonParams, Depends(activity_params)]


@router.get(
    "/users/activity",
    response_model=users.UserActivityResponse,
    summary="Active users, sessions and activity by type, per bucket",
)
async def user_activity(params: ActivityParams, ctx: Ctx) -> users.UserActivityResponse:
    return await ctx.answer(users.UserActivity(params))


@router.get(
    "/users/behavior",
    response_model=users.BehaviorResponse,
    summary="Activity by type, weekday x hour heatmap, top pages, devices",
)
async def user_behavior(params: ActivityParams, ctx: Ctx) -> users.BehaviorResponse:
    return await ctx.answer(users.Behavior(params))


@router.get(
    "/users/engagement",
    response_model=users.EngagementResponse,
    summary="DAU / WAU / MAU, stickiness, sessions, duration, bounce rate",
)
async def user_engagement(params: ActivityParams, ctx: Ctx) -> users.EngagementResponse:
    return await ctx.answer(users.Engagement(params))
