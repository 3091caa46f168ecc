"""Evaluation: the workspaces' rules applied to stored, pending events, and what the decisions
cause (decisions, the frequency history, schedules, ``SurveyRequested`` in the outbox).

Set-based, for throughput: a claimed batch of events, of any number of workspaces, costs one
statement to upsert its contacts and mark its events evaluated, one to read the contacts' frequency
history and recurring enrolments, and one to write everything the decisions cause (``Batch``);
rules come from the in-memory cache, and the decisions are made in Python over the whole batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

import pydantic_core
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import WorkspaceRules
from services.trigger.domain.conditions import Facts
from services.trigger.domain.decisions import decide_all
from services.trigger.domain.model import ContactView, Sent
from services.trigger.handlers.contacts import (
    clip,
    contact_values,
    contact_view,
    merge_refs,
    ref_key,
    upsert_contact_by_email,
)
from services.trigger.handlers.envelopes import customer_event_received
from services.trigger.handlers.history import load_histories
from services.trigger.handlers.writes import Batch, record_verdict, write_batch
from services.trigger.sources.common import ContactRef
from services.trigger.store import json_param
from shared import tracing
from shared.outbox import Outbox
from shared.vocabulary import CONTACT_FIELDS

YIELD_EVERY = 100
"""Events decided between two yields to the event loop, so that a large batch does not hold up the
requests of an API sharing the process for the whole of its Python work."""

_CONTACT_SQL_COLUMNS = ", ".join(CONTACT_FIELDS)
_CONTACT_RECORD = ", ".join(
    ["id varchar", "workspace_id varchar", "external_id varchar"]
    + [f"{f} varchar" for f in CONTACT_FIELDS]
    + ["attributes jsonb"]
)
# The evaluator's first statement for a batch of stored events, of any number of workspaces: upsert
# their contacts (sorted, so that two evaluators lock the contacts they share in the same order) and
# mark the events evaluated, naming their contact. Its rows: the contacts.
_EVALUATE_SQL = text(
    f"""
WITH c AS (
    INSERT INTO trigger.contacts AS t
        (id, workspace_id, external_id, {_CONTACT_SQL_COLUMNS}, attributes, opted_out, opted_out_channels)
    SELECT x.id, x.workspace_id, x.external_id, {", ".join(f"x.{f}" for f in CONTACT_FIELDS)},
           COALESCE(x.attributes, '{{}}'::jsonb), false, '[]'::jsonb
    FROM jsonb_to_recordset(CAST(:contacts AS jsonb)) AS x({_CONTACT_RECORD})
    ORDER BY x.workspace_id, x.external_id
    ON CONFLICT (workspace_id, external_id) DO UPDATE SET
        {", ".join(f"{f} = COALESCE(EXCLUDED.{f}, t.{f})" for f in CONTACT_FIELDS)},
        attributes = t.attributes || EXCLUDED.attributes,
        updated_at = now()
    RETURNING t.id, t.workspace_id, t.external_id, {", ".join(f"t.{f}" for f in CONTACT_FIELDS)}, t.attributes,
              t.opted_out, t.opted_out_channels, t.created_at
), e AS (
    UPDATE trigger.received_events AS t
    SET contact_id = COALESCE(x.contact_id, c.id), contact = NULL, evaluated_at = now()
    FROM unnest(CAST(:event_ids AS varchar[]), CAST(:workspace_ids AS varchar[]),
                CAST(:contact_ids AS varchar[]), CAST(:contact_external_ids AS varchar[]))
         AS x(id, workspace_id, contact_id, contact_external_id)
    LEFT JOIN c ON c.workspace_id = x.workspace_id AND c.external_id = x.contact_external_id
    WHERE t.id = x.id
)
SELECT row_to_json(c)::text FROM c
"""
)


# Not frozen, like ``ContactRef``: a frozen dataclass's __init__ costs several times as much, and a
# pass makes one per event. Nothing changes them once claimed.
@dataclass(slots=True)
class Pending:
    """A stored event the rules have not seen yet."""

    id: str
    source: str
    source_event_id: str
    event_type: str
    occurred_at: datetime
    contact: ContactRef | None
    properties: dict[str, Any]
    traceparent: str | None = None
    """The trace of the request that brought it: what it causes is published in that trace."""


async def evaluate(
    session: AsyncSession,
    outbox: Outbox,
    *,
    rules: WorkspaceRules,
    workspace_id: str,
    events: Sequence[Pending],
    now: datetime,
) -> dict[str, int]:
    """Apply the workspace's rules to stored, pending events; return the surveys requested per event
    (``evaluate_many`` for one workspace)."""
    return await evaluate_many(session, outbox, {workspace_id: (rules, events)}, now=now)


async def evaluate_many(
    session: AsyncSession,
    outbox: Outbox,
    workspaces: Mapping[str, tuple[WorkspaceRules, Sequence[Pending]]],
    *,
    now: datetime,
) -> dict[str, int]:
    """Apply each workspace's rules to its stored, pending events; return the surveys requested per
    event.

    Upserts the events' contacts, marks the events evaluated, and writes the decisions, the frequency
    history, schedules and the outbox (``CustomerEventReceived`` and ``SurveyRequested``): one
    statement each for the whole batch, whatever the number of workspaces.
    """
    contacts, keys = await _upsert_contacts(session, workspaces)
    # The history is read after the contacts are locked (by the upsert): a due send or another
    # evaluator that got to one of them first has committed its surveys by then.
    windows: dict[str, int] = {}
    enrolled_ids: set[str] = set()
    for rules, events in workspaces.values():
        recurring = any(r.recurrence_days for r in rules.rules)
        for event in events:
            if event.contact is None or not rules.any_match(event.source, event.event_type):
                continue
            contact_id = contacts[keys[event.id]]["id"]
            windows[contact_id] = rules.cap_window_days
            if recurring:
                enrolled_ids.add(contact_id)
    history, enrolled = await load_histories(
        session, windows=dict(sorted(windows.items())), enrolled=sorted(enrolled_ids), now=now
    )
    batch = Batch()
    requested: dict[str, int] = {}
    views: dict[str, ContactView] = {}
    decided = 0
    for workspace_id, (rules, events) in workspaces.items():
        # Each run of events from one request (a webhook's batch) is decided in one span, a child of
        # the request's, so that what they cause is published in its trace.
        for (traceparent, event_type, _), run in groupby(events, key=_run_of):
            with tracing.span(f"evaluate {event_type}", parent=traceparent):
                for event in run:
                    if event.contact is None:
                        continue
                    decided += 1
                    if decided % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                    contact = contacts[keys[event.id]]
                    count = _decide_event(
                        batch, outbox, rules, workspace_id, event, contact, views, history, enrolled, now
                    )
                    if count is not None:
                        requested[event.id] = count
    await write_batch(session, outbox, batch)
    return requested


async def _upsert_contacts(
    session: AsyncSession, workspaces: Mapping[str, tuple[WorkspaceRules, Sequence[Pending]]]
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, tuple[str, str]]]:
    """Upsert the contacts the events name and mark the events evaluated; return the contacts by
    (workspace, ``ref_key``), and that key of each event that names a contact (by event id)."""
    merged: dict[tuple[str, str], ContactRef] = {}
    keys: dict[str, tuple[str, str]] = {}
    for workspace_id, (_, events) in workspaces.items():
        for event in events:
            if event.contact is not None:
                key = keys[event.id] = (workspace_id, ref_key(event.contact))
                merged[key] = merge_refs(merged[key], event.contact) if key in merged else event.contact
    contacts: dict[tuple[str, str], dict[str, Any]] = {}
    for key in sorted(k for k in merged if k[1].startswith("e:")):  # known by email alone: rare
        ref = merged[key]
        contacts[key] = (await upsert_contact_by_email(session, workspace_id=key[0], ref=ref))[0]
    by_id = [contact_values(k[0], r) for k, r in merged.items() if k[1].startswith("x:")]
    every = [(workspace_id, e) for workspace_id, (_, events) in workspaces.items() for e in events]
    result = await session.execute(
        _EVALUATE_SQL,
        {
            "contacts": json_param(by_id),
            "event_ids": [e.id for _, e in every],
            "workspace_ids": [workspace_id for workspace_id, _ in every],
            "contact_ids": [
                contacts[keys[e.id]]["id"] if keys.get(e.id) in contacts else None for _, e in every
            ],
            "contact_external_ids": [
                clip("external_id", e.contact.external_id) if e.contact else None for _, e in every
            ],
        },
    )
    for (raw,) in result.all():
        row = pydantic_core.from_json(raw)
        contacts[(row.pop("workspace_id"), f"x:{row['external_id']}")] = row
    return contacts, keys


def _decide_event(
    batch: Batch,
    outbox: Outbox,
    rules: WorkspaceRules,
    workspace_id: str,
    event: Pending,
    contact: dict[str, Any],
    views: dict[str, ContactView],
    history: dict[str, list[Sent]],
    enrolled: dict[str, set[str]],
    now: datetime,
) -> int | None:
    """Decide one event of the batch into ``batch``; return the surveys it requested (None: no rule
    listens to it)."""
    batch.outbox.append(
        customer_event_received(
            outbox,
            time=batch.time,
            workspace_id=workspace_id,
            event_id=event.id,
            source=event.source,
            source_event_id=event.source_event_id,
            event_type=event.event_type,
            occurred_at=event.occurred_at,
            contact_id=contact["id"],
            properties=event.properties,
        )
    )
    if contact["id"] not in history:
        return None
    # A contact's view is the same for each of its events in the batch: made once.
    view = views.get(contact["id"]) or views.setdefault(contact["id"], contact_view(contact))
    facts = Facts(event.event_type, event.source, event.occurred_at, event.properties, view.facts)
    contact_enrolled = enrolled.setdefault(contact["id"], set())
    verdicts = decide_all(
        rules.rules,
        view,
        facts=facts,
        now=now,
        policy=rules.policy,
        history=history[contact["id"]],
        enrolled=frozenset(contact_enrolled),
        surveys=rules.surveys,
    )
    count = 0
    for rule, verdict in verdicts:
        count += record_verdict(
            batch,
            outbox,
            workspace_id=workspace_id,
            rule=rule,
            verdict=verdict,
            contact=contact,
            facts=facts,
            received_event_id=event.id,
            now=now,
        )
        if rule.recurrence_days and verdict.outcome in ("sent", "delayed"):
            contact_enrolled.add(rule.id)
    return count


def _run_of(event: Pending) -> tuple[str | None, str, str | None]:
    """What consecutive events share a span by: the trace of the request that brought them, and the
    event type the span is named after (an event kept without a trace gets a trace of its own)."""
    return (event.traceparent, event.event_type, None if event.traceparent else event.id)
