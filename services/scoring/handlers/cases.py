"""Case outcomes from followup's ``FollowUp*`` events, so that an export carries what became of the
feedback: the case's status, its root cause, and whether the customer was won back.

A case's events share a partition (keyed by its id), so they arrive in order; an event about a case
scoring never saw opened (its ``FollowUpOpened`` came before scoring consumed the topic) changes nothing.
"""

from __future__ import annotations

from typing import Any, get_args

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.models import CaseOutcome
from shared.events import (
    FollowUpOpened,
    FollowUpOutcomeRecorded,
    FollowUpReopened,
    FollowUpResolved,
    FollowUpStatusChanged,
)

CaseEvent = (
    FollowUpOpened | FollowUpStatusChanged | FollowUpResolved | FollowUpReopened | FollowUpOutcomeRecorded
)
CASE_EVENTS = get_args(CaseEvent)


async def case_event(session: AsyncSession, *, event: CaseEvent) -> None:
    """Record what a ``FollowUp*`` event says about its case's outcome."""
    if isinstance(event, FollowUpOpened):
        await session.execute(
            insert(CaseOutcome)
            .values(
                workspace_id=event.workspace_id,
                case_id=event.task_id,
                response_id=event.response_id,
                status="open",
                opened_at=event.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "case_id"])
        )
        return
    changes: dict[str, Any]
    if isinstance(event, FollowUpResolved):
        changes = {
            "status": "resolved",
            "resolved_at": event.occurred_at,
            "root_cause_category": event.root_cause_category,
            "root_cause": event.root_cause,
        }
    elif isinstance(event, FollowUpOutcomeRecorded):
        changes = {"won_back": event.won_back, "retention_score": event.retention_score}
    else:
        changes = {"status": event.to_status}
    await session.execute(
        update(CaseOutcome)
        .where(CaseOutcome.workspace_id == event.workspace_id, CaseOutcome.case_id == event.task_id)
        .values(**changes)
    )
