"""The service's sense of time, injectable so that tests can move it.

Every rule that depends on "now" (send_at, quiet hours, reminders, link expiry, due schedules,
SLA clocks) asks the service's ``Clock``. Production never moves it; tests call ``advance`` and
wake a worker instead of sleeping for days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.events import utcnow


class Clock:
    """Now, plus an offset that only tests change."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """Return the current time (UTC, timezone-aware), moved by the offset."""
        return utcnow() + self.offset

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or back) by ``delta``."""
        self.offset += delta

    def set(self, moment: datetime) -> None:
        """Move the clock so that it reads ``moment`` now."""
        self.offset = moment - utcnow()

    def reset(self) -> None:
        self.offset = timedelta(0)
