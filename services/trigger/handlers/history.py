"""The frequency history and recurring enrolments of many contacts, read in one statement: what the
caps and ``already_enrolled`` decide on."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.domain.model import Sent

# One round trip: each contact's surveys since its own cutoff (its workspace's longest cap window),
# and the recurring rules the contacts are enrolled in (a pending recurring schedule).
_HISTORY_SQL = text(
    """
SELECT 'h', s.contact_id, s.survey_id, s.sent_at, s.rule_id
FROM unnest(CAST(:ids AS varchar[]), CAST(:since AS timestamptz[])) AS x(id, since)
JOIN trigger.contact_surveys AS s ON s.contact_id = x.id AND s.sent_at > x.since
UNION ALL
SELECT 'e', sc.contact_id, NULL, NULL, sc.rule_id
FROM trigger.schedules AS sc
WHERE sc.contact_id = ANY(CAST(:enrolled AS varchar[])) AND sc.status = 'pending'
  AND sc.recurrence_days IS NOT NULL
"""
)


async def load_histories(
    session: AsyncSession, *, windows: Mapping[str, int], enrolled: Collection[str], now: datetime
) -> tuple[dict[str, list[Sent]], dict[str, set[str]]]:
    """Return each contact's surveys within its window (contact id → days; 0: none looked up), and,
    for the contacts in ``enrolled``, the recurring rules each is enrolled in."""
    history: dict[str, list[Sent]] = {cid: [] for cid in windows}
    enrolments: dict[str, set[str]] = {cid: set() for cid in enrolled}
    looked_up = [(cid, days) for cid, days in windows.items() if days > 0]
    if not looked_up and not enrolled:
        return history, enrolments
    rows = await session.execute(
        _HISTORY_SQL,
        {
            "ids": [cid for cid, _ in looked_up],
            "since": [now - timedelta(days=days) for _, days in looked_up],
            "enrolled": list(enrolled),
        },
    )
    for kind, contact_id, survey_id, sent_at, rule_id in rows:
        if kind == "h":
            history[contact_id].append(Sent(survey_id, sent_at, rule_id))
        else:
            enrolments[contact_id].add(rule_id)
    return history, enrolments


async def load_history(
    session: AsyncSession, *, contact_ids: Sequence[str], window_days: int, now: datetime
) -> dict[str, list[Sent]]:
    """Return each contact's surveys within the last ``window_days``."""
    windows = {cid: window_days for cid in contact_ids}
    return (await load_histories(session, windows=windows, enrolled=(), now=now))[0]


async def load_enrollments(session: AsyncSession, *, contact_ids: Sequence[str]) -> dict[str, set[str]]:
    """Return, per contact, the recurring rules it is enrolled in (a pending recurring schedule)."""
    return (await load_histories(session, windows={}, enrolled=contact_ids, now=datetime.min))[1]
