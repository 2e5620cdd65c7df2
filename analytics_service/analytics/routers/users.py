"""Routes of the users area (activity, behaviour, engagement): each one runs one query object."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ...auth import require
from .. import users
from ..params import Common, CommonParams
from .routes import query_route

router = APIRouter(prefix="/api/v1/analytics", tags=["users"], dependencies=[Depends(require("read"))])


async def activity_params(params: Common) -> CommonParams:
    """The common parameters of an endpoint that reads activity only: a `channel` filter is
    refused (users.check_activity_params)."""
    return users.check_activity_params(params)


ActivityParams = Annotated[CommonParams, Depends(activity_params)]


for path, query, summary in (
    ("/users/activity", users.UserActivity, "Active users, sessions and activity by type, per bucket"),
    ("/users/behavior", users.Behavior, "Activity by type, weekday x hour heatmap, top pages, devices"),
    ("/users/engagement", users.Engagement, "DAU / WAU / MAU, stickiness, sessions, duration, bounce rate"),
):
    # Route names (and so operationIds): user_activity, user_behavior, user_engagement.
    query_route(router, path, query, summary, name="user_" + path.rsplit("/", 1)[-1], params=ActivityParams)
