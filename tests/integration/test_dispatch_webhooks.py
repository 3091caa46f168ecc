"""Outgoing webhooks fed from the real events: dispatch's ``outbound`` consumer group turns each public
event into one delivery per matching subscription, and the notifier sends them signed.

Against real PostgreSQL and the real broker; the receiver (``tests.support.receiver``) verifies every
message with the ``standardwebhooks`` package, answers as each test sets it up (down for a while, 410
Gone) and keeps what it accepted in arrival order. The last test runs scoring too: a completed response
is scored by scoring and its ``response.scored`` reaches the receiver.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from closeloop.mailcatcher import body_of, recipient
from services.dispatch.models import WebhookDelivery, erased_contacts
from services.scoring.app import create_app as create_scoring
from services.scoring.settings import ScoringSettings
from shared.erasure import is_erased
from shared.events import (
    Answer,
    ContactErased,
    FollowUpOpened,
    ResponseCompleted,
    ResponseScored,
    ScoredAnswer,
    new_id,
    utcnow,
)
from tests.support.dispatch import Dispatch, running_dispatch
from tests.support.receiver import Receiver
from tests.support.stack import publish, running, settings_from, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def dispatch(stack_env: dict[str, str], producer: AIOKafkaProducer) -> AsyncIterator[Dispatch]:
    async with running_dispatch(stack_env, producer, webhook_max_attempts=20, webhook_backoff_s=0.02) as app:
        yield app


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


async def subscribe(
    dispatch: Dispatch, receiver: Receiver, auth: dict[str, str], name: str, **body: Any
) -> dict[str, Any]:
    created = await dispatch.client.post(
        "/v1/webhooks", json={"url": receiver.url(name), **body}, headers=auth
    )
    assert created.status_code == 201, created.text
    receiver.secrets[name] = created.json()["secret"]
    return dict(created.json())


def scored(
    workspace: str, survey_id: str, contact_id: str, *scores: tuple[str, int, str], n: int = 0
) -> ResponseScored:
    answers = tuple(
        ScoredAnswer(
            question_id=f"q-{metric}",
            metric=metric,  # type: ignore[arg-type]
            score=score,
            classification=cls,  # type: ignore[arg-type]
            negative=cls in ("detractor", "negative"),
        )
        for metric, score, cls in scores
    )
    return ResponseScored(
        workspace_id=workspace,
        response_id=f"r-{n}-{secrets.token_hex(3)}",
        request_id=None,
        contact_id=contact_id,
        survey_id=survey_id,
        kind="transactional",
        channel="email",
        scores=answers,
        loyalty="trapped" if len(answers) == 2 else None,
        negative=any(a.negative for a in answers),
        consent_to_contact=True,
        comment="Slow delivery",
        scored_at=utcnow(),
    )


async def deliveries(dispatch: Dispatch, auth: dict[str, str], subscription_id: str) -> list[dict[str, Any]]:
    listed = await dispatch.client.get(f"/v1/webhooks/{subscription_id}/deliveries", headers=auth)
    assert listed.status_code == 200, listed.text
    return list(listed.json())


async def test_a_scored_response_reaches_the_subscriptions_that_want_it_signed_and_once(
    dispatch, receiver, workspace, auth
):
    survey, other = "svy-" + secrets.token_hex(3), "svy-" + secrets.token_hex(3)
    nps_of_survey = await subscribe(
        dispatch,
        receiver,
        auth,
        f"a-{workspace}",
        event_types=["response.scored"],
        survey_ids=[survey],
        metrics=["nps"],
    )
    other_survey = await subscribe(
        dispatch, receiver, auth, f"b-{workspace}", event_types=["response.scored"], survey_ids=[other]
    )
    csat_only = await subscribe(dispatch, receiver, auth, f"c-{workspace}", metrics=["csat"])
    cases = await subscribe(dispatch, receiver, auth, f"d-{workspace}", event_types=["case.opened"])

    event = scored(workspace, survey, "c-1", ("nps", 3, "detractor"), ("nls", 9, "promoter"))
    event_id = await publish(dispatch.producer, event)
    await publish(dispatch.producer, event, event_id=event_id)  # the broker redelivers it
    [received] = await wait_until(
        lambda: receiver.accepted.get(f"a-{workspace}"), message="the scored response reached the receiver"
    )
    assert received.webhook_id == event_id
    assert received.body == {
        "id": event_id,
        "type": "response.scored",
        "version": 1,
        "timestamp": received.body["timestamp"],
        "workspace_id": workspace,
        "data": {
            "response_id": event.response_id,
            "contact_id": "c-1",
            "survey_id": survey,
            "kind": "transactional",
            "channel": "email",
            "scores": [
                {
                    "question_id": "q-nps",
                    "metric": "nps",
                    "score": 3,
                    "classification": "detractor",
                    "negative": True,
                },
                {
                    "question_id": "q-nls",
                    "metric": "nls",
                    "score": 9,
                    "classification": "promoter",
                    "negative": False,
                },
            ],
            "loyalty": "trapped",
            "negative": True,
            "consent_to_contact": True,
            "comment": "Slow delivery",
            "scored_at": event.scored_at.isoformat().replace("+00:00", "Z"),
        },
    }
    # Every matching subscription got its delivery in the one transaction: the others got none.
    for subscription in (other_survey, csat_only, cases):
        assert await deliveries(dispatch, auth, subscription["id"]) == []
    [logged] = await deliveries(dispatch, auth, nps_of_survey["id"])
    assert (logged["msg_id"], logged["event_type"], logged["status"]) == (
        event_id,
        "response.scored",
        "delivered",
    )
    assert receiver.rejected == []


async def test_subscribing_to_an_unknown_type_names_the_field(dispatch, auth):
    refused = await dispatch.client.post(
        "/v1/webhooks",
        json={"url": "https://crm.example.com/h", "event_types": ["response.scord"]},
        headers=auth,
    )
    assert refused.status_code == 422
    assert "event_types" in refused.text and "response.scored" in refused.text


async def test_a_receiver_that_was_down_catches_up_in_order_per_contact(dispatch, receiver, workspace, auth):
    name = f"down-{workspace}"
    subscription = await subscribe(dispatch, receiver, auth, name, event_types=["response.scored"])
    receiver.down[name] = 6
    survey = "svy-" + secrets.token_hex(3)
    published: dict[str, list[str]] = {"ann": [], "bob": []}
    for n in range(4):
        for contact in published:
            event = scored(workspace, survey, contact, ("nps", n, "detractor"), n=n)
            await publish(dispatch.producer, event)
            published[contact].append(event.response_id)

    await wait_until(lambda: len(receiver.unique(name)) == 8, message="every delivery arrived", timeout_s=60)
    assert receiver.refused[name] == 6
    for contact, order in published.items():
        arrived = [
            m.body["data"]["response_id"]
            for m in receiver.unique(name)
            if m.body["data"]["contact_id"] == contact
        ]
        assert arrived == order, contact

    async def recorded() -> list[dict[str, Any]] | None:
        found = await deliveries(dispatch, auth, subscription["id"])
        return found if {d["status"] for d in found} == {"delivered"} else None

    log = await wait_until(recorded, message="every delivery recorded")
    assert sum(len(d["log"]) for d in log) == 8 + 6
    assert receiver.rejected == []


async def test_an_endpoint_that_answers_410_is_unsubscribed_and_the_workspace_told(
    dispatch, receiver, workspace, auth, smtp
):
    gone, alive = f"gone-{workspace}", f"alive-{workspace}"
    ops = f"ops-{workspace}@example.com"
    subscription = await subscribe(
        dispatch, receiver, auth, gone, event_types=["case.opened"], notify_email=ops
    )
    await subscribe(dispatch, receiver, auth, alive, event_types=["case.opened"])
    receiver.status[gone] = 410

    def opened() -> FollowUpOpened:
        return FollowUpOpened(
            workspace_id=workspace,
            task_id=new_id(),
            contact_id="c-9",
            occurred_at=utcnow(),
            response_id=new_id(),
            survey_id="svy",
            score=2,
            metric="nps",
        )

    first = opened()
    await publish(dispatch.producer, first)

    async def disabled() -> dict[str, Any] | None:
        row = (await dispatch.client.get(f"/v1/webhooks/{subscription['id']}", headers=auth)).json()
        return row if not row["enabled"] else None

    row = await wait_until(disabled, message="the subscription was disabled")
    assert "410" in row["disabled_reason"]
    [failed] = await deliveries(dispatch, auth, subscription["id"])
    assert failed["status"] == "failed" and failed["log"][0]["status_code"] == 410
    assert len(failed["log"]) == 1  # 410 is an answer, not a failure to retry
    notice = await smtp.wait_for(lambda m: recipient(m) == ops)
    assert notice["Subject"] == "closeloop: a webhook subscription was disabled"
    assert subscription["id"] in body_of(notice, "plain") and "410 Gone" in body_of(notice, "plain")

    second = opened()
    await publish(dispatch.producer, second)
    await wait_until(lambda: len(receiver.unique(alive)) == 2, message="the other subscription got both")
    assert [m.body["data"]["case_id"] for m in receiver.unique(alive)] == [first.task_id, second.task_id]
    assert len(await deliveries(dispatch, auth, subscription["id"])) == 1


async def test_an_erased_contact_is_announced_and_nothing_more_about_them_leaves(
    dispatch, receiver, workspace, auth
):
    name, held = f"erase-{workspace}", f"held-{workspace}"
    await subscribe(dispatch, receiver, auth, name, event_types=["contact.erased", "response.scored"])
    waiting = await subscribe(dispatch, receiver, auth, held, event_types=["response.scored"])
    receiver.down[held] = 10**6
    await publish(dispatch.producer, scored(workspace, "svy", "c-erased", ("nps", 1, "detractor")))
    await wait_until(lambda: receiver.refused.get(held), message="the held endpoint refused the score")

    erased = ContactErased(workspace_id=workspace, contact_id="c-erased", erased_at=utcnow())
    await publish(dispatch.producer, erased)
    await wait_until(
        lambda: [m for m in receiver.unique(name) if m.body["type"] == "contact.erased"],
        message="the erasure notice arrived",
    )
    # The main group records the erasure: the delivery still waiting keeps nothing about the contact ...
    await wait_until(
        lambda: _erased(dispatch, workspace, "c-erased"), message="dispatch recorded the erasure"
    )
    async with dispatch.runtime.db.unit_of_work() as session:
        [row] = (
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.subscription_id == waiting["id"])
            )
        ).all()
        assert (row.payload["data"], row.contact_id, row.order_key) == ({"erased": True}, None, None)
        assert row.status in ("cancelled", "sending", "scheduled")
    # ... and a late score about them makes no delivery, while another contact's does.
    await publish(dispatch.producer, scored(workspace, "svy", "c-erased", ("nps", 1, "detractor")))
    await publish(dispatch.producer, scored(workspace, "svy", "c-other", ("nps", 10, "promoter")))
    await wait_until(lambda: len(receiver.unique(name)) == 3, message="the other contact's score arrived")
    arrived = [(m.body["type"], m.body["data"]["contact_id"]) for m in receiver.unique(name)]
    assert arrived == [
        ("response.scored", "c-erased"),
        ("contact.erased", "c-erased"),
        ("response.scored", "c-other"),
    ]
    receiver.down[held] = 0


async def _erased(dispatch: Dispatch, workspace: str, contact_id: str) -> bool:
    async with dispatch.runtime.db.unit_of_work() as session:
        return await is_erased(session, erased_contacts, workspace_id=workspace, contact_id=contact_id)


async def test_end_to_end_scoring_scores_a_response_and_the_receiver_gets_it(
    dispatch, receiver, workspace, auth, stack_env
):
    name = f"e2e-{workspace}"
    await subscribe(dispatch, receiver, auth, name, event_types=["response.scored", "feedback.negative"])
    survey = "svy-" + secrets.token_hex(3)
    completed = ResponseCompleted(
        workspace_id=workspace,
        response_id=new_id(),
        invitation_id=None,
        request_id=new_id(),
        contact_id="c-e2e",
        survey_id=survey,
        survey_version=1,
        kind="transactional",
        channel="email",
        answers=(
            Answer(question_id="q0", type="nps", value=2),
            Answer(question_id="q1", type="open", value="Nobody called back"),
        ),
        consent_to_contact=True,
        completed_at=utcnow(),
    )
    async with running(create_scoring(settings_from(ScoringSettings, stack_env))) as scoring:
        assert isinstance(scoring, httpx.AsyncClient)
        await publish(dispatch.producer, completed)
        messages = await wait_until(
            lambda: len(receiver.unique(name)) == 2 and receiver.unique(name),
            message="scoring's events reached the receiver",
            timeout_s=60,
        )
    by_type = {m.body["type"]: m.body["data"] for m in messages}
    assert by_type["response.scored"]["response_id"] == completed.response_id
    assert by_type["response.scored"]["scores"][0]["metric"] == "nps"
    assert by_type["response.scored"]["comment"] == "Nobody called back"
    assert by_type["feedback.negative"]["negatives"][0]["classification"] == "detractor"


async def test_a_time_range_is_replayed_with_the_same_webhook_ids_in_order(
    dispatch, receiver, workspace, auth
):
    name = f"replay-{workspace}"
    subscription = await subscribe(dispatch, receiver, auth, name, event_types=["response.scored"])
    since = datetime.now(UTC) - timedelta(seconds=5)
    events = [scored(workspace, "svy", "c-r", ("nps", n, "detractor"), n=n) for n in range(3)]
    ids = [await publish(dispatch.producer, e) for e in events]
    await wait_until(lambda: len(receiver.unique(name)) == 3, message="the first deliveries")

    async def delivered() -> bool:
        return {d["status"] for d in await deliveries(dispatch, auth, subscription["id"])} == {"delivered"}

    await wait_until(delivered, message="recorded as delivered")
    replay = await dispatch.client.post(
        f"/v1/webhooks/{subscription['id']}/replay",
        json={"since": since.isoformat(), "until": (datetime.now(UTC) + timedelta(seconds=5)).isoformat()},
        headers=auth,
    )
    assert replay.status_code == 202 and replay.json() == {"replayed": 3}, replay.text
    await wait_until(lambda: len(receiver.accepted[name]) == 6, message="the replayed deliveries")
    again = [m.webhook_id for m in receiver.accepted[name][3:]]
    assert again == ids  # the same webhook-ids (receivers drop them as duplicates), in the original order

    naive = await dispatch.client.post(
        f"/v1/webhooks/{subscription['id']}/replay",
        json={"since": "2026-11-30T08:00:00", "until": "2026-11-30T09:00:00Z"},
        headers=auth,
    )
    assert naive.status_code == 422 and "since" in naive.text
