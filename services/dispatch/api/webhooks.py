"""Routes for outgoing webhook subscriptions and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from services.dispatch.deps import RuntimeDep
from services.dispatch.handlers import subscriptions
from services.dispatch.schemas import (
    AttemptOut,
    DeliveryOut,
    ReplayRangeIn,
    ReplayRangeOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.paging import Cursor, link_next
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute)


@router.post(
    "/v1/webhooks",
    tags=["webhooks"],
    status_code=201,
    summary="Subscribe an endpoint to outgoing webhooks; the signing secret is shown once",
    dependencies=[requires(Permission.INTEGRATION_SECRETS_WRITE)],
)
async def create_webhook(
    body: SubscriptionIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SubscriptionOut:
    row = await subscriptions.create_subscription(
        session, runtime.deps.guard, workspace_id=workspace, body=body
    )
    return _subscription_out(row, with_secret=True)


def _subscription_out(row: Any, *, with_secret: bool = False) -> SubscriptionOut:
    out = SubscriptionOut.model_validate(row)
    out.secret = row.secret if with_secret else None
    return out


@router.get(
    "/v1/webhooks",
    tags=["webhooks"],
    summary="List webhook subscriptions",
    dependencies=[requires(Permission.INTEGRATIONS_READ)],
)
async def list_webhooks(workspace: WorkspaceDep, session: SessionDep) -> list[SubscriptionOut]:
    rows = await subscriptions.list_subscriptions(session, workspace_id=workspace)
    return [_subscription_out(r) for r in rows]


@router.get(
    "/v1/webhooks/{subscription_id}",
    tags=["webhooks"],
    summary="Read a webhook subscription",
    dependencies=[requires(Permission.INTEGRATIONS_READ)],
)
async def get_webhook(subscription_id: str, workspace: WorkspaceDep, session: SessionDep) -> SubscriptionOut:
    row = await subscriptions.get_subscription(
        session, workspace_id=workspace, subscription_id=subscription_id
    )
    return _subscription_out(row)


@router.patch(
    "/v1/webhooks/{subscription_id}",
    tags=["webhooks"],
    summary="Change a subscription; `enabled: true` re-enables one disabled after failures",
    dependencies=[requires(Permission.INTEGRATIONS_WRITE)],
)
async def patch_webhook(
    subscription_id: str,
    body: SubscriptionPatch,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> SubscriptionOut:
    row = await subscriptions.patch_subscription(
        session, runtime.deps.guard, workspace_id=workspace, subscription_id=subscription_id, body=body
    )
    return _subscription_out(row)


@router.delete(
    "/v1/webhooks/{subscription_id}",
    tags=["webhooks"],
    status_code=204,
    summary="Delete a subscription",
    dependencies=[requires(Permission.INTEGRATIONS_WRITE)],
)
async def delete_webhook(subscription_id: str, workspace: WorkspaceDep, session: SessionDep) -> Response:
    await subscriptions.delete_subscription(session, workspace_id=workspace, subscription_id=subscription_id)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{subscription_id}/deliveries",
    tags=["webhooks"],
    summary="The delivery log: each delivery with every attempt's status code, error and duration",
    description='Newest first, a page at a time: the `Link: <…>; rel="next"` header and `X-Next-Cursor` name '
    "the next page while there is one.",
    dependencies=[requires(Permission.INTEGRATIONS_READ)],
)
async def list_deliveries(
    request: Request,
    response: Response,
    subscription_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    status: Literal["scheduled", "sending", "delivered", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size, at most 200")] = 50,
    cursor: Cursor = None,
) -> list[DeliveryOut]:
    rows, next_cursor = await subscriptions.list_deliveries(
        session,
        workspace_id=workspace,
        subscription_id=subscription_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    link_next(request, response, next_cursor)
    out = []
    for delivery, attempts in rows:
        item = DeliveryOut.model_validate(delivery)
        item.log = [AttemptOut.model_validate(a) for a in attempts]
        out.append(item)
    return out


@router.post(
    "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay",
    tags=["webhooks"],
    status_code=202,
    summary="Send a delivery again with the same webhook-id (after fixing the endpoint)",
    dependencies=[requires(Permission.INTEGRATIONS_WRITE)],
)
async def replay_delivery(
    subscription_id: str, delivery_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> DeliveryOut:
    row = await subscriptions.replay_delivery(
        session,
        workspace_id=workspace,
        subscription_id=subscription_id,
        delivery_id=delivery_id,
        now=runtime.deps.clock.now(),
    )
    runtime.deps.notifier.wake_after_commit(session)
    return DeliveryOut.model_validate(row)


@router.post(
    "/v1/webhooks/{subscription_id}/replay",
    tags=["webhooks"],
    status_code=202,
    summary="Send every finished delivery of a time range again (same webhook-ids, original order)",
    dependencies=[requires(Permission.INTEGRATIONS_WRITE)],
)
async def replay_range(
    subscription_id: str,
    body: ReplayRangeIn,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ReplayRangeOut:
    replayed = await subscriptions.replay_range(
        session,
        workspace_id=workspace,
        subscription_id=subscription_id,
        since=body.since,
        until=body.until,
        now=runtime.deps.clock.now(),
    )
    runtime.deps.notifier.wake_after_commit(session)
    return ReplayRangeOut(replayed=replayed)
