"""What decisions cause, gathered and written together: the decision log, the frequency history,
schedules and ``SurveyRequested`` in the outbox (``Batch``, one statement for all of them), shared by
the evaluator and the scheduler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.domain.conditions import Facts
from services.trigger.domain.decisions import contact_attributes, survey_context
from services.trigger.domain.model import RuleView, Verdict
from services.trigger.handlers.envelopes import envelope_time, survey_requested
from services.trigger.store import json_param
from shared.events import new_id
from shared.outbox import Outbox

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

    outbox: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    time: str = field(default_factory=envelope_time)
    """The ``time`` of the events it publishes: when the batch was decided."""


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
        survey_requested(
            outbox,
            time=batch.time,
            workspace_id=workspace_id,
            request_id=request_id,
            contact=contact,
            survey_id=rule.survey_id,
            kind=rule.kind,
            channel=verdict.channel or rule.channel,
            send_at=verdict.send_at,
            reason=f"rule:{rule.id}",
            fallback_channels=verdict.fallback_channels,
            locale=rule.locale,
            context=context,
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
