"""Routes for CRM connectors (scores back into the CRM) and their call log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.dispatch.crm import queue
from services.dispatch.deps import RuntimeDep
from services.dispatch.schemas import (
    CrmAttemptOut,
    CrmCallOut,
    CrmConnectorIn,
    CrmConnectorOut,
    CrmConnectorPatch,
    CrmCredentialsIn,
)
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute)


@router.post(
    "/v1/crm-connectors",
    tags=["crm"],
    status_code=201,
    summary="Connect the workspace's CRM or helpdesk (HubSpot, Zendesk, or generic HTTP calls)",
    dependencies=[requires(Permission.INTEGRATION_SECRETS_WRITE)],
)
async def create_connector(
    body: CrmConnectorIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> CrmConnectorOut:
    row = await queue.create_connector(
        session, runtime.deps.guard, secret=runtime.settings.secret_key, workspace_id=workspace, body=body
    )
    return CrmConnectorOut.model_validate(row)


@router.get(
    "/v1/crm-connectors",
    tags=["crm"],
    summary="List CRM connectors (never their credentials)",
    dependencies=[requires(Permission.INTEGRATIONS_READ)],
)
async def list_connectors(workspace: WorkspaceDep, session: SessionDep) -> list[CrmConnectorOut]:
    return [
        CrmConnectorOut.model_validate(r)
        for r in await queue.list_connectors(session, workspace_id=workspace)
    ]


@router.get(
    "/v1/crm-connectors/{connector_id}",
    tags=["crm"],
    summary="Read a CRM connector (never its credentials)",
    dependencies=[requires(Permission.INTEGRATIONS_READ)],
)
async def get_connector(connector_id: str, workspace: WorkspaceDep, session: SessionDep) -> CrmConnectorOut:
    row = await queue.get_connector(session, workspace_id=workspace, connector_id=connector_id)
    return CrmConnectorOut.model_validate(row)


@router.patch(
    "/v1/crm-connectors/{connector_id}",
    tags=["crm"],
    summary="Rename, enable or disable a connector; change its matching, mappings or budget",
    dependencies=[requires(Permission.INTEGRATIONS_WRITE)],
)
async def patch_connector(
    connector_id: str,
    body: CrmConnectorPatch,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CrmConnectorOut:
    row = await queue.patch_connector(
        session, runtime.deps.guard, workspace_id=workspace, connector_id=connector_id, body=body
    )
    return CrmConnectorOut.model_validate(row)


@router.put(
    "/v1/crm-connectors/{connector_id}/credentials",
    tags=["crm"],
    summary="Replace the connector's credentials (stored encrypted, never returned)",
    dependencies=[requires(Permission.INTEGRATION_SECRETS_WRITE)],
)
async def put_credentials(
    connector_id: str,
    body: CrmCredentialsIn,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CrmConnectorOut:
    row = await queue.replace_credentials(
        session,
        secret=runtime.settings.secret_key,
        workspace_id=workspace,
        connector_id=connector_id,
        body=body,
    )
    return CrmConnectorOut.model_validate(row)


@router.delete(
    "/v1/crm-connectors/{connector_id}",
    tags=["crm"],
    status_code=204,
    summary="Remove a connector and its call log",
    dependencies=[requires(Permission.INTEGRATIONS_WRITE)],
)
async def delete_connector(connector_id: str, workspace: WorkspaceDep, session: SessionDep) -> Response:
    await queue.delete_connector(session, workspace_id=workspace, connector_id=connector_id)
    return Response(status_code=204)


@router.get(
    "/v1/crm-connectors/{connector_id}/calls",
    tags=["crm"],
    summary="The call log: each queued update with every HTTP request made for it and its outcome",
    dependencies=[requires(Permission.INTEGRATIONS_READ)],
)
async def list_calls(
    connector_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[CrmCallOut]:
    out = []
    for call, attempts in await queue.list_calls(
        session, workspace_id=workspace, connector_id=connector_id, limit=limit
    ):
        item = CrmCallOut.model_validate(call)
        item.requests = [CrmAttemptOut.model_validate(a) for a in attempts]
        out.append(item)
    return out
