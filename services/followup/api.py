"""Routes of the follow-up service: parse, call a handler, return."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.followup import domain, handlers
from services.followup.deps import RuntimeDep
from services.followup.models import Task, TaskEntry, WorkspaceSettings
from services.followup.schemas import (
    AssignIn,
    HistoryEntry,
    ResolveIn,
    ResolveOut,
    RetentionSurvey,
    SettingsIn,
    SettingsOut,
    Status,
    TaskDetail,
    TaskOut,
)
from shared.errors import InvalidInput
from shared.service import SessionDep, WorkspaceDep

router = APIRouter()
TaskId = Annotated[str, Path(min_length=1, max_length=64, description="The task's id")]


def _settings_out(s: WorkspaceSettings | None) -> SettingsOut:
    if s is None:
        return SettingsOut(retention_survey_id=None, configured=False)
    return SettingsOut(
        retention_survey_id=s.retention_survey_id,
        retention_channel=s.retention_channel,  # type: ignore[arg-type]
        retention_delay_seconds=s.retention_delay_seconds,
        notify_email=s.notify_email,
        configured=True,
    )


def _task_out(t: Task) -> TaskOut:
    return TaskOut(
        id=t.id,
        status=t.status,
        response_id=t.response_id,
        survey_id=t.survey_id,  # type: ignore[arg-type]
        contact_id=t.contact_id,
        metric=t.metric,
        score=t.score,
        comment=t.comment,
        assignee=t.assignee,
        resolution_note=t.resolution_note,
        retention_request_id=t.retention_request_id,
        won_back=t.won_back,
        retention_score=t.retention_score,
        feedback_at=t.feedback_at,
        created_at=t.created_at,
        resolved_at=t.resolved_at,
        closed_at=t.closed_at,
    )


def _history_entry(e: TaskEntry) -> HistoryEntry:
    return HistoryEntry(
        kind=e.kind,
        occurred_at=e.occurred_at,  # type: ignore[arg-type]
        **{k: v for k, v in e.details.items() if k in HistoryEntry.model_fields},
    )


@router.get("/v1/settings", tags=["settings"], summary="The workspace's follow-up settings")
async def get_settings(workspace: WorkspaceDep, session: SessionDep) -> SettingsOut:
    return _settings_out(await handlers.get_settings(session, workspace_id=workspace))


@router.put(
    "/v1/settings",
    tags=["settings"],
    summary="Set the retention survey sent when a task is resolved (null: send none)",
)
async def put_settings(body: SettingsIn, workspace: WorkspaceDep, session: SessionDep) -> SettingsOut:
    saved = await handlers.put_settings(session, workspace_id=workspace, values=body.model_dump())
    return _settings_out(saved)


@router.get("/v1/tasks", tags=["tasks"], summary="The workspace's follow-up tasks, newest first")
async def list_tasks(
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    status: Status | None = None,
    assignee: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> list[TaskOut]:
    if limit > runtime.settings.max_page_size:
        raise InvalidInput(f"limit must be at most {runtime.settings.max_page_size}.", field="limit")
    tasks = await handlers.list_tasks(
        session, workspace_id=workspace, status=status, assignee=assignee, limit=limit
    )
    return [_task_out(t) for t in tasks]


@router.get("/v1/tasks/{task_id}", tags=["tasks"], summary="A task with its history")
async def get_task(task_id: TaskId, workspace: WorkspaceDep, session: SessionDep) -> TaskDetail:
    task = await handlers.get_task(session, workspace_id=workspace, task_id=task_id)
    history = await handlers.task_history(session, task=task)
    return TaskDetail(**_task_out(task).model_dump(), history=[_history_entry(e) for e in history])


@router.post(
    "/v1/tasks/{task_id}/assign",
    tags=["tasks"],
    summary="Assign an open task to a person",
    description="Reassigning is allowed while the task is open; resolved or closed tasks give 409.",
)
async def assign_task(
    task_id: TaskId, body: AssignIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> TaskOut:
    task = await handlers.assign_task(
        session, runtime.outbox, workspace_id=workspace, task_id=task_id, assignee=body.assignee
    )
    return _task_out(task)


@router.post(
    "/v1/tasks/{task_id}/resolve",
    tags=["tasks"],
    summary="Resolve a task with a note; sends the retention survey when one is configured",
    description="A task is resolved once (409 afterwards). When the workspace has a retention survey, "
    "a `SurveyRequested` (kind `retention`) is published with the task's "
    "`retention_request_id`; its answer closes the task with `won_back`.",
)
async def resolve_task(
    task_id: TaskId, body: ResolveIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> ResolveOut:
    task, retention = await handlers.resolve_task(
        session, runtime.outbox, workspace_id=workspace, task_id=task_id, note=body.note
    )
    if retention is None:
        survey = RetentionSurvey(requested=False, detail=domain.NO_RETENTION_SURVEY)
    else:
        survey = RetentionSurvey(
            requested=True,
            survey_id=retention.retention_survey_id,
            request_id=task.retention_request_id,
            detail=f"Retention survey requested over {retention.retention_channel}.",
        )
    return ResolveOut(task=_task_out(task), retention_survey=survey)
