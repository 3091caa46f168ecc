"""Opt-outs: an unsubscribe link, a provider's complaint or another service's opt-out stops what was
still to be sent (erasure is ``erasure``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.handlers.invitations import fail_pending
from services.dispatch.models import OptOut
from shared.events import ContactOptedOut
from shared.outbox import Outbox
from shared.vocabulary import Channel


async def record_opt_out(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    contact_id: str,
    channel: Channel | None,
    source: str,
    now: datetime,
    publish: bool,
) -> bool:
    """Record the opt-out, fail what was still to be sent; return whether it is new."""
    new = await session.scalar(
        insert(OptOut)
        .values(
            workspace_id=workspace_id,
            contact_id=contact_id,
            channel=channel or "",
            source=source[:100],
            opted_out_at=now,
        )
        .on_conflict_do_nothing()
        .returning(OptOut.contact_id)
    )
    if new is None:
        return False
    if publish:
        await outbox.add(
            session,
            ContactOptedOut(
                workspace_id=workspace_id,
                contact_id=contact_id,
                channel=channel,
                source=source,
                opted_out_at=now,
            ),
        )
    await fail_pending(
        session,
        outbox,
        workspace_id=workspace_id,
        contact_id=contact_id,
        error="the contact opted out of these surveys",
        now=now,
        channel=channel,
    )
    return True


async def opted_out(session: AsyncSession, outbox: Outbox, *, event: ContactOptedOut, now: datetime) -> None:
    """Honour an opt-out recorded elsewhere (or our own, coming back from the topic)."""
    await record_opt_out(
        session,
        outbox,
        workspace_id=event.workspace_id,
        contact_id=event.contact_id,
        channel=event.channel,
        source=event.source,
        now=now,
        publish=False,
    )


async def unsubscribe(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    contact_id: str,
    invitation_id: str,
    now: datetime,
) -> bool:
    """Record an unsubscribe link's opt-out (every channel) and publish ``ContactOptedOut``."""
    return await record_opt_out(
        session,
        outbox,
        workspace_id=workspace_id,
        contact_id=contact_id,
        channel=None,
        source=f"unsubscribe-link:{invitation_id}",
        now=now,
        publish=True,
    )
