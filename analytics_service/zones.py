"""IANA time zones by name, one rule for every place a zone is named (settings, query
parameters, import mappings, the sample-data command)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_named(name: str) -> ZoneInfo:
    """The zone `name`; ValueError for an unknown name, a malformed one, or a folder of the
    zone database such as "America" (which ZoneInfo reports as an OSError)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None
