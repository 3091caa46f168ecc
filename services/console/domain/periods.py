"""The period picker: 7, 30 or 90 days, this quarter, this year, or custom dates — as scoring's ``from`` and
``to`` (UTC days, both included). Pure: today is given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

PERIODS = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "quarter": "This quarter",
    "year": "This year",
    "custom": "Custom dates",
}
DEFAULT = "30d"


@dataclass(frozen=True)
class Period:
    key: str
    since: date
    until: date

    @property
    def label(self) -> str:
        if self.key == "custom":
            return f"{self.since.isoformat()} – {self.until.isoformat()}"
        return PERIODS[self.key]

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def interval(self) -> str:
        """The trend's buckets: days up to a month, weeks up to half a year, months beyond."""
        return "day" if self.days <= 31 else "week" if self.days <= 184 else "month"


def parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def period_of(key: str | None, *, today: date, since: str | None = None, until: str | None = None) -> Period:
    """Return the period the picker names; an unknown key is the default, a custom one with bad or
    reversed dates is put right (both days included, never past today)."""
    key = key if key in PERIODS else DEFAULT
    if key in ("7d", "30d", "90d"):
        return Period(key, today - timedelta(days=int(key[:-1]) - 1), today)
    if key == "quarter":
        return Period(key, date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today)
    if key == "year":
        return Period(key, date(today.year, 1, 1), today)
    start, end = parse_day(since), parse_day(until)
    if start is None and end is None:
        return period_of(DEFAULT, today=today)
    end = min(end or today, today)
    start = start or end - timedelta(days=29)
    if start > end:
        start, end = end, start
    end = min(end, today)
    return Period("custom", min(start, end), end)
