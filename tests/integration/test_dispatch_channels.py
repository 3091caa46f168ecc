"""Dispatch's channels, scheduling, provider callbacks, funnel, notifications and webhooks.

One app for the module, against real PostgreSQL, the real broker and a real SMTP server; a
local HTTP server (``tests.support.dispatch.FakeProvider``) stands in for the SMS provider, chat
webhooks and integrators' endpoints. Every test works in its own workspace. The app's clock is
moved forward where a test needs days to pass, and put back afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from closeloop.infra import free_port
from closeloop.mailcatcher import MailCatcher, body_of, recipient
from services.dispatch import providers
from services.dispatch.app import create_app
from services.dispatch.channels import SendError, SmtpPool
from services.dispatch.deps import DispatchRuntime
from services.dispatch.embeds import SAMPLE_NPS
from services.dispatch.models import OptOut, Survey
from services.dispatch.settings import DispatchSettings
from shared import standard_webhooks, tracing
from shared.events import (
    NotificationRequested,
    Recipient,
    ResponseCompleted,
    ResponseStarted,
    SurveyRequested,
    new_id,
)
from shared.survey_links import read_link_token
from tests.conftest import SECRET_KEY
from tests.support.dispatch import (
    PUBLIC_URL,
    SURVEY_BASE_URL,
    Dispatch,
    notification,
    published,
    running_dispatch,
)
from tests.support.stack import running, wait_until

pytestmark = pytest.mark.integration

MAILGUN_KEY = "mg-signing-" + secrets.token_hex(8)
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
SCORE_LINK = re.compile(re.escape(PUBLIC_URL) + r"/l/[A-Za-z0-9_-]+\?score=(\d+)")


@pytest.fixture(scope="module")
async def dispatch(stack_env: dict[str, str], producer: AIOKafkaProducer) -> AsyncIterator[Dispatch]:
    async with running_dispatch(
        stack_env,
        producer,
        customer_events=True,
        sendgrid_webhook_public_key=SENDGRID_PUBLIC,
        mailgun_signing_key=MAILGUN_KEY,
        webhook_disable_after=2,
    ) as app:
        assert app.runtime.consumer is not None
        yield app
    assert app.provider.violations == [], "every request to the provider was as Twilio documents it"


@pytest.fixture(autouse=True)
def reset_clock(dispatch: Dispatch) -> Any:
    yield
    dispatch.clock.reset()


def request(workspace: str, *, contact_id: str = "con-1", **fields: Any) -> SurveyRequested:
    recipient_fields = {k: fields.pop(k) for k in ("name", "email", "phone", "timezone") if k in fields}
    return SurveyRequested(
        workspace_id=workspace,
        request_id=fields.pop("request_id", new_id()),
        contact_id=contact_id,
        survey_id=fields.pop("survey_id", "svy-nps"),
        recipient=Recipient(locale="en", **recipient_fields),
        **fields,
    )


def to(address: str) -> Any:
    return lambda m: recipient(m) == address


def text_of(message: EmailMessage) -> str:
    return body_of(message, "plain").replace("\r\n", "\n")


def phone() -> str:
    """A fresh number. The provider is shared by the file's tests and some mark their numbers invalid:
    with 10,000 numbers, two tests drew the same one now and then (a flaky 400 code 21211)."""
    return "+1415" + str(secrets.randbelow(10_000_000)).zfill(7)


async def put(dispatch: Dispatch, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await dispatch.client.put(path, json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


# --- email --------------------------------------------------------------------------------------


async def test_branded_email_with_merge_fields_embedded_scores_and_one_click_unsubscribe(
    dispatch, workspace, auth, smtp: MailCatcher
):
    await put(
        dispatch,
        auth,
        "/v1/settings",
        {"branding": {"name": "Acme", "colour": "#0f766e", "footer": "Acme Ltd, 1 Main Street, Springfield"}},
    )
    await dispatch.publish(published(workspace, "svy-nps", SAMPLE_NPS))

    async def survey_known() -> bool:
        async with dispatch.runtime.db.unit_of_work() as session:
            return await session.get(Survey, (workspace, "svy-nps", 1)) is not None

    await wait_until(survey_known, message="dispatch knows the survey")  # topics arrive in any order
    ada = f"ada@{workspace}.test"
    req = request(
        workspace, email=ada, name="Ada Lovelace", context={"agent": "Grace Hopper", "product": "Acme Cloud"}
    )
    await dispatch.publish(req)

    message = await smtp.wait_for(to(ada))
    invitation = await dispatch.invitation(auth, req.request_id, status="sent")
    text, html = text_of(message), body_of(message, "html")
    assert message["Subject"] == "Ada, how did Grace do?"
    assert text.startswith("Hi Ada,\n") and "Hi Ada," in html
    # The survey's first question, embedded: 0–10, each a link that records the score and opens the survey.
    assert "How likely are you to recommend Acme to a friend or colleague?" in text
    assert [int(n) for n in SCORE_LINK.findall(html)] == list(range(11))
    assert [int(n) for n in SCORE_LINK.findall(text)] == list(range(11))
    assert f'href="{invitation["short_url"]}?score=7"' in html
    # Branding, one call to action, the footer and the unsubscribe link in both parts.
    assert "#0f766e" in html and ">Acme<" in html and "Acme Ltd, 1 Main Street, Springfield" in html
    assert html.count(">Give feedback</a>") == 1
    unsubscribe_url = re.search(r"<(https://go\.test/u/[^>]+)>", message["List-Unsubscribe"])[1]  # type: ignore[index]
    assert "mailto:surveys@acme.test" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Unsubscribe: {unsubscribe_url}" in text and unsubscribe_url in html
    assert "go.test/o/" not in html, "no tracking pixel unless the workspace enables it"

    # A mail client's one-click unsubscribe (RFC 8058): opt-out recorded locally and published.
    path = urlsplit(unsubscribe_url).path
    page = await dispatch.client.get(path)
    assert page.status_code == 200 and "<form method=post" in page.text  # GET changes nothing
    done = await dispatch.client.post(path, content=b"List-Unsubscribe=One-Click")
    assert done.status_code == 200 and "unsubscribed" in done.text
    [opted_out] = await dispatch.customer_events.wait_for(
        lambda v: v["type"] == "closeloop.ContactOptedOut.v1" and v["data"]["workspace_id"] == workspace
    )
    assert opted_out["data"]["contact_id"] == "con-1" and opted_out["data"]["channel"] is None
    assert (await dispatch.client.post(path)).status_code == 200  # twice is fine
    assert (await dispatch.client.post("/u/forged.token")).status_code == 404

    # Every later send honours it, on every channel.
    later = request(workspace, email=ada, name="Ada Lovelace", channel="sms", phone=phone())
    await dispatch.publish(later)
    refused = await dispatch.invitation(auth, later.request_id, status="failed")
    assert "opted out" in refused["last_error"]
    assert len([m for m in smtp.messages if recipient(m) == ada]) == 1


async def test_merge_fields_fall_back_gracefully(dispatch, workspace, auth, smtp):
    anon = f"anon@{workspace}.test"
    await dispatch.publish(request(workspace, contact_id="con-2", email=anon, context={"product": "  "}))
    message = await smtp.wait_for(to(anon))
    assert message["Subject"] == "How was your experience with us?"
    assert text_of(message).startswith("Hi,\n")
    assert " ," not in text_of(message) and "Hi ," not in body_of(message, "html")


async def test_open_pixel_when_enabled(dispatch, workspace, auth, smtp):
    await put(dispatch, auth, "/v1/settings", {"open_tracking": True})
    grace = f"grace@{workspace}.test"
    req = request(workspace, email=grace, name="Grace")
    await dispatch.publish(req)
    message = await smtp.wait_for(to(grace))
    pixel = re.search(r'src="https://go\.test(/o/[A-Za-z0-9_-]+\.gif)"', body_of(message, "html"))
    assert pixel is not None
    response = await dispatch.client.get(pixel[1])
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    invitation = await dispatch.invitation(auth, req.request_id, status="sent")
    assert (await dispatch.events(invitation["id"], "InvitationOpened"))[0]["channel"] == "email"


# --- SMS, WhatsApp, chat, link ----------------------------------------------------------------


async def test_sms_goes_through_the_provider_api_with_a_short_personal_link(dispatch, workspace, auth):
    number = phone()
    req = request(
        workspace, channel="sms", phone=number.replace("+1", "+1 ").replace("555", "555-", 1), name="Ada"
    )
    await dispatch.publish(req)

    invitation = await dispatch.invitation(auth, req.request_id, status="sent")
    [sms] = dispatch.provider.sent_to(number)
    assert invitation["provider_message_id"] == sms.sid
    assert sms.form["From"] == "+15005550006" and sms.form["To"] == number
    assert sms.status_callback == f"{PUBLIC_URL}/v1/providers/twilio/{workspace}/status"
    short = invitation["short_url"]
    assert short.startswith(f"{PUBLIC_URL}/l/") and sms.body.endswith(short)
    assert sms.body.startswith("Hi Ada, how was your experience with us?") and len(sms.body) <= 160

    click = await dispatch.client.get(urlsplit(short).path + "?score=9")
    assert click.status_code == 302 and click.headers["location"] == invitation["survey_url"] + "?score=9"
    [clicked] = await dispatch.events(invitation["id"], "InvitationClicked")
    assert clicked["channel"] == "sms"
    assert (await dispatch.client.get("/l/nope")).status_code == 404


async def test_whatsapp_and_chat_and_link(dispatch, workspace, auth):
    number = phone()
    whatsapp = request(workspace, contact_id="con-w", channel="whatsapp", phone=number, name="Wes")
    await dispatch.publish(whatsapp)
    await dispatch.invitation(auth, whatsapp.request_id, status="sent")
    [message] = dispatch.provider.sent_to(number)
    assert message.to == f"whatsapp:{number}" and message.form["From"] == "whatsapp:+14155238886"

    await put(
        dispatch, auth, "/v1/channels/chat", {"webhook_url": dispatch.provider.hook_url(f"chat-{workspace}")}
    )
    chat = request(workspace, contact_id="con-c", channel="chat", name="Cy")
    await dispatch.publish(chat)
    invitation = await dispatch.invitation(auth, chat.request_id, status="sent")
    [posted] = dispatch.provider.hooks_for(f"chat-{workspace}")
    payload = json.loads(posted.body)
    assert payload["text"].startswith("Hi Cy,") and invitation["short_url"] in payload["text"]
    assert payload["invitation"]["id"] == invitation["id"]

    link = request(workspace, contact_id="con-l", channel="link")
    await dispatch.publish(link)
    returned = await dispatch.invitation(auth, link.request_id, status="sent")
    assert returned["survey_url"].startswith(SURVEY_BASE_URL) and returned["short_url"]


async def test_fallback_channels_when_the_first_cannot_reach_the_contact(dispatch, workspace, auth, smtp):
    number = phone()
    no_email = request(workspace, contact_id="con-f", phone=number, name="Fay", fallback_channels=("sms",))
    await dispatch.publish(no_email)
    invitation = await dispatch.invitation(auth, no_email.request_id, status="sent")
    assert invitation["channel"] == "sms" and len(dispatch.provider.sent_to(number)) == 1

    # The provider refuses the number: a hard bounce marks it invalid and email is tried next.
    bad = phone()
    dispatch.provider.invalid_numbers.add(bad)
    bounced = request(
        workspace,
        contact_id="con-g",
        channel="sms",
        phone=bad,
        email=f"gil@{workspace}.test",
        fallback_channels=("email",),
    )
    await dispatch.publish(bounced)
    await smtp.wait_for(to(f"gil@{workspace}.test"))
    invitation = await dispatch.invitation(auth, bounced.request_id, status="sent", channel="email")
    [event] = await dispatch.events(invitation["id"], "InvitationBounced")
    assert event["hard"] and event["channel"] == "sms"
    again = request(workspace, contact_id="con-g", channel="sms", phone=bad)
    await dispatch.publish(again)
    refused = await dispatch.invitation(auth, again.request_id, status="failed")
    assert "marked invalid" in refused["last_error"]


REFUSED_TRACE = "9c1e0b5a7d2f4a6c8e0b1d3f5a7c9e1b"


async def test_a_delayed_send_refused_when_it_falls_due_fails_in_the_request_s_trace(
    dispatch, workspace, auth
):
    """The sender claims a delayed message later, outside any span: what it publishes about it stays
    in the trace of the survey request (the row keeps it)."""
    req = request(
        workspace,
        contact_id="con-late-opt-out",
        channel="sms",
        phone=phone(),
        send_at=datetime.now(UTC) + timedelta(minutes=1),
    )
    with tracing.span("trigger", parent=f"00-{REFUSED_TRACE}-00f067aa0ba902b7-01"):
        await dispatch.publish(req)
    scheduled = await dispatch.invitation(auth, req.request_id, status="scheduled")
    # The opt-out lands after the request was stored and before the message falls due.
    async with dispatch.runtime.db.unit_of_work() as session:
        session.add(
            OptOut(
                workspace_id=workspace,
                contact_id="con-late-opt-out",
                channel="",
                source="test",
                opted_out_at=datetime.now(UTC),
            )
        )
    dispatch.clock.advance(timedelta(minutes=1, seconds=1))
    dispatch.wake()
    refused = await dispatch.invitation(auth, req.request_id, status="failed")
    assert "opted out" in refused["last_error"]
    [failed] = await dispatch.invitations.wait_for(
        lambda v: (
            v["type"] == "closeloop.InvitationFailed.v1" and v["data"]["invitation_id"] == scheduled["id"]
        )
    )
    assert tracing.trace_id(failed["traceparent"]) == REFUSED_TRACE


async def test_a_provider_outage_is_retried_and_then_ends_in_a_failed_event(dispatch, workspace, auth):
    number = phone()
    dispatch.provider.outage = 1
    flaky = request(workspace, contact_id="con-o", channel="sms", phone=number)
    await dispatch.publish(flaky)
    invitation = await dispatch.invitation(auth, flaky.request_id, status="sent")
    assert invitation["attempts"] == 2 and len(dispatch.provider.sent_to(number)) == 1

    dispatch.provider.outage = 3
    down = request(workspace, contact_id="con-p", channel="sms", phone=phone())
    await dispatch.publish(down)
    failed = await dispatch.invitation(auth, down.request_id, status="failed")
    assert failed["attempts"] == 3 and "503" in failed["last_error"]
    [event] = await dispatch.events(failed["id"], "InvitationFailed")
    assert event["error"].startswith("not sent after 3 attempt(s)")


# --- scheduling -----------------------------------------------------------------------------------


async def test_quiet_hours_in_the_contacts_timezone(dispatch, workspace, auth, smtp):
    tz = "Asia/Tokyo"
    local = datetime.now(UTC).astimezone(ZoneInfo(tz))
    start, end = local - timedelta(hours=1), local + timedelta(hours=2)
    await put(
        dispatch,
        auth,
        "/v1/settings",
        {"quiet_hours": {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}},
    )
    night = f"night@{workspace}.test"
    req = request(workspace, email=night, timezone=tz)
    elsewhere = request(
        workspace, contact_id="con-x", email=f"day@{workspace}.test", timezone="America/Caracas"
    )
    await dispatch.publish(req)
    await dispatch.publish(elsewhere)

    await smtp.wait_for(to(f"day@{workspace}.test"))  # it is not night in Caracas (13 h behind Tokyo)
    held = await dispatch.invitation(auth, req.request_id, status="scheduled")
    assert datetime.fromisoformat(held["send_at"]) < datetime.now(UTC)
    assert not [m for m in smtp.messages if recipient(m) == night]

    dispatch.clock.advance(timedelta(hours=2, minutes=1))
    dispatch.wake()
    await smtp.wait_for(to(night))
    await dispatch.invitation(auth, req.request_id, status="sent")


REMINDED_TRACE = "0af7651916cd43dd8448eb211c80319c"


async def test_reminders_stop_when_the_customer_responds(dispatch, workspace, auth, smtp):
    await put(dispatch, auth, "/v1/settings", {"reminders": {"count": 2, "interval_days": 2}})
    rae, sam = f"rae@{workspace}.test", f"sam@{workspace}.test"
    first = request(workspace, contact_id="con-r", email=rae, name="Rae")
    second = request(workspace, contact_id="con-s", email=sam, name="Sam")
    with tracing.span("trigger", parent=f"00-{REMINDED_TRACE}-00f067aa0ba902b7-01"):
        await dispatch.publish(first)
    await dispatch.publish(second)
    original = await smtp.wait_for(to(rae))
    inv_r = await dispatch.invitation(auth, first.request_id, status="sent")
    # The survey link carries the request's trace, so that Rae's answer continues it.
    token = urlsplit(inv_r["survey_url"]).path.removeprefix("/s/")
    assert tracing.trace_id(read_link_token(SECRET_KEY, token).traceparent) == REMINDED_TRACE
    inv_s = await dispatch.invitation(auth, second.request_id, status="sent")

    # Sam answers; Rae does not.
    await dispatch.publish(
        ResponseStarted(
            workspace_id=workspace,
            response_id=new_id(),
            invitation_id=inv_s["id"],
            request_id=second.request_id,
            contact_id="con-s",
            survey_id="svy-nps",
            survey_version=1,
            kind="transactional",
            channel="email",
            started_at=datetime.now(UTC),
        )
    )

    async def started() -> bool:
        response = await dispatch.client.get(f"/v1/invitations/{inv_s['id']}", headers=auth)
        return response.json()["started_at"] is not None

    await wait_until(started, message="the response was recorded on the invitation")

    dispatch.clock.advance(timedelta(days=2, minutes=1))
    dispatch.wake()
    reminder = await smtp.wait_for(
        lambda m: recipient(m) == rae and m["Message-ID"] != original["Message-ID"]
    )
    assert reminder["Subject"] == "Reminder: Rae, how was your experience with us?"
    assert inv_r["short_url"] in text_of(reminder)
    reminded = (await dispatch.events(inv_r["id"], "InvitationSent", count=2))[1]
    assert reminded["reminder"] == 1 and reminded["message_id"] == reminder["Message-ID"]
    # The reminder, its email and its InvitationSent stay in the trace of the survey request.
    assert tracing.trace_id(str(reminder["traceparent"])) == REMINDED_TRACE
    [sent_reminder] = [
        v
        for v in dispatch.invitations.values()
        if isinstance(v, dict) and v["data"].get("invitation_id") == inv_r["id"] and v["data"].get("reminder")
    ]
    assert tracing.trace_id(sent_reminder["traceparent"]) == REMINDED_TRACE

    dispatch.clock.advance(timedelta(days=2))
    dispatch.wake()
    await smtp.wait_for_count(to(rae), 3)

    async def reminders_sent() -> Any:
        rows = (await dispatch.client.get(f"/v1/invitations/{inv_r['id']}/reminders", headers=auth)).json()
        return [(r["seq"], r["status"]) for r in rows] == [(1, "sent"), (2, "sent")]

    await wait_until(reminders_sent, message="both reminders recorded as sent")
    assert not [m for m in smtp.messages if recipient(m) == sam and m["Subject"].startswith("Reminder")]
    sam_reminders = (
        await dispatch.client.get(f"/v1/invitations/{inv_s['id']}/reminders", headers=auth)
    ).json()
    assert all(r["status"] == "cancelled" for r in sam_reminders)
    assert (await dispatch.client.get(f"/v1/invitations/{inv_r['id']}", headers=auth)).json()[
        "reminders_sent"
    ] == 2


async def test_rate_limit_per_channel_and_link_expiry(dispatch, workspace, auth):
    await put(dispatch, auth, "/v1/channels/sms", {"rate_per_minute": 2})
    numbers = [phone() for _ in range(4)]
    reqs = [request(workspace, contact_id=f"con-{n}", channel="sms", phone=n) for n in numbers]
    for req in reqs:
        await dispatch.publish(req)
    await wait_until(lambda: sum(len(dispatch.provider.sent_to(n)) for n in numbers) == 2, message="two sent")
    await asyncio.sleep(0.5)  # the sender keeps polling; no third message may go out within the minute
    assert sum(len(dispatch.provider.sent_to(n)) for n in numbers) == 2

    dispatch.clock.advance(timedelta(seconds=61))
    dispatch.wake()
    await wait_until(lambda: sum(len(dispatch.provider.sent_to(n)) for n in numbers) == 4, message="all sent")

    invitation = await dispatch.invitation(auth, reqs[0].request_id, status="sent")
    dispatch.clock.advance(timedelta(days=31))
    expired = await dispatch.client.get(urlsplit(invitation["short_url"]).path)
    assert expired.status_code == 410


async def test_a_sender_stopped_mid_send_finishes_and_records_it(dispatch, workspace, auth):
    """Shutdown drains the sender: a message in flight when the process stops is recorded as sent,
    not left claimed until the claim times out and it goes out again."""
    number = phone()
    req = request(
        workspace,
        contact_id="con-drain",
        channel="sms",
        phone=number,
        send_at=datetime.now(UTC) + timedelta(minutes=1),
    )
    await dispatch.publish(req)
    await dispatch.invitation(auth, req.request_id, status="scheduled")

    # A second process that only sends, its clock a minute ahead: it sends the message, not dispatch's own sender.
    app = create_app(dispatch.runtime.settings.model_copy(update={"role": "sender", "worker_nice": 0}))
    dispatch.provider.answer_after_s = 1.0
    try:
        async with running(app):
            runtime: DispatchRuntime = app.state.runtime
            runtime.deps.clock.advance(timedelta(minutes=1, seconds=1))
            runtime.deps.sender.wake()
            await wait_until(lambda: dispatch.provider.sent_to(number), message="the message handed over")
            stopping = time.monotonic()
        assert time.monotonic() - stopping >= 0.5, "it stopped after the provider answered, not before"
    finally:
        dispatch.provider.answer_after_s = 0.0

    response = await dispatch.client.get(
        "/v1/invitations", params={"request_id": req.request_id}, headers=auth
    )
    [invitation] = response.json()
    assert (invitation["status"], invitation["attempts"]) == ("sent", 1)
    assert invitation["provider_message_id"] == dispatch.provider.sent_to(number)[0].sid


async def test_an_smtp_outage_in_the_middle_of_a_batch_loses_and_duplicates_nothing(
    dispatch, workspace, auth, monkeypatch
):
    class Flaky:
        def __init__(self) -> None:
            self.seen: list[EmailMessage] = []
            self.refused = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            import email
            import email.policy

            message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            # The server goes away for a while in the middle: every other message is refused.
            if len(self.seen) + self.refused in range(2, 8) and self.refused < 3:
                self.refused += 1
                return "451 4.3.0 Temporary local problem, try again later"
            self.seen.append(message)  # type: ignore[arg-type]
            return "250 OK"

    flaky = Flaky()
    controller = Controller(flaky, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        monkeypatch.setattr(dispatch.runtime.settings, "smtp_port", controller.port)
        addresses = [f"batch{n}@{workspace}.test" for n in range(8)]
        for n, address in enumerate(addresses):
            await dispatch.publish(request(workspace, contact_id=f"con-b{n}", email=address))

        async def all_sent() -> list[dict[str, Any]] | None:
            rows = (await dispatch.client.get("/v1/invitations", headers=auth)).json()
            return rows if len(rows) == 8 and {r["status"] for r in rows} == {"sent"} else None

        rows = await wait_until(all_sent, message="every invitation sent")
    finally:
        controller.stop()
    assert flaky.refused == 3
    assert sorted(recipient(m) for m in flaky.seen) == sorted(addresses)  # each exactly once
    assert sorted(r["attempts"] for r in rows) == [1] * 5 + [2] * 3


# --- provider callbacks and the funnel -----------------------------------------------------------


def sendgrid_request(
    events: list[dict[str, Any]], *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(events).encode()
    ts = str(timestamp or int(time.time()))
    signature = SENDGRID_KEY.sign(ts.encode() + payload, ec.ECDSA(hashes.SHA256()))
    return payload, {
        "content-type": "application/json",
        providers.SENDGRID_SIGNATURE: base64.b64encode(signature).decode(),
        providers.SENDGRID_TIMESTAMP: ts,
    }


def mailgun_body(event: dict[str, Any], *, key: str = MAILGUN_KEY) -> dict[str, Any]:
    ts, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": ts, "token": token, "signature": signature}, "event-data": event}


async def test_provider_callbacks_drive_the_funnel(dispatch, workspace, auth, smtp):
    survey = f"svy-{workspace}"
    emails = [f"f{n}@{workspace}.test" for n in range(3)]
    reqs = [
        request(workspace, contact_id=f"con-{n}", email=e, survey_id=survey) for n, e in enumerate(emails)
    ]
    sms_req = request(workspace, contact_id="con-sms", channel="sms", phone=phone(), survey_id=survey)
    for req in (*reqs, sms_req):
        await dispatch.publish(req)
    invs = [await dispatch.invitation(auth, r.request_id, status="sent") for r in (*reqs, sms_req)]
    client = dispatch.client

    # SendGrid: delivered + open for the first, a click for the second (smtp-id is our Message-ID).
    events = [
        {
            "event": "delivered",
            "sg_event_id": f"d-{workspace}",
            "smtp-id": invs[0]["message_id"],
            "timestamp": int(time.time()),
        },
        {"event": "open", "sg_event_id": f"o-{workspace}", "smtp-id": invs[0]["message_id"]},
        {
            "event": "click",
            "sg_event_id": f"c-{workspace}",
            "smtp-id": invs[1]["message_id"],
            "url": "https://x",
        },
        {"event": "processed", "sg_event_id": f"p-{workspace}", "smtp-id": invs[1]["message_id"]},
    ]
    payload, headers = sendgrid_request(events)
    ok = await client.post("/v1/providers/sendgrid/events", content=payload, headers=headers)
    assert ok.status_code == 200 and ok.json() == {"applied": 3, "duplicate": 0, "unknown": 0}
    again = await client.post("/v1/providers/sendgrid/events", content=payload, headers=headers)
    assert again.json() == {"applied": 0, "duplicate": 3, "unknown": 0}
    forged = dict(headers, **{providers.SENDGRID_SIGNATURE: base64.b64encode(b"0" * 70).decode()})
    refused = await client.post("/v1/providers/sendgrid/events", content=payload, headers=forged)
    assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == providers.SENDGRID_SIGNATURE
    tampered = await client.post(
        "/v1/providers/sendgrid/events", content=payload.replace(b"open", b"spam"), headers=headers
    )
    assert tampered.status_code == 401
    stale_payload, stale = sendgrid_request(events, timestamp=int(time.time()) - 3600)
    assert (
        await client.post("/v1/providers/sendgrid/events", content=stale_payload, headers=stale)
    ).status_code == 401

    # Mailgun: the third email was delivered; a forged and a replayed callback change nothing.
    mg_event = {
        "event": "delivered",
        "id": f"mg-{workspace}",
        "timestamp": time.time(),
        "message": {"headers": {"message-id": invs[2]["message_id"].strip("<>")}},
    }
    body = mailgun_body(mg_event)
    assert (await client.post("/v1/providers/mailgun/events", json=body)).json()["applied"] == 1
    assert (await client.post("/v1/providers/mailgun/events", json=body)).json()["duplicate"] == 1
    forged_mg = mailgun_body(dict(mg_event, event="complained"), key="not-the-key")
    assert (await client.post("/v1/providers/mailgun/events", json=forged_mg)).status_code == 401

    # Twilio: the SMS was delivered; the signature covers the full public URL and sorted params.
    url = f"{PUBLIC_URL}/v1/providers/twilio/{workspace}/status"
    params = {
        "MessageSid": invs[3]["provider_message_id"],
        "MessageStatus": "delivered",
        "AccountSid": dispatch.provider.account_sid,
        "To": sms_req.recipient.phone,  # type: ignore[union-attr]
    }
    signature = providers.twilio_signature(dispatch.provider.auth_token, url, params.items())
    path = urlsplit(url).path
    good = await client.post(path, data=params, headers={providers.TWILIO_SIGNATURE: signature})
    assert good.status_code == 200 and good.json()["applied"] == 1
    bad = await client.post(
        path, data=dict(params, MessageStatus="failed"), headers={providers.TWILIO_SIGNATURE: signature}
    )
    assert bad.status_code == 401

    # The responses topic tells how far customers got.
    for inv, completed in ((invs[1], True), (invs[3], False)):
        common = {
            "workspace_id": workspace,
            "response_id": new_id(),
            "invitation_id": inv["id"],
            "request_id": inv["request_id"],
            "contact_id": inv["contact_id"],
            "survey_id": survey,
            "survey_version": 1,
            "kind": "transactional",
            "channel": inv["channel"],
        }
        await dispatch.publish(ResponseStarted(**common, started_at=datetime.now(UTC)))
        if completed:
            await dispatch.publish(
                ResponseCompleted(
                    **common, answers=(), consent_to_contact=False, completed_at=datetime.now(UTC)
                )
            )

    async def funnel() -> Any:
        response = await client.get("/v1/funnel", params={"survey_id": survey}, headers=auth)
        assert response.status_code == 200, response.text
        [row] = response.json()
        return row if row["counts"]["started"] == 2 and row["counts"]["completed"] == 1 else None

    row = await wait_until(funnel, message="funnel with responses")
    assert row["counts"] == {
        "invited": 4,
        "delivered": 4,
        "opened": 3,
        "clicked": 2,
        "started": 2,
        "completed": 1,
    }
    assert row["rates"]["completed"] == 0.5
    by_channel = (
        await client.get("/v1/funnel", params={"survey_id": survey, "group_by": "channel"}, headers=auth)
    ).json()
    assert {r["group"]: r["counts"]["invited"] for r in by_channel} == {"email": 3, "sms": 1}
    sms_only = (
        await client.get("/v1/funnel", params={"survey_id": survey, "channel": "sms"}, headers=auth)
    ).json()
    assert sms_only[0]["counts"]["started"] == 1
    assert (await dispatch.events(invs[0]["id"], "InvitationDelivered"))[0]["channel"] == "email"
    assert await dispatch.events(invs[1]["id"], "InvitationClicked")
    bad_filter = await client.get("/v1/funnel", params={"group_by": "colour"}, headers=auth)
    assert bad_filter.status_code == 422 and bad_filter.json()["errors"][0]["field"] == "group_by"


async def test_a_hard_bounce_callback_marks_the_address_invalid_and_falls_back(
    dispatch, workspace, auth, smtp
):
    number = phone()
    bouncy = f"bouncy@{workspace}.test"
    req = request(workspace, contact_id="con-hb", email=bouncy, phone=number, fallback_channels=("sms",))
    await dispatch.publish(req)
    invitation = await dispatch.invitation(auth, req.request_id, status="sent")
    payload, headers = sendgrid_request(
        [
            {
                "event": "bounce",
                "type": "bounce",
                "sg_event_id": f"b-{workspace}",
                "smtp-id": invitation["message_id"],
                "reason": "550 no such user",
            }
        ]
    )
    assert (
        await dispatch.client.post("/v1/providers/sendgrid/events", content=payload, headers=headers)
    ).status_code == 200
    fell_back = await dispatch.invitation(auth, req.request_id, status="sent", channel="sms")
    assert fell_back["bounced_at"] and len(dispatch.provider.sent_to(number)) == 1
    [bounced] = await dispatch.events(invitation["id"], "InvitationBounced")
    assert bounced["hard"] and "550" in bounced["detail"]

    later = request(workspace, contact_id="con-hb", email=bouncy)
    await dispatch.publish(later)
    assert (
        "marked invalid" in (await dispatch.invitation(auth, later.request_id, status="failed"))["last_error"]
    )


# --- notifications and outgoing webhooks ----------------------------------------------------------


async def test_notifications_to_staff_by_email_and_chat(dispatch, workspace, auth, smtp):
    staff = f"lead@{workspace}.test"
    await dispatch.publish(notification(workspace, "email", staff, "New task", "Ada gave 3."))
    message = await smtp.wait_for(to(staff))
    assert message["Subject"] == "New task" and text_of(message) == "Ada gave 3.\n"

    hook = f"slack-{workspace}"
    await dispatch.publish(
        notification(
            workspace, "chat", dispatch.provider.hook_url(hook), "SLA breached", "Task T-1 is overdue."
        )
    )
    await wait_until(lambda: dispatch.provider.hooks_for(hook), message="chat message posted")
    payload = json.loads(dispatch.provider.hooks_for(hook)[0].body)
    assert (
        payload["text"] == "*SLA breached*\nTask T-1 is overdue." and payload["blocks"][0]["type"] == "header"
    )


async def test_signed_outgoing_webhooks_retry_log_disable_and_replay(dispatch, workspace, auth):
    client, provider = dispatch.client, dispatch.provider
    name = f"crm-{workspace}"
    created = await client.post(
        "/v1/webhooks",
        json={"url": provider.hook_url(name), "event_types": ["scoring.low_score"]},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    subscription = created.json()
    secret = subscription["secret"]
    assert (
        secret.startswith("whsec_")
        and (await client.get(f"/v1/webhooks/{subscription['id']}", headers=auth)).json()["secret"] is None
    )

    def notify(event_type: str) -> NotificationRequested:
        return notification(workspace, "webhook", event_type, "s", "b")

    first = notify("scoring.low_score")
    await dispatch.publish(notify("scoring.target_status_changed"))  # not subscribed
    await dispatch.publish(first)
    await wait_until(lambda: provider.hooks_for(name), message="webhook delivered")
    [hook] = provider.hooks_for(name)
    assert standard_webhooks.verify(secret, hook.headers, hook.body) == f"msg_{first.notification_id}"
    assert json.loads(hook.body)["data"]["notification_id"] == first.notification_id

    # The endpoint breaks: each delivery is attempted twice, logged, and after two failed
    # deliveries the subscription is disabled.
    provider.hook_status[name] = 500
    for _ in range(2):
        await dispatch.publish(notify("scoring.low_score"))

    async def disabled() -> Any:
        row = (await client.get(f"/v1/webhooks/{subscription['id']}", headers=auth)).json()
        return row if not row["enabled"] else None

    row = await wait_until(disabled, message="subscription disabled")
    assert "last 2 deliveries failed" in row["disabled_reason"]
    log = (await client.get(f"/v1/webhooks/{subscription['id']}/deliveries", headers=auth)).json()
    failed = [d for d in log if d["status"] == "failed"]
    assert len(failed) == 2 and all([a["status_code"] for a in d["log"]] == [500, 500] for d in failed)
    assert len(provider.hooks_for(name)) == 1 + 4

    # Replay needs the subscription enabled; then it goes out with the same webhook-id.
    target = failed[0]
    replay = f"/v1/webhooks/{subscription['id']}/deliveries/{target['id']}/replay"
    assert (await client.post(replay, headers=auth)).status_code == 409
    provider.hook_status[name] = 204
    assert (
        await client.patch(f"/v1/webhooks/{subscription['id']}", json={"enabled": True}, headers=auth)
    ).json()["enabled"]
    assert (await client.post(replay, headers=auth)).status_code == 202
    await wait_until(lambda: len(provider.hooks_for(name)) == 6, message="replayed")
    assert provider.hooks_for(name)[-1].headers["webhook-id"] == target["msg_id"]
    assert (
        await client.post(f"/v1/webhooks/{subscription['id']}/deliveries/{new_id()}/replay", headers=auth)
    ).status_code == 404
    bad = await client.post("/v1/webhooks", json={"url": "not a url"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "url"


# --- templates and configuration --------------------------------------------------------------


async def test_templates_per_survey_channel_and_locale_with_preview(dispatch, workspace, auth, smtp):
    client = dispatch.client
    sms_template = {
        "name": "SMS de",
        "channel": "sms",
        "locale": "de",
        "text": "Hallo {{ first_name }}! Wie war {{ product or 'es' }}? {{ short_url }}",
    }
    created = await client.post("/v1/templates", json=sms_template, headers=auth)
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]
    assert (await client.post("/v1/templates", json=sms_template, headers=auth)).status_code == 409

    number = phone()
    req = SurveyRequested(
        workspace_id=workspace,
        request_id=new_id(),
        contact_id="con-t",
        survey_id="svy-any",
        channel="sms",
        recipient=Recipient(phone=number, locale="de-AT"),
        context={"product": "Acme Cloud"},
    )
    await dispatch.publish(req)
    invitation = await dispatch.invitation(auth, req.request_id, status="sent")
    [sms] = provider_messages = dispatch.provider.sent_to(number)
    assert provider_messages and sms.body == f"Hallo! Wie war Acme Cloud? {invitation['short_url']}"
    assert invitation["template_id"] == template_id and invitation["locale"] == "de-AT"

    email_template = {
        "name": "Email for one survey",
        "survey_id": "svy-special",
        "channel": "email",
        "subject": "{{ first_name }}, a question about {{ product }}",
        "text": "{{ greeting }}\n{{ survey_url }}\n",
        "html": '<p>{{ greeting }} <a href="{{ survey_url }}">Go</a></p>',
    }
    preview = await client.post(
        "/v1/templates/preview",
        json={"template": email_template, "recipient": {"name": ""}, "context": {"product": "<Acme>"}},
        headers=auth,
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["subject"] == "A question about <Acme>"  # no name: no dangling comma
    assert "Hi, <a href" in shown["html"] and "&lt;Acme&gt;" not in shown["subject"]
    assert "Unsubscribe" in shown["html"] and shown["text"].startswith("Hi,\n")

    sandboxed = await client.post(
        "/v1/templates/preview",
        json={"template": dict(sms_template, text="{{ ''.__class__.__mro__ }}{{ short_url }}")},
        headers=auth,
    )
    assert sandboxed.status_code == 200 and "class" not in sandboxed.json()["text"]
    for body, field in (
        (dict(sms_template, text="{% if %}"), "text"),
        (dict(sms_template, locale="de", survey_id="x", subject="Hi"), "subject"),
        (dict(email_template, embed={"low": 5, "high": 1}), "embed"),
        (dict(sms_template, channel="fax"), "channel"),
    ):
        bad = await client.post("/v1/templates", json=body, headers=auth)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith(field), (body, bad.text)
    assert (await client.get(f"/v1/templates/{template_id}", headers=auth)).json()["locale"] == "de"
    assert (await client.get(f"/v1/templates/{new_id()}", headers=auth)).status_code == 404
    assert (await client.delete(f"/v1/templates/{template_id}", headers=auth)).status_code == 204


async def test_channel_configuration_api(dispatch, workspace, auth):
    client = dispatch.client
    channels = {c["channel"]: c for c in (await client.get("/v1/channels", headers=auth)).json()}
    assert channels["sms"]["configured"] and not channels["chat"]["configured"]
    saved = await put(
        dispatch,
        auth,
        "/v1/channels/sms",
        {"account_sid": "AC123", "auth_token": "secret-token-1234", "from": "+1 415 555 0100"},
    )
    assert saved["config"]["auth_token"] == "••••1234" and saved["config"]["from"] == "+14155550100"
    for path, body, field in (
        ("/v1/channels/sms", {"from": "not-a-number"}, "from"),
        ("/v1/channels/sms", {"webhook_url": "https://x.test"}, "webhook_url"),
        ("/v1/channels/email", {"mail_from": "nobody"}, "mail_from"),
        ("/v1/channels/pigeon", {}, "channel"),
        ("/v1/settings", {"quiet_hours": {"start": "25:00"}}, "quiet_hours.start"),
        (
            "/v1/settings",
            {"quiet_hours": {"default_timezone": "Mars/Olympus"}},
            "quiet_hours.default_timezone",
        ),
        ("/v1/settings", {"branding": {"colour": "blue"}}, "branding.colour"),
        ("/v1/settings", {"reminders": {"count": 9}}, "reminders.count"),
    ):
        bad = await client.put(path, json=body, headers=auth)
        assert bad.status_code == 422, (path, body, bad.text)
        assert bad.json()["errors"][0]["field"] == field, bad.json()
    assert (await client.delete("/v1/channels/sms", headers=auth)).status_code == 204
    assert (await client.get("/v1/channels", headers=auth)).json()[1]["config"] == {}
    assert (await client.get("/v1/settings")).status_code == 401


class OneRefused:
    """An SMTP server that refuses one mailbox and keeps every envelope it accepted."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, list[str], list[str], bytes]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted.append(
            (envelope.mail_from, envelope.rcpt_tos, envelope.mail_options, envelope.original_content)
        )
        return "250 OK"


async def test_a_refused_recipient_is_a_hard_bounce_and_the_next_message_goes_through():
    """The pool's hand-off (MAIL with SIZE, RCPT, DATA): a refused mailbox is a permanent hard bounce, and
    the next message is delivered as it was given (a line starting with a dot included)."""
    server = OneRefused()
    controller = Controller(server, hostname="127.0.0.1", port=free_port())
    controller.start()
    pool = SmtpPool(
        DispatchSettings(  # type: ignore[call-arg]
            database_url="postgresql://unused/x", smtp_port=controller.port, smtp_pool_size=1
        )
    )
    message = b"Subject: hi\r\nTo: x\r\n\r\n.line that starts with a dot\r\nend\r\n"
    try:
        with pytest.raises(SendError) as refused:
            await pool.send_raw(message, sender="surveys@example.test", to="gone@example.test")
        assert refused.value.permanent and refused.value.hard_bounce and "550" in str(refused.value)
        await pool.send_raw(message, sender="surveys@example.test", to="here@example.test")
    finally:
        await pool.close()
        controller.stop()
    [(sender, to, options, content)] = server.accepted
    assert sender == "surveys@example.test" and to == ["here@example.test"]
    assert f"SIZE={len(message)}" in options
    assert content == message
