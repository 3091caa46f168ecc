"""Routes for the workspace's dispatch settings (reminders, open tracking, link TTL; branding and quiet
hours deprecated: their owners are responses and trigger) and its channels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from services.dispatch.deps import DispatchRuntime, RuntimeDep
from services.dispatch.handlers import configuration
from services.dispatch.handlers.workspace import workspace_config
from services.dispatch.schemas import ChannelConfigIn, ChannelConfigOut, WorkspaceConfig
from shared.access import Permission, require
from shared.guard import GuardedRoute, requires
from shared.service import PrincipalDep, SessionDep, WorkspaceDep
from shared.vocabulary import SendChannel

router = APIRouter(route_class=GuardedRoute)


ChannelPath = Annotated[SendChannel, Path(description="email, sms, whatsapp or chat")]


DEPRECATION = (
    "`branding` and `quiet_hours` here are deprecated and answered for one more release: branding belongs "
    "to responses (`PUT /v1/branding`), quiet hours to trigger (`PUT /v1/settings`); each tells dispatch by "
    "event, and once it has, its value wins over the one stored here. Every answer carries `Deprecation: "
    'true` and `Link: <…>; rel="successor-version"` headers naming both.'
)


def deprecated(response: Response, runtime: DispatchRuntime) -> None:
    """Mark the answer as deprecated (RFC 9745) and name the owners' endpoints (RFC 8288)."""
    s = runtime.settings
    response.headers["Deprecation"] = "true"
    response.headers["Link"] = (
        f'<{s.survey_base_url.rstrip("/")}/v1/branding>; rel="successor-version"; title="branding", '
        f'<{s.trigger_url.rstrip("/")}/v1/settings>; rel="successor-version"; title="quiet hours"'
    )


@router.get(
    "/v1/settings",
    tags=["settings"],
    summary="Read the workspace's reminders, open tracking and link TTL (and its deprecated branding and "
    "quiet hours, as they apply)",
    description=DEPRECATION,
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_settings(
    workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, response: Response
) -> WorkspaceConfig:
    deprecated(response, runtime)
    return await workspace_config(session, workspace_id=workspace)


@router.put(
    "/v1/settings",
    tags=["settings"],
    summary="Set reminders, open tracking, link TTL (and the deprecated branding and quiet hours)",
    description=DEPRECATION,
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_settings(
    body: WorkspaceConfig,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> WorkspaceConfig:
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    deprecated(response, runtime)
    return await configuration.put_settings(session, workspace_id=workspace, config=body)


@router.get(
    "/v1/channels",
    tags=["settings"],
    summary="List channels: configured or not, secrets masked",
    dependencies=[requires(Permission.CHANNELS_READ)],
)
async def list_channels(
    workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[ChannelConfigOut]:
    return await configuration.list_channels(session, runtime.settings, workspace_id=workspace)


@router.put(
    "/v1/channels/{channel}",
    tags=["settings"],
    summary="Configure a channel: provider credentials, sender, chat webhook, rate limit",
    description="Setting `auth_token` or a chat's `webhook_url` (a secret URL) also needs the permission "
    "`integration-secrets:write`.",
    dependencies=[requires(Permission.CHANNELS_WRITE)],
)
async def put_channel(
    channel: ChannelPath,
    body: Annotated[ChannelConfigIn, Body()],
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> ChannelConfigOut:
    if (
        body.auth_token is not None or body.webhook_url is not None
    ):  # provider credentials, a chat's secret URL
        require(principal, Permission.INTEGRATION_SECRETS_WRITE)
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    return await configuration.put_channel(
        session, runtime.settings, runtime.deps.guard, workspace_id=workspace, channel=channel, body=body
    )


@router.delete(
    "/v1/channels/{channel}",
    tags=["settings"],
    status_code=204,
    summary="Forget a channel's configuration (the deployment defaults apply again)",
    dependencies=[requires(Permission.CHANNELS_WRITE)],
)
async def delete_channel(
    channel: ChannelPath, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    runtime.deps.cache.invalidate_after_commit(session, workspace)
    await configuration.delete_channel(session, workspace_id=workspace, channel=channel)
    return Response(status_code=204)
