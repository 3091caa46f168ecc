"""The funnel from our own links and the responses topic: clicks on the short link, opens of the
pixel, a response started or completed (which also stops the reminders)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.handlers.invitations import cancel_reminders, event_fields
from services.dispatch.models import Invitation
from shared.events import InvitationClicked, InvitationOpened, ResponseCompleted, ResponseStarted
from shared.outbox import Outbox


async def responded(
    session: AsyncSession, *, event: ResponseStarted | ResponseCompleted, now: datetime
) -> Invitation | None:
    """Record the funnel's last steps on the invitation and stop its reminders."""
    if not event.invitation_id:
        return None
    invitation = await session.scalar(
        select(Invitation)
        .where(Invitation.workspace_id == event.workspace_id, Invitation.id == event.invitation_id)
        .with_for_update()
    )
    if invitation is None:
        return None
    if isinstance(event, ResponseStarted):
        invitation.started_at = invitation.started_at or event.started_at
    else:
        invitation.completed_at = invitation.completed_at or event.completed_at
        invitation.started_at = invitation.started_at or event.completed_at
    await cancel_reminders(session, [invitation.id], reason="the contact responded")
    return invitation


async def invitation_by_code(session: AsyncSession, *, code: str) -> Invitation | None:
    """Return the invitation of a short code, locked for the funnel update, or None."""
    return await session.scalar(select(Invitation).where(Invitation.short_code == code).with_for_update())


async def record_click(
    session: AsyncSession, outbox: Outbox, *, invitation: Invitation, now: datetime
) -> None:
    """Record the first click on the invitation and publish ``InvitationClicked``."""
    if invitation.clicked_at is None:
        invitation.clicked_at = now
        await outbox.add(session, InvitationClicked(**event_fields(invitation, now)))


async def record_open(
    session: AsyncSession, outbox: Outbox, *, invitation: Invitation, now: datetime
) -> None:
    """Record the first open of the invitation and publish ``InvitationOpened``."""
    if invitation.opened_at is None:
        invitation.opened_at = now
        await outbox.add(session, InvitationOpened(**event_fields(invitation, now)))
