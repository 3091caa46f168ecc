"""Realistic inbound payloads and their signatures, built the way each vendor documents them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from shared import standard_webhooks

HUBSPOT_PORTAL = 62515
HUBSPOT_APP = 54321


# --- HubSpot -------------------------------------------------------------------------------------


def hubspot_event(
    subscription: str,
    object_id: int,
    *,
    event_id: int | None = None,
    property_name: str | None = None,
    property_value: str | None = None,
    occurred_at_ms: int | None = None,
    portal_id: int = HUBSPOT_PORTAL,
) -> dict[str, Any]:
    """One event of a HubSpot webhook batch, as HubSpot sends it."""
    event: dict[str, Any] = {
        "eventId": event_id if event_id is not None else secrets.randbelow(2**31),
        "subscriptionId": 2_110_000 + secrets.randbelow(1000),
        "portalId": portal_id,
        "appId": HUBSPOT_APP,
        "occurredAt": occurred_at_ms if occurred_at_ms is not None else int(time.time() * 1000),
        "subscriptionType": subscription,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM_UI",
    }
    if property_name is not None:
        event.update(propertyName=property_name, propertyValue=property_value, changeFlag="UPDATED")
    else:
        event["changeFlag"] = "NEW"
    return event


def lifecycle_customer(contact_id: int, **kw: Any) -> dict[str, Any]:
    """A contact's lifecyclestage moved to customer."""
    return hubspot_event(
        "contact.propertyChange", contact_id, property_name="lifecyclestage", property_value="customer", **kw
    )


def deal_closed_won(deal_id: int, **kw: Any) -> dict[str, Any]:
    return hubspot_event(
        "deal.propertyChange", deal_id, property_name="dealstage", property_value="closedwon", **kw
    )


def ticket_closed(ticket_id: int, **kw: Any) -> dict[str, Any]:
    """A ticket moved to the closed stage of the default support pipeline ("4")."""
    return hubspot_event(
        "ticket.propertyChange", ticket_id, property_name="hs_pipeline_stage", property_value="4", **kw
    )


def hubspot_v3_headers(
    secret: str, uri: str, body: bytes, *, method: str = "POST", timestamp_ms: int | None = None
) -> dict[str, str]:
    """``X-HubSpot-Signature-v3``: base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    message = method.encode() + uri.encode() + body + ts.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": ts,
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature": hashlib.sha256(secret.encode() + body).hexdigest(),
    }


def hubspot_legacy_headers(
    secret: str, body: bytes, *, version: str = "v1", method: str = "POST", uri: str = ""
) -> dict[str, str]:
    source = secret.encode() + (body if version == "v1" else method.encode() + uri.encode() + body)
    return {
        "content-type": "application/json",
        "X-HubSpot-Signature-Version": version,
        "X-HubSpot-Signature": hashlib.sha256(source).hexdigest(),
    }


# --- Zendesk ---------------------------------------------------------------------------------------


def zendesk_status_changed(
    ticket_id: int,
    requester_id: int,
    *,
    current: str = "SOLVED",
    previous: str = "OPEN",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A ``zen:event-type:ticket.status_changed`` event subscription payload."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "zen:event-type:ticket.status_changed",
        "account_id": 12514403,
        "id": event_id
        or f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-4{secrets.token_hex(2)[1:]}-9{secrets.token_hex(2)[1:]}-{secrets.token_hex(6)}",
        "time": now,
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {
            "actor_id": "8447388090494",
            "assignee_id": "8447388090494",
            "brand_id": "8447346621310",
            "created_at": now,
            "custom_status": "8447346622462",
            "description": "The printer is on fire",
            "external_id": "",
            "form_id": "8646151517822",
            "group_id": "8447346623822",
            "id": str(ticket_id),
            "is_public": True,
            "organization_id": "8447346624510",
            "priority": "LOW",
            "requester_id": str(requester_id),
            "status": current,
            "subject": "Printer on fire",
            "submitter_id": str(requester_id),
            "tags": ["printer"],
            "type": "INCIDENT",
            "updated_at": now,
            "via": {"channel": "web_form"},
        },
        "event": {"current": current, "previous": previous},
    }


def zendesk_trigger_body(ticket_id: int, email: str, name: str) -> dict[str, Any]:
    """What a Zendesk trigger's "Notify webhook" action sends with the body our docs suggest."""
    return {
        "id": f"ticket-{ticket_id}-solved",
        "type": "ticket.solved",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "contact": {"external_id": f"zd-{ticket_id}", "email": email, "name": name},
            "ticket_id": str(ticket_id),
        },
    }


def zendesk_headers(secret: str, body: bytes, *, timestamp: str | None = None) -> dict[str, str]:
    """``X-Zendesk-Webhook-Signature``: base64(HMAC-SHA256(secret, timestamp + body))."""
    ts = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(secret.encode(), ts.encode() + body, hashlib.sha256).digest()
    ).decode()
    return {
        "content-type": "application/json",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Webhook-Id": "01GK8E6BKWMJZD2T8Y5AXJQMG5",
        "X-Zendesk-Webhook-Invocation-Id": str(secrets.randbelow(10**12)),
        "X-Zendesk-Webhook-Signature": signature,
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
    }


# --- Standard Webhooks, CloudEvents, generic -------------------------------------------------------


def standard_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or "msg_" + secrets.token_hex(8)
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": standard_webhooks.sign(secret, msg_id, ts, body),
    }


def cloudevent(
    event_type: str,
    *,
    subject: str | None = None,
    data: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or secrets.token_hex(8),
        "source": "//shop.example.com/orders",
        "type": event_type,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data or {},
    }
    if subject:
        event["subject"] = subject
    return event


def freshdesk_body(ticket_id: int, email: str, name: str, status: str = "Resolved") -> dict[str, Any]:
    """A Freshdesk automation webhook with the placeholders a CX admin typically picks."""
    return {
        "freshdesk_webhook": {
            "ticket_id": ticket_id,
            "ticket_status": status,
            "ticket_contact_email": email,
            "ticket_contact_name": name,
            "ticket_priority": "Medium",
            "ticket_updated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
    }


FRESHDESK_MAPPING = {
    "event_type_value": "ticket.resolved",
    "event_id": "freshdesk_webhook.ticket_id",
    "occurred_at": "freshdesk_webhook.ticket_updated_at",
    "properties": "freshdesk_webhook",
    "contact_email": "freshdesk_webhook.ticket_contact_email",
    "contact_name": "freshdesk_webhook.ticket_contact_name",
}


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# --- running the service in tests --------------------------------------------------------------


ALL_BUT_SCHEDULER = "api,relay,consumer,evaluator"
"""The role of a trigger app that runs everything but the scheduler: the test runs due sends itself
(``runtime.deps.scheduler.run_due(now=…)``), or another app of the session would take them."""


def trigger_settings(stack_env: dict[str, str], **overrides: Any) -> Any:
    """TriggerSettings for the test stack without touching the process environment."""
    from services.trigger.settings import TriggerSettings

    return TriggerSettings(**stack_env, **overrides)


@asynccontextmanager
async def driven_trigger(stack_env: dict[str, str], producer: Any) -> AsyncIterator[SimpleNamespace]:
    """Run a trigger app with everything but the scheduler, which the tests drive with a movable clock;
    yield its ``client``, ``clock`` and ``scheduler``, and the session's ``producer``."""
    from services.trigger.app import create_app
    from shared.clock import Clock
    from tests.support.stack import running

    clock = Clock()
    app = create_app(trigger_settings(stack_env, role=ALL_BUT_SCHEDULER), clock=clock)
    async with running(app) as client:
        yield SimpleNamespace(
            client=client, clock=clock, scheduler=app.state.runtime.deps.scheduler, producer=producer
        )


def driven_trigger_fixtures() -> tuple[Any, Any]:
    """The fixtures of a test module that drives one trigger app (``driven_trigger``): ``svc``, the app
    for the module, and ``_real_time``, which puts its clock back before each test. A module takes both
    with ``svc, _real_time = driven_trigger_fixtures()`` (a fixture imported from another test module
    would be a redefinition to ruff, F811)."""

    @pytest.fixture(scope="module")
    async def svc(stack_env: dict[str, str], producer: Any) -> AsyncIterator[SimpleNamespace]:
        async with driven_trigger(stack_env, producer) as running:
            yield running

    @pytest.fixture(autouse=True)
    def _real_time(svc: SimpleNamespace) -> None:
        svc.clock.reset()

    return svc, _real_time


def ours(value: Any, workspace: str) -> bool:
    """A topic record of this test's workspace (topics may hold records that are not JSON)."""
    return isinstance(value, dict) and value.get("workspaceid") == workspace


async def evaluated(client: Any, auth: dict[str, str], event_id: str) -> dict[str, Any]:
    """Wait until the rules have been applied to a stored event; return it with its decisions."""
    from tests.support.stack import wait_until

    async def done() -> dict[str, Any] | None:
        response = await client.get(f"/v1/events/{event_id}", headers=auth)
        assert response.status_code == 200, response.text
        event = response.json()
        return event if event["status"] != "pending" else None

    event: dict[str, Any] = await wait_until(done, timeout_s=10, message=f"event {event_id} evaluated")
    return event


async def requested(client: Any, auth: dict[str, str], accepted: Any) -> int:
    """Surveys requested for the new events of a webhook's answer, once the rules have been applied."""
    body = accepted.json() if hasattr(accepted, "json") else accepted
    results = body["events"] or [{"status": body["status"], "event_id": body["event_id"]}]
    total = 0
    for result in results:
        if result["status"] != "accepted":
            continue
        event = await evaluated(client, auth, result["event_id"])
        assert event["status"] == "evaluated", event
        total += sum(d["request_id"] is not None for d in event["decisions"])
    return total


def workspace_of(auth: dict[str, str]) -> str:
    """The workspace whose API key ``auth`` carries."""
    from shared.security import verify_api_key
    from tests.conftest import SECRET_KEY

    return verify_api_key(SECRET_KEY, auth["Authorization"].removeprefix("Bearer "))


async def survey_event(
    client: Any,
    auth: dict[str, str],
    producer: Any,
    survey_id: str,
    state: str = "published",
    *,
    late: bool = False,
    **data: Any,
) -> dict[str, Any]:
    """Publish what responses publishes when it publishes (``published``), closes or reopens a survey of
    the workspace, and wait until trigger shows it open or closed accordingly (``late``: until trigger
    has handled it, whatever it made of it); return it as ``GET /v1/surveys/{id}`` does."""
    before = await client.get(f"/v1/surveys/{survey_id}", headers=auth)
    seen = before.json()["updated_at"] if before.status_code == 200 else None
    from shared.events import SurveyClosed, SurveyPublished, SurveyQuestion, SurveyReopened
    from tests.support.stack import publish, wait_until

    workspace, now = workspace_of(auth), data.pop("at", None) or datetime.now(UTC)
    event: Any
    if state == "published":
        event = SurveyPublished(
            workspace_id=workspace,
            survey_id=survey_id,
            survey_version=data.pop("version", 1),
            name=data.pop("name", f"Survey {survey_id}"),
            open=data.pop("open", True),
            questions=(SurveyQuestion(id="nps", type="nps", required=True),),
            published_at=now,
        )
    elif state == "closed":
        event = SurveyClosed(workspace_id=workspace, survey_id=survey_id, closed_at=now)
    else:
        event = SurveyReopened(workspace_id=workspace, survey_id=survey_id, reopened_at=now)
    await publish(producer, event)
    expect_open = event.open if state == "published" else state == "reopened"

    async def known() -> dict[str, Any] | None:
        response = await client.get(f"/v1/surveys/{survey_id}", headers=auth)
        body = response.json() if response.status_code == 200 else None
        if body is None or (late and body["updated_at"] == seen):
            return None
        return body if late or body["open"] == expect_open else None

    found: dict[str, Any] = await wait_until(known, timeout_s=20, message=f"trigger knows survey {survey_id}")
    return found


async def known_survey(client: Any, auth: dict[str, str], producer: Any, survey_id: str) -> None:
    """Make sure trigger knows the workspace's (open) survey ``survey_id``: publish it if it does not yet."""
    if (await client.get(f"/v1/surveys/{survey_id}", headers=auth)).status_code != 200:
        await survey_event(client, auth, producer, survey_id)


async def created_rule(svc: SimpleNamespace, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    """Create the rule ``body`` through ``svc``'s API (its survey published first, as responses would)."""
    await known_survey(svc.client, auth, svc.producer, body["survey_id"])
    response = await svc.client.post("/v1/rules", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def recorded_survey(runtime: Any, workspace: str, survey_id: str) -> None:
    """Record an open survey the way trigger's consumer does on ``SurveyPublished``: for an app that runs
    no consumer (``CLOSELOOP_ROLE=api``), where the test does what a worker would."""
    from services.trigger.handlers.surveys import on_survey_event
    from shared.events import SurveyPublished, SurveyQuestion

    event = SurveyPublished(
        workspace_id=workspace,
        survey_id=survey_id,
        survey_version=1,
        name=f"Survey {survey_id}",
        open=True,
        questions=(SurveyQuestion(id="nps", type="nps", required=True),),
        published_at=datetime.now(UTC),
    )
    async with runtime.db.unit_of_work() as session:
        await on_survey_event(session, runtime.deps.caches, event)


async def settled(client: Any, auth: dict[str, str], *accepted: Any) -> None:
    """Wait until the rules have been applied to the new events of each webhook answer."""
    for answer in accepted:
        await requested(client, auth, answer)
