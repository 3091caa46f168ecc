"""Routes for the workspace's dispatch settings (branding, quiet hours, reminders) and its channels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from services.dispatch.deps import RuntimeDep
from services.dispatch.handlers import configuration
from services.dispatch.handlers.workspace import workspace_config
from services.dispatch.schemas import ChannelConfigIn, ChannelConfigOut, WorkspaceConfig
from shared.service import SessionDep, WorkspaceDep
from shared.vocabulary import SendChannel

router = APIRouter()


ChannelPath = Annotated[SendChannel, Path(description="email, sms, whatsapp or chat")]


@router.get(
    "/v1/settings", tags=["settings"], summary="Read the workspace's branding, quiet hours and reminders"
)
async def get_settings(workspace: WorkspaceDep, session: SessionDep) -> WorkspaceConfig:
    return await workspace_config(session, workspace_id=workspace)


@router.put(
    "/v1/settings", tags=["settings"], summary="Set branding, quiet hours, reminders, open tracking, link TTL"
)
async def put_settings(
    body: WorkspaceConfig, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> WorkspaceConfig:
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    return await configuration.put_settings(session, workspace_id=workspace, config=body)


@router.get("/v1/channels", tags=["settings"], summary="List channels: configured or not, secrets masked")
async def list_channels(
    workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[ChannelConfigOut]:
    return await configuration.list_channels(session, runtime.settings, workspace_id=workspace)


@router.put(
    "/v1/channels/{channel}",
    tags=["settings"],
    summary="Configure a channel: provider credentials, sender, chat webhook, rate limit",
)
async def put_channel(
    channel: ChannelPath,
    body: Annotated[ChannelConfigIn, Body()],
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ChannelConfigOut:
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    return await configuration.put_channel(
        session, runtime.settings, workspace_id=workspace, channel=channel, body=body
    )


@router.delete(
    "/v1/channels/{channel}",
    tags=["settings"],
    status_code=204,
    summary="Forget a channel's configuration (the deployment defaults apply again)",
)
async def delete_channel(
    channel: ChannelPath, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    await configuration.delete_channel(session, workspace_id=workspace, channel=channel)
    return Response(status_code=204)
