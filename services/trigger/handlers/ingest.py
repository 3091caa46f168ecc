"""Ingest, besides the store itself (``store.py``): the contacts of HubSpot deal and ticket events,
looked up before a webhook is stored; and events posted with the API key, stored and decided in one
transaction before the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches
from services.trigger.handlers.evaluate import Pending, evaluate
from services.trigger.handlers.rules import load_workspace
from services.trigger.handlers.tx import in_transaction
from services.trigger.hubspot import HubSpotClient
from services.trigger.sources.common import ContactRef, Incoming
from services.trigger.store import EventReceipt, session_fetch, store_events
from shared.db import Database
from shared.outbox import Outbox


async def resolve_hubspot_contacts(
    client: HubSpotClient, *, token: str, events: list[Incoming]
) -> list[Incoming]:
    """Return the events with the contact of deal and ticket events named, through HubSpot's
    associations API; raise ``HubSpotUnavailable`` when HubSpot cannot answer now."""
    wanted = sorted({e.object_ref for e in events if e.object_ref and e.contact is None})
    if not wanted:
        return events
    limit = asyncio.Semaphore(8)

    async def lookup(ref: tuple[str, str]) -> str | None:
        async with limit:
            return await client.associated_contact(token=token, object_type=ref[0], object_id=ref[1])

    found = dict(zip(wanted, await asyncio.gather(*(lookup(ref) for ref in wanted)), strict=True))
    return [
        replace(e, contact=ContactRef(external_id=found[e.object_ref]))
        if e.object_ref and e.contact is None and found.get(e.object_ref)
        else e
        for e in events
    ]


async def store_and_evaluate(
    db: Database,
    outbox: Outbox,
    caches: Caches,
    *,
    workspace_id: str,
    source: str,
    events: Sequence[Incoming],
    now: datetime,
) -> list[EventReceipt]:
    """Return what happened to each event, stored and decided in one transaction (``POST /v1/events``)."""

    async def work(session: AsyncSession) -> list[EventReceipt]:
        rules = await load_workspace(session, caches, workspace_id=workspace_id)
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
                r.event_id,
                source,
                e.source_event_id,
                e.event_type,
                e.occurred_at or now,
                e.contact,
                e.properties,
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

    return await in_transaction(db, work)
