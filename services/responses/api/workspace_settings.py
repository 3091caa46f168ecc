"""Routes for the workspace's glossary of internal terms and the branding of its survey pages."""

from __future__ import annotations

from fastapi import APIRouter

from services.responses.deps import RuntimeDep
from services.responses.handlers import workspace_settings
from services.responses.schemas import GlossaryIn, WorkspaceBrandingIn
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute)


@router.get(
    "/v1/glossary",
    tags=["checklist"],
    summary="The workspace's internal terms the checklist flags",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def get_glossary(workspace: WorkspaceDep, session: SessionDep) -> GlossaryIn:
    return GlossaryIn(
        terms=[
            {"term": g.term, "hint": g.hint}
            for g in await workspace_settings.glossary_of(session, workspace_id=workspace)
        ]
    )


@router.put(
    "/v1/glossary",
    tags=["checklist"],
    summary="Replace the workspace's glossary of internal terms",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def put_glossary(body: GlossaryIn, workspace: WorkspaceDep, session: SessionDep) -> GlossaryIn:
    return GlossaryIn(terms=await workspace_settings.put_glossary(session, workspace_id=workspace, body=body))


@router.get(
    "/v1/branding",
    tags=["branding"],
    summary="The workspace's branding of its pages and emails",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_branding(workspace: WorkspaceDep, session: SessionDep) -> WorkspaceBrandingIn:
    return WorkspaceBrandingIn(**await workspace_settings.branding_of(session, workspace_id=workspace))


@router.put(
    "/v1/branding",
    tags=["branding"],
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
