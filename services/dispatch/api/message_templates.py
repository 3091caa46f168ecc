"""Routes for message templates per survey, channel and locale, and their preview."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.dispatch.deps import RuntimeDep
from services.dispatch.handlers import configuration
from services.dispatch.schemas import PreviewIn, PreviewOut, TemplateIn, TemplateOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute)


@router.get(
    "/v1/templates",
    tags=["templates"],
    summary="List the workspace's message templates",
    dependencies=[requires(Permission.CHANNELS_READ)],
)
async def list_templates(workspace: WorkspaceDep, session: SessionDep) -> list[TemplateOut]:
    return [
        configuration.template_out(t)
        for t in await configuration.list_templates(session, workspace_id=workspace)
    ]


@router.post(
    "/v1/templates",
    tags=["templates"],
    status_code=201,
    summary="Create a template for a survey, channel and locale (Jinja2, sandboxed)",
    dependencies=[requires(Permission.CHANNELS_WRITE)],
)
async def create_template(
    body: TemplateIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> TemplateOut:
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    return configuration.template_out(
        await configuration.save_template(session, workspace_id=workspace, body=body)
    )


@router.post(
    "/v1/templates/preview",
    tags=["templates"],
    summary="Render a template (stored, inline, or built-in) for a sample recipient and merge fields",
    dependencies=[requires(Permission.CHANNELS_READ)],
)
async def preview_template(
    body: PreviewIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> PreviewOut:
    return await configuration.preview(session, runtime.settings, workspace_id=workspace, body=body)


@router.get(
    "/v1/templates/{template_id}",
    tags=["templates"],
    summary="Read a template",
    dependencies=[requires(Permission.CHANNELS_READ)],
)
async def get_template(template_id: str, workspace: WorkspaceDep, session: SessionDep) -> TemplateOut:
    return configuration.template_out(
        await configuration.get_template(session, workspace_id=workspace, template_id=template_id)
    )


@router.put(
    "/v1/templates/{template_id}",
    tags=["templates"],
    summary="Replace a template",
    dependencies=[requires(Permission.CHANNELS_WRITE)],
)
async def put_template(
    template_id: str, body: TemplateIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> TemplateOut:
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    return configuration.template_out(
        await configuration.save_template(session, workspace_id=workspace, body=body, template_id=template_id)
    )


@router.delete(
    "/v1/templates/{template_id}",
    tags=["templates"],
    status_code=204,
    summary="Delete a template",
    dependencies=[requires(Permission.CHANNELS_WRITE)],
)
async def delete_template(
    template_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    await configuration.delete_template(session, workspace_id=workspace, template_id=template_id)
    return Response(status_code=204)
