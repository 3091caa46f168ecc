"""Killing a service mid-stream loses nothing and duplicates nothing once it is back."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import httpx
import pytest

from closeloop.demo import DemoWorkspace, demo_event, send_signed
from closeloop.mailcatcher import MailCatcher, recipient
from closeloop.stack import ServiceStack
from tests.support.stack import wait_until

pytestmark = pytest.mark.e2e

EVENTS = 40


async def test_dispatch_killed_mid_stream_sends_every_invitation_once(
    stack: ServiceStack, demo: DemoWorkspace, urls: dict[str, str], smtp: MailCatcher
):
    addresses = [f"c{i}.{demo.workspace_id}@example.com" for i in range(EVENTS)]
    ours = set(addresses)

    with httpx.Client(timeout=10) as http:
        for i, address in enumerate(addresses):
            response = send_signed(
                http, demo, demo_event(external_id=f"cus_{i}", email=address, name=f"C{i}")
            )
            assert response.status_code == 202

    # Mid-stream: some invitations are out, the rest are queued, requested or being sent.
    await smtp.wait_for_count(lambda m: recipient(m) in ours, 3)
    stack.kill("dispatch")
    stack.start("dispatch")
    await asyncio.to_thread(stack.wait_ready, ["dispatch"])

    def everyone_reached(messages: list[EmailMessage]) -> list[EmailMessage] | None:
        delivered = [m for m in messages if recipient(m) in ours]
        return delivered if {recipient(m) for m in delivered} == ours else None

    await smtp.wait_until(everyone_reached, timeout_s=90, what="an invitation for every customer")

    async def all_sent() -> list[dict] | None:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(
                f"{urls['dispatch']}/v1/invitations", params={"limit": 200}, headers=demo.auth
            )
        invitations = response.json()
        return invitations if {i["status"] for i in invitations} == {"sent"} else None

    # A send cut off by the kill is claimed again once its claim expires, and then recorded as sent.
    invitations = await wait_until(all_sent, timeout_s=60, message="every invitation recorded as sent")
    assert len(invitations) == EVENTS
    # SMTP has no transactions: a send the kill cut off between the SMTP server's "250 OK" and the
    # database commit goes out again. It reuses the invitation's Message-ID, so mail systems and
    # clients see one message; no customer ever gets two different invitations.
    message_ids: dict[str, set[str]] = {}
    for message in smtp.messages:
        if recipient(message) in ours:
            message_ids.setdefault(recipient(message), set()).add(str(message["Message-ID"]).strip())
    assert all(len(ids) == 1 for ids in message_ids.values())
    assert {i["message_id"] for i in invitations} == set().union(*message_ids.values())
