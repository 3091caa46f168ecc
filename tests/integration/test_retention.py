"""The retention policy across the five services, with trigger's clock moved: answers older than the
policy are anonymised in every service — their links to the contact and their free text go, scores and
dimensions stay — answers after the cutoff are not, and a second run changes nothing.

The services run in-process against the real broker and database; the check reads every text and JSON
column of every table of every service (``information_schema``), as the erasure test does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from closeloop.demo import NPS_SURVEY
from services.dispatch.app import create_app as create_dispatch
from services.dispatch.settings import DispatchSettings
from services.followup.app import create_app as create_followup
from services.followup.settings import FollowUpSettings
from services.responses.app import create_app as create_responses
from services.responses.settings import ResponsesSettings
from services.scoring.app import create_app as create_scoring
from services.scoring.settings import ScoringSettings
from services.trigger.anonymiser import Anonymiser
from services.trigger.app import create_app as create_trigger
from services.trigger.handlers import retention
from services.trigger.models import outbox
from shared.clock import Clock
from shared.db import Database
from shared.events import AnonymisationDue, Recipient, SurveyRequested, new_id, utcnow
from shared.outbox import Outbox
from shared.vocabulary import STACK_SERVICES
from tests.support import trigger as fx
from tests.support.responses import create_survey, link_for
from tests.support.stack import publish, running, settings_from, wait_until

pytestmark = pytest.mark.integration

CONSUMERS = ("dispatch", "responses", "scoring", "followup")
TEXT_TYPES = ["text", "character varying", "json", "jsonb"]


class StoppedClock(Clock):
    """Real time until ``stop_at``: then that moment, so that a run's day and cutoff are exact."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped: datetime | None = None

    def stop_at(self, moment: datetime) -> None:
        self.stopped = moment

    def now(self) -> datetime:
        return self.stopped or super().now()


@dataclass
class Person:
    tag: str
    workspace: str

    @property
    def contact_id(self) -> str:
        return f"c-{self.tag}-{self.workspace}"

    @property
    def email(self) -> str:
        return f"{self.tag}.{self.workspace}@example.com"

    @property
    def name(self) -> str:
        return f"Retained {self.tag.title()} {self.workspace}"

    @property
    def address(self) -> str:
        return f"{self.tag.title()}gracht {self.workspace[-4:]}"


@dataclass
class Stack:
    trigger: httpx.AsyncClient
    dispatch: httpx.AsyncClient
    responses: httpx.AsyncClient
    scoring: httpx.AsyncClient
    followup: httpx.AsyncClient
    clock: StoppedClock
    anonymiser: Anonymiser


@pytest.fixture
async def stack(stack_env: dict[str, str]) -> AsyncIterator[Stack]:
    clock = StoppedClock()
    trigger = create_trigger(fx.trigger_settings(stack_env), clock=clock)
    dispatch = create_dispatch(settings_from(DispatchSettings, stack_env, sender_poll_interval_ms=100))
    async with (
        running(trigger) as t,
        running(dispatch) as d,
        running(create_responses(settings_from(ResponsesSettings, stack_env))) as r,
        running(create_scoring(settings_from(ScoringSettings, stack_env))) as s,
        running(create_followup(settings_from(FollowUpSettings, stack_env))) as f,
    ):
        yield Stack(t, d, r, s, f, clock, trigger.state.runtime.deps.anonymiser)


async def answer_everywhere(
    stack: Stack, producer: Any, auth: dict[str, str], survey_id: str, who: Person
) -> str:
    """Leave the person's data in every service — a CRM event in trigger, an invitation in dispatch, a
    response in responses, a scored answer with its comment in scoring, a resolved case in followup — and
    return the case's id."""
    ws = who.workspace
    event = {
        "id": f"evt-{who.tag}-{ws}",
        "type": "order.delivered",
        "timestamp": utcnow().isoformat(),
        "data": {
            "contact": {"external_id": f"cus-{who.tag}", "email": who.email, "name": who.name},
            "delivery_address": who.address,
        },
    }
    stored = await stack.trigger.post("/v1/events", json=event, headers=auth)
    assert stored.status_code == 202, stored.text
    request_id = new_id()
    await publish(
        producer,
        SurveyRequested(
            workspace_id=ws,
            request_id=request_id,
            contact_id=who.contact_id,
            survey_id=survey_id,
            channel="link",
            recipient=Recipient(name=who.name, email=who.email),
            context={"delivery_address": who.address},
        ),
    )
    token, _ = link_for(
        ws,
        survey_id,
        contact_id=who.contact_id,
        respondent={"name": who.name, "email": who.email},
        context={"delivery_address": who.address},
    )
    answered = await stack.responses.post(
        f"/s/{token}",
        data={"nps": "2", "why": f"Nobody came to {who.address}.", "consent": "yes"},
        follow_redirects=True,
    )
    assert answered.status_code == 200, answered.text

    async def invited() -> bool:
        found = await stack.dispatch.get("/v1/invitations", params={"request_id": request_id}, headers=auth)
        return bool(found.json())

    async def case() -> str | None:
        page = (await stack.followup.get("/v1/cases", params={"limit": 100}, headers=auth)).json()
        return next((c["id"] for c in page["items"] if who.address in (c["comment"] or "")), None)

    await wait_until(invited, message="dispatch has the invitation")
    case_id = await wait_until(case, message="followup opened the case")
    resolved = await stack.followup.post(
        f"/v1/cases/{case_id}/resolve",
        json={
            "root_cause": {"category": "Service", "cause": "Slow"},
            "action_taken": f"Went to {who.address}.",
        },
        headers=auth,
    )
    assert resolved.status_code == 200, resolved.text
    return case_id


async def connect(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))


async def where_found(db: asyncpg.Connection, needle: str) -> set[str]:
    """Return ``schema.table.column`` of every text or JSON column of every service that holds ``needle``."""
    columns = await db.fetch(
        """SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c
           JOIN information_schema.tables t ON (t.table_schema, t.table_name) = (c.table_schema, c.table_name)
           WHERE c.table_schema = ANY($1::text[]) AND t.table_type = 'BASE TABLE' AND c.data_type = ANY($2::text[])""",
        list(STACK_SERVICES),
        TEXT_TYPES,
    )
    found = set()
    for schema, table, column in columns:
        if await db.fetchval(
            f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text LIKE $1', f"%{needle}%"
        ):
            found.add(f"{schema}.{table}.{column}")
    return found


async def snapshot(db: asyncpg.Connection, workspace: str) -> dict[str, str]:
    """Return a digest of every row of the workspace in every service's tables that have a workspace id."""
    tables = await db.fetch(
        """SELECT table_schema, table_name FROM information_schema.columns
           WHERE table_schema = ANY($1::text[]) AND column_name = 'workspace_id'""",
        list(STACK_SERVICES),
    )
    digests = {}
    for schema, table in tables:
        digests[f"{schema}.{table}"] = await db.fetchval(
            f"""SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))
                FROM "{schema}"."{table}" t WHERE workspace_id = $1""",
            workspace,
        )
    return digests


async def handled(db: asyncpg.Connection, event_id: str) -> bool:
    for service in CONSUMERS:
        if not await db.fetchval(f'SELECT count(*) FROM "{service}".inbox WHERE event_id = $1', event_id):
            return False
    return True


async def test_old_answers_are_anonymised_in_every_service_new_ones_are_not_and_a_second_run_changes_nothing(
    stack: Stack, producer, auth, workspace, database_url
):
    survey = await create_survey(stack.responses, auth, NPS_SURVEY)
    old, new = Person("old", workspace), Person("new", workspace)
    await answer_everywhere(stack, producer, auth, survey["id"], old)
    cutoff = utcnow()
    await answer_everywhere(stack, producer, auth, survey["id"], new)

    db = await connect(database_url)
    try:
        before = {what: await where_found(db, getattr(old, what)) for what in ("address", "contact_id")}
        assert {f.split(".")[0] for f in before["address"]} >= {
            "trigger",
            "dispatch",
            "responses",
            "scoring",
            "followup",
        }

        # The policy: 30 days. Trigger's clock reads 30 days after the cutoff; setting the policy wakes its
        # anonymiser, which publishes the day's AnonymisationDue.
        stack.clock.stop_at(cutoff + timedelta(days=30))
        policy = await stack.trigger.put("/v1/retention", json={"anonymise_after_days": 30}, headers=auth)
        assert policy.status_code == 200, policy.text
        assert policy.json()["anonymise_after_days"] == 30
        event_id = AnonymisationDue.event_id(workspace, stack.clock.now().date())
        await wait_until(lambda: handled(db, event_id), message="every service handled AnonymisationDue")
        run = (await stack.trigger.get("/v1/retention", headers=auth)).json()["last_run"]
        assert datetime.fromisoformat(run["cutoff"]) == cutoff and run["anonymise_after_days"] == 30

        # Before the cutoff: no address, no contact link, no name or email outside trigger's contacts (the
        # CRM's record of the person, which the policy does not touch: it is about answers).
        assert await where_found(db, old.address) == set()
        assert await where_found(db, old.contact_id) == set()
        assert await where_found(db, old.email) == {"trigger.contacts.email"}
        assert await where_found(db, old.name) == {"trigger.contacts.name"}
        # After the cutoff: everything is still there.
        assert await where_found(db, new.address) == before["address"]
        assert await where_found(db, new.contact_id) == before["contact_id"]
        # Scores and dimensions stay.
        nps = await stack.scoring.get(f"/v1/surveys/{survey['id']}/nps", headers=auth)
        assert nps.json()["n"] == 2 and nps.json()["detractors"] == 2

        # A second run changes nothing: the same day's pass publishes nothing more, and a run of another
        # replica that lost the day's row (another event id, the same cutoff) finds nothing left to change.
        assert await stack.anonymiser.work_once() == 0
        assert (
            await db.fetchval(
                "SELECT count(*) FROM trigger.anonymisation_runs WHERE workspace_id = $1", workspace
            )
            == 1
        )
        kept = await snapshot(db, workspace)
        again = AnonymisationDue(
            workspace_id=workspace,
            day=stack.clock.now().date(),
            cutoff=cutoff,
            anonymise_after_days=30,
            due_at=stack.clock.now(),
        )
        second = await publish(producer, again)
        await wait_until(lambda: handled(db, second), message="every service handled the second run")
        assert await snapshot(db, workspace) == kept
    finally:
        await stack.trigger.put("/v1/retention", json={"anonymise_after_days": None}, headers=auth)
        await db.close()


async def test_the_anonymiser_publishes_once_a_day_per_workspace_across_replicas(database_url, workspace):
    """Two replicas, one day: one run and one event, whose id is derived from the workspace and the day;
    the next day, one more."""
    db = Database(database_url)
    clock = StoppedClock()
    clock.stop_at(datetime.fromisoformat("2031-03-01T00:05:00+00:00"))
    replicas = [Anonymiser(db, Outbox(outbox, source="trigger"), clock=clock) for _ in range(2)]
    try:
        async with db.unit_of_work() as session:
            await retention.put_policy(session, workspace_id=workspace, days=7, actor="test")

        async def published() -> list[dict[str, Any]]:
            async with db.unit_of_work() as session:
                rows = await session.execute(
                    outbox.select()
                    .where(outbox.c.payload["workspaceid"].astext == workspace)
                    .order_by(outbox.c.seq)
                )
                return [row.payload for row in rows]

        await asyncio.gather(*(r.work_once() for r in replicas))
        (first,) = await published()
        assert first["id"] == AnonymisationDue.event_id(workspace, clock.now().date())
        assert first["type"] == "closeloop.AnonymisationDue.v1" and first["subject"] is None
        assert first["data"]["cutoff"].startswith("2031-02-22T00:05:00")
        for replica in replicas:
            await replica.work_once()
        assert len(await published()) == 1

        clock.stop_at(clock.now() + timedelta(days=1))
        await asyncio.gather(*(r.work_once() for r in replicas))
        days = [p["data"]["day"] for p in await published()]
        assert days == ["2031-03-01", "2031-03-02"]
    finally:
        async with db.unit_of_work() as session:
            await session.execute(outbox.delete().where(outbox.c.payload["workspaceid"].astext == workspace))
            await retention.put_policy(session, workspace_id=workspace, days=None, actor="test")
        await db.dispose()
