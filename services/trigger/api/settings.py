"""Routes for the workspace settings: the frequency cap, quiet hours and time zone."""

from __future__ import annotations

from fastapi import APIRouter

from services.trigger import queries
from services.trigger.deps import ActorDep, RuntimeDep
from services.trigger.handlers import settings
from services.trigger.schemas.settings import WorkspaceSettings as SettingsBody
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["settings"])


@router.get(
    "/v1/settings",
    summary="The workspace's contact-frequency cap, quiet hours and time zone",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_settings(workspace: WorkspaceDep, session: SessionDep) -> SettingsBody:
    return settings.settings_out(await queries.workspace_settings(session, workspace_id=workspace))


@router.put(
    "/v1/settings",
    summary="Replace the workspace's frequency cap, quiet hours and time zone (audited)",
    description="Quiet hours are kept here for every service: a change is published as "
    "`QuietHoursChanged`, and dispatch applies it to the reminders it schedules.",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_settings(
    body: SettingsBody, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, actor: ActorDep
) -> SettingsBody:
    return await settings.put_settings(
        session,
        runtime.deps.caches,
        runtime.outbox,
        workspace_id=workspace,
        body=body,
        actor=actor,
        now=runtime.deps.clock.now(),
    )
