"""What happens when a contact is upserted, a rule is created or a CRM event arrives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger import domain
from services.trigger.models import Contact, Decision, Integration, ReceivedEvent, Rule
from services.trigger.schemas import ContactUpsert, EventContact, InboundEvent, RuleCreate
from shared import standard_webhooks
from shared.errors import InvalidInput, NotFound, Unauthorized
from shared.events import CustomerEventReceived, Recipient, SurveyRequested, is_uuid, new_id, utcnow
from shared.outbox import Outbox


async def get_integration(session: AsyncSession, *, integration_id: str) -> Integration:
    """Return the enabled integration or raise ``NotFound``."""
    integration = await session.get(Integration, integration_id) if is_uuid(integration_id) else None
    if integration is None or not integration.enabled:
        raise NotFound(
            f"No enabled integration {integration_id!r}; check the webhook URL.", field="integration_id"
        )
    return integration


def verify_signature(integration: Integration, headers: dict[str, str], body: bytes) -> str:
    """Return the sender's message id, or raise ``Unauthorized`` naming the header at fault."""
    try:
        return standard_webhooks.verify(integration.secret, headers, body)
    except standard_webhooks.SignatureError as exc:
        raise Unauthorized(f"Webhook signature rejected: {exc}.", field=exc.header) from exc


async def upsert_contact(
    session: AsyncSession, *, workspace_id: str, external_id: str, fields: dict[str, Any]
) -> tuple[Contact, bool]:
    """Return the contact after applying ``fields`` and whether it was created."""
    values = {k: v for k, v in fields.items() if v is not None}
    stmt = (
        insert(Contact)
        .values(
            id=new_id(),
            workspace_id=workspace_id,
            external_id=external_id,
            attributes={},
            opted_out=False,
            **values,
        )
        .on_conflict_do_update(
            index_elements=["workspace_id", "external_id"], set_={**values, "updated_at": utcnow()}
        )
        .returning(Contact, Contact.created_at == Contact.updated_at)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(stmt)).one()
    return row[0], bool(row[1])


async def put_contact(
    session: AsyncSession, *, workspace_id: str, external_id: str, body: ContactUpsert
) -> tuple[Contact, bool]:
    """Return the upserted contact and whether it is new."""
    return await upsert_contact(
        session,
        workspace_id=workspace_id,
        external_id=external_id,
        fields=body.model_dump(exclude_unset=True),
    )


async def create_rule(session: AsyncSession, *, workspace_id: str, body: RuleCreate) -> Rule:
    """Return the new rule."""
    rule = Rule(id=new_id(), workspace_id=workspace_id, enabled=True, **body.model_dump())
    session.add(rule)
    await session.flush()
    return rule


async def receive_event(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    integration_id: str | None,
    source: str,
    source_event_id: str,
    event: InboundEvent,
    raw: dict[str, Any],
) -> tuple[str, str, int]:
    """Store the event once, decide which surveys it triggers; return (status, event id, surveys requested)."""
    now = utcnow()
    occurred_at = event.timestamp or now
    if occurred_at.tzinfo is None:
        raise InvalidInput("timestamp needs a timezone, e.g. 2026-11-23T10:00:00Z", field="timestamp")
    contact = await _contact_for_event(session, workspace_id=workspace_id, ref=event.data.contact)
    event_id = new_id()
    inserted = (
        await session.execute(
            insert(ReceivedEvent)
            .values(
                id=event_id,
                workspace_id=workspace_id,
                integration_id=integration_id,
                source=source,
                source_event_id=source_event_id,
                event_type=event.type,
                contact_id=contact.id,
                occurred_at=occurred_at,
                payload=raw,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "source", "source_event_id"])
            .returning(ReceivedEvent.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        existing = await session.scalar(
            select(ReceivedEvent.id).where(
                ReceivedEvent.workspace_id == workspace_id,
                ReceivedEvent.source == source,
                ReceivedEvent.source_event_id == source_event_id,
            )
        )
        return "duplicate", existing or "", 0

    properties = event.data.model_dump(mode="json", exclude={"contact"})
    await outbox.add(
        session,
        CustomerEventReceived(
            workspace_id=workspace_id,
            event_id=event_id,
            source=source,
            source_event_id=source_event_id,
            event_type=event.type,
            occurred_at=occurred_at,
            contact_id=contact.id,
            properties=properties,
        ),
    )
    requested = await _apply_rules(
        session,
        outbox,
        workspace_id=workspace_id,
        event_id=event_id,
        event_type=event.type,
        contact=contact,
        occurred_at=occurred_at,
        now=now,
    )
    return "accepted", event_id, requested


async def _contact_for_event(session: AsyncSession, *, workspace_id: str, ref: EventContact) -> Contact:
    fields = ref.model_dump(exclude={"external_id"}, exclude_none=True)
    contact, _ = await upsert_contact(
        session, workspace_id=workspace_id, external_id=ref.external_id, fields=fields
    )
    return contact


async def _apply_rules(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    event_id: str,
    event_type: str,
    contact: Contact,
    occurred_at: datetime,
    now: datetime,
) -> int:
    rules = (
        await session.scalars(
            select(Rule).where(Rule.workspace_id == workspace_id, Rule.event_type == event_type)
        )
    ).all()
    views = [domain.RuleView(r.id, r.event_type, r.channel, r.delay_seconds, r.enabled) for r in rules]
    contact_view = domain.ContactView(contact.email, contact.phone, contact.opted_out)
    by_id = {r.id: r for r in rules}
    requested = 0
    for view in domain.matching_rules(views, event_type):
        verdict = domain.decide(view, contact_view, occurred_at=occurred_at, now=now)
        request_id = new_id() if verdict.outcome == "requested" else None
        session.add(
            Decision(
                id=new_id(),
                workspace_id=workspace_id,
                received_event_id=event_id,
                rule_id=view.id,
                contact_id=contact.id,
                outcome=verdict.outcome,
                reason=verdict.reason,
                request_id=request_id,
                send_at=verdict.send_at,
            )
        )
        if request_id:
            requested += 1
            await outbox.add(
                session,
                SurveyRequested(
                    workspace_id=workspace_id,
                    request_id=request_id,
                    contact_id=contact.id,
                    survey_id=by_id[view.id].survey_id,
                    kind="transactional",
                    channel=view.channel,  # type: ignore[arg-type]
                    send_at=verdict.send_at,
                    reason=f"rule:{view.id}",
                    recipient=Recipient(
                        name=contact.name, email=contact.email, phone=contact.phone, locale=contact.locale
                    ),
                ),
            )
    return requested
