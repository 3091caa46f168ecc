"""Scoring's invitation funnel (``funnel.invitation_event`` gathers, ``funnel.flush`` upserts a batch)
against the real database in a rolled-back session: a batch of mixed ``Invitation*`` events — steps
out of order, an event delivered twice, a reminder, an invitation a later batch adds to — leaves the
rows that handling the events one by one (a flush after each, as the consumer's one-record path does)
leaves; and the keys of the surveys a batch names are looked up once a process has seen them
committed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event as orm_events
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.handlers import funnel, surveys
from services.scoring.models import Invitation, Survey
from shared.db import Database
from shared.events import (
    InvitationBounced,
    InvitationClicked,
    InvitationCreated,
    InvitationDelivered,
    InvitationFailed,
    InvitationOpened,
    InvitationSent,
)

DAY = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def batches(workspace: str) -> list[list[funnel.FunnelEvent]]:
    """Two batches of events about four invitations, in the order the topic delivers them."""

    def about(invitation: str, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "workspace_id": workspace,
            "invitation_id": invitation,
            "request_id": f"req-{invitation}",
            "contact_id": f"c-{invitation}",
            "survey_id": "svy-funnel" if invitation != "inv-3" else "svy-other",
            "kind": "transactional",
            "channel": "email",
            "locale": None,
        }
        return fields | extra

    delivered = InvitationDelivered(**about("inv-1"), occurred_at=at(3))
    first: list[funnel.FunnelEvent] = [
        InvitationCreated(**about("inv-1"), occurred_at=at(0), send_at=at(0)),
        delivered,  # before its Sent
        InvitationSent(**about("inv-1", locale="nl-BE"), occurred_at=at(2.5), message_id="m-1"),
        InvitationOpened(**about("inv-1"), occurred_at=at(4)),
        delivered,  # delivered twice
        InvitationOpened(**about("inv-1"), occurred_at=at(5)),  # a second open: the first counts
        InvitationSent(**about("inv-1", locale="en"), occurred_at=at(30), reminder=1),
        InvitationCreated(**about("inv-2", kind="relationship"), occurred_at=at(0), send_at=at(1)),
        InvitationSent(**about("inv-2", kind="relationship"), occurred_at=at(2.5)),  # the next UTC day
        InvitationBounced(**about("inv-3", channel="sms", locale="de"), occurred_at=at(1), detail="x"),
        InvitationFailed(**about("inv-3"), occurred_at=at(2), error="no address"),
        InvitationDelivered(**about("inv-4"), occurred_at=at(6)),
    ]
    second: list[funnel.FunnelEvent] = [
        InvitationCreated(**about("inv-4"), occurred_at=at(0), send_at=at(0)),
        InvitationSent(**about("inv-4", locale="fr"), occurred_at=at(5)),
        InvitationClicked(**about("inv-4"), occurred_at=at(7)),
        InvitationSent(**about("inv-1"), occurred_at=at(1)),  # a first send seen late moves the day
        delivered,  # again, in a later batch
        InvitationBounced(**about("inv-3"), occurred_at=at(0.5)),  # a later bounce: the first counts
    ]
    return [first, second]


async def funnel_rows(session: AsyncSession, workspace: str) -> list[tuple[Any, ...]]:
    columns = [c for c in Invitation.__table__.columns if c.name not in ("workspace_id", "survey_key")]
    rows = await session.execute(
        select(Survey.survey_id, *columns)
        .join(Survey, Survey.key == Invitation.survey_key)
        .where(Invitation.workspace_id == workspace)
        .order_by(Invitation.invitation_id)
    )
    return [tuple(row) for row in rows]


async def test_a_batch_leaves_the_rows_one_by_one_handling_leaves(uow, workspace):
    one_by_one, together = f"{workspace}-1", f"{workspace}-n"
    for batch in batches(one_by_one):
        for event in batch:
            await funnel.invitation_event(uow, event=event)
            await funnel.flush(uow)
    for batch in batches(together):
        for event in batch:
            await funnel.invitation_event(uow, event=event)
        await funnel.flush(uow)

    rows = await funnel_rows(uow, together)
    assert rows == await funnel_rows(uow, one_by_one)
    by_id = {row[1]: row for row in rows}
    first = by_id["inv-1"]
    assert first[0] == "svy-funnel"
    assert first[2:6] == ("transactional", "email", "nl", date(2026, 11, 20))
    assert first[6:10] == (at(2.5), at(3), at(4), None)  # sent, delivered, opened, clicked
    assert by_id["inv-2"][2:6] == ("relationship", "email", None, date(2026, 11, 21))
    assert by_id["inv-3"][0] == "svy-other"
    assert by_id["inv-3"][3:5] == ("email", "de")
    assert by_id["inv-3"][10:12] == (at(1), at(2))
    assert by_id["inv-4"][5:9] == (date(2026, 11, 21), at(5), at(6), None)
    assert by_id["inv-4"][9] == at(7)
    assert (await uow.scalars(select(Survey.answered).where(Survey.workspace_id == together))).all() == [
        False,
        False,
    ]


async def test_survey_keys_are_remembered_once_committed(database_url, workspace):
    db = Database(database_url, pool_size=1)
    statements: list[str] = []
    orm_events.listen(db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    pair = (workspace, "svy-keys")

    class Undone(Exception):
        pass

    try:
        with pytest.raises(Undone):
            async with db.unit_of_work() as session:
                await surveys.unanswered_keys(session, [pair])
                raise Undone  # rolled back: the survey was never added, nothing is remembered
        async with db.unit_of_work() as session:
            before = len(statements)
            added = await surveys.unanswered_keys(session, [pair])
            assert len(statements) == before + 1
        async with db.unit_of_work() as session:
            before = len(statements)
            assert await surveys.unanswered_keys(session, [pair]) == added
            assert len(statements) == before  # remembered: no statement
            key = await session.scalar(
                select(Survey.key).where(Survey.workspace_id == workspace, Survey.survey_id == "svy-keys")
            )
            assert {pair: key} == added
    finally:
        await db.dispose()
