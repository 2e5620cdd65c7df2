"""Where each kind of record is posted: the ingest routes' paths, without the web stack.

A kind is also the body's envelope key (`{"orders": [...]}`) and the `Ingestor` method
that stores it; the router, the sample-data HTTP sink and the ingest benchmark read
their paths from here.
"""

from __future__ import annotations

PREFIX = "/api/v1/analytics"
# kind -> the route's path under PREFIX, in the order the routes are declared
PATHS = {
    "orders": "/orders/index",
    "events": "/events/track",
    "activities": "/user-activity/index",
    "products": "/products/index",
    "expenses": "/expenses/index",
}


def ingest_path(kind: str) -> str:
    """The full path records of `kind` are posted to."""
    return PREFIX + PATHS[kind]
