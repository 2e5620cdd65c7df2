"""The analytics routers, one per area; app.py includes them all."""

from .sales import router as sales_router

ANALYTICS_ROUTERS = [sales_router]
