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
from services.dispatch.models import CrmConnector
from shared.events import Recipient, ResponseScored, ScoredAnswer, utcnow
from tests.support.dispatch import Dispatch, FakeProvider, running_dispatch
from tests.support.hubspot import FakeHubSpot
from tests.support.stack import publish, wait_until

pytestmark = pytest.mark.integration
TOKEN = "pat-eu1-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
async def crm() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
async def dispatch(
    stack_env: dict[str, str], producer: AIOKafkaProducer, crm: FakeHubSpot
) -> AsyncIterator[Dispatch]:
    async with (
        FakeProvider() as provider,
        running_dispatch(stack_env, producer, provider, hubspot_base_url=crm.url, crm_backoff_s=0.05) as app,
    ):
        yield app


def scored(
    workspace: str, email: str, score: int, classification: str, comment: str | None
) -> ResponseScored:
    return ResponseScored(
        workspace_id=workspace,
        response_id="r-" + secrets.token_hex(4),
        request_id=None,
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
