"""The retention policy: how long a workspace keeps answers identifiable, and the daily run that tells
every service to anonymise what is older.

Trigger owns the policy, as it owns the workspace's contacts and its quiet hours (the workspace policy
of who is asked, when). A run publishes ``AnonymisationDue`` (topic ``workspaces``, keyed by workspace)
through the outbox, at most once a day per workspace: the day's row in ``anonymisation_runs`` is the
guarantee across replicas, and the event's id, derived from the workspace and the day, makes any
second publication a duplicate that every inbox drops. Trigger anonymises its own received events in
the same transaction; the other services do theirs when the event arrives.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.handlers.audit import audit_settings
from services.trigger.models import AnonymisationRun, RetentionPolicy, received_events_table
from shared.events import AnonymisationDue
from shared.outbox import Outbox

ANONYMISED = {"anonymised": True}
"""What a received event's payload becomes once anonymised (an erased one says ``erased``)."""


async def policy(session: AsyncSession, *, workspace_id: str) -> RetentionPolicy | None:
    """Return the workspace's policy; None: answers stay identifiable."""
    return await session.get(RetentionPolicy, workspace_id)


async def last_run(session: AsyncSession, *, workspace_id: str) -> AnonymisationRun | None:
    """Return the workspace's latest run."""
    return await session.scalar(
        select(AnonymisationRun)
        .where(AnonymisationRun.workspace_id == workspace_id)
        .order_by(AnonymisationRun.day.desc())
        .limit(1)
    )


async def put_policy(session: AsyncSession, *, workspace_id: str, days: int | None, actor: str) -> int | None:
    """Return the policy's days after setting them (None: keep answers identifiable); audited."""
    before = await policy(session, workspace_id=workspace_id)
    was = before.anonymise_after_days if before is not None else None
    if days is None:
        await session.execute(delete(RetentionPolicy).where(RetentionPolicy.workspace_id == workspace_id))
    else:
        stmt = insert(RetentionPolicy).values(workspace_id=workspace_id, anonymise_after_days=days)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[RetentionPolicy.workspace_id],
                set_={"anonymise_after_days": days, "updated_at": func.now()},
            )
        )
    audit_settings(
        session,
        workspace_id=workspace_id,
        actor=actor,
        before={"anonymise_after_days": was},
        after={"anonymise_after_days": days},
    )
    return days


async def due(session: AsyncSession, *, now: datetime, limit: int) -> list[tuple[str, int]]:
    """Return (workspace, days) of the policies without a run on ``now``'s UTC day."""
    ran = and_(
        AnonymisationRun.workspace_id == RetentionPolicy.workspace_id, AnonymisationRun.day == _day(now)
    )
    rows = await session.execute(
        select(RetentionPolicy.workspace_id, RetentionPolicy.anonymise_after_days)
        .outerjoin(AnonymisationRun, ran)
        .where(AnonymisationRun.workspace_id.is_(None))
        .order_by(RetentionPolicy.workspace_id)
        .limit(limit)
    )
    return [(workspace_id, days) for workspace_id, days in rows]


async def run(session: AsyncSession, outbox: Outbox, *, workspace_id: str, days: int, now: datetime) -> bool:
    """Publish the workspace's ``AnonymisationDue`` of ``now``'s day and anonymise trigger's received
    events from before its cutoff; return False, doing nothing, when the day's run was already made."""
    day, cutoff = _day(now), now - timedelta(days=days)
    event_id = AnonymisationDue.event_id(workspace_id, day)
    first = await session.scalar(
        insert(AnonymisationRun)
        .values(
            workspace_id=workspace_id,
            day=day,
            cutoff=cutoff,
            anonymise_after_days=days,
            event_id=event_id,
            ran_at=now,
        )
        .on_conflict_do_nothing()
        .returning(AnonymisationRun.day)
    )
    if first is None:
        return False
    due_event = AnonymisationDue(
        workspace_id=workspace_id, day=day, cutoff=cutoff, anonymise_after_days=days, due_at=now
    )
    await outbox.add(session, due_event, event_id=event_id)
    await anonymise_received_events(session, workspace_id=workspace_id, cutoff=cutoff)
    return True


async def anonymise_received_events(session: AsyncSession, *, workspace_id: str, cutoff: datetime) -> int:
    """Replace the payload (and any stored contact) of the workspace's decided events received before
    ``cutoff``; return how many changed (none the second time)."""
    t = received_events_table
    result = await session.execute(
        update(t)
        .where(
            t.c.workspace_id == workspace_id,
            t.c.received_at < cutoff,
            t.c.evaluated_at.is_not(None),
            ~t.c.payload.has_key("anonymised"),
            ~t.c.payload.has_key("erased"),
        )
        .values(payload=ANONYMISED, contact=None)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def _day(moment: datetime) -> date:
    """Return the UTC day of ``moment``: runs are counted in UTC days, whatever the workspace's zone."""
    return moment.astimezone(UTC).date()
