"""SLA clocks: when a case is due for first contact and for resolution.

Two clocks measure each target. The **calendar** clock is the customer's view and the KPI: 48 hours
are 48 hours, weekends and nights included (CustomerGauge's rule). The **business** clock counts only
the team's working hours in the team's own time zone, skipping its public holidays and its own days
off, so that a case opened on Friday evening does not count against the team over the weekend.

Example (team in Europe/Amsterdam, Mon-Fri 09:00-17:00, first contact within 8 business hours):
a case opened Friday 16:00 is due Monday 16:00 on the business clock (1 h on Friday, 7 h on Monday)
and Saturday 16:00 on a 24-hour calendar target.

Pausing (optional per policy) stops both clocks while a case waits on the customer; on resuming the
due times move by the time (calendar) and the working time (business) spent waiting.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

MAX_DAYS = 3 * 366
"""How far ahead a due time is looked for before the calendar is called unworkable."""


@functools.lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holiday_calendars.country_holidays(country, subdiv=subdivision, years=year))


def check_holiday_country(country: str, subdivision: str | None) -> None:
    """Raise ``ValueError`` unless the holidays package knows ``country`` (and ``subdivision``)."""
    try:
        holiday_calendars.country_holidays(country, subdiv=subdivision, years=2026)
    except NotImplementedError as exc:
        raise ValueError(f"no public holidays are known for {country!r}") from exc


@dataclass(frozen=True)
class BusinessCalendar:
    """A team's working time: weekdays (Monday = 0) from ``start`` to ``end`` in ``timezone``."""

    timezone: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(5))
    start: time = time(9)
    end: time = time(17)
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    days_off: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.weekdays or self.start >= self.end:
            raise ValueError("a business calendar needs at least one weekday and start before end")

    def works_on(self, day: date) -> bool:
        if day.weekday() not in self.weekdays or day in self.days_off:
            return False
        if self.holiday_country:
            return day not in _public_holidays(self.holiday_country, self.holiday_subdivision, day.year)
        return True

    def window(self, day: date) -> tuple[datetime, datetime]:
        """Return the working hours of ``day`` in UTC (the local hours, whatever the UTC offset)."""
        zone = ZoneInfo(self.timezone)
        begin = datetime.combine(day, self.start, zone).astimezone(UTC)
        return begin, datetime.combine(day, self.end, zone).astimezone(UTC)


def add_business_minutes(start: datetime, minutes: int, calendar: BusinessCalendar) -> datetime:
    """Return the moment ``minutes`` of the calendar's working time after ``start``."""
    remaining = timedelta(minutes=minutes)
    cursor = start.astimezone(UTC)
    day = cursor.astimezone(ZoneInfo(calendar.timezone)).date()
    for _ in range(MAX_DAYS):
        if calendar.works_on(day):
            begin, end = calendar.window(day)
            begin = max(begin, cursor)
            if begin < end:
                if remaining <= end - begin:
                    return begin + remaining
                remaining -= end - begin
        day += timedelta(days=1)
    raise ValueError("no working time within three years: check the team's weekdays and days off")


def business_minutes_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> int:
    """Return the working minutes between ``a`` and ``b`` (0 when ``b`` is not after ``a``)."""
    a, b = a.astimezone(UTC), b.astimezone(UTC)
    if b <= a:
        return 0
    zone = ZoneInfo(calendar.timezone)
    day, last = a.astimezone(zone).date(), b.astimezone(zone).date()
    total = timedelta(0)
    while day <= last:
        if calendar.works_on(day):
            begin, end = calendar.window(day)
            overlap = min(end, b) - max(begin, a)
            if overlap > timedelta(0):
                total += overlap
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)


@dataclass(frozen=True)
class Targets:
    """An SLA policy's targets in minutes; None: not measured on that clock."""

    first_contact: int | None = 48 * 60
    resolution: int | None = 7 * 24 * 60
    first_contact_business: int | None = 16 * 60
    resolution_business: int | None = 40 * 60
    pause_while_waiting: bool = False


DEFAULT_TARGETS = Targets()
"""A workspace without policies: first contact within 48 h (16 business hours), resolved within 7 days
(40 business hours)."""


@dataclass(frozen=True)
class Policy:
    id: str
    team_id: str | None
    priority: str | None
    targets: Targets = field(default_factory=Targets)


def pick_policy(policies: Sequence[Policy], *, team_id: str | None, priority: str) -> Policy | None:
    """Return the most specific policy for a team and priority: team and priority, then team, then
    priority, then the workspace's catch-all."""
    ranked = [
        (int(p.team_id is not None) * 2 + int(p.priority is not None), p)
        for p in policies
        if p.team_id in (None, team_id) and p.priority in (None, priority)
    ]
    return max(ranked, key=lambda rp: rp[0])[1] if ranked else None


@dataclass(frozen=True)
class DueTimes:
    first_contact: datetime | None = None
    resolution: datetime | None = None
    first_contact_business: datetime | None = None
    resolution_business: datetime | None = None


def due_times(opened_at: datetime, targets: Targets, calendar: BusinessCalendar) -> DueTimes:
    """Return when a case opened at ``opened_at`` is due on each clock."""
    opened_at = opened_at.astimezone(UTC)  # elapsed time, not wall-clock time, across a DST change

    def calendar_due(minutes: int | None) -> datetime | None:
        return None if minutes is None else opened_at + timedelta(minutes=minutes)

    def business_due(minutes: int | None) -> datetime | None:
        return None if minutes is None else add_business_minutes(opened_at, minutes, calendar)

    return DueTimes(
        calendar_due(targets.first_contact),
        calendar_due(targets.resolution),
        business_due(targets.first_contact_business),
        business_due(targets.resolution_business),
    )


def resume(due: DueTimes, *, paused_at: datetime, now: datetime, calendar: BusinessCalendar) -> DueTimes:
    """Return the due times moved by a pause from ``paused_at`` to ``now``."""
    paused_at, now = paused_at.astimezone(UTC), now.astimezone(UTC)
    waited = max(now - paused_at, timedelta(0))

    def moved_business(at: datetime | None) -> datetime | None:
        if at is None:
            return None
        # What was left of the working time when the pause began is left from now on.
        left = business_minutes_between(paused_at, at, calendar)
        return add_business_minutes(now, left, calendar) if at > paused_at else at

    return replace(
        due,
        first_contact=due.first_contact + waited if due.first_contact else None,
        resolution=due.resolution + waited if due.resolution else None,
        first_contact_business=moved_business(due.first_contact_business),
        resolution_business=moved_business(due.resolution_business),
    )


def met(done_at: datetime | None, due_at: datetime | None) -> bool | None:
    """Return whether a target was met (None: no target, or not done yet and not yet due)."""
    if due_at is None or done_at is None:
        return None
    return done_at <= due_at
