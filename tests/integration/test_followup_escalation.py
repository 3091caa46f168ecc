"""The escalation ladder against real PostgreSQL: steps fire once per case as the (moved) clock
passes them, never on closed cases, never retroactively, and two schedulers share the work without
ever applying a step twice."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from services.followup.app import create_app
from services.followup.escalation import EscalationScheduler
from services.followup.models import Case, CaseEntry, Escalation, EscalationSchedule, outbox
from services.followup.settings import FollowUpSettings
from shared.clock import Clock
from shared.db import Database
from shared.outbox import Outbox
from tests.integration.test_followup_cases import case_for, negative, put
from tests.support.stack import publish, running, settings_from

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def setup(stack_env: dict[str, str]) -> AsyncIterator[tuple[httpx.AsyncClient, Clock, Any]]:
    clock = Clock()
    # The app runs no scheduler of its own (a pass at the old time could hold cases while the test moves
    # the clock): the tests run the passes, as replicas would.
    settings = settings_from(FollowUpSettings, stack_env, role="api,relay,consumer")
    app = create_app(settings, clock=clock)
    async with running(app) as client:
        yield client, clock, app.state.runtime


@pytest.fixture
def client(setup) -> httpx.AsyncClient:
    return setup[0]


@pytest.fixture
def clock(setup) -> AsyncIterator[Clock]:
    clock = setup[1]
    yield clock
    clock.reset()


async def pass_until_idle(scheduler: EscalationScheduler) -> int:
    total = 0
    while done := await scheduler.work_once():
        total += done
    return total


async def ladder_workspace(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    for agent in ("ann", "lead", "backup"):
        await put(
            client, auth, f"/v1/agents/{agent}", {"name": agent.title(), "email": f"{agent}@acme.example"}
        )
    team = await put(
        client,
        auth,
        "/v1/teams",
        {
            "name": "Support",
            "members": ["ann"],
            "lead_agent_id": "lead",
            "notify_channel": "chat",
            "notify_to": "https://chat.example/hook",
        },
        method="POST",
    )
    await put(client, auth, "/v1/routing-rules", {"rules": [], "default_team_id": team["id"]})
    await put(
        client,
        auth,
        "/v1/sla-policies",
        {
            "policies": [
                {
                    "name": "All",
                    "first_contact_minutes": 120,
                    "first_contact_business_minutes": None,
                    "resolution_minutes": 24 * 60,
                    "resolution_business_minutes": None,
                }
            ]
        },
    )
    steps = await put(
        client,
        auth,
        "/v1/escalation-ladder",
        {
            "steps": [
                {"name": "Remind Ann", "trigger": "age", "after_minutes": 60, "action": "notify_assignee"},
                {
                    "name": "Tell the lead",
                    "trigger": "first_contact_breach",
                    "clock": "calendar",
                    "action": "notify_lead",
                },
                {
                    "name": "Give it to backup",
                    "trigger": "resolution_breach",
                    "clock": "calendar",
                    "action": "reassign",
                    "reassign_agent_id": "backup",
                },
            ]
        },
    )
    return {"team": team, "steps": steps}


async def history_kinds(client, auth, case_id: str) -> list[tuple[str, Any]]:
    detail = (await client.get(f"/v1/cases/{case_id}", headers=auth)).json()
    return [
        (h["kind"], h["details"].get("step"))
        for h in detail["history"]
        if h["kind"] in ("escalated", "assigned")
    ]


async def two_cases(
    client: httpx.AsyncClient, auth: dict[str, str], producer: Any, workspace: str, *, contact: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Publish two negative feedbacks of ``contact``; return the two cases they open, in that order."""
    first, second = negative(workspace, contact_id=contact), negative(workspace, contact_id=contact)
    await publish(producer, first)
    await publish(producer, second)
    return await case_for(client, auth, first.response_id), await case_for(client, auth, second.response_id)


async def test_the_ladder_climbs_with_the_clock_once_per_step(
    setup, client, clock, producer, auth, workspace
):
    runtime = setup[2]
    scheduler = EscalationScheduler(runtime.db, runtime.outbox, clock)
    await ladder_workspace(client, auth)
    case, other = await two_cases(client, auth, producer, workspace, contact="c-esc-" + secrets.token_hex(3))
    assert case["assignee"] == "ann"
    await put(client, auth, f"/v1/cases/{other['id']}/status", {"status": "in_progress"}, method="POST")

    clock.advance(timedelta(minutes=59))
    await pass_until_idle(scheduler)
    assert await history_kinds(client, auth, case["id"]) == []
    clock.advance(timedelta(minutes=2))
    await pass_until_idle(scheduler)
    await pass_until_idle(scheduler)  # a second pass at the same moment changes nothing
    assert await history_kinds(client, auth, case["id"]) == [("escalated", "Remind Ann")]
    breaches = (
        REGISTRY.get_sample_value("closeloop_followup_escalations_total", {"trigger": "first_contact_breach"})
        or 0.0
    )
    clock.advance(
        timedelta(hours=1)
    )  # two hours: the first-contact SLA is breached for the uncontacted case only
    await pass_until_idle(scheduler)
    # Counted for the SLA-breach alert (deploy/components/observability).
    assert (
        REGISTRY.get_sample_value("closeloop_followup_escalations_total", {"trigger": "first_contact_breach"})
        == breaches + 1
    )
    assert await history_kinds(client, auth, case["id"]) == [
        ("escalated", "Remind Ann"),
        ("escalated", "Tell the lead"),
    ]
    assert await history_kinds(client, auth, other["id"]) == [("escalated", "Remind Ann")]
    clock.advance(timedelta(days=1))
    await pass_until_idle(scheduler)
    detail = (await client.get(f"/v1/cases/{case['id']}", headers=auth)).json()
    assert detail["assignee"] == "backup"
    escalated = [h for h in detail["history"] if h["kind"] == "escalated"]
    assert [h["details"]["action"] for h in escalated] == ["notify_assignee", "notify_lead", "reassign"]
    assert escalated[0]["details"]["notified"] == "ann@acme.example"
    assert escalated[1]["details"]["notified"] == "lead@acme.example"
    assert escalated[2]["details"]["reassigned_to"] == "backup"
    clock.advance(timedelta(days=30))
    await pass_until_idle(scheduler)
    assert len(await history_kinds(client, auth, case["id"])) == 3
    async with runtime.db.unit_of_work() as session:
        left = await session.scalar(
            select(EscalationSchedule.next_at).where(EscalationSchedule.case_id == case["id"])
        )
    assert left is None  # no step left: the scheduler never looks at the case again


async def test_closed_cases_and_cases_older_than_a_step_are_never_escalated(
    setup, client, clock, producer, auth, workspace
):
    runtime = setup[2]
    scheduler = EscalationScheduler(runtime.db, runtime.outbox, clock)
    await ladder_workspace(client, auth)
    done, before = await two_cases(
        client, auth, producer, workspace, contact="c-esc2-" + secrets.token_hex(3)
    )
    await put(
        client,
        auth,
        f"/v1/cases/{done['id']}/resolve",
        {"root_cause": {"category": "Other", "cause": "Other"}, "action_taken": "Sorted."},
        method="POST",
    )
    clock.advance(timedelta(minutes=1))
    ladder = (await client.get("/v1/escalation-ladder", headers=auth)).json()
    added = {"name": "Added later", "trigger": "age", "after_minutes": 30, "action": "notify_lead"}
    await put(
        client,
        auth,
        "/v1/escalation-ladder",
        {
            "steps": [
                *[
                    {
                        k: s[k]
                        for k in (
                            "id",
                            "name",
                            "trigger",
                            "after_minutes",
                            "clock",
                            "action",
                            "reassign_agent_id",
                        )
                    }
                    for s in ladder
                ],
                added,
            ]
        },
    )
    clock.advance(timedelta(days=10))
    await pass_until_idle(scheduler)
    assert await history_kinds(client, auth, done["id"]) == []
    steps = [k for _, k in await history_kinds(client, auth, before["id"]) if k]
    assert "Added later" not in steps and steps == ["Remind Ann", "Tell the lead", "Give it to backup"]


async def test_two_schedulers_never_apply_a_step_twice(
    setup, client, clock, producer, auth, workspace, database_url
):
    runtime = setup[2]
    await ladder_workspace(client, auth)
    contact = "c-esc3-" + secrets.token_hex(3)
    events = [negative(workspace, contact_id=contact) for _ in range(40)]
    for event in events:
        await publish(producer, event)
    await case_for(client, auth, events[-1].response_id)
    clock.advance(timedelta(days=2))
    replicas = [Database(database_url), Database(database_url)]
    try:
        schedulers = [
            EscalationScheduler(db, Outbox(outbox, source="followup"), clock, batch=7) for db in replicas
        ]
        handled = await asyncio.gather(*(pass_until_idle(s) for s in schedulers))
    finally:
        for db in replicas:
            await db.dispose()
    assert all(handled), f"both replicas took a share of the work: {handled}"
    async with runtime.db.unit_of_work() as session:
        ids = list(await session.scalars(select(Case.id).where(Case.workspace_id == workspace)))
        applied = Counter(
            (
                await session.execute(
                    select(Escalation.case_id, Escalation.step_id).where(Escalation.workspace_id == workspace)
                )
            ).all()
        )
        entries = await session.scalar(
            select(func.count())
            .select_from(CaseEntry)
            .where(CaseEntry.case_id.in_(ids), CaseEntry.kind == "escalated")
        )
    # age and first-contact breach fired for every case; the resolution breach (24 h) too after two days.
    assert len(ids) == 40 and set(applied.values()) == {1} and len(applied) == 40 * 3
    assert entries == 40 * 3


async def test_waiting_on_the_customer_pauses_the_clocks_when_the_policy_says_so(
    setup, client, clock, producer, auth, workspace
):
    await put(
        client,
        auth,
        "/v1/workflow",
        {
            "custom_statuses": [
                {"name": "waiting_on_customer", "waits_on_customer": True},
                {"name": "refund_pending"},
            ]
        },
    )
    await put(
        client,
        auth,
        "/v1/sla-policies",
        {
            "policies": [
                {
                    "name": "Paused",
                    "resolution_minutes": 24 * 60,
                    "resolution_business_minutes": None,
                    "pause_while_waiting": True,
                }
            ]
        },
    )
    event = negative(workspace, contact_id="c-pause-" + secrets.token_hex(3))
    await publish(producer, event)
    case = await case_for(client, auth, event.response_id)
    url = f"/v1/cases/{case['id']}"
    due = datetime.fromisoformat(case["sla"]["resolution_due_at"])
    waiting = await put(client, auth, f"{url}/status", {"status": "waiting_on_customer"}, method="POST")
    assert waiting["sla"]["paused_at"] is not None
    clock.advance(timedelta(hours=30))
    resumed = await put(client, auth, f"{url}/status", {"status": "refund_pending"}, method="POST")
    assert resumed["sla"]["paused_at"] is None
    moved = datetime.fromisoformat(resumed["sla"]["resolution_due_at"]) - due
    assert timedelta(hours=30) <= moved < timedelta(hours=30, seconds=5)


async def test_a_step_moved_earlier_reaches_cases_already_open(
    setup, client, clock, producer, auth, workspace
):
    runtime = setup[2]
    scheduler = EscalationScheduler(runtime.db, runtime.outbox, clock)
    made = await ladder_workspace(client, auth)
    event = negative(workspace, contact_id="c-esc4-" + secrets.token_hex(3))
    await publish(producer, event)
    case = await case_for(client, auth, event.response_id)
    first = made["steps"][0]
    sooner = {k: first[k] for k in ("id", "name", "trigger", "clock", "action")} | {"after_minutes": 20}
    await put(client, auth, "/v1/escalation-ladder", {"steps": [sooner]})
    clock.advance(timedelta(minutes=21))
    await pass_until_idle(scheduler)
    assert await history_kinds(client, auth, case["id"]) == [("escalated", "Remind Ann")]
