"""The retention policy (``AnonymisationDue``, from trigger): responses completed before the cutoff
stop naming anyone — their comments go (with what was read from them: the text and its lemmas are the
customer's words) and they forget the contact id. Their scores, classes, loyalty cell and dimensions
stay, so every report over any period still counts them; theme and sentiment reports cover the
comments still kept. A second run finds nothing left to change."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.models import Comment, ScoredResponse
from shared.events import AnonymisationDue


async def anonymise(session: AsyncSession, *, event: AnonymisationDue) -> int:
    """Drop the comments and contact links of the workspace's responses completed before the cutoff;
    return how many responses lost their contact."""
    old = (ScoredResponse.workspace_id == event.workspace_id) & (ScoredResponse.completed_at < event.cutoff)
    await session.execute(
        delete(Comment).where(
            Comment.workspace_id == event.workspace_id,
            Comment.response_key.in_(select(ScoredResponse.key).where(old)),
        )
    )
    result = await session.execute(
        update(ScoredResponse).where(old, ScoredResponse.contact_id.is_not(None)).values(contact_id=None)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
