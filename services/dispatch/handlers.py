"""What happens when a survey is requested or a contact is erased."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain
from services.dispatch.models import Invitation
from services.dispatch.settings import DispatchSettings
from shared.errors import NotFound
from shared.events import (
    ContactErased,
    InvitationCreated,
    InvitationFailed,
    InvitationSent,
    Recipient,
    SurveyRequested,
    new_id,
)
from shared.outbox import Outbox
from shared.survey_links import SurveyLink, issue_link_token


async def request_survey(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    event: SurveyRequested,
    now: datetime,
) -> Invitation | None:
    """Return the request's new invitation, or None when the request already has one."""
    recipient = domain.choose_recipient(
        event.recipient,
        None
        if event.recipient is not None
        else await last_recipient(session, workspace_id=event.workspace_id, contact_id=event.contact_id),
    )
    problem = domain.undeliverable_reason(event.channel, recipient)
    send_at = domain.due_at(event.send_at, now)
    invitation_id = new_id()
    token = issue_link_token(
        settings.secret_key,
        SurveyLink(
            workspace_id=event.workspace_id,
            invitation_id=invitation_id,
            request_id=event.request_id,
            survey_id=event.survey_id,
            contact_id=event.contact_id,
            kind=event.kind,
            channel=event.channel,
            locale=recipient.locale if recipient else None,
        ),
        ttl_s=domain.link_ttl_s(settings.link_ttl_days, send_at=send_at, now=now),
    )
    status = "failed" if problem else "sent" if event.channel == "link" else "scheduled"
    invitation = (
        await session.execute(
            insert(Invitation)
            .values(
                id=invitation_id,
                workspace_id=event.workspace_id,
                request_id=event.request_id,
                contact_id=event.contact_id,
                survey_id=event.survey_id,
                kind=event.kind,
                channel=event.channel,
                locale=recipient.locale if recipient else None,
                recipient_email=recipient.email if recipient else None,
                recipient_name=recipient.name if recipient else None,
                recipient_phone=recipient.phone if recipient else None,
                status=status,
                survey_url=domain.survey_url(settings.survey_base_url, token),
                message_id=domain.message_id(invitation_id, settings.mail_from)
                if event.channel == "email"
                else None,
                attempts=0,
                last_error=problem,
                send_at=send_at,
                next_attempt_at=send_at,
                sent_at=now if status == "sent" else None,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "request_id"])
            .returning(Invitation)
        )
    ).scalar_one_or_none()
    if invitation is None:
        return None
    await outbox.add(session, InvitationCreated(**event_fields(invitation, now), send_at=send_at))
    if problem:
        await outbox.add(session, InvitationFailed(**event_fields(invitation, now), error=problem))
    elif status == "sent":
        await outbox.add(session, InvitationSent(**event_fields(invitation, now), message_id=None))
    return invitation


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
    if row is None:
        return None
    return Recipient(
        name=row.recipient_name, email=row.recipient_email, phone=row.recipient_phone, locale=row.locale
    )


async def erase_contact(session: AsyncSession, outbox: Outbox, *, event: ContactErased, now: datetime) -> int:
    """Blank the contact's recipient fields and fail its unsent invitations; return how many were failed."""
    error = "the contact was erased before the invitation was sent"
    pending = (
        await session.scalars(
            select(Invitation)
            .where(
                Invitation.workspace_id == event.workspace_id,
                Invitation.contact_id == event.contact_id,
                Invitation.status == "scheduled",
            )
            .with_for_update()
        )
    ).all()
    for invitation in pending:
        invitation.status, invitation.last_error = "failed", error
        await outbox.add(session, InvitationFailed(**event_fields(invitation, now), error=error))
    await session.execute(
        update(Invitation)
        .where(Invitation.workspace_id == event.workspace_id, Invitation.contact_id == event.contact_id)
        .values(recipient_email=None, recipient_name=None, recipient_phone=None)
        .execution_options(synchronize_session=False)
    )
    return len(pending)


async def get_invitation(session: AsyncSession, *, workspace_id: str, invitation_id: str) -> Invitation:
    """Return the workspace's invitation or raise ``NotFound``."""
    invitation = await session.scalar(
        select(Invitation).where(Invitation.workspace_id == workspace_id, Invitation.id == invitation_id)
    )
    if invitation is None:
        raise NotFound(f"No invitation {invitation_id!r} in this workspace.", field="invitation_id")
    return invitation


async def list_invitations(
    session: AsyncSession,
    *,
    workspace_id: str,
    contact_id: str | None,
    survey_id: str | None,
    status: str | None,
    limit: int,
) -> list[Invitation]:
    """Return the workspace's invitations that match the filters, newest first."""
    query = select(Invitation).where(Invitation.workspace_id == workspace_id)
    if contact_id is not None:
        query = query.where(Invitation.contact_id == contact_id)
    if survey_id is not None:
        query = query.where(Invitation.survey_id == survey_id)
    if status is not None:
        query = query.where(Invitation.status == status)
    rows = await session.scalars(
        query.order_by(Invitation.created_at.desc(), Invitation.id.desc()).limit(limit)
    )
    return list(rows)


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
    }
