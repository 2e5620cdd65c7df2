"""The analytics routers, one per area; app.py includes them all."""

from .financial import router as financial_router
from .lifecycle import router as lifecycle_router
from .live import router as live_router
from .marketing import router as marketing_router
from .products import router as products_router
from .sales import router as sales_router
from .search import router as search_router
from .users import router as users_router

ANALYTICS_ROUTERS = [
    sales_router,
    users_router,
    lifecycle_router,
    products_router,
    financial_router,
    marketing_router,
    search_router,
    live_router,
]
