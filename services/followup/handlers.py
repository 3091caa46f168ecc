"""What happens when negative feedback or a retention answer arrives, and when agents work a task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import domain
from services.followup.models import Task, TaskEntry, WorkspaceSettings
from shared.errors import Conflict, NotFound
from shared.events import (
    ContactErased,
    FollowUpAssigned,
    FollowUpOpened,
    FollowUpOutcomeRecorded,
    FollowUpResolved,
    NegativeFeedbackDetected,
    NotificationRequested,
    ResponseScored,
    SurveyRequested,
    new_id,
    utcnow,
)
from shared.outbox import Outbox

NEGATIVE_FEEDBACK_SKIPPED = Counter(
    "closeloop_followup_negative_feedback_skipped_total",
    "Negative feedback that opened no task",
    ["reason"],
)


def _entry(task: Task, kind: str, **details: Any) -> TaskEntry:
    return TaskEntry(
        workspace_id=task.workspace_id,
        task_id=task.id,
        kind=kind,
        details={k: v for k, v in details.items() if v is not None},
        occurred_at=utcnow(),
    )


async def open_task(session: AsyncSession, outbox: Outbox, *, event: NegativeFeedbackDetected) -> Task | None:
    """Return the task opened for this negative feedback, or None (no consent, retention, seen before)."""
    decision = domain.decide_on_negative_feedback(
        consent_to_contact=event.consent_to_contact, kind=event.kind
    )
    if not decision.open_task:
        NEGATIVE_FEEDBACK_SKIPPED.labels("retention" if event.kind == "retention" else "no_consent").inc()
        return None
    task_id = (
        await session.execute(
            insert(Task)
            .values(
                id=new_id(),
                workspace_id=event.workspace_id,
                status="open",
                response_id=event.response_id,
                request_id=event.request_id,
                survey_id=event.survey_id,
                contact_id=event.contact_id,
                metric=event.negatives[0].metric,
                score=event.negatives[0].score,
                comment=event.comment,
                feedback_at=event.detected_at,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "response_id"])
            .returning(Task.id)
        )
    ).scalar_one_or_none()
    if task_id is None:
        return None
    task = await session.get_one(Task, task_id)
    session.add(_entry(task, "opened", score=task.score, metric=task.metric))
    await outbox.add(
        session,
        FollowUpOpened(
            workspace_id=task.workspace_id,
            task_id=task.id,
            contact_id=task.contact_id,
            occurred_at=utcnow(),
            response_id=task.response_id,
            survey_id=task.survey_id,
            score=task.score,
        ),
    )
    settings = await session.get(WorkspaceSettings, task.workspace_id)
    if settings is not None and settings.notify_email:
        subject, body = domain.new_task_notice(
            metric=task.metric, score=task.score, comment=task.comment, task_id=task.id
        )
        await outbox.add(
            session,
            NotificationRequested(
                workspace_id=task.workspace_id,
                notification_id=new_id(),
                channel="email",
                to=settings.notify_email,
                subject=subject,
                body=body,
            ),
        )
    return task


async def record_outcome(session: AsyncSession, outbox: Outbox, *, event: ResponseScored) -> Task | None:
    """Return the task closed by this retention answer, or None when it closes none (or did already)."""
    if event.kind != "retention" or event.request_id is None:
        return None
    task = await session.scalar(
        select(Task)
        .where(Task.workspace_id == event.workspace_id, Task.retention_request_id == event.request_id)
        .with_for_update()
    )
    if task is None or not domain.accepts_outcome(task.status):
        return None
    now = utcnow()
    retention_score = event.scores[0].score
    task.won_back = domain.won_back(negative=event.negative)
    task.retention_score = retention_score
    task.status = "closed"
    task.closed_at = now
    session.add(_entry(task, "outcome", won_back=task.won_back, retention_score=retention_score))
    await outbox.add(
        session,
        FollowUpOutcomeRecorded(
            workspace_id=task.workspace_id,
            task_id=task.id,
            contact_id=task.contact_id,
            occurred_at=now,
            won_back=task.won_back,
            retention_score=retention_score,
        ),
    )
    return task


async def erase_contact(session: AsyncSession, *, event: ContactErased) -> int:
    """Blank the comments of the contact's tasks; return how many tasks were touched."""
    result = await session.execute(
        update(Task)
        .where(
            Task.workspace_id == event.workspace_id,
            Task.contact_id == event.contact_id,
            Task.comment.is_not(None),
        )
        .values(comment=None)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


async def get_settings(session: AsyncSession, *, workspace_id: str) -> WorkspaceSettings | None:
    """Return the workspace's follow-up settings, or None before they were set."""
    return await session.get(WorkspaceSettings, workspace_id)


async def put_settings(
    session: AsyncSession, *, workspace_id: str, values: dict[str, Any]
) -> WorkspaceSettings:
    """Return the workspace's settings after replacing them with ``values``."""
    return (
        await session.execute(
            insert(WorkspaceSettings)
            .values(workspace_id=workspace_id, **values)
            .on_conflict_do_update(index_elements=["workspace_id"], set_={**values, "updated_at": utcnow()})
            .returning(WorkspaceSettings)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def list_tasks(
    session: AsyncSession, *, workspace_id: str, status: str | None, assignee: str | None, limit: int
) -> list[Task]:
    """Return the workspace's tasks, newest first, optionally by status and assignee."""
    query = select(Task).where(Task.workspace_id == workspace_id)
    if status is not None:
        query = query.where(Task.status == status)
    if assignee is not None:
        query = query.where(Task.assignee == assignee)
    return list(await session.scalars(query.order_by(Task.created_at.desc(), Task.id).limit(limit)))


async def get_task(
    session: AsyncSession, *, workspace_id: str, task_id: str, for_update: bool = False
) -> Task:
    """Return the workspace's task or raise ``NotFound``."""
    query = select(Task).where(Task.workspace_id == workspace_id, Task.id == task_id)
    task = await session.scalar(query.with_for_update() if for_update else query)
    if task is None:
        raise NotFound(f"No task {task_id!r} in this workspace.", field="task_id")
    return task


async def task_history(session: AsyncSession, *, task: Task) -> list[TaskEntry]:
    """Return the task's history, oldest first."""
    return list(
        await session.scalars(
            select(TaskEntry)
            .where(TaskEntry.workspace_id == task.workspace_id, TaskEntry.task_id == task.id)
            .order_by(TaskEntry.id)
        )
    )


async def assign_task(
    session: AsyncSession, outbox: Outbox, *, workspace_id: str, task_id: str, assignee: str
) -> Task:
    """Return the task assigned to ``assignee``; assigning the same person again changes nothing."""
    task = await get_task(session, workspace_id=workspace_id, task_id=task_id, for_update=True)
    try:
        domain.check_assignable(task.status)
    except domain.TransitionRefused as exc:
        raise Conflict(f"Cannot assign: {exc}.", field="status") from exc
    if task.assignee == assignee:
        return task
    task.assignee = assignee
    session.add(_entry(task, "assigned", assignee=assignee))
    await outbox.add(
        session,
        FollowUpAssigned(
            workspace_id=workspace_id,
            task_id=task.id,
            contact_id=task.contact_id,
            occurred_at=utcnow(),
            assignee=assignee,
        ),
    )
    return task


async def resolve_task(
    session: AsyncSession, outbox: Outbox, *, workspace_id: str, task_id: str, note: str
) -> tuple[Task, WorkspaceSettings | None]:
    """Return the resolved task and the settings its retention survey was requested with (None: none sent)."""
    task = await get_task(session, workspace_id=workspace_id, task_id=task_id, for_update=True)
    try:
        domain.check_resolvable(task.status)
    except domain.TransitionRefused as exc:
        raise Conflict(f"Cannot resolve: {exc}.", field="status") from exc
    settings = await get_settings(session, workspace_id=workspace_id)
    retention = settings if settings is not None and settings.retention_survey_id else None
    now = utcnow()
    task.status = "resolved"
    task.resolution_note = note
    task.resolved_at = now
    task.retention_request_id = new_id() if retention else None
    session.add(_entry(task, "resolved", note=note, retention_request_id=task.retention_request_id))
    await outbox.add(
        session,
        FollowUpResolved(
            workspace_id=workspace_id,
            task_id=task.id,
            contact_id=task.contact_id,
            occurred_at=now,
            note=note,
            retention_request_id=task.retention_request_id,
        ),
    )
    if retention is not None:
        delay = retention.retention_delay_seconds
        await outbox.add(
            session,
            SurveyRequested(
                workspace_id=workspace_id,
                request_id=task.retention_request_id,
                contact_id=task.contact_id,  # type: ignore[arg-type]
                survey_id=retention.retention_survey_id,
                kind="retention",
                channel=retention.retention_channel,  # type: ignore[arg-type]
                send_at=now + timedelta(seconds=delay) if delay else None,
                recipient=None,
                reason=domain.retention_reason(task.id),
            ),
        )
    return task, retention
