"""Dispatch does not let a tenant reach what it must not, nor read back what it must not see.

- every URL a workspace sets (chat webhook, SMS/WhatsApp provider, webhook subscriptions) is refused
  when saved if it points at loopback, private, link-local, metadata or unspecified addresses, and
  checked again at each connection (a name that resolves to 127.0.0.1 later — DNS rebinding);
- what a remote endpoint answered never reaches an API answer, an event or a stored error;
- header-bound fields are one line, booleans are JSON booleans;
- Twilio signatures over the URL with or without its default port are accepted;
- every HTML page carries a strict CSP that forbids framing.

Two apps: ``strict`` (the API only, no network allowed: the production default) for what is refused
when saved; ``dispatch`` allows one network, 127.0.0.2/32, where the "public" endpoints of these
tests listen — so 127.0.0.1 (``localhost``), where ``internal`` listens, stands for a service a tenant
must never reach.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.dispatch import providers
from services.dispatch.app import create_app
from services.dispatch.models import ChannelConfig, Notification, WebhookSubscription
from services.dispatch.settings import DispatchSettings
from shared import standard_webhooks
from shared.events import Recipient, SurveyRequested, new_id
from tests.support.dispatch import Dispatch, FakeProvider, notification, running_dispatch
from tests.support.stack import running, settings_from, wait_until
from tests.unit.test_netguard import BLOCKED_URLS

pytestmark = pytest.mark.integration

SECRET_BODY = b"SECRET-REPLY: postgres password=hunter2; internal stack trace at /srv/app.py line 42"


@pytest.fixture(scope="module")
async def strict(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The API as production runs it: no network is allowed besides public addresses."""
    settings = settings_from(DispatchSettings, stack_env, role="api", outbound_allow_networks="")
    async with running(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
async def internal() -> AsyncIterator[FakeProvider]:
    """A service on 127.0.0.1 that no tenant may reach; it records whatever reaches it."""
    async with FakeProvider() as server:
        yield server


@pytest.fixture(scope="module")
async def dispatch(stack_env: dict[str, str], producer: AIOKafkaProducer) -> AsyncIterator[Dispatch]:
    async with FakeProvider(host="127.0.0.2") as provider:
        async with running_dispatch(
            stack_env,
            producer,
            provider,
            outbound_allow_networks="127.0.0.2/32",
            chat_webhook_url=provider.hook_url("deployment-chat"),
        ) as running_app:
            yield running_app


def request(workspace: str, **fields: Any) -> SurveyRequested:
    recipient = {k: fields.pop(k) for k in ("name", "email", "phone") if k in fields}
    return SurveyRequested(
        workspace_id=workspace,
        request_id=new_id(),
        contact_id=fields.pop("contact_id", "con-1"),
        survey_id="svy-1",
        recipient=Recipient(locale="en", **recipient),
        **fields,
    )


def phone() -> str:
    return "+1415555" + str(secrets.randbelow(10_000)).zfill(4)


async def _store(dispatch: Dispatch, row: Any) -> None:
    """Write a row as if it had been saved long ago, when its host name still resolved publicly."""
    async with dispatch.runtime.db.unit_of_work() as session:
        if isinstance(row, ChannelConfig):
            await session.execute(
                insert(ChannelConfig)
                .values(workspace_id=row.workspace_id, channel=row.channel, config=row.config)
                .on_conflict_do_update(
                    index_elements=["workspace_id", "channel"], set_={"config": row.config}
                )
            )
        else:
            session.add(row)


# --- server-side request forgery -------------------------------------------------------------


@pytest.mark.parametrize("url", BLOCKED_URLS)
async def test_every_internal_address_is_refused_when_saved_naming_the_field(strict, auth, url):
    saves = [
        ("PUT", "/v1/channels/chat", {"webhook_url": url}, "webhook_url"),
        ("PUT", "/v1/channels/sms", {"base_url": url}, "base_url"),
        ("PUT", "/v1/channels/whatsapp", {"base_url": url}, "base_url"),
        ("POST", "/v1/webhooks", {"url": url}, "url"),
    ]
    for method, path, body, field in saves:
        response = await strict.request(method, path, json=body, headers=auth)
        assert response.status_code == 422, (method, path, url, response.text)
        problem = response.json()
        assert problem["errors"][0]["field"] == field
        assert "non-public" in problem["detail"] or "local host name" in problem["detail"], problem

    created = await strict.post("/v1/webhooks", json={"url": "https://93.184.215.14/hook"}, headers=auth)
    assert created.status_code == 201, created.text
    moved = await strict.patch(f"/v1/webhooks/{created.json()['id']}", json={"url": url}, headers=auth)
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "url"
    assert (await strict.get(f"/v1/webhooks/{created.json()['id']}", headers=auth)).json()["url"] == (
        "https://93.184.215.14/hook"
    )
    assert (await strict.get("/v1/channels", headers=auth)).json()[3]["config"] == {}


async def test_a_name_that_resolves_to_loopback_is_refused_at_connect_time(
    dispatch, internal, workspace, auth
):
    """DNS rebinding: the URLs were saved when their name resolved to a public address; now ``localhost``
    resolves to 127.0.0.1. Nothing reaches the internal service; each record says why."""
    rebound = f"http://localhost:{internal.port}"
    await _store(
        dispatch,
        ChannelConfig(workspace_id=workspace, channel="chat", config={"webhook_url": f"{rebound}/hooks/c"}),
    )
    await _store(
        dispatch,
        ChannelConfig(
            workspace_id=workspace,
            channel="sms",
            config={
                "base_url": rebound,
                "account_sid": internal.account_sid,
                "auth_token": internal.auth_token,
            },
        ),
    )
    subscription_id = new_id()
    await _store(
        dispatch,
        WebhookSubscription(
            id=subscription_id,
            workspace_id=workspace,
            url=f"{rebound}/hooks/w",
            secret=standard_webhooks.new_secret(),
            event_types=[],
            enabled=True,
            consecutive_failures=0,
        ),
    )
    chat = request(workspace, channel="chat", name="Cy")
    sms = request(workspace, channel="sms", phone=phone(), contact_id="con-2")
    for req in (chat, sms):
        await dispatch.publish(req)
    for req in (chat, sms):
        failed = await dispatch.invitation(auth, req.request_id, status="failed")
        assert "destination refused: localhost points at 127.0.0.1" in failed["last_error"]
        assert failed["attempts"] == 1, "a refused destination is not retried"

    team = notification(workspace, "chat", f"{rebound}/hooks/team")
    webhook = notification(workspace, "webhook", "followup.opened")
    await dispatch.publish(team)
    await dispatch.publish(webhook)

    async def notification_failed() -> Notification | None:
        async with dispatch.runtime.db.unit_of_work() as session:
            row = await session.scalar(
                select(Notification).where(Notification.notification_id == team.notification_id)
            )
        return row if row is not None and row.status == "failed" else None

    note = await wait_until(notification_failed, message="the team's chat notification failed")
    assert "destination refused" in (note.last_error or "")

    async def attempted() -> list[Any] | None:
        response = await dispatch.client.get(f"/v1/webhooks/{subscription_id}/deliveries", headers=auth)
        log = [a for d in response.json() for a in d["log"]]
        return log or None

    [attempt, *_] = await wait_until(attempted, message="the webhook delivery was attempted")
    assert attempt["status_code"] is None and attempt["error"].startswith("destination refused")
    assert internal.messages == [] and internal.hooks == [], "nothing reached the internal service"


async def test_a_chat_notification_reaches_an_allowed_team_url_through_the_guard(dispatch, workspace):
    hook = f"team-{workspace}"
    await dispatch.publish(
        notification(workspace, "chat", dispatch.provider.hook_url(hook), "New case", "A detractor answered.")
    )
    await wait_until(lambda: dispatch.provider.hooks_for(hook), message="the team's chat got it")
    assert (
        json.loads(dispatch.provider.hooks_for(hook)[0].body)["text"] == "*New case*\nA detractor answered."
    )


async def test_what_a_remote_endpoint_answered_never_reaches_the_api(dispatch, workspace, auth):
    provider = dispatch.provider
    for name in (f"chat-{workspace}", f"hook-{workspace}", f"team-{workspace}"):
        provider.hook_status[name], provider.hook_body[name] = 500, SECRET_BODY
    assert (
        await dispatch.client.put(
            "/v1/channels/chat", json={"webhook_url": provider.hook_url(f"chat-{workspace}")}, headers=auth
        )
    ).status_code == 200
    assert (
        await dispatch.client.put(
            "/v1/channels/sms",
            json={
                "base_url": provider.url,
                "account_sid": provider.account_sid,
                "auth_token": provider.auth_token,
            },
            headers=auth,
        )
    ).status_code == 200
    created = await dispatch.client.post(
        "/v1/webhooks", json={"url": provider.hook_url(f"hook-{workspace}")}, headers=auth
    )
    assert created.status_code == 201, created.text
    bad_number = phone()
    provider.invalid_numbers.add(bad_number)
    chat = request(workspace, channel="chat")
    sms = request(workspace, channel="sms", phone=bad_number, contact_id="con-sms")
    for req in (chat, sms):
        await dispatch.publish(req)
    team = notification(workspace, "chat", provider.hook_url(f"team-{workspace}"))
    await dispatch.publish(team)
    await dispatch.publish(notification(workspace, "webhook", "followup.opened"))

    failed_chat = await dispatch.invitation(auth, chat.request_id, status="failed")
    failed_sms = await dispatch.invitation(auth, sms.request_id, status="failed")
    assert failed_chat["last_error"] == "webhook replied 500 Internal Server Error"
    assert "code 21211: the 'To' number is not a valid phone number" in failed_sms["last_error"]

    async def delivery_log() -> str | None:
        response = await dispatch.client.get(f"/v1/webhooks/{created.json()['id']}/deliveries", headers=auth)
        done = [d for d in response.json() if d["status"] == "failed"]
        return response.text if done else None

    log = await wait_until(delivery_log, message="the webhook delivery failed")
    assert "replied 500 Internal Server Error" in log

    async def team_failed() -> str | None:
        async with dispatch.runtime.db.unit_of_work() as session:
            row = await session.scalar(
                select(Notification).where(Notification.notification_id == team.notification_id)
            )
        return row.last_error if row is not None and row.last_error else None

    note_error = await wait_until(team_failed, message="the team notification recorded its error")
    answers = [
        log,
        note_error,
        (await dispatch.client.get("/v1/invitations", headers=auth)).text,
        json.dumps(await dispatch.events(failed_chat["id"], "InvitationFailed")),
        json.dumps(await dispatch.events(failed_sms["id"], "InvitationBounced")),
    ]
    for answer in answers:
        assert "SECRET" not in answer and "hunter2" not in answer, answer
        assert "The 'To' number" not in answer, "the provider's own words stay out"
    assert bad_number not in failed_sms["last_error"] and bad_number not in answers[-1]


# --- header fields and booleans -----------------------------------------------------------------


async def test_header_fields_are_one_line_and_booleans_are_booleans(strict, auth):
    refused = [
        ("PUT", "/v1/channels/email", {"mail_from": "Acme <s@acme.test>\r\nBcc: all@evil.test"}, "mail_from"),
        ("PUT", "/v1/channels/email", {"mail_from": "Acme\x07 <s@acme.test>"}, "mail_from"),
        ("PUT", "/v1/channels/email", {"reply_to": "help@acme.test\nX-Spam: no"}, "reply_to"),
        ("PUT", "/v1/settings", {"branding": {"name": "Acme\r\nSubject: hi"}}, "branding.name"),
        (
            "POST",
            "/v1/templates",
            {"name": "t", "channel": "email", "text": "x", "subject": "Hi\r\nBcc: x@y"},
            "subject",
        ),
        ("PUT", "/v1/settings", {"open_tracking": "yes"}, "open_tracking"),
        ("PUT", "/v1/settings", {"open_tracking": 1}, "open_tracking"),
        (
            "POST",
            "/v1/templates",
            {"name": "t", "channel": "email", "text": "x", "no_embed": "true"},
            "no_embed",
        ),
    ]
    for method, path, body, field in refused:
        response = await strict.request(method, path, json=body, headers=auth)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["errors"][0]["field"] == field, response.json()
    created = await strict.post("/v1/webhooks", json={"url": "https://93.184.215.14/hook"}, headers=auth)
    path = f"/v1/webhooks/{created.json()['id']}"
    for value in ("yes", "true", 1, "on"):
        response = await strict.patch(path, json={"enabled": value}, headers=auth)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "enabled", value
    assert (await strict.patch(path, json={"enabled": False}, headers=auth)).json()["enabled"] is False
    saved = await strict.put(
        "/v1/channels/email", json={"mail_from": "Acme Support <s@acme.test>"}, headers=auth
    )
    assert saved.status_code == 200, saved.text


# --- provider callbacks and pages -------------------------------------------------------------


async def test_a_twilio_signature_over_the_url_with_or_without_the_default_port_is_accepted(
    dispatch, workspace, auth
):
    number = phone()
    req = request(workspace, channel="sms", phone=number)
    await dispatch.publish(req)
    invitation = await dispatch.invitation(auth, req.request_id, status="sent")
    path = f"/v1/providers/twilio/{workspace}/status"
    token = dispatch.provider.auth_token
    for status, url in (
        ("sent", f"https://go.test:443{path}"),  # how some Twilio edges sign it
        ("delivered", f"https://go.test{path}"),
    ):
        params = {"MessageSid": invitation["provider_message_id"], "MessageStatus": status}
        signature = providers.twilio_signature(token, url, params.items())
        response = await dispatch.client.post(
            path, data=params, headers={providers.TWILIO_SIGNATURE: signature}
        )
        assert response.status_code == 200, (url, response.text)
    params = {"MessageSid": invitation["provider_message_id"], "MessageStatus": "read"}
    other_port = providers.twilio_signature(token, f"https://go.test:8443{path}", params.items())
    refused = await dispatch.client.post(path, data=params, headers={providers.TWILIO_SIGNATURE: other_port})
    assert refused.status_code == 401
    assert (await dispatch.invitation(auth, req.request_id))["delivered_at"] is not None


async def test_every_html_page_has_a_strict_csp_that_forbids_framing(dispatch, workspace, auth, smtp):
    req = request(workspace, email=f"ada@{workspace}.test", name="Ada")
    await dispatch.publish(req)
    message = await smtp.wait_for(lambda m: f"ada@{workspace}.test" in str(m["To"]))
    unsubscribe = urlsplit(message["List-Unsubscribe"].split(">")[0].strip("<")).path
    pages = [
        await dispatch.client.get("/l/not-a-code"),
        await dispatch.client.get(unsubscribe),
        await dispatch.client.post(unsubscribe),
    ]
    assert [p.status_code for p in pages] == [404, 200, 200]
    for page in pages:
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
