"""What a failed report attempt means, and what its row says about it.

`classify` sorts an attempt's exception into
- transient: Elasticsearch unreachable, timing out or overloaded (connection errors,
  timeouts, HTTP 429/502/503/504), the reports database unreachable (SQLAlchemy
  `OperationalError`), a 503/504 of our own: the job is tried again later, with
  exponential backoff (`backoff_seconds`), up to REPORT_MAX_ATTEMPTS attempts;
- permanent: bad parameters (a 4xx `ApiError`), a query Elasticsearch refuses, a bug:
  the job fails at once.
The sentences written to the row's `error` name the dependency and the attempts, never a
host, URL or traceback (those go to the worker's log).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from elasticsearch import ApiError as ESApiError
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout
from sqlalchemy.exc import OperationalError

from ..errors import ApiError

TRANSIENT_HTTP = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Failure:
    transient: bool
    what: str  # a sentence fragment: "Elasticsearch was unavailable"
    dependency: str | None = None  # what was unavailable, for transient failures


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, (ESConnectionError, ESConnectionTimeout)):
        return Failure(True, "Elasticsearch was unavailable", "Elasticsearch")
    if isinstance(exc, ESApiError):
        if exc.meta.status in TRANSIENT_HTTP:
            return Failure(True, f"Elasticsearch was unavailable (HTTP {exc.meta.status})", "Elasticsearch")
        return Failure(False, f"Elasticsearch refused the report's query (HTTP {exc.meta.status})")
    if isinstance(exc, OperationalError):
        return Failure(True, "the reports database was unavailable", "the reports database")
    if isinstance(exc, ApiError):
        if exc.status in (503, 504):
            dependency = {
                "elasticsearch_unavailable": "Elasticsearch",
                "database_unavailable": "the reports database",
            }.get(exc.code, "a service the report needs")
            return Failure(True, f"{dependency} was unavailable", dependency)
        return Failure(False, exc.message)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Failure(True, "a request timed out", "a service the report needs")
    return Failure(
        False,
        f"the report could not be built because of an internal error ({type(exc).__name__}); "
        "the worker's log has the details",
    )


def backoff_seconds(attempt: int, initial: float, maximum: float, *, jitter: float = 0.1) -> float:
    """Wait after failed attempt `attempt` (1-based): initial * 2^(attempt-1), capped at
    `maximum`, less up to `jitter` of it at random so that jobs failed by one outage do
    not all come back at the same instant."""
    delay = min(maximum, initial * 2 ** min(attempt - 1, 60))
    return delay * (1 - random.uniform(0, jitter))


def retry_message(failure: Failure, attempt: int, max_attempts: int, next_at: datetime) -> str:
    """The row's error while the job waits for its next attempt."""
    return (
        f"attempt {attempt} of {max_attempts} failed: {failure.what}; "
        f"next attempt at {next_at.strftime('%H:%M:%S')} UTC"
    )


def final_message(failure: Failure, attempts: int, elapsed: timedelta) -> str:
    """The row's error once the job has failed for good."""
    if not failure.transient:
        return failure.what
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    return f"{failure.dependency} was unavailable for {tries} over {human_duration(elapsed)}; request the report again"


def human_duration(elapsed: timedelta) -> str:
    seconds = max(0.0, elapsed.total_seconds())
    if seconds < 90:
        n = round(seconds)
        return f"{n} second" + ("" if n == 1 else "s")
    if seconds < 90 * 60:
        n = round(seconds / 60)
        return f"{n} minutes"
    return f"{seconds / 3600:.1f} hours"
