"""Requests over the customer documents (ingest/customers.py): one document per customer
and store scope, with the customer's first sale and every sale (nested, each with the
previous sale's time), so that distinct and new customers are counted by one aggregation
instead of paging every order.

They answer for the whole store or all stores, not for one channel (a customer's first
sale in a channel is not kept), and only once the documents are built from the stored
orders (`QueryContext.customer_documents_ready`); otherwise the areas page the orders as
before.
"""

from __future__ import annotations

from typing import Any

from ..es.indices import CUSTOMERS
from ..ingest.customers import ALL_STORES
from .params import CommonParams, Period
from .requests import Search
from .shared import NONE_KEY, doc_count, total_hits


def usable(params: CommonParams) -> bool:
    """Customer documents hold the answer (no channel filter)."""
    return params.channel is None


def scope_filter(params: CommonParams) -> dict[str, Any]:
    """The documents of the requested store, or the all-stores ones."""
    return {"term": {"store_id": params.store_id if params.store_id is not None else ALL_STORES}}


def sale_in(period: Period) -> dict[str, Any]:
    """A customer with a sale in the period."""
    return {"nested": {"path": "sales", "query": period.range_filter("sales.created_at")}}


def customer_counts_request(params: CommonParams, period: Period) -> Search:
    """Customers with a sale in the period, and those whose first sale is in it."""
    return Search(
        CUSTOMERS,
        {
            "query": {"bool": {"filter": [scope_filter(params)]}},
            "aggs": {
                "customers": {"filter": sale_in(period)},
                "new_customers": {"filter": period.range_filter("first_sale_at")},
            },
            "track_total_hits": False,
        },
    )


def customer_counts(answer: dict[str, Any]) -> tuple[int, int]:
    """(customers, new customers) from a `customer_counts_request` answer."""
    aggs = answer.get("aggregations", {})
    return doc_count(aggs, "customers"), doc_count(aggs, "new_customers")


def new_returning_request(params: CommonParams) -> Search:
    """The period's customers split by whether their first sale is in it (new) or before it
    (returning), with their sales and order value in the period; and the customers with two
    or more sales in it (a sale in it whose previous sale is in it too)."""
    period = params.period
    in_period = period.range_filter("sales.created_at")
    repeat = {"bool": {"filter": [in_period, {"range": {"sales.previous_sale_at": {"gte": period.start_utc}}}]}}
    return Search(
        CUSTOMERS,
        {
            "query": {"bool": {"filter": [scope_filter(params), sale_in(period)]}},
            "aggs": {
                "segments": {
                    "filters": {
                        "filters": {
                            "new": period.range_filter("first_sale_at"),
                            "returning": {"range": {"first_sale_at": {"lt": period.start_utc}}},
                        }
                    },
                    "aggs": {
                        "sales": {
                            "nested": {"path": "sales"},
                            "aggs": {
                                "in_period": {
                                    "filter": in_period,
                                    "aggs": {"monetary": {"sum": {"field": "sales.order_value"}}},
                                }
                            },
                        }
                    },
                },
                "repeat": {"filter": {"nested": {"path": "sales", "query": repeat}}},
            },
        },
    )


def cohorts_request(params: CommonParams, granularity: str, since_utc: str) -> Search:
    """Customers by the week or month (local, in `tz`) of their first sale, for first sales from
    `since_utc` to the period's end; per cohort, the customers with a sale in each later week
    or month before the end (a customer counts once per bucket: reverse_nested)."""
    period = params.period
    histogram = {"calendar_interval": granularity, "time_zone": period.tz.key}
    first = {"range": {"first_sale_at": {"gte": since_utc, "lt": period.end_utc}}}
    return Search(
        CUSTOMERS,
        {
            "query": {"bool": {"filter": [scope_filter(params), first]}},
            "aggs": {
                "cohorts": {
                    "date_histogram": {"field": "first_sale_at", **histogram},
                    "aggs": {
                        "sales": {
                            "nested": {"path": "sales"},
                            "aggs": {
                                "before_end": {
                                    "filter": {"range": {"sales.created_at": {"lt": period.end_utc}}},
                                    "aggs": {
                                        "buckets": {
                                            "date_histogram": {"field": "sales.created_at", **histogram},
                                            "aggs": {"customers": {"reverse_nested": {}}},
                                        }
                                    },
                                }
                            },
                        }
                    },
                }
            },
        },
    )


# Places per request: more than any store has cities; an answer with places left over is
# not used (`place_customers` says None), the orders are paged instead.
PLACES = 10_000


def place_customers_request(params: CommonParams, level: str) -> Search:
    """Per place (the customer's country, region, state or city on the order) the customers
    with a sale there in the period, and the customers with a sale in the period."""
    period = params.period
    return Search(
        CUSTOMERS,
        {
            "query": {"bool": {"filter": [scope_filter(params), sale_in(period)]}},
            "aggs": {
                "sales": {
                    "nested": {"path": "sales"},
                    "aggs": {
                        "in_period": {
                            "filter": period.range_filter("sales.created_at"),
                            "aggs": {
                                "places": {
                                    "terms": {"field": f"sales.{level}", "size": PLACES, "missing": NONE_KEY},
                                    "aggs": {"customers": {"reverse_nested": {}}},
                                }
                            },
                        }
                    },
                }
            },
        },
    )


def place_customers(answer: dict[str, Any]) -> tuple[dict[str, int], int] | None:
    """({place: customers}, customers) from `place_customers_request`; None when places were
    left over."""
    places = answer["aggregations"]["sales"]["in_period"]["places"]
    if places.get("sum_other_doc_count"):
        return None
    found = {str(b["key"]): int(b["customers"]["doc_count"]) for b in places["buckets"]}
    return found, total_hits(answer)
