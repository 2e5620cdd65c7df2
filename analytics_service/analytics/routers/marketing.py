"""Routes of the marketing area: each one runs one query object of analytics.marketing."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...auth import require
from .. import marketing
from .routes import query_route

router = APIRouter(prefix="/api/v1/analytics", tags=["marketing"], dependencies=[Depends(require("read"))])

query_route(
    router,
    "/marketing/campaigns",
    marketing.MarketingCampaigns,
    "Campaigns by last touch: spend, attributed orders and revenue, new customers, ROAS, CAC, conversion",
)
