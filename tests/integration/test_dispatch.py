"""The dispatch service against real PostgreSQL, the real broker and a real SMTP server.

One app runs for the whole module (a consumer group join takes seconds); every test works
in its own workspace, so tests never see each other's invitations.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select, update

from closeloop.infra import free_port
from closeloop.mailcatcher import MailCatcher, body_of
from services.dispatch.app import create_app
from services.dispatch.deps import DispatchRuntime
from services.dispatch.handlers import survey_requests
from services.dispatch.models import Invitation, erased_contacts
from services.dispatch.settings import DispatchSettings
from shared.erasure import is_erased
from shared.events import (
    INVITATIONS,
    ContactErased,
    EventData,
    Recipient,
    SurveyRequested,
    new_id,
    utcnow,
)
from shared.security import issue_api_key
from shared.survey_links import read_link_token
from tests.conftest import SECRET_KEY
from tests.support.stack import TopicReader, publish, running, settings_from, wait_until

pytestmark = pytest.mark.integration

SURVEY_BASE_URL = "https://surveys.test"
PUBLIC_URL = "https://go.test"
SHORT_LINK = re.compile(re.escape(PUBLIC_URL) + r"/l/([A-Za-z0-9_-]+)")


@dataclass
class Dispatch:
    client: httpx.AsyncClient
    runtime: DispatchRuntime
    producer: AIOKafkaProducer
    invitations: TopicReader

    async def publish(self, data: EventData, *, event_id: str | None = None) -> str:
        """Publish ``data`` the way another service's outbox relay would; return the event id."""
        return await publish(self.producer, data, event_id=event_id)

    async def invitations_of(self, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/invitations", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return response.json()

    async def invitation_when(self, auth: dict[str, str], request_id: str, *, status: str) -> dict[str, Any]:
        """Return the invitation of ``request_id`` once it has ``status``."""

        async def check() -> dict[str, Any] | None:
            found = [i for i in await self.invitations_of(auth) if i["request_id"] == request_id]
            return found[0] if found and found[0]["status"] == status else None

        return await wait_until(check, message=f"invitation for {request_id} {status}")

    async def event_about(self, invitation_id: str, type_name: str) -> dict[str, Any]:
        [event] = await self.invitations.wait_for(
            lambda v: v["type"] == type_name and v["data"]["invitation_id"] == invitation_id
        )
        return event["data"]


@pytest.fixture(scope="module")
async def dispatch(stack_env: dict[str, str], producer: AIOKafkaProducer) -> AsyncIterator[Dispatch]:
    settings = settings_from(
        DispatchSettings,
        stack_env,
        survey_base_url=SURVEY_BASE_URL,
        public_url=PUBLIC_URL,  # type: ignore[call-arg]
        send_max_attempts=3,
        send_backoff_s=0.05,
        mail_from="Acme surveys <surveys@acme.test>",
    )
    app = create_app(settings)
    async with (
        running(app) as client,
        TopicReader(stack_env["KAFKA_BOOTSTRAP_SERVERS"], INVITATIONS) as invitations,
    ):
        runtime: DispatchRuntime = app.state.runtime
        assert runtime.consumer is not None
        await wait_until(runtime.consumer.assigned.is_set, message="dispatch consumer assigned")
        yield Dispatch(client, runtime, producer, invitations)


def request(
    workspace: str,
    *,
    contact_id: str = "con-1",
    email: str | None = None,
    name: str | None = None,
    recipient: bool = True,
    **fields: Any,
) -> SurveyRequested:
    return SurveyRequested(
        workspace_id=workspace,
        request_id=fields.pop("request_id", new_id()),
        contact_id=contact_id,
        survey_id=fields.pop("survey_id", "svy-csat"),
        recipient=Recipient(name=name, email=email, locale="en") if recipient else None,
        **fields,
    )


def to(address: str) -> Any:
    return lambda m: address in str(m["To"])


async def link_token(dispatch: Dispatch, message: EmailMessage) -> str:
    """Return the survey token behind the email's one short link (the email shows no other)."""
    text, html = body_of(message, "plain"), body_of(message, "html")
    [code] = set(SHORT_LINK.findall(text))
    assert set(SHORT_LINK.findall(html)) == {code}, "the HTML part links to the same survey"
    assert f"{SURVEY_BASE_URL}/s/" not in text + html, "the long survey link stays out of the email"
    followed = await dispatch.client.get(f"/l/{code}")
    assert followed.status_code == 302
    return str(followed.headers["location"]).removeprefix(f"{SURVEY_BASE_URL}/s/")


async def test_a_request_becomes_one_email_with_a_signed_survey_link(
    dispatch, workspace, auth, smtp: MailCatcher
):
    ada = f"ada@{workspace}.test"
    req = request(workspace, email=ada, name="Ada Lovelace")
    event_id = await dispatch.publish(req)
    await dispatch.publish(req, event_id=event_id)  # the broker redelivers it
    await dispatch.publish(req)  # the producer sent the same request twice
    # A later request on the same partition: once its mail is out, the duplicates were handled.
    later = request(workspace, email=f"later@{workspace}.test")
    await dispatch.publish(later)
    await dispatch.invitation_when(auth, later.request_id, status="sent")

    message = await smtp.wait_for(to(ada))
    assert [m for m in smtp.messages if ada in str(m["To"])] == [message]
    invitation = await dispatch.invitation_when(auth, req.request_id, status="sent")
    assert [i["request_id"] for i in await dispatch.invitations_of(auth)] == [
        later.request_id,
        req.request_id,
    ]

    assert message["Subject"] == "Ada, how was your experience with us?"
    assert message["From"] == "Acme surveys <surveys@acme.test>"
    assert message["Message-ID"] == invitation["message_id"]
    assert message["List-Unsubscribe"]
    assert message.get_content_type() == "multipart/alternative"
    assert body_of(message, "plain").startswith("Hi Ada,")
    assert "Hi Ada," in body_of(message, "html")

    token = await link_token(dispatch, message)
    assert invitation["survey_url"] == f"{SURVEY_BASE_URL}/s/{token}"
    assert invitation["short_url"] in body_of(message, "plain")
    link = read_link_token(SECRET_KEY, token)
    assert (link.workspace_id, link.invitation_id, link.request_id, link.survey_id, link.contact_id) == (
        workspace,
        invitation["id"],
        req.request_id,
        "svy-csat",
        "con-1",
    )
    assert (link.kind, link.channel, link.locale) == ("transactional", "email", "en")
    # Who was invited rides in the (encrypted) link, for the person who follows up on the answer.
    assert link.respondent == {"name": "Ada Lovelace", "email": ada, "locale": "en"}
    assert ada not in invitation["survey_url"] and "Ada" not in invitation["survey_url"]

    assert invitation["attempts"] == 1 and invitation["sent_at"] and invitation["last_error"] is None
    assert invitation["recipient_email"] == ada and invitation["recipient_name"] == "Ada Lovelace"
    sent = await dispatch.event_about(invitation["id"], "closeloop.InvitationSent.v1")
    assert sent["message_id"] == invitation["message_id"]
    created = await dispatch.event_about(invitation["id"], "closeloop.InvitationCreated.v1")
    assert created["request_id"] == req.request_id


async def test_a_retention_request_without_recipient_reaches_the_last_address(
    dispatch, workspace, auth, smtp
):
    ada = f"ada@{workspace}.test"
    await dispatch.publish(request(workspace, contact_id="con-2", email=ada, name="Ada"))
    await smtp.wait_for(to(ada))

    retention = request(
        workspace, contact_id="con-2", recipient=False, kind="retention", reason="followup:t-1"
    )
    await dispatch.publish(retention)

    message = await smtp.wait_for(lambda m: ada in str(m["To"]) and "solve" in str(m["Subject"]))
    assert message["Subject"] == "Ada, did we solve it for you?"
    invitation = await dispatch.invitation_when(auth, retention.request_id, status="sent")
    assert read_link_token(SECRET_KEY, await link_token(dispatch, message)).kind == "retention"
    assert invitation["recipient_email"] == ada and invitation["kind"] == "retention"


async def test_requests_that_cannot_be_delivered_fail_with_a_reason(dispatch, workspace, auth, smtp):
    no_email = request(workspace, contact_id="con-3", name="Nomail")
    never_invited = request(workspace, contact_id="con-4", recipient=False, kind="retention")
    sms = request(workspace, contact_id="con-5", channel="sms", email=f"sms@{workspace}.test")
    for req in (no_email, never_invited, sms):
        await dispatch.publish(req)

    for req, reason in (
        (no_email, "no email address"),
        (never_invited, "no email address"),
        (sms, "channel sms is not configured for this workspace"),
    ):
        invitation = await dispatch.invitation_when(auth, req.request_id, status="failed")
        assert reason in invitation["last_error"]
        failed = await dispatch.event_about(invitation["id"], "closeloop.InvitationFailed.v1")
        assert reason in failed["error"] and failed["request_id"] == req.request_id
    assert not [m for m in smtp.messages if workspace in str(m["To"])]


async def test_a_link_invitation_is_not_mailed_but_returned(dispatch, workspace, auth, smtp):
    req = request(workspace, contact_id="con-6", channel="link", email=f"link@{workspace}.test")
    await dispatch.publish(req)

    invitation = await dispatch.invitation_when(auth, req.request_id, status="sent")
    link = read_link_token(SECRET_KEY, invitation["survey_url"].removeprefix(f"{SURVEY_BASE_URL}/s/"))
    assert link.invitation_id == invitation["id"] and link.channel == "link"
    await dispatch.event_about(invitation["id"], "closeloop.InvitationSent.v1")
    assert not [m for m in smtp.messages if workspace in str(m["To"])]


async def test_when_smtp_is_down_the_invitation_fails_after_its_attempts(
    dispatch, workspace, auth, smtp, monkeypatch
):
    monkeypatch.setattr(dispatch.runtime.settings, "smtp_port", free_port())  # nobody listens there
    req = request(workspace, contact_id="con-7", email=f"down@{workspace}.test", name="Dee")
    await dispatch.publish(req)

    invitation = await dispatch.invitation_when(auth, req.request_id, status="failed")
    assert invitation["attempts"] == 3 and invitation["sent_at"] is None
    assert "connect" in invitation["last_error"].lower()
    failed = await dispatch.event_about(invitation["id"], "closeloop.InvitationFailed.v1")
    assert failed["error"].startswith("not sent after 3 attempt(s)")
    assert not [m for m in smtp.messages if workspace in str(m["To"])]


async def test_erasing_a_contact_blanks_its_recipients_and_cancels_unsent_invitations(
    dispatch, workspace, auth, smtp
):
    sent = request(workspace, contact_id="con-8", email=f"erase@{workspace}.test", name="Eve")
    later = request(
        workspace,
        contact_id="con-8",
        email=f"erase@{workspace}.test",
        name="Eve",
        send_at=utcnow() + timedelta(days=1),
    )
    await dispatch.publish(sent)
    await dispatch.publish(later)
    await dispatch.invitation_when(auth, sent.request_id, status="sent")
    await dispatch.invitation_when(auth, later.request_id, status="scheduled")

    await dispatch.publish(ContactErased(workspace_id=workspace, contact_id="con-8", erased_at=utcnow()))

    cancelled = await dispatch.invitation_when(auth, later.request_id, status="failed")
    assert "erased" in cancelled["last_error"]
    for invitation in await dispatch.invitations_of(auth, contact_id="con-8"):
        assert invitation["recipient_email"] is None and invitation["recipient_name"] is None


async def test_invitations_api_filters_validates_and_keeps_workspaces_apart(dispatch, workspace, auth):
    requests = [
        request(workspace, contact_id=f"con-{n}", channel="link", survey_id=survey)
        for n, survey in ((1, "svy-a"), (2, "svy-b"), (1, "svy-b"))
    ]
    for req in requests:
        await dispatch.publish(req)
        await dispatch.invitation_when(auth, req.request_id, status="sent")  # created one after the other

    everything = await dispatch.invitations_of(auth)
    assert [i["request_id"] for i in everything] == [r.request_id for r in reversed(requests)]
    assert [i["survey_id"] for i in await dispatch.invitations_of(auth, contact_id="con-1")] == [
        "svy-b",
        "svy-a",
    ]
    assert [i["contact_id"] for i in await dispatch.invitations_of(auth, survey_id="svy-b")] == [
        "con-1",
        "con-2",
    ]
    assert len(await dispatch.invitations_of(auth, limit=2)) == 2
    assert await dispatch.invitations_of(auth, status="failed") == []
    one = everything[0]
    read = await dispatch.client.get(f"/v1/invitations/{one['id']}", headers=auth)
    assert read.status_code == 200 and read.json() == one

    client = dispatch.client
    for params, field in (({"limit": 201}, "limit"), ({"status": "lost"}, "status")):
        bad = await client.get("/v1/invitations", params=params, headers=auth)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field
    malformed = await client.get("/v1/invitations/not-a-uuid", headers=auth)
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["field"] == "invitation_id"
    unknown = await client.get(f"/v1/invitations/{new_id()}", headers=auth)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/invitations")).status_code == 401

    other = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, 'ws-other-' + workspace[3:])}"}
    assert (await client.get(f"/v1/invitations/{one['id']}", headers=other)).status_code == 404
    assert await dispatch.invitations_of(other) == []


async def test_a_claim_left_by_a_dead_sender_is_taken_over_and_counted(dispatch, workspace, auth, smtp):
    """A sender that died mid-send leaves ``sending`` behind; it is sent again, within the attempt budget."""
    resumed = request(
        workspace,
        contact_id="con-9",
        email=f"resume@{workspace}.test",
        name="Rae",
        send_at=utcnow() + timedelta(days=1),
    )
    exhausted = request(
        workspace, contact_id="con-10", email=f"spent@{workspace}.test", send_at=utcnow() + timedelta(days=1)
    )
    for req in (resumed, exhausted):
        await dispatch.publish(req)
        await dispatch.invitation_when(auth, req.request_id, status="scheduled")

    stale = utcnow() - timedelta(hours=1)
    async with dispatch.runtime.db.unit_of_work() as session:  # what a crash mid-send leaves behind
        for req, attempts in ((resumed, 1), (exhausted, 3)):
            await session.execute(
                update(Invitation)
                .where(Invitation.workspace_id == workspace, Invitation.request_id == req.request_id)
                .values(
                    status="sending",
                    claimed_at=stale,
                    attempts=attempts,
                    send_at=stale,
                    next_attempt_at=stale,
                )
            )

    await smtp.wait_for(to(f"resume@{workspace}.test"))
    invitation = await dispatch.invitation_when(auth, resumed.request_id, status="sent")
    assert invitation["attempts"] == 2
    given_up = await dispatch.invitation_when(auth, exhausted.request_id, status="failed")
    assert "never finished" in given_up["last_error"] and given_up["attempts"] == 3
    assert not [m for m in smtp.messages if f"spent@{workspace}.test" in str(m["To"])]


async def test_a_burst_of_requests_is_sent_in_a_few_batches(dispatch, workspace, auth, smtp, monkeypatch):
    """Woken right after a pass that sent something, the sender lingers (``send_linger_ms``, here a
    second) so that a burst gathers into one batch: one claim and one record for many messages."""
    monkeypatch.setattr(dispatch.runtime.deps.sender, "linger_s", 1.0)
    first = request(workspace, contact_id="con-first", email=f"first@{workspace}.test")
    await dispatch.publish(first)
    await dispatch.invitation_when(auth, first.request_id, status="sent")

    burst = [request(workspace, contact_id=f"con-b{n}", email=f"b{n}@{workspace}.test") for n in range(10)]
    for req in burst:
        await dispatch.publish(req)

    async def all_sent() -> bool:
        sent = await dispatch.invitations_of(auth, status="sent")
        return len({i["request_id"] for i in sent} & {r.request_id for r in burst}) == len(burst)

    await wait_until(all_sent, message="every invitation of the burst sent")
    async with dispatch.runtime.db.unit_of_work() as session:
        claims = set(
            await session.scalars(
                select(Invitation.claimed_at).where(
                    Invitation.workspace_id == workspace, Invitation.contact_id.like("con-b%")
                )
            )
        )
    # The first request of the burst may go on its own (the sender found nothing to do in between);
    # the rest wait for each other.
    assert len(claims) <= 3, f"{len(burst)} invitations in {len(claims)} passes"


async def test_a_batch_of_requests_without_recipients_reaches_each_contacts_last_address(dispatch, workspace):
    """The batch's requests without a recipient find each contact's most recent address in one query:
    the newer of two earlier invitations, per contact; a contact never invited has none."""
    runtime = dispatch.runtime
    later = utcnow() + timedelta(days=1)
    for contact, address in (("con-last-a", "old-a"), ("con-last-b", "only-b"), ("con-last-a", "new-a")):
        async with runtime.db.unit_of_work() as session:
            earlier = request(
                workspace, contact_id=contact, email=f"{address}@{workspace}.test", send_at=later
            )
            await survey_requests.request_surveys(
                session, runtime.outbox, runtime.settings, requests=[(earlier, None)], now=utcnow()
            )
    asks = [
        request(workspace, contact_id=contact, recipient=False, kind="retention", send_at=later)
        for contact in ("con-last-a", "con-last-b", "con-last-none")
    ]
    async with runtime.db.unit_of_work() as session:
        rows = await survey_requests.request_surveys(
            session, runtime.outbox, runtime.settings, requests=[(a, None) for a in asks], now=utcnow()
        )
    assert [r.recipient_email for r in rows] == [f"new-a@{workspace}.test", f"only-b@{workspace}.test", None]
    assert [r.status for r in rows] == ["scheduled", "scheduled", "failed"]


async def test_a_batch_of_requests_becomes_one_invitation_per_request(dispatch, workspace, auth):
    """The consumer hands a batch's requests over together (one query of each kind, one insert): the
    same request twice in a batch, or again later, still makes one invitation, and a request for a
    contact erased before it arrived keeps nothing about them."""
    await dispatch.publish(ContactErased(workspace_id=workspace, contact_id="con-gone", erased_at=utcnow()))

    async def erased() -> bool:
        async with dispatch.runtime.db.unit_of_work() as session:
            return await is_erased(session, erased_contacts, workspace_id=workspace, contact_id="con-gone")

    await wait_until(erased, message="the contact erased")
    first = request(
        workspace,
        contact_id="con-batch",
        email=f"batch@{workspace}.test",
        send_at=utcnow() + timedelta(days=1),
    )
    gone = request(workspace, contact_id="con-gone", email=f"gone@{workspace}.test", name="Gone")
    other = request(
        workspace,
        contact_id="con-batch2",
        email=f"batch2@{workspace}.test",
        send_at=utcnow() + timedelta(days=1),
    )
    runtime = dispatch.runtime
    async with runtime.db.unit_of_work() as session:
        rows = await survey_requests.request_surveys(
            session,
            runtime.outbox,
            runtime.settings,
            requests=[(first, None), (gone, None), (first, None), (other, None)],
            now=utcnow(),
        )
    assert [r.request_id for r in rows] == [first.request_id, gone.request_id, other.request_id]
    by_request = {r.request_id: r for r in rows}
    assert by_request[first.request_id].status == "scheduled"
    assert by_request[first.request_id].message_id  # an email's Message-ID, kept for every resend
    assert by_request[gone.request_id].status == "failed"
    assert (
        by_request[gone.request_id].recipient_email is None and by_request[gone.request_id].survey_url == ""
    )
    assert by_request[other.request_id].message_id != by_request[first.request_id].message_id
    async with runtime.db.unit_of_work() as session:
        again = await survey_requests.request_surveys(
            session, runtime.outbox, runtime.settings, requests=[(first, None)], now=utcnow()
        )
        count = len(
            (
                await session.scalars(
                    select(Invitation).where(
                        Invitation.workspace_id == workspace, Invitation.request_id == first.request_id
                    )
                )
            ).all()
        )
    assert again == [] and count == 1
    mine = {first.request_id, gone.request_id, other.request_id}
    listed = [i["request_id"] for i in await dispatch.invitations_of(auth) if i["request_id"] in mine]
    assert listed == [other.request_id, gone.request_id, first.request_id]  # newest first, as they came
    ids = {r.id for r in rows}
    await dispatch.invitations.wait_for(
        lambda v: v["type"] == "closeloop.InvitationCreated.v1" and v["data"]["invitation_id"] in ids, count=3
    )
    failed = await dispatch.event_about(by_request[gone.request_id].id, "closeloop.InvitationFailed.v1")
    assert "erased" in failed["error"]
