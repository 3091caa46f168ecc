"""Evaluation: the workspace's rules applied to stored, pending events, and what the decisions
cause (decisions, the frequency history, schedules, ``SurveyRequested`` in the outbox).

Written for throughput: one statement upserts a pass's contacts and marks its events evaluated, and
one writes everything the decisions cause (``Batch``); rules come from the in-memory cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pydantic_core
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import WorkspaceRules
from services.trigger.domain.conditions import Facts
from services.trigger.domain.decisions import contact_attributes, decide_all, survey_context
from services.trigger.domain.model import RuleView, Sent, Verdict
from services.trigger.handlers.contacts import (
    clip,
    contact_facts,
    contact_values,
    contact_view,
    merge_refs,
    ref_key,
    upsert_contact_by_email,
)
from services.trigger.handlers.tx import outbox_row
from services.trigger.models import contact_surveys_table, schedules_table
from services.trigger.sources.common import ContactRef
from services.trigger.store import json_param
from shared import tracing
from shared.events import CustomerEventReceived, Recipient, SurveyRequested, new_id
from shared.outbox import Outbox
from shared.vocabulary import CONTACT_FIELDS

_CONTACT_SQL_COLUMNS = ", ".join(CONTACT_FIELDS)
_CONTACT_RECORD = ", ".join(
    ["id varchar", "workspace_id varchar", "external_id varchar"]
    + [f"{f} varchar" for f in CONTACT_FIELDS]
    + ["attributes jsonb"]
)
# The evaluator's first statement for a batch of stored events: upsert their contacts (sorted, so
# that two evaluators lock the contacts they share in the same order) and mark the events evaluated,
# naming their contact. Its rows: the contacts.
_EVALUATE_SQL = text(
    f"""
WITH c AS (
    INSERT INTO trigger.contacts AS t
        (id, workspace_id, external_id, {_CONTACT_SQL_COLUMNS}, attributes, opted_out, opted_out_channels)
    SELECT x.id, x.workspace_id, x.external_id, {", ".join(f"x.{f}" for f in CONTACT_FIELDS)},
           COALESCE(x.attributes, '{{}}'::jsonb), false, '[]'::jsonb
    FROM jsonb_to_recordset(CAST(:contacts AS jsonb)) AS x({_CONTACT_RECORD})
    ORDER BY x.external_id
    ON CONFLICT (workspace_id, external_id) DO UPDATE SET
        {", ".join(f"{f} = COALESCE(EXCLUDED.{f}, t.{f})" for f in CONTACT_FIELDS)},
        attributes = t.attributes || EXCLUDED.attributes,
        updated_at = now()
    RETURNING t.id, t.external_id, {", ".join(f"t.{f}" for f in CONTACT_FIELDS)}, t.attributes,
              t.opted_out, t.opted_out_channels, t.created_at
), e AS (
    UPDATE trigger.received_events AS t
    SET contact_id = COALESCE(x.contact_id, c.id), contact = NULL, evaluated_at = now()
    FROM unnest(CAST(:event_ids AS varchar[]), CAST(:contact_ids AS varchar[]),
                CAST(:contact_external_ids AS varchar[])) AS x(id, contact_id, contact_external_id)
    LEFT JOIN c ON c.external_id = x.contact_external_id
    WHERE t.id = x.id
)
SELECT row_to_json(c)::text FROM c
"""
)
# One statement for the second half: decisions, the frequency history, schedules and the outbox.
# Outbox rows keep the order they were made in, so one customer's events are published in order.
_WRITE_SQL = text(
    """
WITH s AS (
    INSERT INTO trigger.schedules
        (id, workspace_id, rule_id, contact_id, received_event_id, due_at, recurrence_days, status,
         source, event_type, occurred_at, properties)
    SELECT x.id, x.workspace_id, x.rule_id, x.contact_id, x.received_event_id, x.due_at, x.recurrence_days,
           x.status, x.source, x.event_type, x.occurred_at, x.properties
    FROM jsonb_to_recordset(CAST(:schedules AS jsonb)) AS x(
        id varchar, workspace_id varchar, rule_id varchar, contact_id varchar, received_event_id varchar,
        due_at timestamptz, recurrence_days integer, status varchar, source varchar, event_type varchar,
        occurred_at timestamptz, properties jsonb)
), d AS (
    INSERT INTO trigger.decisions
        (id, workspace_id, received_event_id, rule_id, rule_version, contact_id, outcome, reason,
         request_id, send_at, channel, schedule_id)
    SELECT v->>'id', v->>'workspace_id', v->>'received_event_id', v->>'rule_id', (v->>'rule_version')::int,
           v->>'contact_id', v->>'outcome', v->>'reason', v->>'request_id', (v->>'send_at')::timestamptz,
           v->>'channel', v->>'schedule_id'
    FROM jsonb_array_elements(CAST(:decisions AS jsonb)) WITH ORDINALITY AS a(v, n)
    ORDER BY n
), h AS (
    INSERT INTO trigger.contact_surveys (request_id, workspace_id, contact_id, survey_id, rule_id, kind, sent_at)
    SELECT x.request_id, x.workspace_id, x.contact_id, x.survey_id, x.rule_id, x.kind, x.sent_at
    FROM jsonb_to_recordset(CAST(:history AS jsonb)) AS x(
        request_id varchar, workspace_id varchar, contact_id varchar, survey_id varchar, rule_id varchar,
        kind varchar, sent_at timestamptz)
    ON CONFLICT DO NOTHING
)
INSERT INTO trigger.outbox (event_id, topic, key, payload)
SELECT v->>'event_id', v->>'topic', v->>'key', v->'payload'
FROM jsonb_array_elements(CAST(:outbox AS jsonb)) WITH ORDINALITY AS a(v, n)
ORDER BY n
"""
)


@dataclass
class Batch:
    """What one evaluation writes, gathered so that each table gets one statement."""

    outbox: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    history: list[dict[str, Any]]
    schedules: list[dict[str, Any]]


def survey_requested(
    *,
    workspace_id: str,
    rule: RuleView,
    contact: Mapping[str, Any],
    verdict: Verdict,
    request_id: str,
    context: dict[str, str],
) -> SurveyRequested:
    """Return the event that asks dispatch to send ``rule``'s survey to ``contact``."""
    return SurveyRequested(
        workspace_id=workspace_id,
        request_id=request_id,
        contact_id=contact["id"],
        survey_id=rule.survey_id,
        kind=rule.kind,
        channel=verdict.channel or rule.channel,
        send_at=verdict.send_at,
        recipient=Recipient(
            name=contact["name"],
            email=contact["email"],
            phone=contact["phone"],
            locale=contact["locale"],
            timezone=contact["timezone"],
            company=contact["company"],
        ),
        reason=f"rule:{rule.id}",
        fallback_channels=verdict.fallback_channels,
        locale=rule.locale,
        context=context,
    )


def record_verdict(
    batch: Batch,
    outbox: Outbox,
    *,
    workspace_id: str,
    rule: RuleView,
    verdict: Verdict,
    contact: Mapping[str, Any],
    facts: Facts,
    received_event_id: str | None,
    now: datetime,
    schedule_id: str | None = None,
) -> bool:
    """Add the decision and what it causes to ``batch``; return whether a survey was requested."""
    request_id = new_id() if verdict.outcome == "sent" else None
    new_schedule = None
    if verdict.outcome == "delayed" and schedule_id is None and verdict.send_at is not None:
        new_schedule = new_id()
        batch.schedules.append(
            _schedule_row(
                new_schedule, workspace_id, rule, contact, facts, received_event_id, verdict.send_at
            )
        )
    elif verdict.outcome == "sent" and rule.recurrence_days and schedule_id is None:
        # The first send of a recurring survey enrols the contact: the next one is due in N days.
        new_schedule = new_id()
        due = now + timedelta(days=rule.recurrence_days)
        batch.schedules.append(
            _schedule_row(new_schedule, workspace_id, rule, contact, facts, received_event_id, due)
        )
    batch.decisions.append(
        {
            "id": new_id(),
            "workspace_id": workspace_id,
            "received_event_id": received_event_id,
            "rule_id": rule.id,
            "rule_version": rule.version,
            "contact_id": contact["id"],
            "outcome": verdict.outcome,
            "reason": verdict.reason[:2000],
            "request_id": request_id,
            "send_at": verdict.send_at,
            "channel": verdict.channel,
            "schedule_id": schedule_id or new_schedule,
        }
    )
    if request_id is None:
        return False
    context = survey_context(facts.event_type, facts.source, facts.properties, contact_attributes(contact))
    batch.outbox.append(
        outbox_row(
            outbox,
            survey_requested(
                workspace_id=workspace_id,
                rule=rule,
                contact=contact,
                verdict=verdict,
                request_id=request_id,
                context=context,
            ),
        )
    )
    batch.history.append(
        {
            "request_id": request_id,
            "workspace_id": workspace_id,
            "contact_id": contact["id"],
            "survey_id": rule.survey_id,
            "rule_id": rule.id,
            "kind": rule.kind,
            "sent_at": now,
        }
    )
    return True


def _schedule_row(
    schedule_id: str,
    workspace_id: str,
    rule: RuleView,
    contact: Mapping[str, Any],
    facts: Facts,
    received_event_id: str | None,
    due: datetime,
) -> dict[str, Any]:
    return {
        "id": schedule_id,
        "workspace_id": workspace_id,
        "rule_id": rule.id,
        "contact_id": contact["id"],
        "received_event_id": received_event_id,
        "due_at": due,
        "recurrence_days": rule.recurrence_days,
        "status": "pending",
        "source": facts.source,
        "event_type": facts.event_type,
        "occurred_at": facts.occurred_at,
        "properties": dict(facts.properties),
    }


async def write_batch(session: AsyncSession, outbox: Outbox, batch: Batch) -> None:
    """Write what ``batch`` gathered in one statement."""
    if not (batch.schedules or batch.decisions or batch.history or batch.outbox):
        return
    await session.execute(
        _WRITE_SQL,
        {
            "schedules": json_param(batch.schedules),
            "decisions": json_param(batch.decisions),
            "history": json_param(batch.history),
            "outbox": json_param(batch.outbox),
        },
    )
    if batch.outbox:
        session.info["outbox_written"] = True


async def load_history(
    session: AsyncSession, *, contact_ids: Sequence[str], window_days: int, now: datetime
) -> dict[str, list[Sent]]:
    """Return each contact's surveys within the longest cap window."""
    history: dict[str, list[Sent]] = {cid: [] for cid in contact_ids}
    if not contact_ids or window_days <= 0:
        return history
    rows = await session.execute(
        select(
            contact_surveys_table.c.contact_id,
            contact_surveys_table.c.survey_id,
            contact_surveys_table.c.sent_at,
            contact_surveys_table.c.rule_id,
        ).where(
            contact_surveys_table.c.contact_id.in_(contact_ids),
            contact_surveys_table.c.sent_at > now - timedelta(days=window_days),
        )
    )
    for contact_id, survey_id, sent_at, rule_id in rows:
        history[contact_id].append(Sent(survey_id, sent_at, rule_id))
    return history


async def load_enrollments(session: AsyncSession, *, contact_ids: Sequence[str]) -> dict[str, set[str]]:
    """Return, per contact, the recurring rules it is enrolled in (a pending recurring schedule)."""
    enrolled: dict[str, set[str]] = {cid: set() for cid in contact_ids}
    if not contact_ids:
        return enrolled
    rows = await session.execute(
        select(schedules_table.c.contact_id, schedules_table.c.rule_id).where(
            schedules_table.c.contact_id.in_(contact_ids),
            schedules_table.c.status == "pending",
            schedules_table.c.recurrence_days.is_not(None),
        )
    )
    for contact_id, rule_id in rows:
        enrolled[contact_id].add(rule_id)
    return enrolled


@dataclass(frozen=True)
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
    """Apply the workspace's rules to stored, pending events; return the surveys requested per event.

    Upserts the events' contacts, marks the events evaluated, and writes the decisions, the frequency
    history, schedules and the outbox (``CustomerEventReceived`` and ``SurveyRequested``).
    """
    merged: dict[str, ContactRef] = {}
    for event in events:
        if event.contact is not None:
            key = ref_key(event.contact)
            merged[key] = merge_refs(merged[key], event.contact) if key in merged else event.contact
    contacts: dict[str, dict[str, Any]] = {}
    for key in sorted(k for k in merged if k.startswith("e:")):  # known by email alone: rare
        contacts[key] = (await upsert_contact_by_email(session, workspace_id=workspace_id, ref=merged[key]))[
            0
        ]
    by_id = [contact_values(workspace_id, r) for k, r in merged.items() if k.startswith("x:")]
    result = await session.execute(
        _EVALUATE_SQL,
        {
            "contacts": json_param(by_id),
            "event_ids": [event.id for event in events],
            "contact_ids": [
                contacts[key]["id"] if event.contact and (key := ref_key(event.contact)) in contacts else None
                for event in events
            ],
            "contact_external_ids": [
                clip("external_id", event.contact.external_id) if event.contact else None for event in events
            ],
        },
    )
    for (raw,) in result.all():
        row = pydantic_core.from_json(raw)
        contacts[f"x:{row['external_id']}"] = row

    accepted = [e for e in events if e.contact is not None]
    relevant_ids = sorted(
        {contacts[ref_key(e.contact)]["id"] for e in accepted if rules.any_match(e.source, e.event_type)}  # type: ignore[arg-type]
    )
    history = await load_history(
        session, contact_ids=relevant_ids, window_days=rules.cap_window_days, now=now
    )
    enrolled = (
        await load_enrollments(session, contact_ids=relevant_ids)
        if any(r.recurrence_days for r in rules.rules)
        else {}
    )
    batch = Batch([], [], [], [])
    requested: dict[str, int] = {}
    for event in accepted:
        # In the trace of the request that brought the event (a webhook's, kept with it).
        with tracing.span(f"evaluate {event.event_type}", parent=event.traceparent):
            contact = contacts[ref_key(event.contact)]  # type: ignore[arg-type]
            batch.outbox.append(
                outbox_row(
                    outbox,
                    CustomerEventReceived(
                        workspace_id=workspace_id,
                        event_id=event.id,
                        source=event.source,
                        source_event_id=event.source_event_id,
                        event_type=event.event_type,
                        occurred_at=event.occurred_at,
                        contact_id=contact["id"],
                        properties=event.properties,
                    ),
                )
            )
            if contact["id"] not in history:
                continue
            facts = Facts(
                event.event_type, event.source, event.occurred_at, event.properties, contact_facts(contact)
            )
            contact_enrolled = enrolled.setdefault(contact["id"], set())
            verdicts = decide_all(
                rules.rules,
                contact_view(contact),
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
            requested[event.id] = count
    await write_batch(session, outbox, batch)
    return requested
