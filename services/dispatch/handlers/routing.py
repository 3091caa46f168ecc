"""Which channel reaches a contact: opt-outs and hard-bounced addresses, and the fallback to the
next channel when a message can never arrive."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import literal, select, tuple_, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain
from services.dispatch.handlers.invitations import cancel_reminders, event_fields, recipient_of
from services.dispatch.handlers.links import issue_survey_url
from services.dispatch.handlers.workspace import channel_settings, configured_channels, find_template
from services.dispatch.models import InvalidAddress, Invitation, OptOut
from services.dispatch.settings import DispatchSettings
from shared.events import InvitationBounced, InvitationFailed, InvitationSent, Recipient
from shared.outbox import Outbox


async def opt_outs_of(
    session: AsyncSession, *, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], set[str]]:
    """Return the opted-out channels ("" = every channel) per (workspace, contact)."""
    keys = set(pairs)
    if not keys:
        return {}
    rows = (
        await session.execute(
            select(OptOut.workspace_id, OptOut.contact_id, OptOut.channel).where(
                tuple_(OptOut.workspace_id, OptOut.contact_id).in_(keys)
            )
        )
    ).all()
    out: dict[tuple[str, str], set[str]] = {}
    for ws, contact, channel in rows:
        out.setdefault((ws, contact), set()).add(channel)
    return out


async def invalid_addresses(
    session: AsyncSession, *, pairs: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Return which of the (workspace, address) pairs hard-bounced before."""
    keys = {p for p in pairs if p[1]}
    if not keys:
        return set()
    rows = (
        await session.execute(
            select(InvalidAddress.workspace_id, InvalidAddress.address).where(
                tuple_(InvalidAddress.workspace_id, InvalidAddress.address).in_(keys)
            )
        )
    ).all()
    return {(ws, address) for ws, address in rows}


async def contact_state(
    session: AsyncSession, *, workspace_id: str, contact_id: str, recipient: Recipient | None
) -> tuple[set[str], set[str]]:
    """Return (opted-out channels, invalid addresses) of a contact, in one round trip."""
    addresses = [a for a in (domain.address_for(ch, recipient) for ch in ("email", "sms")) if a]
    opted = select(literal("opt-out").label("kind"), OptOut.channel.label("value")).where(
        OptOut.workspace_id == workspace_id, OptOut.contact_id == contact_id
    )
    invalid = select(literal("invalid").label("kind"), InvalidAddress.address.label("value")).where(
        InvalidAddress.workspace_id == workspace_id, InvalidAddress.address.in_(addresses or [""])
    )
    rows = (await session.execute(union_all(opted, invalid))).all()
    return {v for k, v in rows if k == "opt-out"}, {v for k, v in rows if k == "invalid"}


def usable_channels(configured: set[str], opted_out: set[str]) -> set[str]:
    """Return the configured channels the contact has not opted out of (a link is never sent)."""
    if "" in opted_out:
        return {"link"} & configured
    return configured - opted_out


async def mark_invalid(
    session: AsyncSession, *, workspace_id: str, address: str, reason: str, now: datetime
) -> None:
    """Remember that ``address`` hard-bounced: no message goes to it again."""
    await session.execute(
        insert(InvalidAddress)
        .values(workspace_id=workspace_id, address=address, reason=reason[:500], marked_at=now)
        .on_conflict_do_nothing()
    )


async def undeliverable(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    invitation: Invitation,
    bounced: bool,
    detail: str,
    now: datetime,
) -> bool:
    """Handle a message that can never arrive: mark a bounced address invalid, then fall back.

    Return whether a fallback channel was scheduled; otherwise the invitation is failed.
    """
    channel = invitation.channel
    fields = event_fields(invitation, now)
    if bounced:
        invitation.bounced_at = invitation.bounced_at or now
        address = domain.address_for(channel, recipient_of(invitation))
        if address:
            await mark_invalid(
                session, workspace_id=invitation.workspace_id, address=address, reason=detail, now=now
            )
        await outbox.add(session, InvitationBounced(**fields, hard=True, detail=detail))
    await cancel_reminders(session, [invitation.id], reason=f"{channel} failed: {detail}", channel=channel)
    if await fall_back(session, outbox, settings, invitation=invitation, now=now, why=detail):
        return True
    if invitation.status != "failed":
        invitation.status = "failed"
        invitation.last_error = f"{'bounced' if bounced else 'not delivered'} on {channel}: {detail}"
        await outbox.add(session, InvitationFailed(**fields, error=invitation.last_error))
    return False


async def fall_back(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    invitation: Invitation,
    now: datetime,
    why: str,
) -> bool:
    """Switch the invitation to its next deliverable fallback channel; return whether there was one."""
    ws = invitation.workspace_id
    remaining = list(invitation.fallback_channels or [])
    if not remaining or invitation.erased_at is not None:  # an erased contact gets no new link
        return False
    channels = await channel_settings(session, settings, workspace_ids=[ws])
    recipient = recipient_of(invitation)
    opted = (await opt_outs_of(session, pairs=[(ws, invitation.contact_id)])).get(
        (ws, invitation.contact_id), set()
    )
    if "" in opted:
        return False
    addresses = [domain.address_for(ch, recipient) for ch in ("email", "sms")]
    invalid = {a for _, a in await invalid_addresses(session, pairs=[(ws, a) for a in addresses if a])}
    choice = domain.choose_channel(
        remaining[0],
        remaining[1:],
        recipient,
        configured=usable_channels(configured_channels(channels, ws), opted),
        invalid=invalid,
    )
    if choice.problem:
        invitation.fallback_channels = []
        return False
    previous = invitation.channel
    invitation.channel = choice.channel
    invitation.fallback_channels = list(choice.fallbacks)
    invitation.attempts = 0
    invitation.claimed_at = None
    invitation.provider_message_id = None
    invitation.last_error = (
        f"{previous} could not reach the contact ({why}); falling back to {choice.channel}"
    )
    invitation.message_id = (
        domain.message_id(invitation.id, channels[(ws, "email")].mail_from or settings.mail_from)
        if choice.channel == "email"
        else None
    )
    ttl = max(int((invitation.expires_at - now).total_seconds()), 3600) if invitation.expires_at else 86400
    invitation.survey_url = issue_survey_url(settings, invitation, channel=choice.channel, ttl_s=ttl)
    template = await find_template(
        session,
        workspace_id=ws,
        survey_id=invitation.survey_id,
        channel=choice.channel,
        locale=invitation.locale,
        kind=invitation.kind,
    )
    invitation.template_id = template.id if template else None
    if choice.channel == "link":
        invitation.status, invitation.sent_at = "sent", now
        await outbox.add(session, InvitationSent(**event_fields(invitation, now), message_id=None))
    else:
        invitation.status, invitation.next_attempt_at = "scheduled", now
    return True
