"""The retention policy (``AnonymisationDue``, from trigger): responses from before the cutoff are
anonymised — their free-text answers and hidden fields are blanked and their link to the contact goes
(``contact_id`` empty); scores, choices and the survey version stay. A response is anonymised once
(``anonymised_at``): a second run, or the same event again, changes nothing."""

from __future__ import annotations

from sqlalchemy import func, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.models import Response, ResponseAnswer
from shared.events import AnonymisationDue


async def on_anonymisation_due(session: AsyncSession, event: AnonymisationDue) -> None:
    """The consumer's callback: ``anonymise``."""
    await anonymise(session, event=event)


async def anonymise(session: AsyncSession, *, event: AnonymisationDue) -> int:
    """Anonymise the workspace's responses started (and completed) before the cutoff; return how many."""
    old = (
        select(Response.id)
        .where(
            Response.workspace_id == event.workspace_id,
            Response.anonymised_at.is_(None),
            func.coalesce(Response.completed_at, Response.started_at) < event.cutoff,
        )
        .with_for_update()
    )
    ids = list(await session.scalars(old))
    if not ids:
        return 0
    await session.execute(
        update(ResponseAnswer)
        .where(
            ResponseAnswer.workspace_id == event.workspace_id,
            ResponseAnswer.response_id.in_(ids),
            ResponseAnswer.type == "open",
        )
        .values(value=null())
    )
    await session.execute(
        update(Response)
        .where(Response.id.in_(ids))
        .values(contact_id="", hidden_fields={}, anonymised_at=event.due_at)
    )
    return len(ids)
