"""The trigger service against real PostgreSQL and the real broker."""

from __future__ import annotations

import pytest

from services.trigger.app import create_app
from services.trigger.settings import TriggerSettings
from shared.events import SURVEY_REQUESTS
from tests.support.stack import TopicReader, running
from tests.support.webhooks import signed, ticket_solved

pytestmark = pytest.mark.integration


async def _setup(client, auth) -> tuple[str, str]:
    integration = (await client.post("/v1/integrations", json={"name": "Helpdesk"}, headers=auth)).json()
    rule = await client.post(
        "/v1/rules",
        headers=auth,
        json={
            "name": "after ticket",
            "event_type": "ticket.solved",
            "survey_id": "svy-1",
            "channel": "email",
        },
    )
    assert rule.status_code == 201, rule.text
    return integration["id"], integration["secret"]


async def test_signed_webhook_requests_one_survey_even_when_delivered_twice(
    settings_for, auth, broker, workspace
):
    async with (
        running(create_app(settings_for(TriggerSettings))) as client,
        TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader,
    ):
        integration_id, secret = await _setup(client, auth)
        body, headers = signed(secret, ticket_solved("cus_7", "grace@example.com", "Grace"))

        first = await client.post(f"/v1/webhooks/standard/{integration_id}", content=body, headers=headers)
        again = await client.post(f"/v1/webhooks/standard/{integration_id}", content=body, headers=headers)

        assert first.status_code == 202, first.text
        assert first.json()["status"] == "accepted" and first.json()["surveys_requested"] == 1
        assert again.status_code == 202 and again.json() == {
            **first.json(),
            "status": "duplicate",
            "surveys_requested": 0,
        }
        [request] = await reader.wait_for(lambda v: v["workspaceid"] == workspace)
        assert request["type"] == "closeloop.SurveyRequested.v1"
        assert request["data"]["recipient"]["email"] == "grace@example.com"
        assert request["data"]["survey_id"] == "svy-1"
        decisions = (await client.get("/v1/contacts/cus_7/decisions", headers=auth)).json()
        assert [d["outcome"] for d in decisions] == ["requested"]


@pytest.mark.parametrize(
    "tamper, field",
    [("signature", "webhook-signature"), ("stale", "webhook-timestamp"), ("missing", "webhook-id")],
)
async def test_bad_signatures_are_refused_and_nothing_is_stored(settings_for, auth, tamper, field):
    async with running(create_app(settings_for(TriggerSettings))) as client:
        integration_id, secret = await _setup(client, auth)
        body, headers = signed(
            secret if tamper != "signature" else "whsec_" + "A" * 32,
            ticket_solved("cus_x"),
            timestamp=1_000_000 if tamper == "stale" else None,
        )
        if tamper == "missing":
            del headers["webhook-id"]
        response = await client.post(f"/v1/webhooks/standard/{integration_id}", content=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == field
        assert (await client.get("/v1/contacts/cus_x", headers=auth)).status_code == 404


async def test_malformed_and_oversized_bodies_get_problem_json(settings_for, auth):
    async with running(create_app(settings_for(TriggerSettings, max_body_bytes=2048))) as client:
        integration_id, secret = await _setup(client, auth)
        body, headers = signed(secret, {})
        bad_json = b"{not json"
        _, bad_headers = signed(secret, {})
        from shared import standard_webhooks

        bad_headers["webhook-signature"] = standard_webhooks.sign(
            secret, bad_headers["webhook-id"], int(bad_headers["webhook-timestamp"]), bad_json
        )
        malformed = await client.post(
            f"/v1/webhooks/standard/{integration_id}", content=bad_json, headers=bad_headers
        )
        assert malformed.status_code == 400 and malformed.json()["type"].endswith("malformed-body")

        missing_contact = await client.post(
            f"/v1/webhooks/standard/{integration_id}", content=body, headers=headers
        )
        assert missing_contact.status_code == 422
        assert {e["field"] for e in missing_contact.json()["errors"]} >= {"type", "data"}

        big = await client.post(
            f"/v1/webhooks/standard/{integration_id}",
            content=b"x" * 4096,
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413 and big.json()["errors"][0]["field"] == "body"

        unknown = await client.post(
            "/v1/webhooks/standard/00000000-0000-0000-0000-000000000000", content=body, headers=headers
        )
        assert unknown.status_code == 404


async def test_api_requires_a_valid_workspace_key(settings_for):
    async with running(create_app(settings_for(TriggerSettings))) as client:
        assert (await client.get("/v1/rules")).status_code == 401
        forged = await client.get(
            "/v1/rules", headers={"Authorization": "Bearer clk_other.abcdefghij.AAAAAAAAAAAAAAAAAAAAAAAA"}
        )
        assert forged.status_code == 401 and forged.headers["content-type"] == "application/problem+json"
