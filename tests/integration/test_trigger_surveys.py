"""The surveys trigger knows, from responses' events published to the broker by the test: a rule naming
an unknown survey (or another workspace's) is refused, a closed survey is the decision instead of a
send (also when a delayed send comes due), reopening sends again, and late events change nothing. And
what a survey request carries of the contact: its attributes and its company."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from shared.events import SURVEY_REQUESTS
from shared.security import issue_api_key
from tests.conftest import SECRET_KEY
from tests.support import trigger as fx
from tests.support.stack import TopicReader
from tests.support.trigger import ours

pytestmark = pytest.mark.integration


svc, _real_time = fx.driven_trigger_fixtures()


RULE = {"name": "NPS after a solved ticket", "event_type": "ticket.solved", "channel": "email"}


async def _event(svc: SimpleNamespace, auth: dict[str, str], external_id: str, **data: Any) -> dict[str, Any]:
    contact = {"external_id": external_id, "email": f"{external_id}@example.com", **data.pop("contact", {})}
    body = {"id": f"e-{external_id}-{datetime.now(UTC).timestamp()}", "type": "ticket.solved"}
    response = await svc.client.post(
        "/v1/events", json={**body, "data": {"contact": contact, **data}}, headers=auth
    )
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_rule_naming_a_survey_trigger_does_not_know_is_refused_saying_how_to_fix_it(
    svc, auth, workspace
):
    client = svc.client
    # Another workspace's survey is as unknown here as one that does not exist.
    other = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, workspace + '-b')}"}
    await fx.survey_event(client, other, svc.producer, "theirs")
    for survey_id in ("nowhere", "theirs"):
        refused = await client.post("/v1/rules", json={**RULE, "survey_id": survey_id}, headers=auth)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "survey_id"
        detail = refused.json()["detail"]
        assert "Create the survey in responses first" in detail and "retry" in detail
    draft = await client.post(
        "/v1/rules/dry-run",
        json={
            "event_type": "ticket.solved",
            "contact": {"external_id": "dry"},
            "rules": [{**RULE, "survey_id": "nowhere"}],
        },
        headers=auth,
    )
    assert draft.status_code == 422 and draft.json()["errors"][0]["field"] == "rules.0.survey_id"
    assert [s["survey_id"] for s in (await client.get("/v1/surveys", headers=auth)).json()] == []
    assert (await client.get("/v1/surveys/theirs", headers=auth)).status_code == 404

    known = await fx.survey_event(client, auth, svc.producer, "ours", name="Support NPS")
    assert known == {
        **known,
        "survey_id": "ours",
        "name": "Support NPS",
        "version": 1,
        "open": True,
    }
    assert [s["survey_id"] for s in (await client.get("/v1/surveys", headers=auth)).json()] == ["ours"]
    created = await client.post("/v1/rules", json={**RULE, "survey_id": "ours"}, headers=auth)
    assert created.status_code == 201, created.text
    rule_url = f"/v1/rules/{created.json()['id']}"
    for change in (
        client.patch(rule_url, json={"survey_id": "theirs"}, headers=auth),
        client.put(rule_url, json={**RULE, "survey_id": "nowhere"}, headers=auth),
    ):
        response = await change
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "survey_id"
    assert (await client.get(rule_url, headers=auth)).json()["survey_id"] == "ours"
    # Changes that leave the survey alone need no check.
    assert (await client.patch(rule_url, json={"enabled": False}, headers=auth)).status_code == 200


async def test_a_closed_survey_is_recorded_as_the_decision_and_reopening_it_sends_again(
    svc, auth, workspace, broker
):
    client = svc.client
    await fx.survey_event(client, auth, svc.producer, "nps")
    rule = (await client.post("/v1/rules", json={**RULE, "survey_id": "nps"}, headers=auth)).json()
    async with TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        assert (await _event(svc, auth, "before"))["surveys_requested"] == 1
        await fx.survey_event(client, auth, svc.producer, "nps", "closed")
        closed = await _event(svc, auth, "while-closed")
        assert closed["surveys_requested"] == 0
        await fx.survey_event(client, auth, svc.producer, "nps", "reopened")
        assert (await _event(svc, auth, "after"))["surveys_requested"] == 1
        requests = await reader.wait_for(lambda v: ours(v, workspace), count=2)
    assert sorted(r["data"]["recipient"]["email"] for r in requests) == [
        "after@example.com",
        "before@example.com",
    ]

    event = (await client.get(f"/v1/events/{closed['event_id']}", headers=auth)).json()
    [decision] = event["decisions"]
    assert decision["outcome"] == "survey_closed" and decision["request_id"] is None
    assert decision["rule_id"] == rule["id"] and "survey nps is closed" in decision["reason"]
    logged = (await client.get("/v1/decisions", params={"outcome": "survey_closed"}, headers=auth)).json()
    assert [d["id"] for d in logged] == [decision["id"]]

    # The dry run shows it too, for the workspace's own rules.
    await fx.survey_event(client, auth, svc.producer, "nps", "closed")
    dry = await client.post(
        "/v1/rules/dry-run",
        json={"event_type": "ticket.solved", "contact": {"external_id": "before"}},
        headers=auth,
    )
    assert [r["outcome"] for r in dry.json()["rules"]] == ["survey_closed"]


async def test_a_due_send_of_a_survey_closed_meanwhile_is_not_sent(svc, auth, workspace, broker):
    client = svc.client
    await fx.survey_event(client, auth, svc.producer, "later")
    await client.post("/v1/rules", json={**RULE, "survey_id": "later", "delay_seconds": 3600}, headers=auth)
    await fx.survey_event(client, auth, svc.producer, "weekly")
    await client.post(
        "/v1/rules",
        json={**RULE, "name": "weekly", "survey_id": "weekly", "recurrence_days": 7},
        headers=auth,
    )
    accepted = await _event(svc, auth, "waiting")
    assert accepted["surveys_requested"] == 1  # the weekly one; the other waits an hour
    await fx.survey_event(client, auth, svc.producer, "later", "closed")
    await fx.survey_event(client, auth, svc.producer, "weekly", "closed")
    start = svc.clock.now()
    await svc.scheduler.run_due(now=start + timedelta(hours=1, minutes=1))
    await svc.scheduler.run_due(now=start + timedelta(days=7, minutes=1))
    decisions = (await client.get("/v1/contacts/waiting/decisions", headers=auth)).json()
    assert [(d["outcome"], d["channel"]) for d in decisions] == [
        ("delayed", "email"),
        ("sent", "email"),
        ("survey_closed", None),
        ("survey_closed", None),
    ]
    # A recurring survey skips the round while closed, and asks again once reopened.
    await fx.survey_event(client, auth, svc.producer, "weekly", "reopened")
    async with TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        await svc.scheduler.run_due(now=start + timedelta(days=14, minutes=2))
        requests = await reader.wait_for(lambda v: ours(v, workspace) and v["data"]["survey_id"] == "weekly")
    assert (
        requests
        and (await client.get("/v1/contacts/waiting/decisions", headers=auth)).json()[-1]["outcome"] == "sent"
    )


async def test_an_event_older_than_what_trigger_knows_changes_nothing(svc, auth):
    client = svc.client
    now = datetime.now(UTC)
    await fx.survey_event(client, auth, svc.producer, "v", version=2, name="Second", at=now)
    await fx.survey_event(client, auth, svc.producer, "v", "closed", at=now + timedelta(seconds=1))
    # Version 1 published before the close, redelivered late: still closed, still version 2's name.
    late = await fx.survey_event(
        client,
        auth,
        svc.producer,
        "v",
        version=1,
        name="First",
        open=True,
        at=now - timedelta(days=1),
        late=True,
    )
    assert (late["version"], late["name"], late["open"]) == (2, "Second", False)
    reopened = await fx.survey_event(
        client, auth, svc.producer, "v", "reopened", at=now - timedelta(hours=1), late=True
    )
    assert reopened["open"] is False


async def test_a_survey_request_carries_the_contacts_attributes_and_company(svc, auth, workspace, broker):
    client = svc.client
    await fx.survey_event(client, auth, svc.producer, "attrs")
    await client.post("/v1/rules", json={**RULE, "survey_id": "attrs"}, headers=auth)
    await client.put(
        "/v1/contacts/family",
        json={
            "email": "family@example.com",
            "company": "Acme BV",
            "plan": "pro",
            "role": "payer",
            "attributes": {"segment": "family", "seats": 4, "vip": True, "tags": ["a", "b"]},
        },
        headers=auth,
    )
    async with TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        # An event property cannot pose as a contact attribute.
        await _event(svc, auth, "family", agent="Grace", **{"attr.segment": "spoofed"})
        [request] = await reader.wait_for(lambda v: ours(v, workspace))
    data = request["data"]
    assert data["recipient"]["company"] == "Acme BV"
    assert data["context"] == {
        "event_type": "ticket.solved",
        "source": "api",
        "agent": "Grace",
        "attr.role": "payer",
        "attr.plan": "pro",
        "attr.seats": "4",
        "attr.segment": "family",
        "attr.vip": "true",
    }
