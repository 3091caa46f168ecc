"""The agent's inbox, pure: which views it has, when a case is due (its SLA countdown), the customer's
local time, and which case is due soon."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

VIEWS = {
    "mine": "My cases",
    "team": "My team's",
    "unassigned": "Unassigned",
    "escalated": "Past due (escalating)",
    "due_soon": "Due within 24 hours",
    "open": "All open",
}
DUE_SOON = timedelta(hours=24)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def next_due(case: dict[str, Any]) -> tuple[str, datetime] | None:
    """The SLA clock that runs now: first contact until the customer was contacted, then resolution."""
    sla = case.get("sla") or {}
    if case.get("status") in ("resolved", "closed"):
        return None
    if not sla.get("first_contacted_at") and sla.get("first_contact_due_at"):
        return "first contact", parse_time(sla["first_contact_due_at"])  # type: ignore[return-value]
    if sla.get("resolution_due_at"):
        return "resolution", parse_time(sla["resolution_due_at"])  # type: ignore[return-value]
    return None


def countdown(due: datetime, now: datetime) -> str:
    """``in 3 h 20 min`` or ``2 h 5 min overdue``."""
    left = due - now
    minutes = int(abs(left).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    text = f"{days} d {hours} h" if days else f"{hours} h {mins} min" if hours else f"{mins} min"
    return f"in {text}" if left.total_seconds() >= 0 else f"{text} overdue"


def sla_of(case: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    found = next_due(case)
    if found is None:
        return None
    clock, due = found
    return {"clock": clock, "due": due, "text": countdown(due, now), "overdue": due < now}


def due_soon(case: dict[str, Any], now: datetime) -> bool:
    found = next_due(case)
    return found is not None and found[1] - now <= DUE_SOON


def local_time(timezone: str | None, now: datetime) -> str | None:
    """The customer's local time (``14:05 Europe/Amsterdam``), or None without a known zone."""
    if not timezone:
        return None
    try:
        return f"{now.astimezone(ZoneInfo(timezone)).strftime('%H:%M, %a')} ({timezone})"
    except (ZoneInfoNotFoundError, ValueError):
        return None
