"""Erasure: when a contact is erased (``ContactErased``), every copy of their personal data in this
service goes — free-text answers, hidden fields (the invitation's context may hold an address),
reward codes they were given, and the events not yet relayed — and their survey links stop working."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.models import Response, ResponseAnswer, RewardCode, erased_contacts, outbox
from shared import erasure
from shared.events import ContactErased
from shared.scrub import scrub_pending


async def is_erased(session: AsyncSession, *, workspace_id: str, contact_id: str) -> bool:
    """Return whether the contact was erased from the workspace."""
    return await erasure.is_erased(session, erased_contacts, workspace_id=workspace_id, contact_id=contact_id)


def _scrubbed(payload: dict[str, Any]) -> dict[str, Any]:
    """Return an event envelope without its personal data: hidden fields, respondent, free text."""
    data = dict(payload.get("data") or {})
    if "hidden_fields" in data:
        data["hidden_fields"] = {}
    if "respondent" in data:
        data["respondent"] = None
    if isinstance(data.get("answers"), list):
        data["answers"] = [
            {**a, "value": None} if isinstance(a, dict) and a.get("type") == "open" else a
            for a in data["answers"]
        ]
    return {**payload, "data": data}


async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
    """Forget the contact: remember only a hash of their id (their links no longer open), blank their
    responses' free text and hidden fields, unlink the reward codes they got, and scrub the events
    about them still waiting in the outbox. Their scores stay, anonymous."""
    ws, contact = event.workspace_id, event.contact_id
    await erasure.remember_erased(
        session, erased_contacts, workspace_id=ws, contact_id=contact, erased_at=event.erased_at
    )
    of_contact = select(Response.id).where(Response.workspace_id == ws, Response.contact_id == contact)
    await session.execute(
        update(ResponseAnswer)
        .where(
            ResponseAnswer.workspace_id == ws,
            ResponseAnswer.response_id.in_(of_contact),
            ResponseAnswer.type == "open",
        )
        .values(value=null())
    )
    # A code stays claimed (it is never given twice) but no longer says to whom it was given.
    await session.execute(
        update(RewardCode)
        .where(RewardCode.workspace_id == ws, RewardCode.response_id.in_(of_contact))
        .values(response_id=func.concat("erased:", RewardCode.id))
    )
    await session.execute(
        update(Response)
        .where(Response.workspace_id == ws, Response.contact_id == contact)
        .values(erased_at=event.erased_at, hidden_fields={}, reward_code=None)
    )
    await scrub_pending(session, outbox, outbox.c.key == f"{ws}:{contact}", scrubbed=_scrubbed)
