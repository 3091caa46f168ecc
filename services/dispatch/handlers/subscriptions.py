"""Outgoing webhook subscriptions: their endpoint (a public URL, checked when saved and at every
connection), the events they want, their delivery log and replays."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.handlers.configuration import check_outbound_url
from services.dispatch.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from services.dispatch.queries import all_owned, owned, with_children
from services.dispatch.schemas import SubscriptionIn, SubscriptionPatch
from shared import standard_webhooks
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import is_uuid, new_id
from shared.netguard import OutboundGuard
from shared.paging import after, decode_cursor, page

DELIVERIES = "dispatch.webhook-deliveries"


async def create_subscription(
    session: AsyncSession, guard: OutboundGuard, *, workspace_id: str, body: SubscriptionIn
) -> WebhookSubscription:
    """Create and return a webhook subscription with a new ``whsec_`` secret; raise ``InvalidInput``
    naming ``url`` when it points at an address tenants may not reach."""
    subscription = WebhookSubscription(
        id=new_id(),
        workspace_id=workspace_id,
        url=await check_outbound_url(guard, str(body.url), field="url"),
        secret=standard_webhooks.new_secret(),
        event_types=sorted(set(body.event_types)),
        survey_ids=sorted(set(body.survey_ids)),
        metrics=sorted(set(body.metrics)),
        description=body.description,
        notify_email=body.notify_email,
        enabled=True,
        consecutive_failures=0,
    )
    session.add(subscription)
    await session.flush()
    await session.refresh(subscription)
    return subscription


async def get_subscription(
    session: AsyncSession, *, workspace_id: str, subscription_id: str
) -> WebhookSubscription:
    """Return the workspace's subscription or raise ``NotFound``."""
    return await owned(session, WebhookSubscription, workspace_id=workspace_id, row_id=subscription_id)


async def list_subscriptions(session: AsyncSession, *, workspace_id: str) -> list[WebhookSubscription]:
    """Return the workspace's subscriptions, oldest first."""
    return await all_owned(session, WebhookSubscription, workspace_id=workspace_id)


async def patch_subscription(
    session: AsyncSession,
    guard: OutboundGuard,
    *,
    workspace_id: str,
    subscription_id: str,
    body: SubscriptionPatch,
) -> WebhookSubscription:
    """Change and return a subscription; enabling it clears its failure count."""
    row = await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    if body.url is not None:
        row.url = await check_outbound_url(guard, str(body.url), field="url")
    if body.event_types is not None:
        row.event_types = sorted(set(body.event_types))
    if body.survey_ids is not None:
        row.survey_ids = sorted(set(body.survey_ids))
    if body.metrics is not None:
        row.metrics = sorted(set(body.metrics))
    if body.description is not None:
        row.description = body.description
    if body.notify_email is not None:
        row.notify_email = body.notify_email
    if body.enabled is not None:
        row.enabled = body.enabled
        if body.enabled:
            row.disabled_reason, row.consecutive_failures = None, 0
        else:
            row.disabled_reason = "disabled through the API"
    await session.flush()
    await session.refresh(row)
    return row


async def delete_subscription(session: AsyncSession, *, workspace_id: str, subscription_id: str) -> None:
    """Delete a subscription and its delivery log."""
    row = await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    await session.delete(row)


async def list_deliveries(
    session: AsyncSession,
    *,
    workspace_id: str,
    subscription_id: str,
    status: str | None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], str | None]:
    """Return a page of the subscription's delivery log, newest first, each delivery with its
    attempts, and the next page's cursor."""
    await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    order = (WebhookDelivery.created_at, WebhookDelivery.id)
    if cursor:
        query = query.where(after(order, decode_cursor(cursor, DELIVERIES, (datetime, str)), descending=True))
    deliveries, next_cursor = page(
        (await session.scalars(query.order_by(*(c.desc() for c in order)).limit(limit + 1))).all(),
        limit=limit,
        scope=DELIVERIES,
        key=lambda d: (d.created_at, d.id),
    )
    attempts = (
        await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
        )
    ).all()
    return with_children(deliveries, attempts, parent_id=lambda a: a.delivery_id), next_cursor


async def replay_delivery(
    session: AsyncSession, *, workspace_id: str, subscription_id: str, delivery_id: str, now: datetime
) -> WebhookDelivery:
    """Send a delivery again (same ``webhook-id``), with a fresh set of attempts."""
    subscription = await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    delivery = (
        await session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.id == delivery_id)
            .with_for_update()
        )
        if is_uuid(delivery_id)
        else None
    )
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id!r} for this subscription.", field="delivery_id")
    if not subscription.enabled:
        raise Conflict("the subscription is disabled; re-enable it before replaying", field="subscription_id")
    if delivery.status in ("scheduled", "sending"):
        raise Conflict("the delivery is still being attempted", field="delivery_id")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "scheduled", 0, now
    delivery.claimed_at = None
    await session.flush()
    return delivery


async def replay_range(
    session: AsyncSession,
    *,
    workspace_id: str,
    subscription_id: str,
    since: datetime,
    until: datetime,
    now: datetime,
) -> int:
    """Send again every finished delivery (delivered, failed or cancelled) created in [since, until), each
    with its own ``webhook-id`` and in its original order; return how many."""
    subscription = await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    if not subscription.enabled:
        raise Conflict("the subscription is disabled; re-enable it before replaying", field="subscription_id")
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    replayed = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription.id,
            WebhookDelivery.created_at >= since,
            WebhookDelivery.created_at < until,
            WebhookDelivery.status.in_(("delivered", "failed", "cancelled")),
        )
        .values(status="scheduled", attempts=0, next_attempt_at=now, claimed_at=None)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    return len(replayed.all())
