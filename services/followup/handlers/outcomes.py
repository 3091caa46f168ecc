"""What answers that come later do to a case: the retention answer records whether the customer was
won back, a retention invitation dispatch could not send closes the case, and a detractor who answers
a later survey as a promoter has climbed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain import cases as rules
from services.followup.handlers import common
from services.followup.models import Case
from shared.events import (
    FollowUpClimbed,
    FollowUpOutcomeRecorded,
    InvitationFailed,
    ResponseScored,
)
from shared.outbox import Outbox


async def record_outcome(
    session: AsyncSession, outbox: Outbox, *, event: ResponseScored, now: datetime
) -> Case | None:
    """Return the case closed by this retention answer, or None when it closes none (or did already)."""
    if event.kind != "retention" or event.request_id is None:
        return None
    case = await session.scalar(
        select(Case)
        .where(Case.workspace_id == event.workspace_id, Case.retention_request_id == event.request_id)
        .with_for_update()
    )
    if case is None or not rules.accepts_outcome(case.status, awaiting=case.retention_status == "requested"):
        return None
    retention_score = event.scores[0].score if event.scores else 0
    case.won_back = rules.won_back(negative=event.negative)
    case.retention_score = retention_score
    case.retention_status = "answered"
    if case.status != rules.CLOSED:
        case.status, case.closed_at = rules.CLOSED, now
    await common.schedule_escalation(session, case)
    await common.record(
        session,
        outbox,
        case,
        "outcome",
        FollowUpOutcomeRecorded(
            **common.about(case, now=now, actor="system"),
            won_back=case.won_back,
            retention_score=retention_score,
        ),
        actor="system",
        now=now,
        won_back=case.won_back,
        retention_score=retention_score,
    )
    return case


async def retention_failed(
    session: AsyncSession, outbox: Outbox, *, event: InvitationFailed, now: datetime
) -> Case | None:
    """Return the case closed because its retention survey could not be sent (dispatch found no way to
    reach the customer, or gave up): the case would otherwise wait for an answer that cannot come."""
    if event.kind != "retention":
        return None
    case = await session.scalar(
        select(Case)
        .where(Case.workspace_id == event.workspace_id, Case.retention_request_id == event.request_id)
        .with_for_update()
    )
    if case is None or case.status != rules.RESOLVED or case.retention_status != "requested":
        return None
    reason = f"retention survey not possible: {event.error}"
    case.retention_status = "not_possible"
    await common.close_without_retention(session, outbox, case, reason=reason, now=now)
    return case


async def record_climb(
    session: AsyncSession, outbox: Outbox, *, event: ResponseScored, now: datetime
) -> None:
    promoter = next((s for s in event.scores if s.classification == "promoter"), None)
    if promoter is None:
        return
    cases = await session.scalars(
        select(Case)
        .where(
            Case.workspace_id == event.workspace_id,
            Case.contact_id == event.contact_id,
            Case.climbed_at.is_(None),
            Case.response_id != event.response_id,
            Case.feedback_at < event.scored_at,
        )
        .with_for_update()
    )
    for case in cases:
        if not any(s.get("classification") == "detractor" for s in case.scores):
            continue
        case.climbed_at = now
        case.climbed_score = promoter.score
        await common.record(
            session,
            outbox,
            case,
            "climbed",
            FollowUpClimbed(
                **common.about(case, now=now, actor="system"),
                response_id=event.response_id,
                metric=promoter.metric,
                score=promoter.score,
            ),
            actor="system",
            now=now,
            response_id=event.response_id,
            score=promoter.score,
        )
