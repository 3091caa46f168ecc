"""Routes agents work cases with: parse, call a handler, return."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import queries
from services.followup.api.views import case_out, decision_out, for_caller, history_out, note_out
from services.followup.deps import ActorDep, FollowUpRuntime, PagingDep, RuntimeDep
from services.followup.domain.cases import Priority
from services.followup.handlers import common, work
from services.followup.models import Case
from services.followup.schemas.cases import (
    AssignIn,
    BulkIn,
    BulkOut,
    BulkResult,
    CaseDetail,
    CaseOut,
    DecisionOut,
    HistoryOut,
    NoteIn,
    NoteOut,
    PriorityIn,
    ReopenIn,
    ResolveIn,
    StatusIn,
)
from services.followup.schemas.common import Page
from shared.access import Permission
from shared.errors import CloseloopError, InvalidInput
from shared.guard import GuardedRoute, requires
from shared.service import PrincipalDep, SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["cases"])
CaseId = Annotated[str, Path(min_length=1, max_length=64, description="The case's id")]
T = TypeVar("T")


async def read_case(case_id: CaseId, workspace: WorkspaceDep, session: SessionDep) -> Case:
    """Return the caller's workspace's case at ``case_id`` (a 404 naming ``case_id`` when there is none)."""
    return await common.get_case(session, workspace_id=workspace, case_id=case_id)


ReadCase = Annotated[Case, Depends(read_case)]


@dataclass
class CaseWork:
    """Changing a workspace's cases in one request: the request's session, the runtime, the caller's
    workspace and who acts (as every history entry records it)."""

    session: AsyncSession
    runtime: FollowUpRuntime
    workspace: str
    actor: str

    async def change(
        self,
        case_id: str,
        change: Callable[..., Awaitable[T]],
        *,
        now: datetime | None = None,
        field: str = "case_id",
        **fields: Any,
    ) -> tuple[Case, T]:
        """Lock the workspace's case (404 naming ``field`` when there is none), then apply the work handler
        ``change`` to it with ``fields``, as the actor at ``now`` (the clock's time by default); return the
        case and what the handler returned."""
        case = await common.get_case(
            self.session, workspace_id=self.workspace, case_id=case_id, for_update=True, field=field
        )
        now = now or self.runtime.deps.clock.now()
        return case, await change(
            self.session, self.runtime.outbox, case, **fields, actor=self.actor, now=now
        )


async def case_work(
    workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, actor: ActorDep
) -> CaseWork:
    """Return the request's ``CaseWork``: its session and runtime, the caller's workspace and actor."""
    return CaseWork(session, runtime, workspace, actor)


CaseWorkDep = Annotated[CaseWork, Depends(case_work)]


@router.get(
    "/v1/cases",
    summary="The workspace's cases, newest first, paginated; filter for an agent's open cases",
    description='`assignee=<agent id>&active=true` is an agent\'s "my open cases"; `overdue=true` keeps cases past '
    "a calendar due time; `unassigned=true` is the queue.",
    dependencies=[requires(Permission.CASES_READ)],
)
async def list_cases(
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    paging: PagingDep,
    status: Annotated[str | None, Query(max_length=40)] = None,
    active: bool | None = None,
    assignee: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    team_id: Annotated[str | None, Query(max_length=36)] = None,
    priority: Priority | None = None,
    opened_because: Literal["negative", "loyalty", "threshold"] | None = None,
    contact_id: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    unassigned: bool | None = None,
) -> Page[CaseOut]:
    filters = queries.CaseFilters(
        status, active, assignee, team_id, priority, opened_because, contact_id, overdue, unassigned
    )
    rows, next_cursor = await queries.list_cases(
        session,
        workspace_id=workspace,
        filters=filters,
        limit=paging.limit,
        cursor=paging.cursor,
        now=runtime.deps.clock.now(),
    )
    return paging.page([for_caller(case_out(c), principal) for c in rows], next_cursor)


@router.get(
    "/v1/cases/{case_id}",
    summary="A case: who to call, the answers, its SLA, history and notes",
    dependencies=[requires(Permission.CASES_READ)],
)
async def get_case(case: ReadCase, session: SessionDep, principal: PrincipalDep) -> CaseDetail:
    return CaseDetail(
        **for_caller(case_out(case), principal).model_dump(),
        history=[history_out(e) for e in await queries.history(session, case=case)],
        notes=[note_out(n) for n in await queries.notes(session, case=case)],
    )


@router.get(
    "/v1/cases/{case_id}/history",
    summary="Every change to a case, oldest first, with its actor",
    dependencies=[requires(Permission.CASES_READ)],
)
async def case_history(case: ReadCase, session: SessionDep) -> list[HistoryOut]:
    return [history_out(e) for e in await queries.history(session, case=case)]


@router.get(
    "/v1/cases/{case_id}/notes",
    summary="A case's notes, oldest first",
    dependencies=[requires(Permission.CASES_READ)],
)
async def list_notes(case: ReadCase, session: SessionDep) -> list[NoteOut]:
    return [note_out(n) for n in await queries.notes(session, case=case)]


@router.post(
    "/v1/cases/{case_id}/notes",
    status_code=201,
    summary="Append a note (with links as attachments); notes are never edited",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def add_note(
    case_id: CaseId,
    body: NoteIn,
    cases: CaseWorkDep,
) -> NoteOut:
    attachments = [a.model_dump(mode="json", exclude_none=True) for a in body.attachments]
    _, note = await cases.change(case_id, work.add_note, body=body.body, attachments=attachments)
    return note_out(note)


@router.post(
    "/v1/cases/{case_id}/assign",
    summary="Give a case to an agent, or to a team (its next member in turn takes it)",
    description="409 once the case is resolved or closed. A workspace may ask for a `note` with reassignments.",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def assign(
    case_id: CaseId,
    body: AssignIn,
    cases: CaseWorkDep,
) -> CaseOut:
    if body.agent_id is None and body.team_id is None:
        raise InvalidInput("Give agent_id, team_id or both.", field="agent_id")
    case, _ = await cases.change(
        case_id, work.assign, agent_id=body.agent_id, team_id=body.team_id, note=body.note
    )
    return case_out(case)


@router.post(
    "/v1/cases/{case_id}/status",
    summary="Move a case to another status (in_progress = the customer was contacted)",
    description="Forward only unless the workspace allows going back (PUT /v1/workflow). `resolved` is reached "
    "with /resolve; `closed` only from resolved. 409 for a refused move, 422 for an unknown status or a missing "
    "required note.",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def change_status(
    case_id: CaseId,
    body: StatusIn,
    cases: CaseWorkDep,
) -> CaseOut:
    case, _ = await cases.change(case_id, work.change_status, status=body.status, note=body.note)
    return case_out(case)


@router.post(
    "/v1/cases/{case_id}/priority",
    summary="Set a case's priority; its SLA due times follow",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def set_priority(
    case_id: CaseId,
    body: PriorityIn,
    cases: CaseWorkDep,
) -> CaseOut:
    case, _ = await cases.change(case_id, work.set_priority, priority=body.priority)
    return case_out(case)


@router.post(
    "/v1/cases/{case_id}/resolve",
    summary="Resolve a case with a root cause and the action taken; the retention survey goes out",
    description="The root cause is a `category › cause` of the workspace's taxonomy (GET /v1/root-causes). The "
    "retention survey goes over the channel the customer answered on, else any channel they have; when they have "
    "none the case closes at once (`retention.status` = `not_possible`).",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def resolve(
    case_id: CaseId,
    body: ResolveIn,
    cases: CaseWorkDep,
) -> CaseOut:
    case, _ = await cases.change(
        case_id,
        work.resolve,
        root_cause=(body.root_cause.category, body.root_cause.cause),
        action_taken=body.action_taken,
        note=body.note,
    )
    return case_out(case)


@router.post(
    "/v1/cases/{case_id}/reopen",
    summary="Reopen a resolved or closed case, with a reason",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def reopen(
    case_id: CaseId,
    body: ReopenIn,
    cases: CaseWorkDep,
) -> CaseOut:
    case, _ = await cases.change(case_id, work.reopen, reason=body.reason)
    return case_out(case)


@router.post(
    "/v1/cases/bulk",
    summary="Assign, move, prioritise or annotate up to 500 cases at once",
    description="Each case succeeds or fails on its own (a failed case changes nothing); the result says, per "
    "case, the status it alone would have answered.",
    dependencies=[requires(Permission.CASES_WRITE)],
)
async def bulk(body: BulkIn, cases: CaseWorkDep) -> BulkOut:
    needs = {
        "assign": ("agent_id", body.agent_id or body.team_id),
        "status": ("status", body.status),
        "note": ("note", body.note),
        "priority": ("priority", body.priority),
    }
    field, given = needs[body.action]
    if not given:
        raise InvalidInput(f"action {body.action} needs {field}.", field=field)
    changes: dict[str, tuple[Callable[..., Awaitable[object]], dict[str, Any]]] = {
        "assign": (work.assign, {"agent_id": body.agent_id, "team_id": body.team_id, "note": body.note}),
        "status": (work.change_status, {"status": body.status or "", "note": body.note}),
        "priority": (work.set_priority, {"priority": body.priority or "normal"}),
        "note": (work.add_note, {"body": body.note or ""}),
    }
    change, fields = changes[body.action]
    now = cases.runtime.deps.clock.now()
    results = []
    for case_id in dict.fromkeys(body.case_ids):
        try:
            async with cases.session.begin_nested():
                case, _ = await cases.change(case_id, change, now=now, **fields)
            results.append(BulkResult(id=case_id, ok=True, status=200, case=case_out(case)))
        except CloseloopError as exc:
            results.append(BulkResult(id=case_id, ok=False, status=exc.status, error=exc.detail))
    ok = sum(r.ok for r in results)
    return BulkOut(succeeded=ok, failed=len(results) - ok, results=results)


@router.get(
    "/v1/decisions",
    summary="Why responses opened a case or not, and where cases were routed; newest first",
    dependencies=[requires(Permission.CASES_READ)],
)
async def list_decisions(
    workspace: WorkspaceDep,
    session: SessionDep,
    paging: PagingDep,
    kind: Literal["opening", "routing"] | None = None,
    outcome: Annotated[
        str | None, Query(max_length=20, description="opened, no_consent, unreachable, routed, default")
    ] = None,
    response_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[DecisionOut]:
    rows, next_cursor = await queries.decisions(
        session,
        workspace_id=workspace,
        kind=kind,
        outcome=outcome,
        response_id=response_id,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return paging.page([decision_out(d) for d in rows], next_cursor)
