"""Erasure (``ContactErased``): the contact's scores stay, anonymous, and nothing about them is stored
again.

- their comments go, with what was read from them (language, sentiment, themes);
- their scored responses forget the contact id (scores and segments stay, so every report still counts
  them);
- events about them not yet relayed lose the respondent, the comment and the consent, and a low-score
  notification that quotes them loses its body;
- the contact is remembered as erased (``shared.erasure``): a response of theirs that arrives later
  (responses' relay read it before responses erased them) is scored without naming them
  (``without_erased``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.models import Comment, ScoredResponse, erased_contacts, outbox
from shared.erasure import ERASED_BODY, erased_among, remember_erased
from shared.events import ContactErased, ResponseCompleted
from shared.scrub import scrub_pending

if TYPE_CHECKING:
    from services.scoring.handlers.ingest import Arrival


async def erase_contact(session: AsyncSession, *, event: ContactErased) -> int:
    """Remove the contact's comments and what was read from them, unlink them from their scored
    responses (the scores and segments stay, anonymous), scrub the outbox and remember them as erased;
    return how many responses."""
    ws, contact = event.workspace_id, event.contact_id
    await remember_erased(
        session, erased_contacts, workspace_id=ws, contact_id=contact, erased_at=event.erased_at
    )
    theirs = select(ScoredResponse.key).where(
        ScoredResponse.workspace_id == ws, ScoredResponse.contact_id == contact
    )
    await session.execute(delete(Comment).where(Comment.response_key.in_(theirs)))
    result = await session.execute(
        update(ScoredResponse)
        .where(ScoredResponse.workspace_id == ws, ScoredResponse.contact_id == contact)
        .values(contact_id=None)
    )
    await scrub_outbox(session, workspace_id=ws, contact_id=contact)
    return result.rowcount or 0  # type: ignore[attr-defined]


async def scrub_outbox(session: AsyncSession, *, workspace_id: str, contact_id: str) -> int:
    """Take the contact's details and words out of the events still waiting to be relayed; return how
    many were changed."""
    return await scrub_pending(
        session,
        outbox,
        outbox.c.payload["workspaceid"].astext == workspace_id,
        outbox.c.payload["data"]["contact_id"].astext == contact_id,
        scrubbed=_scrubbed,
    )


def _scrubbed(payload: dict[str, Any]) -> dict[str, Any]:
    """Return an event envelope that names nobody: no respondent, comment or consent; a notification
    without its body."""
    data = dict(payload.get("data") or {})
    if payload.get("type", "").startswith("closeloop.NotificationRequested."):
        data["body"] = ERASED_BODY
    for name, blank in (("respondent", None), ("comment", None), ("consent_to_contact", False)):
        if name in data:
            data[name] = blank
    return {**payload, "data": data}


async def without_erased(session: AsyncSession, arrivals: list[Arrival]) -> list[Arrival]:
    """Return ``arrivals`` with those of contacts erased by now made anonymous (one query per batch)."""
    erased = await erased_among(
        session, erased_contacts, {(a.event.workspace_id, a.event.contact_id) for a in arrivals}
    )
    if not erased:
        return arrivals
    return [anonymous(a) if (a.event.workspace_id, a.event.contact_id) in erased else a for a in arrivals]


def anonymous(arrival: Arrival) -> Arrival:
    """Return the arrival of a response that names nobody: its scores and dimensions only (no contact,
    respondent, consent, or written answers)."""
    return replace(arrival, event=nameless(arrival.event), comments=(), named=False)


def nameless(event: ResponseCompleted) -> ResponseCompleted:
    """Return ``event`` without who answered and what they wrote (the contact id stays, for the events
    that carry it: the services that get them know the contact is erased too)."""
    answers = tuple(a.model_copy(update={"value": None}) if a.type == "open" else a for a in event.answers)
    return event.model_copy(update={"respondent": None, "consent_to_contact": False, "answers": answers})
