"""The retention policy (``AnonymisationDue``, from trigger): cases whose feedback is older than the
cutoff stop naming anyone, as erasure leaves them — who to call, the comment, the resolution note and
action, the notes' text and links and the free text of the history go; scores, dimensions, root cause,
SLA times and the outcome stay, so the metrics still count them (``anonymised_at`` marks them).

A case still being worked (open, in progress, a workspace's own status) keeps its contact until it is
resolved: a later day's run anonymises it then. The funnel's responses and the decision log older than
the cutoff forget the contact id. A second run finds nothing left to change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain import cases as rules
from services.followup.handlers.erasure import blank_cases
from services.followup.models import Case, Decision, SeenResponse
from shared.events import AnonymisationDue


async def anonymise(session: AsyncSession, *, event: AnonymisationDue, now: datetime) -> int:
    """Anonymise the workspace's finished cases, funnel rows and decisions from before the cutoff;
    return how many cases."""
    ws, cutoff = event.workspace_id, event.cutoff
    ids = list(
        await session.scalars(
            select(Case.id)
            .where(
                Case.workspace_id == ws,
                Case.feedback_at < cutoff,
                Case.status.in_((rules.RESOLVED, rules.CLOSED)),
                Case.anonymised_at.is_(None),
            )
            .with_for_update()
        )
    )
    await blank_cases(session, ids, anonymised_at=now, updated_at=now)
    await session.execute(
        update(SeenResponse)
        .where(
            SeenResponse.workspace_id == ws,
            SeenResponse.scored_at < cutoff,
            SeenResponse.contact_id.is_not(None),
        )
        .values(contact_id=None)
    )
    await session.execute(
        update(Decision)
        .where(Decision.workspace_id == ws, Decision.created_at < cutoff, Decision.contact_id.is_not(None))
        .values(contact_id=None)
    )
    return len(ids)
