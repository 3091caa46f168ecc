"""The read side: the list and report queries behind the API's ``GET`` routes (cosmicpython's
``views.py``). They return rows; the routes map them to the API's bodies. Reads that a command
also needs (``find_contact``, ``find_rule``, ``find_integration``) stay with their handlers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pydantic_core
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.handlers.contacts import find_contact
from services.trigger.models import (
    AuditEntry,
    Contact,
    Decision,
    Integration,
    ReceivedEvent,
    Rule,
    Survey,
    WorkspaceSettings,
)
from services.trigger.store import PENDING_IN_BATCH_SQL, session_fetch
from shared.errors import NotFound
from shared.events import is_uuid
from shared.paging import after, decode_cursor, page
from shared.rows import from_row

CONTACTS, DECISIONS, AUDIT = "trigger.contacts", "trigger.decisions", "trigger.audit"


@dataclass(frozen=True)
class EventRecord:
    """A received event with every decision it caused: stored, or still waiting in its batch."""

    id: str
    source: str
    source_event_id: str
    event_type: str
    occurred_at: datetime
    contact_id: str | None
    contact_external_id: str | None
    received_at: datetime
    status: Literal["pending", "evaluated", "failed"]
    evaluated_at: datetime | None
    error: str | None
    properties: dict[str, Any]
    decisions: Sequence[Decision]


async def list_integrations(session: AsyncSession, *, workspace_id: str) -> Sequence[Integration]:
    """Return the workspace's integrations, oldest first."""
    rows = await session.scalars(
        select(Integration).where(Integration.workspace_id == workspace_id).order_by(Integration.created_at)
    )
    return rows.all()


async def get_event(session: AsyncSession, *, workspace_id: str, event_id: str) -> EventRecord:
    """Return the workspace's event ``event_id`` with its decisions, or raise ``NotFound``."""
    event = await session.get(ReceivedEvent, event_id) if is_uuid(event_id) else None
    if event is None and is_uuid(event_id):
        # Still in the stored batch it came in; or moved out of it since the first look.
        waiting = await _waiting_in_batch(session, workspace_id=workspace_id, event_id=event_id)
        if waiting is not None:
            return waiting
        event = await session.get(ReceivedEvent, event_id)
    if event is None or event.workspace_id != workspace_id:
        raise NotFound(f"No event {event_id!r} in this workspace.", field="event_id")
    decisions = await session.scalars(
        select(Decision).where(Decision.received_event_id == event.id).order_by(Decision.seq)
    )
    external_id = (
        await session.scalar(
            select(Contact.external_id).where(
                Contact.id == event.contact_id, Contact.workspace_id == workspace_id
            )
        )
        if event.contact_id
        else None
    )
    return from_row(
        EventRecord,
        event,
        contact_external_id=external_id,
        status="pending"
        if event.evaluated_at is None
        else "failed"
        if event.evaluation_error
        else "evaluated",
        error=event.evaluation_error,
        properties=event.payload,
        decisions=decisions.all(),
    )


async def _waiting_in_batch(session: AsyncSession, *, workspace_id: str, event_id: str) -> EventRecord | None:
    """Return the event ``event_id`` as it waits in a stored batch of the workspace, if it does."""
    rows = await session_fetch(session)(PENDING_IN_BATCH_SQL, workspace_id, event_id)
    if not rows:
        return None
    source, source_event_id, event_type, occurred_at, payload, received_at, error = rows[0]
    return EventRecord(
        id=event_id,
        source=source,
        source_event_id=source_event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        contact_id=None,
        contact_external_id=None,
        received_at=received_at,
        status="failed" if error else "pending",
        evaluated_at=None,
        error=error,
        properties=pydantic_core.from_json(payload),
        decisions=[],
    )


async def list_decisions(
    session: AsyncSession,
    *,
    workspace_id: str,
    outcome: str | None,
    rule_id: str | None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[tuple[Decision, str | None]], str | None]:
    """Return a page of the workspace's decisions, newest first, by outcome and rule when given; each
    with its contact's external id (None once erased); and the next page's cursor."""
    stmt = (
        select(Decision, Contact.external_id)
        .outerjoin(Contact, Contact.id == Decision.contact_id)
        .where(Decision.workspace_id == workspace_id)
    )
    if outcome:
        stmt = stmt.where(Decision.outcome == outcome)
    if rule_id:
        stmt = stmt.where(Decision.rule_id == rule_id)
    if cursor:
        stmt = stmt.where(after((Decision.seq,), decode_cursor(cursor, DECISIONS, (int,)), descending=True))
    rows = await session.execute(stmt.order_by(Decision.seq.desc()).limit(limit + 1))
    return page(
        [(d, external_id) for d, external_id in rows], limit=limit, scope=DECISIONS, key=lambda r: (r[0].seq,)
    )


async def list_contacts(
    session: AsyncSession,
    *,
    workspace_id: str,
    email: str | None,
    limit: int,
    offset: int,
    cursor: str | None = None,
) -> tuple[list[Contact], str | None]:
    """Return a page of the workspace's contacts, oldest first (with ``email``, those with it), and
    the next page's cursor. ``offset`` is kept for the clients that used it; the cursor is stable."""
    stmt = select(Contact).where(Contact.workspace_id == workspace_id)
    if email:
        stmt = stmt.where(Contact.email == email.lower())
    order = (Contact.created_at, Contact.id)
    if cursor:
        stmt = stmt.where(after(order, decode_cursor(cursor, CONTACTS, (datetime, str)), descending=False))
    rows = await session.scalars(stmt.order_by(*order).limit(limit + 1).offset(offset))
    return page(rows.all(), limit=limit, scope=CONTACTS, key=lambda c: (c.created_at, c.id))


async def contact_by_id(session: AsyncSession, *, workspace_id: str, contact_id: str) -> Contact:
    """Return the workspace's contact with closeloop id ``contact_id``, or raise ``NotFound``."""
    contact = await session.get(Contact, contact_id) if is_uuid(contact_id) else None
    if contact is None or contact.workspace_id != workspace_id:
        raise NotFound(f"No contact with id {contact_id!r} in this workspace.", field="contact_id")
    return contact


async def contact_decisions(
    session: AsyncSession, *, workspace_id: str, external_id: str
) -> Sequence[Decision]:
    """Return every decision made for the contact (by its external id), oldest first, or raise ``NotFound``."""
    contact = await find_contact(session, workspace_id=workspace_id, external_id=external_id)
    rows = await session.scalars(
        select(Decision)
        .where(Decision.workspace_id == workspace_id, Decision.contact_id == contact["id"])
        .order_by(Decision.seq)
    )
    return rows.all()


async def list_rules(session: AsyncSession, *, workspace_id: str) -> Sequence[Rule]:
    """Return the workspace's rules (not deleted), oldest first."""
    rows = await session.scalars(
        select(Rule)
        .where(Rule.workspace_id == workspace_id, Rule.deleted_at.is_(None))
        .order_by(Rule.created_at, Rule.id)
    )
    return rows.all()


async def rule_history(session: AsyncSession, *, workspace_id: str, rule_id: str) -> Sequence[AuditEntry]:
    """Return the audit entries of the rule (also a deleted one), oldest first, or raise ``NotFound``."""
    if (
        not is_uuid(rule_id)
        or await session.scalar(select(Rule.id).where(Rule.id == rule_id, Rule.workspace_id == workspace_id))
        is None
    ):
        raise NotFound(f"No rule {rule_id!r} in this workspace.", field="rule_id")
    rows = await session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.workspace_id == workspace_id,
            AuditEntry.entity == "rule",
            AuditEntry.entity_id == rule_id,
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return rows.all()


async def audit_log(
    session: AsyncSession, *, workspace_id: str, entity: str | None, limit: int, cursor: str | None = None
) -> tuple[list[AuditEntry], str | None]:
    """Return a page of the workspace's audit entries, newest first, of one kind of entity when given,
    and the next page's cursor."""
    stmt = select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    order = (AuditEntry.at, AuditEntry.id)
    if cursor:
        stmt = stmt.where(after(order, decode_cursor(cursor, AUDIT, (datetime, str)), descending=True))
    rows = await session.scalars(stmt.order_by(*(c.desc() for c in order)).limit(limit + 1))
    return page(rows.all(), limit=limit, scope=AUDIT, key=lambda a: (a.at, a.id))


async def workspace_settings(session: AsyncSession, *, workspace_id: str) -> WorkspaceSettings | None:
    """Return the workspace's settings row (None: it has never set any)."""
    return await session.get(WorkspaceSettings, workspace_id)


async def list_surveys(session: AsyncSession, *, workspace_id: str) -> Sequence[Survey]:
    """Return the workspace's surveys trigger knows, by name."""
    rows = await session.scalars(
        select(Survey).where(Survey.workspace_id == workspace_id).order_by(Survey.name, Survey.survey_id)
    )
    return rows.all()


async def get_survey(session: AsyncSession, *, workspace_id: str, survey_id: str) -> Survey:
    """Return the workspace's survey ``survey_id`` as trigger knows it, or raise ``NotFound``."""
    survey = await session.get(Survey, (workspace_id, survey_id))
    if survey is None:
        raise NotFound(
            f"Trigger does not know a survey {survey_id!r} in this workspace (yet).", field="survey_id"
        )
    return survey
