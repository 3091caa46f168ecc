"""Ingest: events posted with the API key are stored and decided in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import pydantic_core
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import WorkspaceRules
from services.trigger.handlers.evaluate import Pending, evaluate
from services.trigger.schemas import ReceivedEventOut
from services.trigger.sources import Incoming
from services.trigger.store import PENDING_IN_BATCH_SQL, EventReceipt, session_fetch, store_events
from shared.outbox import Outbox


async def pending_in_batch(
    session: AsyncSession, *, workspace_id: str, event_id: str
) -> ReceivedEventOut | None:
    """The event ``event_id`` as it waits in a stored batch of the workspace, if it does."""
    rows = await session_fetch(session)(PENDING_IN_BATCH_SQL, workspace_id, event_id)
    if not rows:
        return None
    source, source_event_id, event_type, occurred_at, payload, received_at, error = rows[0]
    return ReceivedEventOut(
        id=event_id,
        source=source,
        source_event_id=source_event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        contact_id=None,
        received_at=received_at,
        status="failed" if error else "pending",
        error=error,
        properties=pydantic_core.from_json(payload),
        decisions=[],
    )


async def store_and_evaluate(
    session: AsyncSession,
    outbox: Outbox,
    *,
    rules: WorkspaceRules,
    workspace_id: str,
    source: str,
    events: Sequence[Incoming],
    now: datetime,
) -> list[EventReceipt]:
    """Store the events and apply the rules in the same transaction (``POST /v1/events``)."""
    results = await store_events(
        session_fetch(session),
        workspace_id=workspace_id,
        integration_id=None,
        source=source,
        events=events,
        now=now,
    )
    pending = [
        Pending(
            r.event_id, source, e.source_event_id, e.event_type, e.occurred_at or now, e.contact, e.properties
        )
        for e, r in zip(events, results, strict=True)
        if r.status == "accepted" and r.event_id
    ]
    requested = await evaluate(
        session, outbox, rules=rules, workspace_id=workspace_id, events=pending, now=now
    )
    return [
        replace(r, surveys_requested=requested.get(r.event_id or "", 0)) if r.status == "accepted" else r
        for r in results
    ]
