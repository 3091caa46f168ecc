"""The acknowledgement path: storing webhook events (one statement for a group of requests) and
moving the events of stored batches into ``received_events`` for the evaluator.

Everything here runs in the driver's own parameter style (``$1``) through a ``Fetch``, so that both
the raw asyncpg pool of the webhook path (``batcher.py``) and a session (``session_fetch``) can run
it. Its results are plain ``EventReceipt``s: the routes map them to the API's bodies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pydantic_core
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.sources.common import ContactRef, Incoming
from shared import tracing

# Storing webhook events is all an acknowledgement waits for: one statement for a whole group of
# requests, in the driver's own parameter style so that both the raw connection pool of the webhook
# path and a session can run it. Events arriving again (the source's id) are skipped; a new pending
# event wakes the evaluators (NOTIFY, sent at commit, once per transaction).
EVALUATE_CHANNEL = "closeloop_trigger_pending"
STORE_SQL = f"""
WITH e AS (
    INSERT INTO trigger.received_events
        (id, workspace_id, integration_id, source, source_event_id, event_type, occurred_at, payload,
         contact, evaluated_at, traceparent)
    SELECT x.id, $1, $2, $3, x.source_event_id, x.event_type, x.occurred_at, x.payload, x.contact,
           x.evaluated_at, x.traceparent
    FROM unnest($4::varchar[], $5::varchar[], $6::varchar[], $7::timestamptz[], $8::jsonb[], $9::jsonb[],
                $10::timestamptz[], $11::varchar[])
         AS x(id, source_event_id, event_type, occurred_at, payload, contact, evaluated_at, traceparent)
    ON CONFLICT (workspace_id, source, source_event_id) DO NOTHING
    RETURNING id, source_event_id, evaluated_at IS NULL AS pending
)
SELECT id, source_event_id FROM e
UNION ALL
SELECT NULL, NULL FROM (SELECT pg_notify('{EVALUATE_CHANNEL}', '')) AS n WHERE EXISTS (SELECT 1 FROM e WHERE pending)
"""
EXISTING_SQL = """
SELECT source_event_id, id FROM trigger.received_events
WHERE workspace_id = $1 AND source = $2 AND source_event_id = ANY($3::varchar[])
"""


def json_param(value: Any) -> str:
    """Compact JSON for a statement parameter (datetimes as ISO 8601)."""
    return pydantic_core.to_json(value).decode()


Fetch = Callable[..., Awaitable[Sequence[Sequence[Any]]]]
"""Run one SQL statement in the driver's parameter style (``$1``) and return its rows."""


def session_fetch(session: AsyncSession) -> Fetch:
    """Return a ``Fetch`` that runs inside the session's transaction."""

    async def fetch(sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        connection = await session.connection()
        return (await connection.exec_driver_sql(sql, args)).all()

    return fetch


def _contact_doc(ref: ContactRef) -> dict[str, Any]:
    """The contact as a stored event names it (``contact_from_json`` reads it back)."""
    return {
        "external_id": ref.external_id,
        "email": ref.email,
        "fields": ref.fields,
        "attributes": ref.attributes,
    }


def contact_json(ref: ContactRef) -> str:
    """Return the contact as a stored event names it, as JSON text."""
    return json_param(_contact_doc(ref))


def contact_from_json(value: Any) -> ContactRef:
    """Return the contact a stored event names (``contact_json``'s text, or its parsed form)."""
    data = pydantic_core.from_json(value) if isinstance(value, str) else value
    if not isinstance(data, dict):
        raise ValueError(f"a stored contact reference must be an object, not {type(data).__name__}")
    return ContactRef(
        external_id=data.get("external_id"),
        email=data.get("email"),
        fields=dict(data.get("fields") or {}),
        attributes=dict(data.get("attributes") or {}),
    )


# Not frozen, like ``Incoming``: a frozen dataclass's __init__ costs more, and a batch makes many.
@dataclass(slots=True)
class EventReceipt:
    """What a webhook's answer says of one of its events."""

    source_event_id: str
    event_id: str | None
    status: Literal["accepted", "duplicate", "no_contact"]
    surveys_requested: int | None
    """None until the rules have run (a webhook's events); a number once they have."""


async def store_events(
    fetch: Fetch,
    *,
    workspace_id: str,
    integration_id: str | None,
    source: str,
    events: Sequence[Incoming],
    now: datetime,
) -> list[EventReceipt]:
    """Store each event once, pending for the evaluator; return what happened to each.

    An event without a contact is stored as evaluated: no rule can ask anyone about it.
    """
    ids = [event_id_for(workspace_id, source, e.source_event_id) for e in events]
    rows = await fetch(
        STORE_SQL,
        workspace_id,
        integration_id,
        source,
        ids,
        [e.source_event_id for e in events],
        [e.event_type for e in events],
        [e.occurred_at or now for e in events],
        [json_param(e.properties) for e in events],
        [contact_json(e.contact) if e.contact else None for e in events],
        [None if e.contact else now for e in events],
        [e.traceparent or tracing.current() for e in events],
    )
    inserted = {source_event_id for event_id, source_event_id in rows if event_id is not None}
    # The one row the database kept is the new event; a repeat of it in the same request is a duplicate.
    fresh = []
    for event in events:
        fresh.append(event.source_event_id in inserted)
        inserted.discard(event.source_event_id)
    existing: dict[str, str] = {}
    if not all(fresh):
        repeated = [e.source_event_id for e, new in zip(events, fresh, strict=True) if not new]
        existing = {sid: eid for sid, eid in await fetch(EXISTING_SQL, workspace_id, source, repeated)}
    return [
        _receipt(event, event_id if new else existing.get(event.source_event_id, event_id), duplicate=not new)
        for event, event_id, new in zip(events, ids, fresh, strict=True)
    ]


def _receipt(event: Incoming, event_id: str, *, duplicate: bool) -> EventReceipt:
    """What a webhook's answer says of one of its events (``event_id``: the stored one, for a duplicate)."""
    if duplicate:
        return EventReceipt(
            source_event_id=event.source_event_id, event_id=event_id, status="duplicate", surveys_requested=0
        )
    return EventReceipt(
        source_event_id=event.source_event_id,
        event_id=event_id,
        status="accepted" if event.contact else "no_contact",
        surveys_requested=None if event.contact else 0,
    )


_EVENT_ID_HASH = hashlib.blake2b(digest_size=16, person=b"closeloop-event")


def event_id_for(workspace_id: str, source: str, source_event_id: str) -> str:
    """The id of the event a source identifies as ``source_event_id``: a UUID derived from that
    identity, so the answer to a webhook can name its events before they are in their table, and a
    redelivery is given the same id."""
    hasher = _EVENT_ID_HASH.copy()  # cheaper than setting up a keyed hash per event
    hasher.update(f"{workspace_id}\x1f{source}\x1f{source_event_id}".encode())
    digest = bytearray(hasher.digest())
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: an application-defined UUID
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 9562 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# A request of many events (a HubSpot batch) is stored as one row: what its answer waits for is one
# row per request, not one per event with four index entries each. The statement also looks the
# events up among those already stored, so that a redelivery is answered as one. The evaluator moves
# the events into received_events (EXPLODE_SQL), where the source's id deduplicates them for good.
STORE_BATCHES_SQL = f"""
WITH b AS (
    INSERT INTO trigger.received_batches (workspace_id, integration_id, source, count, events)
    SELECT $1, $2, $3, x.count, x.events FROM unnest($4::int[], $5::text[]) AS x(count, events)
)
SELECT source_event_id, id FROM trigger.received_events
WHERE workspace_id = $1 AND source = $3 AND source_event_id = ANY($6::varchar[])
UNION ALL
SELECT NULL, NULL FROM (SELECT pg_notify('{EVALUATE_CHANNEL}', '')) AS n
"""
_BATCH_EVENT_RECORD = (
    "id varchar, source_event_id varchar, event_type varchar, occurred_at timestamptz, payload jsonb, "
    "contact jsonb, traceparent varchar"
)


def explode_sql(which: str) -> str:
    """Move the events of stored batches into received_events, pending (or evaluated, without a
    contact); an event stored before is skipped. ``which``: ``oldest`` — the oldest ``$1`` batches no
    other transaction holds; ``workspace`` — up to ``$1`` batches of workspace ``$2``, waiting for any
    another transaction holds; ``one`` — batch ``$1``."""
    chosen = {
        "oldest": "SELECT seq FROM trigger.received_batches WHERE error IS NULL ORDER BY seq LIMIT $1 "
        "FOR UPDATE SKIP LOCKED",
        "workspace": "SELECT seq FROM trigger.received_batches WHERE error IS NULL AND workspace_id = $2 "
        "ORDER BY seq LIMIT $1 FOR UPDATE",
        "one": "SELECT $1::bigint",
    }[which]
    return f"""
WITH b AS (
    DELETE FROM trigger.received_batches WHERE seq IN ({chosen})
    RETURNING seq, workspace_id, integration_id, source, received_at, events
), i AS (  -- runs whether or not the last SELECT reads it
    INSERT INTO trigger.received_events
        (id, workspace_id, integration_id, source, source_event_id, event_type, occurred_at, payload,
         contact, evaluated_at, received_at, traceparent)
    SELECT x.id, b.workspace_id, b.integration_id, b.source, x.source_event_id, x.event_type, x.occurred_at,
           x.payload, x.contact, CASE WHEN x.contact IS NULL THEN b.received_at END, b.received_at,
           x.traceparent
    FROM b, json_to_recordset(b.events::json) AS x({_BATCH_EVENT_RECORD})
    ORDER BY b.seq
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM b
"""


EXPLODE_SQL = explode_sql("oldest")
EXPLODE_WORKSPACE_SQL = explode_sql("workspace")
EXPLODE_ONE_SQL = explode_sql("one")
# A batch that cannot be moved (its events break a constraint) is set aside with the reason.
SET_BATCH_ASIDE_SQL = "UPDATE trigger.received_batches SET error = $2 WHERE seq = $1 RETURNING seq"
# An event still waiting in a stored batch of the workspace (``GET /v1/events/{id}`` shows it).
PENDING_IN_BATCH_SQL = f"""
SELECT b.source, x.source_event_id, x.event_type, x.occurred_at, x.payload::text, b.received_at, b.error
FROM trigger.received_batches AS b, json_to_recordset(b.events::json) AS x({_BATCH_EVENT_RECORD})
WHERE b.workspace_id = $1 AND strpos(b.events, $2) > 0 AND x.id = $2
LIMIT 1
"""


def batch_json(events: Sequence[Incoming], ids: Sequence[str], now: datetime) -> str:
    """The events of one request as stored in received_batches (EXPLODE_SQL reads them)."""
    return json_param(
        [
            {
                "id": event_id,
                "source_event_id": e.source_event_id,
                "event_type": e.event_type,
                "occurred_at": e.occurred_at or now,
                "payload": e.properties,
                "contact": _contact_doc(e.contact) if e.contact else None,
                "traceparent": e.traceparent or tracing.current(),
            }
            for e, event_id in zip(events, ids, strict=True)
        ]
    )


async def store_batches(
    fetch: Fetch,
    *,
    workspace_id: str,
    integration_id: str | None,
    source: str,
    requests: Sequence[Sequence[Incoming]],
    now: datetime,
) -> list[list[EventReceipt]]:
    """Store each request's events as one pending batch; return what happened to each event.

    An event already stored is answered as a duplicate. Two deliveries of one event arriving at the
    same moment may both be answered as accepted: the evaluator still stores and decides it once.
    """
    ids = [[event_id_for(workspace_id, source, e.source_event_id) for e in events] for events in requests]
    rows = await fetch(
        STORE_BATCHES_SQL,
        workspace_id,
        integration_id,
        source,
        [len(events) for events in requests],
        [batch_json(events, event_ids, now) for events, event_ids in zip(requests, ids, strict=True)],
        [e.source_event_id for events in requests for e in events],
    )
    stored = {source_event_id: event_id for source_event_id, event_id in rows if event_id is not None}
    seen: set[str] = set()
    results = []
    for events, event_ids in zip(requests, ids, strict=True):
        answer = []
        for event, event_id in zip(events, event_ids, strict=True):
            key = event.source_event_id
            answer.append(_receipt(event, stored.get(key, event_id), duplicate=key in stored or key in seen))
            seen.add(key)
        results.append(answer)
    return results


async def explode_batches(
    fetch: Fetch, *, limit: int = 1, workspace_id: str | None = None, seq: int | None = None
) -> int:
    """Move the events of up to ``limit`` stored batches into received_events; return how many
    batches. With ``workspace_id``, that workspace's batches, waiting for any being moved; with
    ``seq``, that batch alone."""
    if seq is not None:
        rows = await fetch(EXPLODE_ONE_SQL, seq)
    elif workspace_id is None:
        rows = await fetch(EXPLODE_SQL, limit)
    else:
        rows = await fetch(EXPLODE_WORKSPACE_SQL, limit, workspace_id)
    return int(rows[0][0])
