"""Signed download links: `<report_id>.<expires>.<signature>` tokens that need no API key.

The signature is HMAC-SHA256 with SIGNING_SECRET over the report id and the expiry (Unix
seconds), so neither can be changed without the secret. A token names a report, never a
file: the route looks the report up in the table and serves the file the worker wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime

# How long a `download_url` works at most (the report's own expiry caps it).
LINK_SECONDS = 3600

_TOKEN = re.compile(r"^(?P<report_id>[0-9a-f]{32})\.(?P<expires>\d{1,12})\.(?P<signature>[0-9a-f]{64})$")


class InvalidLink(Exception):
    """The token was altered, forged or is not a token at all."""


class ExpiredLink(Exception):
    """The token is genuine but past its expiry."""


@dataclass(frozen=True)
class LinkClaims:
    report_id: str
    expires: int  # Unix seconds


def _signature(secret: str, report_id: str, expires: int) -> str:
    message = f"report-download\n{report_id}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def make_token(secret: str, report_id: str, expires: int) -> str:
    return f"{report_id}.{expires}.{_signature(secret, report_id, expires)}"


def link_expiry(report_expires_at: datetime | None, *, now: float | None = None, lifetime: int = LINK_SECONDS) -> int:
    """Unix seconds a new link stops working: `lifetime` from now, never after the report expires."""
    expires = int(now if now is not None else time.time()) + lifetime
    if report_expires_at is not None:
        expires = min(expires, int(report_expires_at.timestamp()))
    return expires


def verify_token(secret: str, token: str, *, now: float | None = None) -> LinkClaims:
    """The claims of a genuine, unexpired token; InvalidLink or ExpiredLink otherwise.

    The signature is checked first (in constant time), so an altered token is reported as
    altered even when its expiry is also past.
    """
    match = _TOKEN.match(token or "")
    if match is None:
        raise InvalidLink("not a download token")
    report_id, expires = match["report_id"], int(match["expires"])
    if not hmac.compare_digest(_signature(secret, report_id, expires), match["signature"]):
        raise InvalidLink("the download link's signature does not match")
    if expires <= (now if now is not None else time.time()):
        raise ExpiredLink("the download link has expired")
    return LinkClaims(report_id=report_id, expires=expires)
