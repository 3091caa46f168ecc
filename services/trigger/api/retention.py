"""Routes for the retention policy: how long answers stay identifiable (trigger owns it, with the
workspace's other policies of whom to ask and when)."""

from __future__ import annotations

from fastapi import APIRouter

from services.trigger.deps import ActorDep, RuntimeDep
from services.trigger.handlers import retention
from services.trigger.schemas.retention import RetentionIn, RetentionOut, RunOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["settings"])


async def _out(session: SessionDep, workspace_id: str, days: int | None) -> RetentionOut:
    run = await retention.last_run(session, workspace_id=workspace_id)
    return RetentionOut(
        anonymise_after_days=days,
        last_run=RunOut.model_validate(run) if run is not None else None,
    )


@router.get(
    "/v1/retention",
    summary="How long answers stay identifiable, and the last run",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_retention(session: SessionDep, workspace: WorkspaceDep) -> RetentionOut:
    found = await retention.policy(session, workspace_id=workspace)
    return await _out(session, workspace, found.anonymise_after_days if found else None)


@router.put(
    "/v1/retention",
    summary="Set how long answers stay identifiable (audited; null keeps them)",
    description="Once a day (UTC) trigger publishes `AnonymisationDue` for the workspace, and every service "
    "anonymises its answers, cases, invitations and received events older than the policy's days: the "
    "links to the contact and the free text go, scores and dimensions stay. A new policy's first run "
    "goes at once.",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_retention(
    body: RetentionIn, session: SessionDep, workspace: WorkspaceDep, runtime: RuntimeDep, actor: ActorDep
) -> RetentionOut:
    days = await retention.put_policy(
        session, workspace_id=workspace, days=body.anonymise_after_days, actor=actor
    )
    runtime.deps.anonymiser.wake_after_commit(session)
    return await _out(session, workspace, days)
