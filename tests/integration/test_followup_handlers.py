"""Follow-up's handlers against a real session in a transaction that is rolled back: what one event
writes, asserted on the outbox rows (the fast middle tier: no broker, no app)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.handlers import config, opening
from services.followup.models import Decision, EscalationSchedule, Team, outbox
from shared.db import Database
from shared.events import new_id, utcnow
from shared.outbox import Outbox
from tests.integration.test_followup_cases import negative

pytestmark = pytest.mark.integration
OUTBOX = Outbox(outbox, source="followup")


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    db = Database(database_url)
    try:
        async with db.sessionmaker() as session:
            await session.begin()
            yield session
            await session.rollback()
    finally:
        await db.dispose()


async def written(session: AsyncSession, workspace: str) -> list[tuple[str, dict]]:
    rows = await session.execute(
        select(outbox.c.payload).where(outbox.c.payload["workspaceid"].astext == workspace)
    )
    return [(p["type"].split(".")[1], p["data"]) for (p,) in rows]


async def test_opening_a_routed_case_writes_its_events_and_schedule_in_one_go(session, workspace):
    now = utcnow()
    await config.put_settings(session, workspace_id=workspace, values={"notify_email": "cx@acme.example"})
    for agent in ("ann", "bob"):
        await config.put_agent(
            session,
            workspace_id=workspace,
            agent_id=agent,
            values={"name": agent, "email": f"{agent}@acme.example"},
        )
    team = await config.save_team(
        session,
        workspace_id=workspace,
        team_id=None,
        values={
            "name": "Care",
            "notify_channel": "chat",
            "notify_to": "https://chat.example/h",
            "lead_agent_id": "ann",
        },
        members=["ann", "bob"],
    )
    await config.replace_rules(
        session,
        workspace_id=workspace,
        rules_in=[{"name": "NL", "conditions": {"dimensions": {"country": ["NL"]}}, "team_id": team.id}],
    )
    await config.replace_ladder(
        session,
        workspace_id=workspace,
        steps=[{"name": "Remind", "trigger": "age", "after_minutes": 60, "action": "notify_assignee"}],
        now=now,
    )

    case = await opening.on_negative_feedback(session, OUTBOX, event=negative(workspace), now=now)

    assert case is not None and (case.team_id, case.assignee) == (team.id, "ann")
    events = await written(session, workspace)
    assert [kind for kind, _ in events] == [
        "FollowUpOpened",
        "FollowUpAssigned",
        *["NotificationRequested"] * 3,
    ]
    assert {(d["channel"], d["to"]) for kind, d in events if kind == "NotificationRequested"} == {
        ("email", "cx@acme.example"),
        ("chat", "https://chat.example/h"),
        ("email", "ann@acme.example"),
    }
    opened = events[0][1]
    assert (opened["team_id"], opened["assignee"], opened["actor"], opened["priority"]) == (
        team.id,
        "ann",
        "system",
        "normal",
    )
    next_at = await session.scalar(
        select(EscalationSchedule.next_at).where(EscalationSchedule.case_id == case.id)
    )
    assert next_at is not None and (next_at - now).total_seconds() == 3600
    reasons = [
        d.reason
        for d in await session.scalars(
            select(Decision).where(Decision.case_id == case.id).order_by(Decision.id)
        )
    ]
    assert reasons[0].startswith("negative feedback") and "rule 1 'NL' matched" in reasons[1]
    assert (await session.get(Team, team.id)) is not None

    again = await opening.on_negative_feedback(
        session,
        OUTBOX,
        event=negative(workspace).model_copy(update={"response_id": case.response_id}),
        now=now,
    )
    assert again is None and len(await written(session, workspace)) == len(events)
    assert new_id() != case.id
