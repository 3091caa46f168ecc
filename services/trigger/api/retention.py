"""Routes for the retention policy: how long answers stay identifiable (trigger owns it, with the
workspace's other policies of whom to ask and when)."""

from __future__ import annotations

from fastapi import APIRouter

from services.trigger.deps import RuntimeDep
from services.trigger.handlers import retention
from services.trigger.schemas.retention import RetentionIn, RetentionOut, RunOut
from shared.access import Permission, Principal
from shared.service import SessionDep, requires

router = APIRouter()


async def _out(session: SessionDep, workspace_id: str, days: int | None) -> RetentionOut:
    run = await retention.last_run(session, workspace_id=workspace_id)
    return RetentionOut(
        anonymise_after_days=days,
        last_run=RunOut(
            day=run.day, cutoff=run.cutoff, anonymise_after_days=run.anonymise_after_days, ran_at=run.ran_at
        )
        if run is not None
        else None,
    )


@router.get(
    "/v1/retention", tags=["settings"], summary="How long answers stay identifiable, and the last run"
)
async def get_retention(
    session: SessionDep, principal: Principal = requires(Permission.SETTINGS_READ)
) -> RetentionOut:
    found = await retention.policy(session, workspace_id=principal.workspace_id)
    return await _out(session, principal.workspace_id, found.anonymise_after_days if found else None)


@router.put(
    "/v1/retention",
    tags=["settings"],
    summary="Set how long answers stay identifiable (audited; null keeps them)",
    description="Once a day (UTC) trigger publishes `AnonymisationDue` for the workspace, and every service "
    "anonymises its answers, cases, invitations and received events older than the policy's days: the "
    "links to the contact and the free text go, scores and dimensions stay. A new policy's first run "
    "goes at once.",
)
async def put_retention(
    body: RetentionIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.SETTINGS_WRITE),
) -> RetentionOut:
    days = await retention.put_policy(
        session, workspace_id=principal.workspace_id, days=body.anonymise_after_days, actor=principal.actor
    )
    runtime.deps.anonymiser.wake_after_commit(session)
    return await _out(session, principal.workspace_id, days)
