"""The old task API, kept for existing clients: ``/v1/tasks…`` works as before over the cases and
answers with a ``Deprecation`` header and a ``Link`` to its successor under ``/v1/cases``.

A task has the three statuses it always had: every status of a case still being worked shows as
``open`` (and ``?status=open`` lists them). Assigning takes free text (it becomes an agent of that
id); resolving takes a note only, recorded as the action taken with the root cause ``Other › Other``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.followup import queries
from services.followup.api.cases import CaseWorkDep
from services.followup.deps import RuntimeDep, check_limit
from services.followup.domain import cases as rules
from services.followup.domain.taxonomy import LEGACY_ROOT_CAUSE
from services.followup.handlers import common, config, work
from services.followup.models import Case, CaseEntry
from services.followup.schemas.common import NonBlank
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["tasks (deprecated)"])
TaskId = Annotated[str, Path(min_length=1, max_length=64, description="The task's (case's) id")]
DEPRECATED_SINCE = "@1796083200"  # 2026-12-01, RFC 9745


def _deprecated(response: Response, successor: str) -> None:
    response.headers["Deprecation"] = DEPRECATED_SINCE
    # The path holds the caller's id as given: quoted, so that any text makes a valid header.
    response.headers["Link"] = f'<{quote(successor, safe="/")}>; rel="successor-version"'


class AssignIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"assignee": "sam@acme.example"}]}
    )

    assignee: Annotated[NonBlank, Field(max_length=200)]


class ResolveIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "Called the customer, refunded the fee."}]}
    )

    note: Annotated[NonBlank, Field(max_length=10_000)]


class HistoryEntry(BaseModel):
    kind: str
    occurred_at: datetime
    assignee: str | None = None
    note: str | None = None
    retention_request_id: str | None = None
    won_back: bool | None = None
    retention_score: int | None = None


class TaskOut(BaseModel):
    id: str
    status: Literal["open", "resolved", "closed"]
    response_id: str
    survey_id: str
    contact_id: str
    metric: str
    score: int
    comment: str | None
    assignee: str | None
    resolution_note: str | None
    retention_request_id: str | None
    won_back: bool | None
    retention_score: int | None
    feedback_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None


class TaskDetail(TaskOut):
    history: list[HistoryEntry]


class RetentionSurvey(BaseModel):
    requested: bool
    survey_id: str | None = None
    request_id: str | None = None
    detail: str


class ResolveOut(BaseModel):
    task: TaskOut
    retention_survey: RetentionSurvey


def _task_out(c: Case) -> TaskOut:
    return from_row(
        TaskOut,
        c,
        status=c.status if c.status in (rules.RESOLVED, rules.CLOSED) else rules.OPEN,
        contact_id=c.contact_id or "",
    )


def _history_entry(e: CaseEntry) -> HistoryEntry:
    details: dict[str, Any] = {k: v for k, v in e.details.items() if k in HistoryEntry.model_fields}
    return HistoryEntry(kind=e.kind, occurred_at=e.occurred_at, **details)


async def _case(session: SessionDep, workspace: str, task_id: str) -> Case:
    return await common.get_case(session, workspace_id=workspace, case_id=task_id, field="task_id")


@router.get(
    "/v1/tasks",
    summary="Deprecated: GET /v1/cases. The workspace's tasks, newest first",
    dependencies=[requires(Permission.CASES_READ)],
)
async def list_tasks(
    response: Response,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    status: Literal["open", "resolved", "closed"] | None = None,
    assignee: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> list[TaskOut]:
    _deprecated(response, "/v1/cases")
    check_limit(limit, runtime)
    rows, _ = await queries.list_cases(
        session,
        workspace_id=workspace,
        filters=queries.CaseFilters(
            status=None if status == rules.OPEN else status,
            active=True if status == rules.OPEN else None,
            assignee=assignee,
        ),
        limit=limit,
        cursor=None,
        now=runtime.deps.clock.now(),
    )
    return [_task_out(c) for c in rows]


@router.get(
    "/v1/tasks/{task_id}",
    summary="Deprecated: GET /v1/cases/{id}. A task with its history",
    dependencies=[requires(Permission.CASES_READ)],
)
async def get_task(
    task_id: TaskId, response: Response, workspace: WorkspaceDep, session: SessionDep
) -> TaskDetail:
    _deprecated(response, f"/v1/cases/{task_id}")
    case = await _case(session, workspace, task_id)
    history = await queries.history(session, case=case)
    return TaskDetail(**_task_out(case).model_dump(), history=[_history_entry(e) for e in history])


@router.post(
    "/v1/tasks/{task_id}/assign",
    summary="Deprecated: POST /v1/cases/{id}/assign. Assign a task to a person",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def assign_task(task_id: TaskId, body: AssignIn, response: Response, cases: CaseWorkDep) -> TaskOut:
    _deprecated(response, f"/v1/cases/{task_id}/assign")
    case, _ = await cases.change(
        task_id,
        work.assign,
        field="task_id",
        agent_id=body.assignee,
        team_id=None,
        note=None,
        legacy=True,
    )
    return _task_out(case)


@router.post(
    "/v1/tasks/{task_id}/resolve",
    summary="Deprecated: POST /v1/cases/{id}/resolve. Resolve a task with a note (root cause Other › Other)",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def resolve_task(
    task_id: TaskId, body: ResolveIn, response: Response, cases: CaseWorkDep
) -> ResolveOut:
    _deprecated(response, f"/v1/cases/{task_id}/resolve")
    case, _ = await cases.change(
        task_id,
        work.resolve,
        field="task_id",
        root_cause=LEGACY_ROOT_CAUSE,
        action_taken=body.note,
        note=body.note,
        legacy=True,
    )
    settings = await config.get_settings(cases.session, workspace_id=cases.workspace)
    if case.retention_status == "requested" and settings is not None:
        survey = RetentionSurvey(
            requested=True,
            survey_id=settings.retention_survey_id,
            request_id=case.retention_request_id,
            detail=f"Retention survey requested over {case.retention_channel}.",
        )
    elif case.retention_status == "not_possible":
        survey = RetentionSurvey(requested=False, detail=rules.RETENTION_NOT_POSSIBLE)
    else:
        survey = RetentionSurvey(requested=False, detail=rules.NO_RETENTION_SURVEY)
    return ResolveOut(task=_task_out(case), retention_survey=survey)
