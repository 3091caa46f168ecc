"""Provider delivery reports (SendGrid, Mailgun, Twilio): each applied once, to the invitation
whose message (or reminder) it is about."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain
from services.dispatch.handlers.funnel import record_click, record_open
from services.dispatch.handlers.invitations import event_fields
from services.dispatch.handlers.optouts import record_opt_out
from services.dispatch.handlers.routing import undeliverable
from services.dispatch.handlers.workspace import channel_settings
from services.dispatch.models import Invitation, ProviderEvent, Reminder
from services.dispatch.providers import DeliveryEvent
from services.dispatch.settings import DispatchSettings
from shared.events import InvitationBounced, InvitationComplained, InvitationDelivered
from shared.outbox import Outbox


async def find_by_message(
    session: AsyncSession,
    *,
    message_id: str | None,
    provider_message_id: str | None,
    workspace_id: str | None,
) -> Invitation | None:
    """Return the invitation a provider report is about (its own message or one of its reminders)."""
    if message_id:
        bracketed = f"<{domain.bare_message_id(message_id)}>"
        inv_id = await session.scalar(select(Invitation.id).where(Invitation.message_id == bracketed))
        if inv_id is None:
            inv_id = await session.scalar(
                select(Reminder.invitation_id).where(Reminder.message_id == bracketed)
            )
    elif provider_message_id:
        inv_query = select(Invitation.id).where(Invitation.provider_message_id == provider_message_id)
        rem_query = select(Reminder.invitation_id).where(Reminder.provider_message_id == provider_message_id)
        if workspace_id:
            inv_query = inv_query.where(Invitation.workspace_id == workspace_id)
            rem_query = rem_query.where(Reminder.workspace_id == workspace_id)
        inv_id = await session.scalar(inv_query) or await session.scalar(rem_query)
    else:
        return None
    if inv_id is None:
        return None
    return await session.scalar(select(Invitation).where(Invitation.id == inv_id).with_for_update())


async def first_time(session: AsyncSession, *, provider: str, event_id: str) -> bool:
    """Return whether this provider event was not applied before (and remember it)."""
    if not event_id:
        return True
    return (
        await session.scalar(
            insert(ProviderEvent)
            .values(provider=provider, event_id=event_id[:200])
            .on_conflict_do_nothing()
            .returning(ProviderEvent.event_id)
        )
    ) is not None


async def apply_delivery_event(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    report: DeliveryEvent,
    now: datetime,
    workspace_id: str | None = None,
) -> str:
    """Apply one provider report; return what happened ("applied", "duplicate", "unknown-message")."""
    if not await first_time(session, provider=report.provider, event_id=report.event_id):
        return "duplicate"
    invitation = await find_by_message(
        session,
        message_id=report.message_id,
        provider_message_id=report.provider_message_id,
        workspace_id=workspace_id,
    )
    if invitation is None:
        return "unknown-message"
    at = min(report.at or now, now)
    fields = event_fields(invitation, now)
    if report.state == "delivered":
        if invitation.delivered_at is None:
            invitation.delivered_at = at
            await outbox.add(session, InvitationDelivered(**fields))
    elif report.state == "opened":
        await record_open(session, outbox, invitation=invitation, now=at)
    elif report.state == "clicked":
        await record_click(session, outbox, invitation=invitation, now=at)
    elif report.state == "complained":
        if invitation.complained_at is None:
            invitation.complained_at = at
            await outbox.add(session, InvitationComplained(**fields))
        await record_opt_out(
            session,
            outbox,
            workspace_id=invitation.workspace_id,
            contact_id=invitation.contact_id,
            channel=invitation.channel,
            source=f"{report.provider}:complaint",
            now=now,
            publish=True,
        )
    elif report.state == "unsubscribed":
        await record_opt_out(
            session,
            outbox,
            workspace_id=invitation.workspace_id,
            contact_id=invitation.contact_id,
            channel=None,
            source=f"{report.provider}:unsubscribe",
            now=now,
            publish=True,
        )
    elif report.state == "bounced" and not report.hard:
        await outbox.add(session, InvitationBounced(**fields, hard=False, detail=report.detail))
    else:  # a hard bounce, or the provider gave up on the message
        await undeliverable(
            session,
            outbox,
            settings,
            invitation=invitation,
            bounced=report.state == "bounced",
            detail=report.detail or report.state,
            now=now,
        )
    return "applied"


async def apply_reports(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    reports: Iterable[DeliveryEvent],
    now: datetime,
    workspace_id: str | None = None,
) -> dict[str, int]:
    """Apply a callback's reports; return how many were applied, duplicates, or about unknown messages."""
    counts = {"applied": 0, "duplicate": 0, "unknown": 0}
    for report in reports:
        outcome = await apply_delivery_event(
            session, outbox, settings, report=report, now=now, workspace_id=workspace_id
        )
        counts["unknown" if outcome == "unknown-message" else outcome] += 1
    return counts


async def twilio_auth_tokens(
    session: AsyncSession, settings: DispatchSettings, *, workspace_id: str
) -> set[str]:
    """Return the auth tokens of the workspace's SMS and WhatsApp channels (they may use different accounts)."""
    channels = await channel_settings(session, settings, workspace_ids=[workspace_id])
    return {c.auth_token for (_, ch), c in channels.items() if ch in domain.PHONE_CHANNELS and c.auth_token}
