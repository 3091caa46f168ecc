"""Erasure (``ContactErased``): the contact's cases stay, anonymised, and nothing about them is stored
again.

- their cases lose the contact id, who to call (name, email, phone, locale, time zone, company), the
  comment, the resolution note and action taken; their notes are blanked (``erased: true``) and the
  free text of their history (notes, reopen reasons) goes; scores, dimensions, root cause, SLA times
  and the outcome stay, so the metrics still count them;
- the funnel's responses and the decision log forget the contact id;
- events about them not yet relayed lose their free text: the new-case notification that quotes their
  comment, a resolution's note and action, a reopen reason;
- the contact is remembered as erased (``shared.erasure``): a score event about them that arrives later
  (another service's relay read it before that service erased them) opens no case and keeps nothing
  that names them (``anonymous``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Text, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.models import (
    Case,
    CaseEntry,
    CaseNote,
    Decision,
    SeenResponse,
    erased_contacts,
    outbox,
)
from shared.erasure import ERASED, ERASED_BODY, is_erased, remember_erased
from shared.events import ContactErased, NegativeFeedbackDetected, ResponseScored
from shared.scrub import scrub_pending

_FREE_TEXT = ("note", "action_taken", "reason")
"""Fields of follow-up events that hold what people wrote about the customer."""
E = TypeVar("E", NegativeFeedbackDetected, ResponseScored)
_BLANK_CASE: dict[str, None] = dict.fromkeys(
    (
        "contact_id",
        "comment",
        "contact_name",
        "contact_email",
        "contact_phone",
        "contact_locale",
        "contact_timezone",
        "contact_company",
        "resolution_note",
        "action_taken",
    )
)


async def erase_contact(session: AsyncSession, *, event: ContactErased, now: datetime) -> int:
    """Remove the contact's personal data from their cases (which stay, anonymised), the funnel, the
    decision log and the outbox, and remember them as erased; return how many cases were touched."""
    ws, contact = event.workspace_id, event.contact_id
    await remember_erased(
        session, erased_contacts, workspace_id=ws, contact_id=contact, erased_at=event.erased_at
    )
    ids = list(
        await session.scalars(select(Case.id).where(Case.workspace_id == ws, Case.contact_id == contact))
    )
    await blank_cases(session, ids, erased_at=now, updated_at=now)
    await session.execute(
        update(SeenResponse)
        .where(SeenResponse.workspace_id == ws, SeenResponse.contact_id == contact)
        .values(contact_id=None)
    )
    await session.execute(
        update(Decision)
        .where(Decision.workspace_id == ws, Decision.contact_id == contact)
        .values(contact_id=None)
    )
    await scrub_outbox(session, workspace_id=ws, contact_id=contact, case_ids=ids)
    return len(ids)


async def blank_cases(session: AsyncSession, ids: list[str], **mark: datetime) -> None:
    """Remove who to call and what was written from the cases ``ids`` (which stay, anonymous): the
    contact id and details, the comment, the resolution note and action, the notes' text and links
    (``erased: true``) and the free text of their history; ``mark`` sets ``erased_at`` or
    ``anonymised_at`` (and ``updated_at``)."""
    if not ids:
        return
    await session.execute(update(Case).where(Case.id.in_(ids)).values(**_BLANK_CASE, **mark))
    await session.execute(
        update(CaseNote).where(CaseNote.case_id.in_(ids)).values(body=None, attachments=[], erased=True)
    )
    free_text = literal(list(_FREE_TEXT), ARRAY(Text))
    await session.execute(
        update(CaseEntry)
        .where(CaseEntry.case_id.in_(ids), CaseEntry.details.has_any(free_text))
        .values(details=CaseEntry.details.op("-")(free_text))
    )


async def scrub_outbox(
    session: AsyncSession, *, workspace_id: str, contact_id: str, case_ids: list[str]
) -> int:
    """Take the free text about the contact out of the events still waiting to be relayed; return how
    many were changed."""
    data = outbox.c.payload["data"]
    about = (data["contact_id"].astext == contact_id) | (data["task_id"].astext.in_(case_ids))
    return await scrub_pending(
        session, outbox, outbox.c.payload["workspaceid"].astext == workspace_id, about, scrubbed=_scrubbed
    )


def _scrubbed(payload: dict[str, Any]) -> dict[str, Any]:
    """Return an event envelope without the free text it holds about a contact."""
    data = dict(payload.get("data") or {})
    if payload.get("type", "").startswith("closeloop.NotificationRequested."):
        data["body"] = ERASED_BODY
    for name in _FREE_TEXT:
        if isinstance(data.get(name), str) and data[name]:
            data[name] = ERASED
    return {**payload, "data": data}


async def anonymous(session: AsyncSession, event: E) -> E:
    """Return ``event``, or — when its contact was erased — a copy that names nobody: no contact id, no
    respondent, no comment, and no consent (nobody is left to call)."""
    if not await is_erased(
        session, erased_contacts, workspace_id=event.workspace_id, contact_id=event.contact_id
    ):
        return event
    return event.model_copy(
        update={"contact_id": "", "respondent": None, "comment": None, "consent_to_contact": False}
    )
