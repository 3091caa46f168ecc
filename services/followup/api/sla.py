"""SLA policies (when a case is due) and the escalation ladder (what happens when it is late)."""

from __future__ import annotations

from fastapi import APIRouter

from services.followup.deps import RuntimeDep
from services.followup.handlers import config
from services.followup.schemas.config import LadderIn, PoliciesIn, PolicyOut, StepOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["sla"])


@router.get(
    "/v1/sla-policies",
    summary="SLA policies (none: 48 h / 7 days calendar, 16 h / 40 h business)",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_policies(workspace: WorkspaceDep, session: SessionDep) -> list[PolicyOut]:
    return [from_row(PolicyOut, p) for p in await config.list_policies(session, workspace_id=workspace)]


@router.put(
    "/v1/sla-policies",
    summary="Replace the SLA policies; a case gets the most specific (team and priority, team, priority, any)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_policies(body: PoliciesIn, workspace: WorkspaceDep, session: SessionDep) -> list[PolicyOut]:
    rows = await config.replace_policies(
        session, workspace_id=workspace, policies=[p.model_dump() for p in body.policies]
    )
    return [from_row(PolicyOut, p) for p in rows]


@router.get(
    "/v1/escalation-ladder",
    summary="The escalation ladder, in order",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_ladder(workspace: WorkspaceDep, session: SessionDep) -> list[StepOut]:
    return [from_row(StepOut, s) for s in await config.list_ladder(session, workspace_id=workspace)]


@router.put(
    "/v1/escalation-ladder",
    summary="Replace the escalation ladder (at most 50 steps; new steps never apply to older cases)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_ladder(
    body: LadderIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[StepOut]:
    steps = await config.replace_ladder(
        session,
        workspace_id=workspace,
        steps=[s.model_dump() for s in body.steps],
        now=runtime.deps.clock.now(),
    )
    runtime.deps.escalator.wake_after_commit(session)
    return [from_row(StepOut, s) for s in steps]
