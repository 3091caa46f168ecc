"""A survey request becomes one invitation: the channel that reaches the contact, the template,
the survey link and the schedule; a redelivered request creates nothing. A request for a contact
erased before it arrived becomes a failed invitation that keeps nothing about them."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain
from services.dispatch.handlers.invitations import event_fields, recipient_of
from services.dispatch.handlers.links import issue_survey_url
from services.dispatch.handlers.routing import contact_state, usable_channels
from services.dispatch.handlers.workspace import WorkspaceCache, configured_channels, pick_template
from services.dispatch.models import Invitation, erased_contacts
from services.dispatch.settings import DispatchSettings
from shared import tracing
from shared.erasure import is_erased
from shared.events import (
    InvitationCreated,
    InvitationFailed,
    InvitationSent,
    Recipient,
    SurveyRequested,
    new_id,
)
from shared.outbox import Outbox


async def request_survey(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    event: SurveyRequested,
    now: datetime,
    cache: WorkspaceCache | None = None,
) -> Invitation | None:
    """Return the request's new invitation, or None when the request already has one."""
    if await is_erased(
        session, erased_contacts, workspace_id=event.workspace_id, contact_id=event.contact_id
    ):
        return await _for_erased_contact(session, outbox, event=event, now=now)
    recipient = domain.choose_recipient(
        event.recipient,
        None
        if event.recipient is not None
        else await last_recipient(session, workspace_id=event.workspace_id, contact_id=event.contact_id),
    )
    ws = event.workspace_id
    cached = await (cache or WorkspaceCache(settings)).get(session, ws)
    config, channels = cached.config, cached.channels
    opted_out, invalid = await contact_state(
        session, workspace_id=ws, contact_id=event.contact_id, recipient=recipient
    )
    configured = configured_channels(channels, ws)
    choice = domain.choose_channel(
        event.channel,
        event.fallback_channels,
        recipient,
        configured=usable_channels(configured, opted_out),
        invalid=invalid,
    )
    problem = choice.problem
    if problem and (opted_out & {"", event.channel}):
        problem = "the contact opted out of these surveys"
    channel = choice.channel
    send_at = domain.due_at(event.send_at, now)
    ttl_days = config.link_ttl_days or settings.link_ttl_days
    locale = event.locale or (recipient.locale if recipient else None)
    template = pick_template(
        [t for t in cached.templates if t.channel == channel],
        survey_id=event.survey_id,
        locale=locale,
        kind=event.kind,
    )
    status = "failed" if problem else "sent" if channel == "link" else "scheduled"
    invitation = Invitation(
        id=new_id(),
        workspace_id=ws,
        request_id=event.request_id,
        contact_id=event.contact_id,
        survey_id=event.survey_id,
        kind=event.kind,
        channel=channel,
        locale=locale,
        recipient_email=recipient.email if recipient else None,
        recipient_name=recipient.name if recipient else None,
        recipient_phone=recipient.phone if recipient else None,
        recipient_company=recipient.company if recipient else None,
        recipient_timezone=recipient.timezone if recipient else None,
        context=dict(event.context),
        fallback_channels=list(choice.fallbacks),
        template_id=template.id if template else None,
        status=status,
        attempts=0,
        last_error=problem,
        send_at=send_at,
        next_attempt_at=send_at,
        expires_at=send_at + timedelta(days=ttl_days),
        sent_at=now if status == "sent" else None,
        short_code=secrets.token_urlsafe(8)[:10],
        reminders_sent=0,
        traceparent=tracing.current(),
    )
    invitation.survey_url = issue_survey_url(
        settings, invitation, channel=channel, ttl_s=domain.link_ttl_s(ttl_days, send_at=send_at, now=now)
    )
    invitation.message_id = (
        domain.message_id(invitation.id, channels[(ws, "email")].mail_from or settings.mail_from)
        if channel == "email"
        else None
    )
    row = await _insert(session, invitation)
    if row is None:
        return None
    await outbox.add(session, InvitationCreated(**event_fields(row, now), send_at=send_at))
    if problem:
        await outbox.add(session, InvitationFailed(**event_fields(row, now), error=problem))
    elif status == "sent":
        await outbox.add(session, InvitationSent(**event_fields(row, now), message_id=None))
    return row


async def _insert(session: AsyncSession, invitation: Invitation) -> Invitation | None:
    """Return the invitation inserted, or None when its request already has one."""
    return await session.scalar(
        insert(Invitation)
        .values(
            **{
                c.key: getattr(invitation, c.key)
                for c in Invitation.__table__.columns
                if getattr(invitation, c.key, None) is not None
            }
        )
        .on_conflict_do_nothing(index_elements=["workspace_id", "request_id"])
        .returning(Invitation)
    )


ERASED = "the contact was erased before the survey was requested"


async def _for_erased_contact(
    session: AsyncSession, outbox: Outbox, *, event: SurveyRequested, now: datetime
) -> Invitation | None:
    """Return a failed invitation that records the request and nothing about the erased contact: no
    recipient, no context, no survey link."""
    row = await _insert(
        session,
        Invitation(
            id=new_id(),
            workspace_id=event.workspace_id,
            request_id=event.request_id,
            contact_id=event.contact_id,
            survey_id=event.survey_id,
            kind=event.kind,
            channel=event.channel,
            locale=event.locale,
            context={},
            fallback_channels=[],
            status="failed",
            attempts=0,
            last_error=ERASED,
            survey_url="",
            send_at=now,
            next_attempt_at=now,
            reminders_sent=0,
            erased_at=now,
        ),
    )
    if row is not None:
        await outbox.add(session, InvitationCreated(**event_fields(row, now), send_at=now))
        await outbox.add(session, InvitationFailed(**event_fields(row, now), error=ERASED))
    return row


async def last_recipient(session: AsyncSession, *, workspace_id: str, contact_id: str) -> Recipient | None:
    """Return the recipient of the contact's most recent invitation that had an address."""
    row = await session.scalar(
        select(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.contact_id == contact_id,
            or_(Invitation.recipient_email.is_not(None), Invitation.recipient_phone.is_not(None)),
        )
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(1)
    )
    return recipient_of(row) if row is not None else None
