"""Steps every use case takes on invitations: the fields their events carry, their recipient (and
the values that forget it), failing the pending ones of a contact and cancelling reminders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.models import Invitation, Reminder
from shared.events import InvitationFailed, Recipient
from shared.outbox import Outbox
from shared.rows import from_row

NAMELESS: dict[str, Any] = {
    "recipient_email": None,
    "recipient_name": None,
    "recipient_phone": None,
    "recipient_company": None,
    "recipient_timezone": None,
    "context": {},
    "survey_url": "",
}
"""An invitation's values once it names nobody (its contact erased, or anonymised by the retention
policy): no recipient, no context (hidden fields), no survey link."""


def event_fields(invitation: Invitation, now: datetime) -> dict[str, Any]:
    """Return the fields every ``Invitation*`` event carries."""
    return {
        "workspace_id": invitation.workspace_id,
        "invitation_id": invitation.id,
        "request_id": invitation.request_id,
        "contact_id": invitation.contact_id,
        "survey_id": invitation.survey_id,
        "kind": invitation.kind,
        "channel": invitation.channel,
        "occurred_at": now,
        "template_id": invitation.template_id,
        "locale": invitation.locale,
    }


def recipient_of(invitation: Invitation) -> Recipient:
    """Return the invitation's recipient as the event catalogue describes one."""
    return from_row(Recipient, invitation, prefix="recipient_", locale=invitation.locale)


async def fail_pending(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    contact_id: str,
    error: str,
    now: datetime,
    channel: str | None = None,
) -> int:
    """Fail the contact's scheduled invitations (on ``channel``, or all) and cancel their reminders."""
    query = select(Invitation).where(
        Invitation.workspace_id == workspace_id,
        Invitation.contact_id == contact_id,
        Invitation.status == "scheduled",
    )
    if channel:
        query = query.where(Invitation.channel == channel)
    pending = (await session.scalars(query.with_for_update())).all()
    for invitation in pending:
        invitation.status, invitation.last_error = "failed", error
        await outbox.add(session, InvitationFailed(**event_fields(invitation, now), error=error))
    await cancel_reminders(
        session,
        select(Invitation.id).where(
            Invitation.workspace_id == workspace_id, Invitation.contact_id == contact_id
        ),
        reason=error,
        channel=channel,
    )
    return len(pending)


async def cancel_reminders(
    session: AsyncSession, invitation_ids: Any, *, reason: str, channel: str | None = None
) -> None:
    """Cancel the still-scheduled reminders of the given invitations (on ``channel``, or all)."""
    query = (
        update(Reminder)
        .where(Reminder.invitation_id.in_(invitation_ids), Reminder.status == "scheduled")
        .values(status="cancelled", last_error=reason)
        .execution_options(synchronize_session=False)
    )
    if channel:
        query = query.where(Reminder.channel == channel)
    await session.execute(query)
