"""Personal data in dispatch: erasure reaches every copy, and errors and logs name no address.

After ``ContactErased``, no table of the ``dispatch`` schema holds the contact's email address, name,
phone number or the free text that came with their requests — searched column by column through
``information_schema`` — and their short links answer "no longer available".
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from closeloop.infra import free_port
from services.dispatch import providers
from services.dispatch.handlers.erasure import erase_contact
from services.dispatch.models import Invitation, Notification, outbox
from shared.events import (
    ContactErased,
    InvitationFailed,
    Recipient,
    SurveyRequested,
    new_id,
)
from shared.outbox import Outbox
from tests.support.dispatch import Dispatch, notification, running_dispatch
from tests.support.stack import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def dispatch(stack_env: dict[str, str], producer: AIOKafkaProducer) -> AsyncIterator[Dispatch]:
    async with running_dispatch(stack_env, producer) as app:
        yield app


async def search_dispatch(session: AsyncSession, needles: list[str]) -> list[str]:
    """Return every ``table.column`` of the dispatch schema whose text holds one of ``needles``."""
    columns = (
        await session.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'dispatch' "
                "AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY') ORDER BY 1, 2"
            )
        )
    ).all()
    assert {"invitations", "reminders", "notifications", "webhook_deliveries", "outbox"} <= {
        t for t, _ in columns
    }
    found = []
    for table, column in columns:
        hits = await session.scalar(
            text(f'SELECT count(*) FROM dispatch."{table}" WHERE "{column}"::text ILIKE ANY(:patterns)'),
            {"patterns": [f"%{n}%" for n in needles]},
        )
        if hits:
            found.append(f"{table}.{column}")
    return found


def person(workspace: str) -> dict[str, str]:
    suffix = secrets.token_hex(3)
    return {
        "name": f"Evelyn Erasmus{suffix}",
        "email": f"evelyn.{suffix}@{workspace}.test",
        "phone": "+1 415 555 " + str(secrets.randbelow(10_000)).zfill(4),
        "address": f"{suffix} Erasure Lane, Springfield",
    }


def needles(who: dict[str, str]) -> list[str]:
    return [who["name"], who["email"], who["phone"], who["phone"].replace(" ", ""), who["address"]]


async def test_erasure_reaches_every_copy_and_kills_the_links(dispatch, workspace, auth, smtp):
    client = dispatch.client
    who = person(workspace)
    recipient = Recipient(name=who["name"], email=who["email"], phone=who["phone"], locale="en")
    assert (
        await client.put("/v1/settings", json={"reminders": {"count": 1, "interval_days": 1}}, headers=auth)
    ).status_code == 200
    hook = f"crm-{workspace}"
    created = await client.post("/v1/webhooks", json={"url": dispatch.provider.hook_url(hook)}, headers=auth)
    assert created.status_code == 201, created.text

    def req(**fields: Any) -> SurveyRequested:
        return SurveyRequested(
            workspace_id=workspace,
            request_id=new_id(),
            contact_id="con-eve",
            survey_id="svy-1",
            recipient=recipient,
            context={"address": who["address"], "product": "Acme Cloud"},
            **fields,
        )

    by_sms, by_email, tomorrow = req(channel="sms"), req(), req(send_at=datetime.now(UTC) + timedelta(days=1))
    for r in (by_sms, by_email, tomorrow):
        await dispatch.publish(r)
    texted = await dispatch.invitation(auth, by_sms.request_id, status="sent")
    mailed = await dispatch.invitation(auth, by_email.request_id, status="sent")
    await dispatch.invitation(auth, tomorrow.request_id, status="scheduled")
    # The text message was delivered (Twilio says so), the email has a reminder due tomorrow.
    url = f"https://go.test/v1/providers/twilio/{workspace}/status"
    params = {"MessageSid": texted["provider_message_id"], "MessageStatus": "delivered"}
    signature = providers.twilio_signature(dispatch.provider.auth_token, url, params.items())
    delivered = await client.post(
        f"/v1/providers/twilio/{workspace}/status",
        data=params,
        headers={providers.TWILIO_SIGNATURE: signature},
    )
    assert delivered.json()["applied"] == 1
    reminders = (await client.get(f"/v1/invitations/{mailed['id']}/reminders", headers=auth)).json()
    assert [r["status"] for r in reminders] == ["scheduled"]
    # Staff heard about them by email and the CRM by webhook, in words that name them.
    about = f"{who['name']} ({who['email']}, {who['phone']}) gave 2."
    for channel, to in (("email", f"lead@{workspace}.test"), ("webhook", "followup.opened")):
        await dispatch.publish(notification(workspace, channel, to, f"{who['name']}", about))
    await smtp.wait_for(lambda m: f"lead@{workspace}.test" in str(m["To"]))
    await wait_until(lambda: dispatch.provider.hooks_for(hook), message="the CRM got the webhook")
    async with dispatch.runtime.db.unit_of_work() as session:
        before = await search_dispatch(session, needles(who))
    assert {
        "invitations.recipient_email",
        "invitations.context",
        "notifications.body",
        "webhook_deliveries.payload",
    } <= set(before)

    await dispatch.publish(
        ContactErased(workspace_id=workspace, contact_id="con-eve", erased_at=datetime.now(UTC))
    )

    failed = await dispatch.invitation(auth, tomorrow.request_id, status="failed")
    assert "erased" in failed["last_error"]
    async with dispatch.runtime.db.unit_of_work() as session:
        assert await search_dispatch(session, needles(who)) == []
    reminders = (await client.get(f"/v1/invitations/{mailed['id']}/reminders", headers=auth)).json()
    assert [r["status"] for r in reminders] == ["cancelled"]
    for invitation in (texted, mailed):
        gone = await client.get(invitation["short_url"].removeprefix("https://go.test"))
        assert gone.status_code == 410 and "no longer available" in gone.text
        assert "frame-ancestors 'none'" in gone.headers["content-security-policy"]
        shown = (await client.get(f"/v1/invitations/{invitation['id']}", headers=auth)).json()
        assert (
            shown["survey_url"] == "" and shown["recipient_name"] is None and shown["recipient_phone"] is None
        )

    # A request for them that was already on its way stores nothing about them either.
    late = req()
    await dispatch.publish(late)
    refused = await dispatch.invitation(auth, late.request_id, status="failed")
    assert refused["recipient_email"] is None and refused["survey_url"] == ""
    async with dispatch.runtime.db.unit_of_work() as session:
        assert await search_dispatch(session, needles(who)) == []
    assert len([m for m in smtp.messages if who["email"] in str(m["To"])]) == 1


def sent_invitation(workspace: str, now: datetime, **fields: Any) -> Invitation:
    """An email invitation of ``con-eve`` sent once at ``now`` (a row to add in the test's session)."""
    return Invitation(
        id=new_id(),
        workspace_id=workspace,
        request_id=new_id(),
        contact_id="con-eve",
        survey_id="svy-1",
        kind="transactional",
        channel="email",
        status="sent",
        send_at=now,
        next_attempt_at=now,
        attempts=1,
        reminders_sent=0,
        **fields,
    )


async def test_erasure_redacts_unrelayed_outbox_rows_and_queued_notifications(uow: AsyncSession):
    """The middle tier: events still in the outbox (no relay here) and a notification not sent yet."""
    workspace, who = f"ws-{secrets.token_hex(5)}", person("uow")
    now = datetime.now(UTC)
    invitation = sent_invitation(
        workspace,
        now,
        survey_url="https://surveys.test/s/opaque",
        recipient_email=who["email"],
        recipient_name=who["name"],
        recipient_phone=who["phone"],
        context={"address": who["address"]},
    )
    uow.add(invitation)
    uow.add(
        Notification(
            id=new_id(),
            workspace_id=workspace,
            notification_id=new_id(),
            channel="email",
            to="lead@acme.test",
            subject=f"Call {who['name']} back",
            body=f"{who['name']} ({who['phone']}) asked to be called.",
            status="scheduled",
            attempts=0,
            next_attempt_at=now + timedelta(hours=1),
        )
    )
    box = Outbox(outbox, source="dispatch")
    await box.add(
        uow,
        InvitationFailed(
            workspace_id=workspace,
            invitation_id=invitation.id,
            request_id=invitation.request_id,
            contact_id="con-eve",
            survey_id="svy-1",
            kind="transactional",
            channel="email",
            occurred_at=now,
            error=f"the server refused {who['email']}",
        ),
    )
    await uow.flush()
    assert await search_dispatch(uow, needles(who))

    await erase_contact(
        uow, box, event=ContactErased(workspace_id=workspace, contact_id="con-eve", erased_at=now), now=now
    )

    assert await search_dispatch(uow, needles(who)) == []


class RefusingServer:
    """An SMTP server that refuses every recipient, quoting the address back (as real ones do)."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every log line dispatch writes during the test (not the test's own SMTP server, ``mail.log``)."""
    lines: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.addFilter(lambda record: not record.name.startswith("mail.log"))
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


async def test_a_refused_address_is_named_in_no_error_event_or_log(
    dispatch, workspace, auth, monkeypatch, logged
):
    controller = Controller(RefusingServer(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        monkeypatch.setattr(dispatch.runtime.settings, "smtp_port", controller.port)
        address = f"nobody.{secrets.token_hex(3)}@{workspace}.test"
        req = SurveyRequested(
            workspace_id=workspace,
            request_id=new_id(),
            contact_id="con-x",
            survey_id="svy-1",
            recipient=Recipient(email=address),
        )
        await dispatch.publish(req)
        failed = await dispatch.invitation(auth, req.request_id, status="failed")
    finally:
        controller.stop()
    assert "550" in failed["last_error"] and "[address]" in failed["last_error"]
    [bounced] = await dispatch.events(failed["id"], "InvitationBounced")
    [event] = await dispatch.events(failed["id"], "InvitationFailed")
    for record in (failed["last_error"], bounced["detail"], event["error"], *logged):
        assert address not in record, record
    assert any(failed["id"] in line for line in logged), "the failure was logged, by invitation id"


async def test_a_bounce_after_the_erasure_issues_no_new_link(uow: AsyncSession, settings_for):
    """A hard bounce reported after the erasure would fall back to the next channel with a new survey
    link; an erased invitation gets none."""
    from services.dispatch.handlers.routing import undeliverable
    from services.dispatch.settings import DispatchSettings

    now = datetime.now(UTC)
    invitation = sent_invitation(
        f"ws-{secrets.token_hex(5)}", now, survey_url="", fallback_channels=["link"], erased_at=now
    )
    uow.add(invitation)
    await uow.flush()
    settings = settings_for(DispatchSettings)
    fell_back = await undeliverable(
        uow,
        Outbox(outbox, source="dispatch"),
        settings,
        invitation=invitation,
        bounced=True,
        detail="550",
        now=now,
    )
    assert not fell_back and invitation.status == "failed" and invitation.survey_url == ""
