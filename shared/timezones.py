"""IANA time zones, tolerant of what contacts and CRMs send."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """Return the zone ``name``, else ``default``, else UTC (unknown names fall through)."""
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def is_timezone(name: str) -> bool:
    """Return whether ``name`` is a known IANA zone such as ``Europe/Amsterdam``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
