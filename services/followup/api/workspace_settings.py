"""The workspace's settings: the retention survey sent when a case is resolved, and the staff address."""

from __future__ import annotations

from fastapi import APIRouter

from services.followup.handlers import config
from services.followup.models import WorkspaceSettings
from services.followup.schemas.config import SettingsIn, SettingsOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["settings"])


def _settings_out(s: WorkspaceSettings | None) -> SettingsOut:
    if s is None:
        return SettingsOut(retention_survey_id=None, configured=False)
    return from_row(SettingsOut, s, configured=True)


@router.get(
    "/v1/settings",
    summary="The workspace's retention survey and staff address",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_settings(workspace: WorkspaceDep, session: SessionDep) -> SettingsOut:
    return _settings_out(await config.get_settings(session, workspace_id=workspace))


@router.put(
    "/v1/settings",
    summary="Set the retention survey sent when a case is resolved (null: send none)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_settings(body: SettingsIn, workspace: WorkspaceDep, session: SessionDep) -> SettingsOut:
    return _settings_out(await config.put_settings(session, workspace_id=workspace, values=body.model_dump()))
