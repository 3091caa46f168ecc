"""The workspace's branding of its survey pages and emails."""

from __future__ import annotations

from fastapi import APIRouter

from services.responses.deps import RuntimeDep
from services.responses.handlers import workspace_settings
from services.responses.schemas import WorkspaceBrandingIn
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["branding"])


@router.get(
    "/v1/branding",
    summary="The workspace's branding of its pages and emails",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_branding(workspace: WorkspaceDep, session: SessionDep) -> WorkspaceBrandingIn:
    return WorkspaceBrandingIn(**await workspace_settings.branding_of(session, workspace_id=workspace))


@router.put(
    "/v1/branding",
    summary="Set the workspace's look: logo, colours (contrast-checked), font, tone; for emails the company "
    "name, an https logo URL and a footer (published to dispatch as BrandingChanged)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_branding(
    body: WorkspaceBrandingIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> WorkspaceBrandingIn:
    saved = await workspace_settings.put_branding(
        session,
        runtime.outbox,
        workspace_id=workspace,
        body=body,
        max_logo_bytes=runtime.settings.max_logo_bytes,
    )
    return WorkspaceBrandingIn(**saved)
