"""Scores back into the CRM: a HubSpot connector per workspace, fed from the real events.

Against real PostgreSQL and the real broker, with a local server that answers like HubSpot's CRM v3 API
and checks each request as HubSpot documents it (``tests.support.hubspot``): the closeloop contact
properties are created on first use, then the contact is patched; 429 with ``Retry-After`` and 5xx
answers are waited out and retried, the 10-second burst budget holds, every request is in the call log,
and the private app's token is stored encrypted and never returned.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from services.dispatch.crm import hubspot
from services.dispatch.models import CrmCall, CrmConnector
from shared.events import (
    ContactErased,
    FollowUpOpened,
    FollowUpOutcomeRecorded,
    NegativeFeedbackDetected,
    Recipient,
    ResponseScored,
    ScoredAnswer,
    SurveyRequested,
    new_id,
    utcnow,
)
from tests.support.dispatch import Dispatch, running_dispatch
from tests.support.hubspot import FakeHubSpot
from tests.support.stack import publish, wait_until
from tests.support.zendesk import FakeEndpoint, FakeZendesk

pytestmark = pytest.mark.integration
TOKEN = "pat-eu1-" + secrets.token_hex(16)
AGENT, ZD_TOKEN = "agent@acme.test", secrets.token_urlsafe(30)


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
async def helpdesk() -> AsyncIterator[FakeZendesk]:
    async with FakeZendesk(email=AGENT, api_token=ZD_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
async def dispatch(
    stack_env: dict[str, str], producer: AIOKafkaProducer, crm: FakeHubSpot, helpdesk: FakeZendesk
) -> AsyncIterator[Dispatch]:
    async with running_dispatch(
        stack_env,
        producer,
        hubspot_base_url=crm.url,
        zendesk_base_url=helpdesk.url,
        crm_backoff_s=0.05,
    ) as app:
        yield app


def scored(
    workspace: str,
    email: str,
    score: int,
    classification: str,
    comment: str | None,
    *,
    request_id: str | None = None,
) -> ResponseScored:
    return ResponseScored(
        workspace_id=workspace,
        response_id="r-" + secrets.token_hex(4),
        request_id=request_id,
        contact_id="contact-" + secrets.token_hex(3),
        survey_id="svy-support",
        kind="transactional",
        scores=(
            ScoredAnswer(
                question_id="q0",
                metric="nps",
                score=score,
                classification=classification,  # type: ignore[arg-type]
                negative=classification == "detractor",
            ),
            ScoredAnswer(question_id="q1", metric="nls", score=9, classification="promoter", negative=False),
        ),
        loyalty="trapped" if classification == "detractor" else "pure",
        negative=classification == "detractor",
        respondent=Recipient(name="Ada", email=email),
        comment=comment,
        scored_at=utcnow(),
    )


async def connect(dispatch: Dispatch, auth: dict[str, str], **extra: Any) -> dict[str, Any]:
    created = await dispatch.client.post(
        "/v1/crm-connectors",
        json={"kind": "hubspot", "name": "HubSpot", "access_token": TOKEN, **extra},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def calls(dispatch: Dispatch, auth: dict[str, str], connector_id: str) -> list[dict[str, Any]]:
    listed = await dispatch.client.get(f"/v1/crm-connectors/{connector_id}/calls", headers=auth)
    assert listed.status_code == 200, listed.text
    return list(listed.json())


async def test_a_scored_response_updates_the_hubspot_contact_through_a_5xx_and_a_429(
    dispatch, crm, workspace, auth
):
    email = f"ada-{workspace}@example.com"
    crm.contacts[email] = {"email": email}
    connector = await connect(dispatch, auth)
    assert TOKEN not in str(connector) and connector["has_credentials"] and not connector["prepared"]
    shown = await dispatch.client.get(f"/v1/crm-connectors/{connector['id']}", headers=auth)
    assert TOKEN not in shown.text
    async with dispatch.runtime.db.unit_of_work() as session:
        row = await session.scalar(select(CrmConnector).where(CrmConnector.id == connector["id"]))
        assert row is not None and TOKEN not in row.sealed_credentials

    crm.script = [503, 429]  # the first request fails, the retry is told to wait a second
    start = len(crm.requests)
    event = scored(workspace, email, 4, "detractor", "Nobody called me back.")
    event_id = await publish(dispatch.producer, event)
    await wait_until(
        lambda: "closeloop_nps" in crm.contacts[email], message="the contact was updated", timeout_s=60
    )
    assert crm.contacts[email] == {
        "email": email,
        "closeloop_nps": "4",
        "closeloop_nps_category": "detractor",
        "closeloop_loyalty": "trapped",
        "closeloop_last_survey_at": event.scored_at.isoformat().replace("+00:00", "Z"),
        "closeloop_last_comment": "Nobody called me back.",
    }
    assert crm.violations == []
    seen = crm.requests[start:]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in seen)
    # 503, then the retry got 429: the next request came only after Retry-After.
    after_429 = seen[2].at - seen[1].at
    assert after_429 >= crm.retry_after - 0.05, after_429
    assert set(crm.properties) >= set(hubspot.PROPERTY_NAMES)
    patch = seen[-1]
    assert (patch.method, patch.path, patch.query) == (
        "PATCH",
        f"/crm/v3/objects/contacts/{email}",
        {"idProperty": "email"},
    )

    async def done() -> list[dict[str, Any]] | None:
        found = await calls(dispatch, auth, connector["id"])
        return found if found and found[0]["status"] == "done" else None

    [call] = await wait_until(done, message="the call is done")
    assert call["event_id"] == event_id and call["event_type"] == "closeloop.ResponseScored.v2"
    statuses = [r["status_code"] for r in call["requests"]]
    assert statuses[:2] == [503, 429] and statuses[-1] == 200
    assert call["requests"][0]["error"] == "replied 503 Service Unavailable"

    # The properties exist now: the next score is one PATCH, and the same event again changes nothing.
    before = len(crm.requests)
    second = scored(workspace, email, 10, "promoter", None)
    second_id = await publish(dispatch.producer, second)
    await publish(dispatch.producer, second, event_id=second_id)
    await wait_until(lambda: crm.contacts[email]["closeloop_nps"] == "10", message="the second score arrived")
    assert [r.method for r in crm.requests[before:]] == ["PATCH"]
    assert crm.contacts[email]["closeloop_nps_category"] == "promoter"
    assert crm.contacts[email]["closeloop_last_comment"] == "Nobody called me back."  # no comment: kept
    assert len(await calls(dispatch, auth, connector["id"])) == 2


async def test_the_burst_budget_holds_and_an_unknown_contact_fails_for_good(dispatch, crm, workspace, auth):
    connector = await connect(dispatch, auth, burst_per_10s=3)
    start = len(crm.requests)
    await publish(
        dispatch.producer, scored(workspace, f"nobody-{workspace}@example.com", 9, "promoter", None)
    )

    async def finished() -> dict[str, Any] | None:
        found = await calls(dispatch, auth, connector["id"])
        return found[0] if found and found[0]["status"] in ("done", "failed") else None

    call = await wait_until(finished, message="the call finished", timeout_s=60)
    mine = [r for r in crm.requests[start:] if r.headers.get("authorization") == f"Bearer {TOKEN}"]
    # Five property requests (409: they exist) and the PATCH; never more than 3 in any 10 seconds.
    assert [r.method for r in mine] == ["POST"] * 5 + ["PATCH"]
    assert all(later.at - earlier.at >= 9.9 for earlier, later in zip(mine, mine[3:], strict=False))
    # HubSpot has no such contact: 404 is not retried.
    assert call["status"] == "failed" and call["last_status_code"] == 404 and call["attempts"] == 1


async def test_connectors_refuse_bad_input_and_other_kinds(dispatch, auth):
    refused = await dispatch.client.post(
        "/v1/crm-connectors", json={"kind": "salesforce", "name": "x", "access_token": "t"}, headers=auth
    )
    assert refused.status_code == 422 and "kind" in refused.text
    missing = await dispatch.client.get(f"/v1/crm-connectors/{secrets.token_hex(4)}", headers=auth)
    assert missing.status_code == 404


async def test_zendesk_gets_an_internal_note_on_the_triggering_ticket_a_case_link_and_the_won_back_tag(
    dispatch, helpdesk, workspace, auth
):
    created = await dispatch.client.post(
        "/v1/crm-connectors",
        json={
            "kind": "zendesk",
            "name": "Support",
            "subdomain": "acme",
            "email": AGENT,
            "api_token": ZD_TOKEN,
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    assert ZD_TOKEN not in created.text and created.json()["subdomain"] == "acme"
    ticket = 1000 + secrets.randbelow(10**6)
    helpdesk.tickets[ticket] = {"tags": ["vip"]}
    # The survey was asked because of the ticket: its id travels with the request into the invitation.
    request = SurveyRequested(
        workspace_id=workspace,
        request_id=new_id(),
        contact_id="con-zd",
        survey_id="svy-support",
        recipient=Recipient(email=f"zd-{workspace}@example.com"),
        context={"ticket_id": str(ticket), "agent": "Grace"},
    )
    await dispatch.publish(request)
    await dispatch.invitation(auth, request.request_id)

    helpdesk.script = [429]
    start = len(helpdesk.requests)
    event = scored(workspace, "x@example.com", 3, "detractor", "Too slow.", request_id=request.request_id)
    await publish(dispatch.producer, event)
    await wait_until(lambda: helpdesk.tickets[ticket].get("comments"), message="the note reached the ticket")
    [note] = helpdesk.tickets[ticket]["comments"]
    assert note["public"] is False
    assert note["body"].splitlines() == [
        "closeloop: the customer answered survey svy-support.",
        "NPS (q0): 3 — detractor",
        "NLS (q1): 9 — promoter",
        "Loyalty: trapped",
        "Comment: Too slow.",
    ]
    assert helpdesk.tickets[ticket]["tags"] == ["closeloop_detractor", "vip"]
    first, retried = helpdesk.requests[start : start + 2]
    assert (
        first.path == f"/api/v2/tickets/{ticket}.json"
        and retried.at - first.at >= helpdesk.retry_after - 0.05
    )

    case_id = new_id()
    opened = FollowUpOpened(
        workspace_id=workspace,
        task_id=case_id,
        contact_id="con-zd",
        occurred_at=utcnow(),
        response_id=event.response_id,
        survey_id="svy-support",
        score=3,
        metric="nps",
    )
    await publish(dispatch.producer, opened)
    await wait_until(lambda: len(helpdesk.tickets[ticket]["comments"]) == 2, message="the case was linked")
    assert case_id in helpdesk.tickets[ticket]["comments"][1]["body"]
    outcome = FollowUpOutcomeRecorded(
        workspace_id=workspace,
        task_id=case_id,
        contact_id="con-zd",
        occurred_at=utcnow(),
        won_back=True,
        retention_score=5,
    )
    await publish(dispatch.producer, outcome)
    await wait_until(
        lambda: "closeloop_won_back" in helpdesk.tickets[ticket]["tags"], message="won back tagged"
    )
    assert helpdesk.tickets[ticket]["comments"][2]["public"] is False
    assert helpdesk.violations == []


async def test_a_generic_connector_makes_the_mapped_call_with_its_auth_and_retries_a_5xx(
    dispatch, workspace, auth
):
    async with FakeEndpoint() as endpoint:
        mapping = {
            "event_type": "response.scored",
            "method": "PUT",
            "url": endpoint.url + "/api/contacts/{{data.contact_id}}/feedback?source=closeloop",
            "body": {
                "nps": "{{data.scores.0.score}}",
                "category": "{{data.scores.0.classification}}",
                "note": "NPS {{data.scores.0.score}} on {{data.survey_id}}",
                "event": "{{id}}",
            },
        }
        created = await dispatch.client.post(
            "/v1/crm-connectors",
            json={
                "kind": "generic",
                "name": "Our CRM",
                "auth": "bearer",
                "token": "s3cret",
                "mappings": [mapping],
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text
        assert "s3cret" not in created.text
        endpoint.script = [502]
        event = scored(workspace, "g@example.com", 6, "detractor", None)
        event_id = await publish(dispatch.producer, event)
        await wait_until(lambda: len(endpoint.requests) == 2, message="the call was retried")
        failed, sent = endpoint.requests
        assert (sent.method, sent.path) == ("PUT", f"/api/contacts/{event.contact_id}/feedback")
        assert sent.headers["authorization"] == "Bearer s3cret"
        assert sent.body == {
            "nps": 6,
            "category": "detractor",
            "note": "NPS 6 on svy-support",
            "event": event_id,
        }
        assert failed.body == sent.body
        [call] = await calls(dispatch, auth, created.json()["id"])
        assert [r["status_code"] for r in call["requests"]] == [502, 200]
        assert call["requests"][0]["path"] == f"/api/contacts/{event.contact_id}/feedback"


async def test_a_generic_mapping_to_a_metadata_address_is_refused(dispatch, auth):
    refused = await dispatch.client.post(
        "/v1/crm-connectors",
        json={
            "kind": "generic",
            "name": "x",
            "mappings": [{"event_type": "case.opened", "url": "http://169.254.169.254/latest/{{id}}"}],
        },
        headers=auth,
    )
    assert refused.status_code == 422, refused.text
    assert "mappings.0.url" in refused.text


async def test_erasure_empties_the_queued_calls_about_the_contact_and_later_events_queue_nothing(
    dispatch, crm, workspace, auth
):
    email = f"erin-{workspace}@example.com"
    crm.contacts[email] = {"email": email}
    connector = await connect(dispatch, auth)
    event = scored(workspace, email, 2, "detractor", "Call me on +31 6 1234 5678")
    crm.script = [503] * 1000  # the CRM is down: the call stays queued
    await publish(dispatch.producer, event)

    async def queued() -> list[dict[str, Any]] | None:
        found = await calls(dispatch, auth, connector["id"])
        return found if found and found[0]["attempts"] >= 1 else None

    await wait_until(queued, message="the call was tried")
    await publish(
        dispatch.producer,
        ContactErased(workspace_id=workspace, contact_id=event.contact_id, erased_at=utcnow()),
    )

    async def emptied() -> CrmCall | None:
        async with dispatch.runtime.db.unit_of_work() as session:
            row = await session.scalar(select(CrmCall).where(CrmCall.connector_id == connector["id"]))
            return row if row is not None and row.request == {} and row.status == "cancelled" else None

    # Waiting or in flight when the erasure came, it is cancelled and keeps nothing about the contact.
    row = await wait_until(emptied, message="the call was emptied and cancelled")
    crm.script = []  # the CRM is back (the fake is shared by the module's tests)
    assert row.contact_id is None and row.last_error == "the contact was erased"
    await publish(
        dispatch.producer,
        scored(workspace, email, 1, "detractor", "again").model_copy(update={"contact_id": event.contact_id}),
    )
    other = scored(workspace, email, 10, "promoter", None)
    await publish(dispatch.producer, other)
    await wait_until(
        lambda: crm.contacts[email].get("closeloop_nps") == "10", message="the other contact's score"
    )
    assert (
        len(await calls(dispatch, auth, connector["id"])) == 2
    )  # the erased contact's late score queued nothing


async def test_a_hubspot_connector_with_detractor_notes_adds_a_note_to_the_contact(
    dispatch, crm, workspace, auth
):
    email = f"dora-{workspace}@example.com"
    crm.contacts[email] = {"email": email}
    contact_id = f"c{list(crm.contacts).index(email)}"
    await connect(dispatch, auth, detractor_notes=True)
    base = scored(workspace, email, 2, "detractor", "Nobody <b>listened</b>.")
    negative = NegativeFeedbackDetected(
        **base.model_dump(exclude={"negative", "scored_at"}), negatives=base.scores[:1], detected_at=utcnow()
    )
    notes = len(crm.notes)
    await publish(dispatch.producer, negative)
    await wait_until(lambda: len(crm.notes) > notes, message="the note was created")
    note = crm.notes[-1]
    assert note["associations"] == [
        {
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
        }
    ]
    assert note["properties"]["hs_note_body"] == (
        "closeloop: negative feedback on survey svy-support.<br>NPS: 2 (detractor)<br>"
        "Comment: Nobody &lt;b&gt;listened&lt;/b&gt;."
    )
    assert note["properties"]["hs_timestamp"] == negative.detected_at.isoformat().replace("+00:00", "Z")
    assert crm.violations == []
