"""Routes for integrations: connect a source, list, read and change them."""

from __future__ import annotations

from fastapi import APIRouter, status

from services.trigger import queries
from services.trigger.api.webhooks import KIND_PATHS
from services.trigger.deps import ActorDep, RuntimeDep, TriggerRuntime
from services.trigger.handlers import integrations
from services.trigger.models import Integration
from services.trigger.schemas.integrations import IntegrationCreate, IntegrationOut, IntegrationUpdate
from shared.access import Permission, require
from shared.guard import GuardedRoute, requires
from shared.service import PrincipalDep, SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["integrations"])


def _integration_out(
    runtime: TriggerRuntime, integration: Integration, *, secret: str | None = None
) -> IntegrationOut:
    """Return the integration as the API shows it: its webhook URL, never its secrets (but a new one, once)."""
    path = KIND_PATHS[integration.kind]
    return IntegrationOut(
        **integrations.integration_snapshot(integration),
        id=integration.id,
        webhook_url=f"{runtime.settings.public_url.rstrip('/')}/v1/webhooks/{path}/{integration.id}",
        secret=secret,
    )


@router.post(
    "/v1/integrations",
    status_code=status.HTTP_201_CREATED,
    summary="Connect a source; the response shows its webhook URL (and a generated secret, once)",
    dependencies=[requires(Permission.INTEGRATION_SECRETS_WRITE)],
)
async def create_integration(
    body: IntegrationCreate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
) -> IntegrationOut:
    integration, secret = await integrations.create_integration(
        session, workspace_id=workspace, body=body, actor=actor
    )
    return _integration_out(runtime, integration, secret=secret)


@router.get(
    "/v1/integrations",
    summary="List the workspace's integrations",
    dependencies=[requires(Permission.INTEGRATIONS_READ)],
)
async def list_integrations(
    workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[IntegrationOut]:
    rows = await queries.list_integrations(session, workspace_id=workspace)
    return [_integration_out(runtime, i) for i in rows]


@router.get(
    "/v1/integrations/{integration_id}",
    summary="Read an integration",
    dependencies=[requires(Permission.INTEGRATIONS_READ)],
)
async def get_integration(
    integration_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> IntegrationOut:
    integration = await integrations.find_integration(
        session, workspace_id=workspace, integration_id=integration_id
    )
    return _integration_out(runtime, integration)


@router.patch(
    "/v1/integrations/{integration_id}",
    summary="Enable, disable, rename or reconfigure an integration, or set its secret (audited)",
    description="Setting `secret` also needs the permission `integration-secrets:write`.",
    dependencies=[requires(Permission.INTEGRATIONS_WRITE)],
)
async def update_integration(
    integration_id: str,
    body: IntegrationUpdate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
    principal: PrincipalDep,
) -> IntegrationOut:
    if body.secret is not None:
        require(principal, Permission.INTEGRATION_SECRETS_WRITE)
    integration = await integrations.update_integration(
        session,
        runtime.deps.caches,
        workspace_id=workspace,
        integration_id=integration_id,
        body=body,
        actor=actor,
    )
    return _integration_out(runtime, integration)
