"""The trigger service's inbound sources against real PostgreSQL and the real broker: every vendor's
signed webhooks through HTTP, deduplication, rate limits and size limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from services.trigger.app import create_app
from services.trigger.settings import TriggerSettings
from shared import standard_webhooks
from shared.events import CUSTOMER_EVENTS, SURVEY_REQUESTS
from tests.support import trigger as fx
from tests.support.access import key_id_of
from tests.support.stack import TopicReader, running
from tests.support.trigger import ours
from tests.support.webhooks import signed, ticket_solved

pytestmark = pytest.mark.integration
PUBLIC = "https://hooks.example.com"


@pytest.fixture(scope="module")
async def svc(stack_env: dict[str, str], producer: Any) -> AsyncIterator[SimpleNamespace]:
    """One trigger app for the module (public URL as a proxy would show it to HubSpot)."""
    app = create_app(fx.trigger_settings(stack_env, public_url=PUBLIC, role=fx.ALL_BUT_SCHEDULER))
    async with running(app) as client:
        yield SimpleNamespace(client=client, app=app, producer=producer)


async def _integration(client, auth, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/integrations", json={"name": "Source", **body}, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


async def _rule(svc, auth, **body: Any) -> dict[str, Any]:
    return await fx.created_rule(
        svc, auth, **{"name": "rule", "survey_id": "svy-1", "channel": "email", **body}
    )


def _path(integration: dict[str, Any]) -> str:
    assert integration["webhook_url"].startswith(PUBLIC)
    return integration["webhook_url"].removeprefix(PUBLIC)


# --- Standard Webhooks ------------------------------------------------------------------------


async def test_signed_webhook_requests_one_survey_even_when_delivered_twice(svc, auth, broker, workspace):
    client = svc.client
    async with TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        integration = await _integration(client, auth)
        await _rule(svc, auth, event_type="ticket.solved")
        body, headers = signed(integration["secret"], ticket_solved("cus_7", "grace@example.com", "Grace"))

        first = await client.post(_path(integration), content=body, headers=headers)
        again = await client.post(_path(integration), content=body, headers=headers)

        assert first.status_code == 202, first.text
        # Acknowledged once stored; the rules are applied right after.
        assert first.json()["status"] == "accepted" and first.json()["surveys_requested"] is None
        assert again.status_code == 202
        assert again.json()["status"] == "duplicate" and again.json()["surveys_requested"] == 0
        assert await fx.requested(client, auth, first) == 1
        assert again.json()["event_id"] == first.json()["event_id"]
        [request] = await reader.wait_for(lambda v: ours(v, workspace))
        assert request["type"] == "closeloop.SurveyRequested.v1"
        assert request["data"]["recipient"]["email"] == "grace@example.com"
        assert request["data"]["survey_id"] == "svy-1"
        assert request["data"]["context"]["ticket_id"] == "T-1"
        decisions = (await client.get("/v1/contacts/cus_7/decisions", headers=auth)).json()
        assert [d["outcome"] for d in decisions] == ["sent"]
        assert decisions[0]["event_id"] == first.json()["event_id"]


@pytest.mark.parametrize(
    "tamper, field",
    [
        ("signature", "webhook-signature"),
        ("stale", "webhook-timestamp"),
        ("future", "webhook-timestamp"),
        ("missing", "webhook-id"),
        ("byte", "webhook-signature"),
    ],
)
async def test_bad_signatures_are_refused_and_nothing_is_stored(svc, auth, tamper, field):
    import time

    integration = await _integration(svc.client, auth)
    body, headers = signed(
        integration["secret"] if tamper != "signature" else "whsec_" + "A" * 32,
        ticket_solved("cus_x"),
        timestamp={"stale": int(time.time()) - 400, "future": int(time.time()) + 400}.get(tamper),
    )
    if tamper == "missing":
        del headers["webhook-id"]
    if tamper == "byte":
        body = body.replace(b"cus_x", b"cus_y")
    response = await svc.client.post(_path(integration), content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
    assert (await svc.client.get("/v1/contacts/cus_x", headers=auth)).status_code == 404
    assert (await svc.client.get("/v1/contacts/cus_y", headers=auth)).status_code == 404


async def test_malformed_bodies_and_wrong_urls_get_problem_json(svc, auth):
    integration = await _integration(svc.client, auth)
    secret = integration["secret"]
    body, headers = signed(secret, {})
    bad_json = b"{not json"
    _, bad_headers = signed(secret, {})
    bad_headers["webhook-signature"] = standard_webhooks.sign(
        secret, bad_headers["webhook-id"], int(bad_headers["webhook-timestamp"]), bad_json
    )
    malformed = await svc.client.post(_path(integration), content=bad_json, headers=bad_headers)
    assert malformed.status_code == 400 and malformed.json()["type"].endswith("malformed-body")

    missing_contact = await svc.client.post(_path(integration), content=body, headers=headers)
    assert missing_contact.status_code == 422
    assert {e["field"] for e in missing_contact.json()["errors"]} >= {"type", "data"}

    unknown = await svc.client.post(
        "/v1/webhooks/standard/00000000-0000-0000-0000-000000000000", content=body, headers=headers
    )
    assert unknown.status_code == 404
    wrong_kind = await svc.client.post(
        _path(integration).replace("/standard/", "/zendesk/"), content=body, headers=headers
    )
    assert wrong_kind.status_code == 404 and "standard-webhooks integration" in wrong_kind.json()["detail"]


async def test_oversized_bodies_are_refused_before_they_are_read(settings_for, auth):
    settings = settings_for(TriggerSettings, max_body_bytes=2048, role="api,relay,evaluator")
    async with running(create_app(settings)) as client:
        integration = await _integration(client, auth)
        big = await client.post(
            f"/v1/webhooks/standard/{integration['id']}",
            content=b"x" * 4096,
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413 and big.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    "tolerance_s, age_s, accepted",
    [(900, 600, True), (900, -600, True), (900, 1000, False), (60, 120, False), (60, -120, False)],
)
async def test_the_standard_webhooks_timestamp_tolerance_follows_the_setting(
    stack_env, auth, tolerance_s, age_s, accepted
):
    """``CLOSELOOP_TRIGGER_SIGNATURE_TOLERANCE_S`` wider and narrower than the default 300 s, either way."""
    import time

    from tests.support.stack import settings_from

    env = {**stack_env, "CLOSELOOP_TRIGGER_SIGNATURE_TOLERANCE_S": str(tolerance_s), "CLOSELOOP_ROLE": "api"}
    async with running(create_app(settings_from(TriggerSettings, env))) as client:
        integration = await _integration(client, auth)
        body, headers = signed(
            integration["secret"], ticket_solved("tol-1"), timestamp=int(time.time()) - age_s
        )
        response = await client.post(
            f"/v1/webhooks/standard/{integration['id']}", content=body, headers=headers
        )
    if accepted:
        assert response.status_code == 202, response.text
    else:
        assert response.status_code == 401, response.text
        assert response.json()["errors"][0]["field"] == "webhook-timestamp"
        assert f"{tolerance_s}s" in response.json()["detail"]


async def test_api_requires_a_valid_workspace_key(svc):
    assert (await svc.client.get("/v1/rules")).status_code == 401
    forged = await svc.client.get(
        "/v1/rules", headers={"Authorization": "Bearer clk_other.abcdefghij.AAAAAAAAAAAAAAAAAAAAAAAA"}
    )
    assert forged.status_code == 401 and forged.headers["content-type"] == "application/problem+json"


# --- HubSpot ------------------------------------------------------------------------------------


async def test_hubspot_batch_of_100_is_stored_once_and_triggers_the_matching_rule(
    svc, auth, broker, workspace
):
    client = svc.client
    secret = "hubspot-client-secret-" + workspace
    integration = await _integration(client, auth, kind="hubspot", secret=secret)
    assert integration["secret"] is None  # the caller's own secret is never echoed
    await _rule(
        svc,
        auth,
        name="NPS for new customers",
        source="hubspot",
        event_type="contact.propertyChange",
        conditions={"field": "event.lifecyclestage", "op": "equals", "value": "customer"},
    )
    contact_ids = list(range(1000, 1090))
    for cid in contact_ids[:10]:  # contacts imported from the CRM, keyed by their HubSpot id
        await client.put(f"/v1/contacts/{cid}", json={"email": f"c{cid}@example.com"}, headers=auth)
    batch = [fx.lifecycle_customer(cid, event_id=cid) for cid in contact_ids]
    batch += [
        fx.hubspot_event(
            "contact.propertyChange",
            2000 + i,
            property_name="lifecyclestage",
            property_value="lead",
            event_id=2000 + i,
        )
        for i in range(5)
    ]
    batch += [fx.deal_closed_won(3000 + i, event_id=3000 + i) for i in range(3)]
    batch += [fx.ticket_closed(4000 + i, event_id=4000 + i) for i in range(2)]
    assert len(batch) == 100
    body = fx.dumps(batch)
    uri = PUBLIC + _path(integration)
    async with TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        first = await client.post(
            _path(integration), content=body, headers=fx.hubspot_v3_headers(secret, uri, body)
        )
        assert first.status_code == 202, first.text
        result = first.json()
        assert result["received"] == 100 and result["duplicates"] == 0
        # Only the 10 contacts with an email can be asked; the other 80 have no channel.
        assert await fx.requested(client, auth, result) == 10
        statuses = [e["status"] for e in result["events"]]
        assert statuses.count("accepted") == 95 and statuses.count("no_contact") == 5
        requests = await reader.wait_for(lambda v: ours(v, workspace), count=10)
        assert {r["data"]["recipient"]["email"] for r in requests} == {
            f"c{c}@example.com" for c in contact_ids[:10]
        }

    # HubSpot retries the whole batch (attemptNumber goes up, the signature is fresh): nothing new.
    retry = fx.dumps([{**e, "attemptNumber": 1} for e in batch])
    again = await client.post(
        _path(integration), content=retry, headers=fx.hubspot_v3_headers(secret, uri, retry)
    )
    assert (
        again.status_code == 202
        and again.json()["duplicates"] == 100
        and again.json()["status"] == "duplicate"
    )
    assert again.json()["surveys_requested"] == 0
    decisions = (await client.get("/v1/contacts/1000/decisions", headers=auth)).json()
    assert [d["outcome"] for d in decisions] == ["sent"]
    assert [d["outcome"] for d in (await client.get("/v1/contacts/1050/decisions", headers=auth)).json()] == [
        "no_channel"
    ]
    assert [d["outcome"] for d in (await client.get("/v1/contacts/2000/decisions", headers=auth)).json()] == [
        "conditions_not_met"
    ]


async def test_hubspot_signature_covers_the_public_uri(svc, auth):
    secret = "hubspot-secret-" + auth["Authorization"][-8:]
    integration = await _integration(svc.client, auth, kind="hubspot", secret=secret)
    body = fx.dumps([fx.lifecycle_customer(7)])
    wrong_uri = fx.hubspot_v3_headers(secret, "https://elsewhere.example.com" + _path(integration), body)
    refused = await svc.client.post(_path(integration), content=body, headers=wrong_uri)
    assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == "x-hubspot-signature-v3"
    # The URI the server itself saw (no proxy in between) is accepted too.
    direct = fx.hubspot_v3_headers(secret, "http://testserver" + _path(integration), body)
    assert (await svc.client.post(_path(integration), content=body, headers=direct)).status_code == 202
    legacy = await svc.client.post(
        _path(integration), content=body, headers=fx.hubspot_legacy_headers(secret, body)
    )
    assert legacy.status_code == 401


async def test_hubspot_legacy_apps_can_be_allowed(svc, auth):
    secret = "legacy-secret-" + auth["Authorization"][-8:]
    integration = await _integration(
        svc.client, auth, kind="hubspot", secret=secret, config={"allow_legacy_signatures": True}
    )
    body = fx.dumps([fx.lifecycle_customer(8)])
    accepted = await svc.client.post(
        _path(integration), content=body, headers=fx.hubspot_legacy_headers(secret, body)
    )
    assert accepted.status_code == 202, accepted.text


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "H", "kind": "hubspot"}, "secret"),
        ({"name": "H", "kind": "zendesk"}, "secret"),
        ({"name": "H", "kind": "hubspot", "secret": "s" * 10, "config": {"auth": "basic"}}, "config.auth"),
        ({"name": "H", "kind": "standard-webhooks", "secret": "not-whsec"}, "secret"),
        ({"name": "H", "kind": "generic", "config": {"mapping": {"event_type": "t"}}}, "config.mapping"),
        ({"name": "H", "kind": "teams"}, "kind"),
        ({"name": "H", "source": "Not A Slug"}, "source"),
    ],
)
async def test_bad_integrations_are_refused_naming_the_field(svc, auth, body, field):
    response = await svc.client.post("/v1/integrations", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_hubspot_deals_and_tickets_find_their_contact_through_the_crm_api(svc, auth, workspace):
    import httpx

    client = svc.client
    secret = "hs-assoc-" + workspace
    integration = await _integration(
        client, auth, kind="hubspot", secret=secret, config={"access_token": "pat-na1-secret-token"}
    )
    assert integration["config"] == {"access_token_set": True}
    await client.put("/v1/contacts/777", json={"email": "ticket.owner@example.com"}, headers=auth)
    await _rule(
        svc,
        auth,
        source="hubspot",
        event_type="ticket.propertyChange",
        conditions={"field": "event.hs_pipeline_stage", "op": "equals", "value": "4"},
    )
    calls: list[str] = []
    hubspot_up = {"ok": False}

    def crm(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        assert request.headers["authorization"] == "Bearer pat-na1-secret-token"
        if not hubspot_up["ok"]:
            return httpx.Response(503)
        if request.url.path == "/crm/v4/objects/tickets/5001/associations/contacts":
            return httpx.Response(200, json={"results": [{"toObjectId": 777, "associationTypes": []}]})
        return httpx.Response(404, json={"status": "error"})

    hubspot = svc.app.state.runtime.deps.hubspot
    original, hubspot.http = hubspot.http, httpx.AsyncClient(transport=httpx.MockTransport(crm))
    try:
        body = fx.dumps([fx.ticket_closed(5001, event_id=51), fx.deal_closed_won(6001, event_id=61)])
        uri = PUBLIC + _path(integration)
        down = await client.post(
            _path(integration), content=body, headers=fx.hubspot_v3_headers(secret, uri, body)
        )
        assert down.status_code == 503 and down.headers["retry-after"] == "30"  # HubSpot retries 5xx
        hubspot_up["ok"] = True
        up = await client.post(
            _path(integration), content=body, headers=fx.hubspot_v3_headers(secret, uri, body)
        )
        assert up.status_code == 202, up.text
        assert [e["status"] for e in up.json()["events"]] == ["accepted", "no_contact"]
        assert await fx.requested(client, auth, up) == 1
        assert [
            d["outcome"] for d in (await client.get("/v1/contacts/777/decisions", headers=auth)).json()
        ] == ["sent"]
        await client.post(_path(integration), content=body, headers=fx.hubspot_v3_headers(secret, uri, body))
        assert calls.count("/crm/v4/objects/tickets/5001/associations/contacts") == 2  # then cached
    finally:
        await hubspot.http.aclose()
        hubspot.http = original
    patched = await client.patch(
        f"/v1/integrations/{integration['id']}", json={"config": {"portal_ids": [1]}}, headers=auth
    )
    assert patched.json()["config"] == {"portal_ids": [1], "access_token_set": True}


# --- Zendesk --------------------------------------------------------------------------------------


async def test_zendesk_ticket_solved_schedules_a_csat_24_hours_later(svc, auth, workspace):
    client = svc.client
    integration = await _integration(client, auth, kind="zendesk", secret="zendesk-signing-secret")
    await client.put("/v1/contacts/20978392", json={"email": "req@example.com", "name": "Req"}, headers=auth)
    rule = await _rule(
        svc,
        auth,
        name="CSAT a day after solved",
        source="zendesk",
        event_type="ticket.status_changed",
        conditions={"field": "event.current", "op": "equals", "value": "solved"},
        delay_seconds=86400,
    )
    solved = fx.dumps(fx.zendesk_status_changed(35436, 20978392, current="SOLVED"))
    opened = fx.dumps(fx.zendesk_status_changed(35437, 20978392, current="OPEN", previous="NEW"))
    for body in (solved, opened):
        response = await client.post(
            _path(integration), content=body, headers=fx.zendesk_headers("zendesk-signing-secret", body)
        )
        assert response.status_code == 202, response.text
        await fx.settled(client, auth, response)
    decisions = (await client.get("/v1/contacts/20978392/decisions", headers=auth)).json()
    assert [(d["rule_id"], d["outcome"]) for d in decisions] == [
        (rule["id"], "delayed"),
        (rule["id"], "conditions_not_met"),
    ]
    assert "waits 1 day after the event" in decisions[0]["reason"]

    stale = fx.zendesk_headers("zendesk-signing-secret", solved, timestamp="2020-01-01T00:00:00Z")
    refused = await client.post(_path(integration), content=solved, headers=stale)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["field"] == "x-zendesk-webhook-signature-timestamp"


# --- CloudEvents, generic JSON, direct API -----------------------------------------------------------


async def test_cloudevents_in_all_three_modes(svc, auth, workspace):
    client = svc.client
    integration = await _integration(client, auth, kind="cloudevents")
    secret = integration["secret"]
    await _rule(svc, auth, event_type="com.shop.order.delivered", source="cloudevents")
    contact = {"external_id": "ce-1", "email": "ce1@example.com"}
    structured = fx.dumps(
        fx.cloudevent("com.shop.order.delivered", data={"contact": contact, "order": "A-1"}, event_id="o1")
    )
    headers = {**fx.standard_headers(secret, structured), "content-type": "application/cloudevents+json"}
    one = await client.post(_path(integration), content=structured, headers=headers)
    assert one.status_code == 202 and await fx.requested(client, auth, one) == 1, one.text
    batch = fx.dumps([fx.cloudevent("com.shop.order.delivered", subject=f"ce-{i}") for i in (2, 3)])
    many = await client.post(
        _path(integration),
        content=batch,
        headers={**fx.standard_headers(secret, batch), "content-type": "application/cloudevents-batch+json"},
    )
    assert many.status_code == 202 and many.json()["received"] == 2
    binary_body = fx.dumps({"contact": {"external_id": "ce-4", "email": "ce4@example.com"}})
    binary = await client.post(
        _path(integration),
        content=binary_body,
        headers={
            **fx.standard_headers(secret, binary_body),
            "ce-specversion": "1.0",
            "ce-id": "o4",
            "ce-source": "/shop",
            "ce-type": "com.shop.order.delivered",
        },
    )
    assert binary.status_code == 202 and await fx.requested(client, auth, binary) == 1
    resent = await client.post(
        _path(integration),
        content=structured,
        headers={**fx.standard_headers(secret, structured), "content-type": "application/cloudevents+json"},
    )
    assert resent.json()["status"] == "duplicate"  # same source + id, a new webhook-id


async def test_generic_json_with_a_mapping_and_basic_auth(svc, auth, broker, workspace):
    client = svc.client
    integration = await _integration(
        client,
        auth,
        kind="generic",
        source="freshdesk",
        config={"auth": "basic", "mapping": fx.FRESHDESK_MAPPING},
    )
    secret = integration["secret"]
    await _rule(
        svc,
        auth,
        source="freshdesk",
        event_type="ticket.resolved",
        conditions={"field": "event.ticket_status", "op": "equals", "value": "resolved"},
    )
    body = fx.dumps(fx.freshdesk_body(4242, "Fresh@Example.com", "Fresh"))
    async with TopicReader(broker.bootstrap_servers, CUSTOMER_EVENTS) as reader:
        ok = await client.post(
            _path(integration),
            content=body,
            headers={"content-type": "application/json", **fx.basic_auth("closeloop", secret)},
        )
        assert ok.status_code == 202 and await fx.requested(client, auth, ok) == 1, ok.text
        [event] = await reader.wait_for(
            lambda v: ours(v, workspace) and v["type"] == "closeloop.CustomerEventReceived.v1"
        )
        assert event["data"]["source"] == "freshdesk" and event["data"]["source_event_id"] == "4242"
        assert event["data"]["properties"]["ticket_priority"] == "Medium"
    contacts = (await client.get("/v1/contacts", params={"email": "fresh@example.com"}, headers=auth)).json()
    assert len(contacts) == 1 and contacts[0]["external_id"] is None and contacts[0]["name"] == "Fresh"
    wrong = await client.post(
        _path(integration),
        content=body,
        headers={"content-type": "application/json", **fx.basic_auth("closeloop", "nope")},
    )
    assert wrong.status_code == 401 and wrong.json()["errors"][0]["field"] == "authorization"
    unmapped = await client.post(
        _path(integration),
        content=b'{"x": 1}',
        headers={"content-type": "application/json", **fx.basic_auth("closeloop", secret)},
    )
    assert unmapped.status_code == 422 and unmapped.json()["errors"][0]["field"] == "contact"


async def test_direct_events_with_the_api_key(svc, auth):
    client = svc.client
    await _rule(svc, auth, event_type="order.delivered", source="api")
    event = {
        "id": "evt-1",
        "type": "order.delivered",
        "data": {"contact": {"external_id": "d-1", "email": "d1@example.com"}, "order": "A-7"},
    }
    one = await client.post("/v1/events", json=event, headers=auth)
    assert one.status_code == 202 and one.json()["surveys_requested"] == 1, one.text
    again = await client.post("/v1/events", json=[event, {**event, "id": "evt-2"}], headers=auth)
    assert again.json()["duplicates"] == 1 and again.json()["received"] == 2
    detail = (await client.get(f"/v1/events/{one.json()['event_id']}", headers=auth)).json()
    assert detail["source"] == "api" and detail["properties"]["order"] == "A-7"
    assert [d["outcome"] for d in detail["decisions"]] == ["sent"]
    twice = {**event, "id": "evt-3"}
    both = await client.post("/v1/events", json=[twice, twice], headers=auth)
    assert (both.json()["received"], both.json()["duplicates"], both.json()["surveys_requested"]) == (2, 1, 1)
    assert (await client.post("/v1/events", json={"type": "x"}, headers=auth)).status_code == 422
    assert (await client.post("/v1/events", json=event)).status_code == 401


# --- limits, integrations ------------------------------------------------------------------------


async def test_a_source_sending_too_fast_gets_429_with_retry_after(svc, auth):
    integration = await _integration(svc.client, auth, config={"rate_limit_per_s": 1})
    for _ in range(5):  # unsigned floods are refused without using up the sender's rate
        body, headers = signed("whsec_" + "B" * 32, ticket_solved("flood"))
        assert (await svc.client.post(_path(integration), content=body, headers=headers)).status_code == 401
    results = []
    for i in range(4):
        body, headers = signed(integration["secret"], ticket_solved(f"rl-{i}"))
        results.append(await svc.client.post(_path(integration), content=body, headers=headers))
    codes = [r.status_code for r in results]
    assert codes[0] == 202 and 429 in codes
    limited = results[codes.index(429)]
    assert int(limited.headers["retry-after"]) >= 1 and limited.json()["type"].endswith("rate-limited")


async def test_disabling_an_integration_stops_its_webhooks_and_is_audited(svc, auth):
    client = svc.client
    integration = await _integration(client, auth)
    body, headers = signed(integration["secret"], ticket_solved("dis-1"))
    assert (await client.post(_path(integration), content=body, headers=headers)).status_code == 202
    patched = await client.patch(
        f"/v1/integrations/{integration['id']}",
        json={"enabled": False},
        headers={**auth, "X-Actor": "ops@acme.example"},
    )
    assert (
        patched.status_code == 200 and patched.json()["enabled"] is False and patched.json()["secret"] is None
    )
    body, headers = signed(integration["secret"], ticket_solved("dis-2"))
    assert (await client.post(_path(integration), content=body, headers=headers)).status_code == 404
    log = (await client.get("/v1/audit", params={"entity": "integration"}, headers=auth)).json()
    assert [entry["action"] for entry in log][:2] == ["updated", "created"]
    # The key that made the change, not the person its caller names in X-Actor (not believed).
    assert log[0]["actor"] == f"key:{key_id_of(auth)}" and "secret" not in str(log[0]["after"])
    assert (await client.get(f"/v1/integrations/{integration['id']}", headers=auth)).json()[
        "enabled"
    ] is False


async def test_another_workspace_cannot_see_or_change_an_integration(svc, auth):
    from shared.security import issue_api_key
    from tests.conftest import SECRET_KEY

    integration = await _integration(svc.client, auth)
    other = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, 'ws-someone-else')}"}
    assert (await svc.client.get(f"/v1/integrations/{integration['id']}", headers=other)).status_code == 404
    assert (
        await svc.client.patch(
            f"/v1/integrations/{integration['id']}", json={"enabled": False}, headers=other
        )
    ).status_code == 404


async def test_concurrent_redeliveries_are_stored_once(svc, auth):
    integration = await _integration(svc.client, auth)
    body, headers = signed(integration["secret"], ticket_solved("race-1", "race@example.com"))
    responses = await asyncio.gather(
        *(svc.client.post(_path(integration), content=body, headers=headers) for _ in range(8))
    )
    assert sorted(r.json()["status"] for r in responses) == ["accepted"] + ["duplicate"] * 7
    assert len({r.json()["event_id"] for r in responses}) == 1


async def test_hostile_bodies_get_4xx_or_are_cleaned_never_500(svc, auth):
    client = svc.client
    integration = await _integration(client, auth)
    nul = ticket_solved("nul-1", "nul@example.com", "Ada\u0000Lovelace")
    nul["data"]["note"] = "a\u0000b"
    body, headers = signed(integration["secret"], nul)
    stored = await client.post(_path(integration), content=body, headers=headers)
    assert stored.status_code == 202, stored.text
    await fx.settled(client, auth, stored)
    assert (await client.get("/v1/contacts/nul-1", headers=auth)).json()["name"] == "AdaLovelace"
    event = (await client.get(f"/v1/events/{stored.json()['event_id']}", headers=auth)).json()
    assert event["properties"]["note"] == "ab"

    deep = b"[" * 50_000 + b"]" * 50_000
    _, deep_headers = signed(integration["secret"], {})
    deep_headers["webhook-signature"] = standard_webhooks.sign(
        integration["secret"], deep_headers["webhook-id"], int(deep_headers["webhook-timestamp"]), deep
    )
    too_deep = await client.post(_path(integration), content=deep, headers=deep_headers)
    assert (
        too_deep.status_code in (400, 413) and too_deep.headers["content-type"] == "application/problem+json"
    )

    generic = await _integration(
        client,
        auth,
        kind="generic",
        config={"mapping": {"event_type_value": "x", "contact_external_id": "id", "contact_name": "name"}},
    )
    long_name = fx.dumps({"id": "long-1", "name": "N" * 5000})
    clipped = await client.post(
        _path(generic),
        content=long_name,
        headers={"content-type": "application/json", "x-closeloop-secret": generic["secret"]},
    )
    assert clipped.status_code == 202, clipped.text
    await fx.settled(client, auth, clipped)
    assert len((await client.get("/v1/contacts/long-1", headers=auth)).json()["name"]) == 200

    # The REST API follows the one rule of every service: a NUL is refused, naming the field (webhooks
    # are cleaned above: a CRM's payload cannot be corrected by whoever set up the integration).
    named = await client.put("/v1/contacts/nul-2", json={"name": "Grace\u0000Hopper"}, headers=auth)
    assert named.status_code == 422 and named.json()["errors"][0]["field"] == "name"
    rule = await client.post(
        "/v1/rules", json={"name": "r\u0000", "event_type": "t\u0000", "survey_id": "s"}, headers=auth
    )
    assert rule.status_code == 422 and rule.json()["errors"][0]["field"] == "name"
    direct = await client.post(
        "/v1/events",
        json={"id": "nul\u0000id", "type": "t", "data": {"contact": {"external_id": "nul-3"}, "x": "\u0000"}},
        headers=auth,
    )
    assert direct.status_code == 422 and direct.json()["errors"][0]["field"] == "id"


async def test_a_lone_surrogate_escape_is_a_malformed_body_naming_it(svc, auth):
    # Python's own parser takes it (then the shape check refused it as 422); it is no text at all.
    integration = await _integration(svc.client, auth)
    body = fx.dumps(ticket_solved("sur-1", "sur@example.com", "X")).replace(b'"X"', b'"\\ud800"')
    _, headers = signed(integration["secret"], {})
    headers["webhook-signature"] = standard_webhooks.sign(
        integration["secret"], headers["webhook-id"], int(headers["webhook-timestamp"]), body
    )
    response = await svc.client.post(_path(integration), content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("malformed-body")
    assert response.json()["errors"][0]["field"] == "body"
    assert (await svc.client.get("/v1/contacts/sur-1", headers=auth)).status_code == 404


def _webhook_count(metrics: str, status: int) -> float:
    route = 'route="/v1/webhooks/standard/{integration_id}"'
    for line in metrics.splitlines():
        if (
            line.startswith("closeloop_http_requests_total{")
            and route in line
            and f'status="{status}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_webhooks_are_answered_in_front_of_fastapi_and_still_counted(svc, auth):
    integration = await _integration(svc.client, auth)  # FastAPI has built its middleware stack now
    before = (await svc.client.get("/metrics")).text
    body, headers = signed(integration["secret"], ticket_solved("front-1", "front@example.com", "F"))
    seen: list[str] = []
    original = svc.app.middleware_stack

    async def watch(scope, receive, send):
        seen.append(scope["path"])
        await original(scope, receive, send)

    svc.app.middleware_stack = watch
    try:
        accepted = await svc.client.post(_path(integration), content=body, headers=headers)
        refused = await svc.client.post(_path(integration), content=body + b" ", headers=headers)
        listed = await svc.client.get("/v1/integrations", headers=auth)
    finally:
        svc.app.middleware_stack = original
    assert (accepted.status_code, refused.status_code, listed.status_code) == (202, 401, 200)
    assert seen == ["/v1/integrations"]  # FastAPI's stack saw only the request that was not a webhook
    after = (await svc.client.get("/metrics")).text
    assert _webhook_count(after, 202) == _webhook_count(before, 202) + 1
    assert _webhook_count(after, 401) == _webhook_count(before, 401) + 1
