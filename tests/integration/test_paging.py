"""Cursor pagination (``shared.paging``) on the lists that grow without bound: a walk over every page
sees each row that existed when it began exactly once, in order, while rows are being inserted; the
next page travels in ``Link: rel=next``; a cursor changed by the client is a 422 naming ``cursor``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.app import create_app
from services.dispatch.deps import DispatchRuntime
from services.dispatch.handlers import subscriptions
from services.dispatch.models import Invitation, WebhookDelivery, WebhookSubscription
from services.dispatch.settings import DispatchSettings
from services.responses import queries as responses_queries
from services.responses.models import Response
from services.responses.models import Survey as ResponsesSurvey
from services.trigger import queries as trigger_queries
from services.trigger.models import AuditEntry, Contact, Decision
from shared.events import new_id, utcnow
from tests.support.stack import running, settings_from

pytestmark = pytest.mark.integration

NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')
Fetch = Callable[[str | None], Awaitable[tuple[list[Any], str | None]]]


async def walk(fetch: Fetch, *, between: Callable[[int], Awaitable[None]] | None = None) -> list[Any]:
    """Read every page from the first, calling ``between(page_number)`` after each; return the rows."""
    seen: list[Any] = []
    cursor: str | None = None
    pages = 0
    while True:
        rows, cursor = await fetch(cursor)
        seen.extend(rows)
        pages += 1
        assert pages < 100, "the walk ends"
        if cursor is None:
            return seen
        if between:
            await between(pages)


@pytest.fixture(scope="module")
async def dispatch(stack_env: dict[str, str], producer: AIOKafkaProducer) -> AsyncIterator[Any]:
    app = create_app(settings_from(DispatchSettings, stack_env, survey_base_url="https://surveys.test"))
    async with running(app) as client:
        runtime: DispatchRuntime = app.state.runtime
        yield client, runtime


def invitation(workspace: str, created_at: Any) -> Invitation:
    now = utcnow()
    return Invitation(
        id=new_id(),
        workspace_id=workspace,
        request_id=new_id(),
        contact_id="con-" + new_id()[:8],
        survey_id="svy-paging",
        kind="transactional",
        channel="email",
        status="sent",
        survey_url="https://surveys.test/s/x",
        send_at=now,
        next_attempt_at=now,
        created_at=created_at,
    )


async def test_every_invitation_once_in_order_across_pages_while_new_ones_arrive(dispatch, workspace, auth):
    client, runtime = dispatch
    start = utcnow() - timedelta(days=1)
    # 5 invitations share each moment: the id breaks the tie, so no page boundary loses or repeats one.
    originals = [invitation(workspace, start + timedelta(minutes=i // 5)) for i in range(23)]
    async with runtime.db.unit_of_work() as session:
        session.add_all(originals)
    expected = [i.id for i in sorted(originals, key=lambda i: (i.created_at, i.id), reverse=True)]

    async def fetch(url: str | None) -> tuple[list[Any], str | None]:
        response = await client.get(url or "/v1/invitations?limit=4&survey_id=svy-paging", headers=auth)
        assert response.status_code == 200, response.text
        link = response.headers.get("link")
        if link is None:
            assert "x-next-cursor" not in response.headers
            return response.json(), None
        url_next = NEXT.match(link)
        assert url_next, link
        assert url_next["url"].endswith(f"cursor={response.headers['x-next-cursor']}")
        assert "survey_id=svy-paging" in url_next["url"] and "limit=4" in url_next["url"], "the query is kept"
        return response.json(), url_next["url"].removeprefix("http://testserver")

    async def arrive(_: int) -> None:  # newer invitations land while the walk goes on
        async with runtime.db.unit_of_work() as session:
            session.add_all([invitation(workspace, utcnow()) for _ in range(3)])

    seen = [i["id"] for i in await walk(fetch, between=arrive)]
    assert seen == expected


async def test_a_changed_cursor_is_a_422_naming_cursor(dispatch, workspace, auth):
    client, runtime = dispatch
    async with runtime.db.unit_of_work() as session:
        session.add_all([invitation(workspace, utcnow()) for _ in range(3)])
    first = await client.get("/v1/invitations", params={"limit": 2}, headers=auth)
    cursor = first.headers["x-next-cursor"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for bad in (tampered, "bm9wZQ", cursor + "x"):
        refused = await client.get("/v1/invitations", params={"limit": 2, "cursor": bad}, headers=auth)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in refused.json()["errors"]] == ["cursor"]
    following = await client.get("/v1/invitations", params={"limit": 2, "cursor": cursor}, headers=auth)
    assert following.status_code == 200 and len(following.json()) == 1 and "link" not in following.headers


async def test_contacts_oldest_first_each_once_while_contacts_are_added(uow: AsyncSession, workspace):
    start = utcnow() - timedelta(days=2)
    originals = [
        Contact(
            id=new_id(),
            workspace_id=workspace,
            external_id=f"c{i}",
            created_at=start + timedelta(hours=i // 4),
        )
        for i in range(17)
    ]
    uow.add_all(originals)
    await uow.flush()
    expected = [c.id for c in sorted(originals, key=lambda c: (c.created_at, c.id))]
    added: list[str] = []

    async def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
        rows, following = await trigger_queries.list_contacts(
            uow, workspace_id=workspace, email=None, limit=5, offset=0, cursor=cursor
        )
        return [c.id for c in rows], following

    async def arrive(n: int) -> None:
        late = Contact(id=new_id(), workspace_id=workspace, external_id=f"late{n}", created_at=utcnow())
        early = Contact(id=new_id(), workspace_id=workspace, external_id=f"early{n}", created_at=start)
        uow.add_all([late, early])
        await uow.flush()
        added.append(late.id)

    seen = await walk(fetch, between=arrive)
    assert len(seen) == len(set(seen)), "no contact twice"
    assert [c for c in seen if c in set(expected)] == expected
    assert seen[len(expected) :] == added, "contacts added after the walk's position come at the end"


async def test_decisions_and_the_audit_log_newest_first_each_once(uow: AsyncSession, workspace):
    decisions = [
        Decision(
            workspace_id=workspace, rule_id=new_id(), contact_id=new_id(), outcome="requested", reason="r"
        )
        for _ in range(11)
    ]
    uow.add_all(decisions)
    moment = utcnow() - timedelta(hours=1)
    audits = [
        AuditEntry(
            workspace_id=workspace, entity="rule", entity_id=f"r{i}", action="updated", actor="a", at=moment
        )
        for i in range(9)
    ]
    uow.add_all(audits)
    await uow.flush()

    async def decisions_page(cursor: str | None) -> tuple[list[Any], str | None]:
        rows, following = await trigger_queries.list_decisions(
            uow, workspace_id=workspace, outcome=None, rule_id=None, limit=3, cursor=cursor
        )
        return [d.seq for d, _ in rows], following

    async def audit_page(cursor: str | None) -> tuple[list[Any], str | None]:
        rows, following = await trigger_queries.audit_log(
            uow, workspace_id=workspace, entity=None, limit=4, cursor=cursor
        )
        return [a.id for a in rows], following

    async def more_decisions(_: int) -> None:
        uow.add(
            Decision(workspace_id=workspace, rule_id=new_id(), contact_id=new_id(), outcome="x", reason="r")
        )
        await uow.flush()

    assert await walk(decisions_page, between=more_decisions) == sorted(
        (d.seq for d in decisions), reverse=True
    )
    assert await walk(audit_page) == sorted((a.id for a in audits), reverse=True)


async def test_a_surveys_responses_newest_started_first_each_once_while_respondents_answer(
    uow: AsyncSession, workspace
):
    survey = ResponsesSurvey(id=new_id(), workspace_id=workspace, name="Paged")
    uow.add(survey)
    await uow.flush()
    start = utcnow() - timedelta(hours=5)

    def response(i: int, started: Any) -> Response:
        return Response(
            id=new_id(),
            workspace_id=workspace,
            survey_id=survey.id,
            survey_version=1,
            link_key=new_id(),
            contact_id=f"con-{i}",
            kind="transactional",
            channel="email",
            consent_to_contact=False,
            hidden_fields={},
            passed=[],
            started_at=started,
            updated_at=started,
        )

    originals = [response(i, start + timedelta(minutes=i // 3)) for i in range(14)]
    uow.add_all(originals)
    await uow.flush()
    expected = [r.id for r in sorted(originals, key=lambda r: (r.started_at, r.id), reverse=True)]

    async def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
        rows, following = await responses_queries.list_responses(
            uow, workspace_id=workspace, survey_id=survey.id, limit=4, cursor=cursor
        )
        return [r.id for r, _ in rows], following

    async def answered_and_new(n: int) -> None:
        # an older partial response is answered (its updated_at moves) and a new respondent starts
        originals[n].updated_at = utcnow()
        uow.add(response(100 + n, utcnow()))
        await uow.flush()

    assert await walk(fetch, between=answered_and_new) == expected


async def test_a_subscriptions_delivery_log_newest_first_each_once(dispatch, workspace):
    _, runtime = dispatch
    subscription = WebhookSubscription(
        id=new_id(), workspace_id=workspace, url="https://hooks.test/x", secret="whsec_x", event_types=["*"]
    )
    moment = utcnow() - timedelta(minutes=30)

    def delivery(created: Any) -> WebhookDelivery:
        return WebhookDelivery(
            id=new_id(),
            workspace_id=workspace,
            subscription_id=subscription.id,
            msg_id=new_id(),
            event_type="scoring.low_score",
            payload={},
            status="delivered",
            next_attempt_at=created,
            created_at=created,
        )

    originals = [delivery(moment + timedelta(seconds=i // 4)) for i in range(10)]
    async with runtime.db.unit_of_work() as session:
        session.add(subscription)
        await session.flush()
        session.add_all(originals)
    expected = [d.id for d in sorted(originals, key=lambda d: (d.created_at, d.id), reverse=True)]

    async def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
        async with runtime.db.unit_of_work() as session:
            rows, following = await subscriptions.list_deliveries(
                session,
                workspace_id=workspace,
                subscription_id=subscription.id,
                status=None,
                limit=3,
                cursor=cursor,
            )
        return [d.id for d, _ in rows], following

    async def more(_: int) -> None:
        async with runtime.db.unit_of_work() as session:
            session.add(delivery(utcnow()))

    assert await walk(fetch, between=more) == expected
