"""The invitation funnel, from dispatch's ``Invitation*`` events: what response rates are counted from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.dimensions import language_of
from services.scoring.handlers import surveys
from services.scoring.handlers.ingest import utc_day
from services.scoring.models import Invitation
from shared.events import (
    InvitationBounced,
    InvitationClicked,
    InvitationCreated,
    InvitationDelivered,
    InvitationFailed,
    InvitationOpened,
    InvitationSent,
)

FunnelEvent = (
    InvitationCreated
    | InvitationSent
    | InvitationDelivered
    | InvitationOpened
    | InvitationClicked
    | InvitationBounced
    | InvitationFailed
)
FUNNEL_EVENTS: tuple[type, ...] = (
    InvitationCreated,
    InvitationSent,
    InvitationDelivered,
    InvitationOpened,
    InvitationClicked,
    InvitationBounced,
    InvitationFailed,
)
_STEP = {
    InvitationSent: "sent_at",
    InvitationDelivered: "delivered_at",
    InvitationOpened: "opened_at",
    InvitationClicked: "clicked_at",
    InvitationBounced: "bounced_at",
    InvitationFailed: "failed_at",
}


async def invitation_event(session: AsyncSession, *, event: FunnelEvent) -> None:
    """Record one step of an invitation's funnel (the first time of each step counts; order-free)."""
    key = await surveys.survey_key(
        session, workspace_id=event.workspace_id, survey_id=event.survey_id, answered=False
    )
    values: dict[str, object] = {
        "workspace_id": event.workspace_id,
        "invitation_id": event.invitation_id,
        "survey_key": key,
        "kind": event.kind,
        "channel": event.channel,
        "language": language_of(event.locale),
        "day": utc_day(event.occurred_at),
    }
    step = _STEP.get(type(event))
    updates: dict[str, Any] = {
        "kind": event.kind,
        "channel": event.channel,
        "language": func.coalesce(Invitation.language, language_of(event.locale)),
    }
    if step is not None:
        values[step] = event.occurred_at
        updates[step] = func.coalesce(getattr(Invitation, step), event.occurred_at)
    if isinstance(event, InvitationSent) and event.reminder == 0:
        # The cohort is the day it was sent (a reminder does not move it).
        updates["day"] = utc_day(event.occurred_at)
    statement = insert(Invitation).values(**values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["workspace_id", "invitation_id"], set_=updates)
    )
