"""Every public event to the subscriptions that want it: one webhook delivery per matching subscription.

Runs in dispatch's ``outbound`` consumer group (``closeloop-dispatch-outbound``), in the inbox's
transaction, so an event redelivered by the broker makes no second delivery; the unique
(subscription, ``msg_id``) makes that hold even for the same event published twice. A subscription
matches when it is enabled, asks for the type (or for every type), and its survey and metric filters
let the event through. Deliveries about a contact carry the contact as their ``order_key`` (others
their record key: a target's changes): the ``Notifier`` sends one subscription's deliveries with one
key one at a time, in order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, case, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, array, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import catalogue
from services.dispatch.models import CrmConnector, WebhookDelivery, WebhookSubscription, erased_contacts
from shared.erasure import is_erased
from shared.events import ContactErased, EventData, new_id


def matching(public: str, event: EventData) -> Select[str]:
    """The ids of the enabled subscriptions of the event's workspace that want ``event`` as ``public``:
    the type (or every type), and survey and metric filters that let it through (filtered in SQL: no
    subscription is loaded for an event it does not want)."""

    def empty(column: Any) -> ColumnElement[bool]:
        return func.jsonb_array_length(column) == 0

    s = WebhookSubscription
    query = select(s.id).where(
        s.workspace_id == event.workspace_id,
        s.enabled.is_(True),
        or_(empty(s.event_types), s.event_types.contains([public])),
    )
    survey = catalogue.survey_of(event)
    if survey is not None:
        query = query.where(or_(empty(s.survey_ids), s.survey_ids.contains([survey])))
    metrics = catalogue.metrics_of(event)
    if metrics:
        query = query.where(or_(empty(s.metrics), s.metrics.has_any(array(sorted(metrics), type_=Text))))
    return query


async def listeners(session: AsyncSession, workspace_id: str) -> tuple[bool, bool]:
    """Return whether the workspace has (any enabled webhook subscription, any enabled CRM connector),
    asked once per transaction: the ``outbound`` consumer handles a batch of events in one, and most
    events of a burst (every invitation's ``InvitationCreated`` and ``InvitationSent``) belong to
    workspaces with neither, which then cost no query each."""
    memo: dict[str, tuple[bool, bool]] = session.info.setdefault("outbound.listeners", {})
    if workspace_id not in memo:
        subscription = select(WebhookSubscription.id).where(
            WebhookSubscription.workspace_id == workspace_id, WebhookSubscription.enabled.is_(True)
        )
        connector = select(CrmConnector.id).where(
            CrmConnector.workspace_id == workspace_id, CrmConnector.enabled.is_(True)
        )
        row = (await session.execute(select(subscription.exists(), connector.exists()))).one()
        memo[workspace_id] = (bool(row[0]), bool(row[1]))
    return memo[workspace_id]


async def fan_out(
    session: AsyncSession, event: EventData, *, event_id: str, occurred_at: datetime, now: datetime
) -> int:
    """Store one delivery of ``event`` per subscription that wants it; return how many were new."""
    public = catalogue.BY_SOURCE.get(type(event))
    if public is None:
        return 0
    subscriptions = (await session.scalars(matching(public.name, event))).all()
    if not subscriptions:
        return 0
    contact_id = getattr(event, "contact_id", None) or None
    if (
        contact_id
        and not isinstance(event, ContactErased)
        and await is_erased(session, erased_contacts, workspace_id=event.workspace_id, contact_id=contact_id)
    ):
        return 0  # it was on its way when the contact was erased: nothing about them leaves any more
    body = catalogue.envelope(public, event, event_id=event_id, timestamp=occurred_at)
    rows = [
        {
            "id": new_id(),
            "workspace_id": event.workspace_id,
            "subscription_id": subscription_id,
            # what erasure blanks; the erasure notice itself says only whom to erase, and stays
            "contact_id": None if isinstance(event, ContactErased) else contact_id,
            "msg_id": event_id,
            "order_key": contact_id or event.partition_key(),  # a target's changes stay in order too
            "event_type": public.name,
            "payload": body,
            "status": "scheduled",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for subscription_id in subscriptions
    ]
    # One statement compiled once (its cache key does not depend on the rows), executed for every row.
    created = await session.execute(
        insert(WebhookDelivery).on_conflict_do_nothing().returning(WebhookDelivery.id), rows
    )
    return len(created.all())


PUBLIC: ColumnElement[bool] = WebhookDelivery.payload.has_key("version")
"""Deliveries of catalogue events (their envelope has a ``version``), not staff notifications."""


def forgotten(marker: str, *, cancel: str | None = None) -> dict[str, Any]:
    """The values that make a catalogue delivery name nobody: its ``data`` becomes ``{marker: true}``
    and it loses its contact; with ``cancel``, one not yet sent is cancelled for that reason."""
    values: dict[str, Any] = {
        "payload": func.jsonb_set(
            WebhookDelivery.payload,
            literal(["data"], ARRAY(Text)),
            func.jsonb_build_object(literal(marker, Text), True),
        ),
        "contact_id": None,
        "order_key": None,
    }
    if cancel is not None:
        waiting = WebhookDelivery.status == "scheduled"
        values["status"] = case((waiting, "cancelled"), else_=WebhookDelivery.status)
        values["last_error"] = case((waiting, cancel), else_=WebhookDelivery.last_error)
    return values


def unquoted(body: str) -> dict[str, Any]:
    """The values that make a delivery of a staff notification quote nobody: its ``data.body`` becomes
    ``body`` and it loses its contact."""
    return {
        "payload": func.jsonb_set(
            WebhookDelivery.payload,
            literal(["data", "body"], ARRAY(Text)),
            func.to_jsonb(literal(body, Text)),
        ),
        "contact_id": None,
    }
