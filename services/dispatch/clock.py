"""The service's sense of time, injectable so that tests can move it.

Every rule that depends on "now" (send_at, quiet hours, reminders, link expiry, rate limits)
asks the runtime's ``Clock``. Production never moves it; tests call ``advance`` and wake the
sender instead of sleeping for days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.events import utcnow


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or back) by ``delta``."""
        self.offset += delta

    def reset(self) -> None:
        self.offset = timedelta(0)
