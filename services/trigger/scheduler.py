"""The scheduler: turns sends that have come due (a delay after an event, the end of quiet hours,
a journey step, the next round of a recurring survey) into ``SurveyRequested``.

It is a ``shared.worker.Worker`` named ``scheduler``: a pass handles up to ``batch`` due sends and,
if it took that many, the next starts at once; otherwise it looks again after ``poll_interval_s``.
Each due send is handled in its own transaction: the schedule row is claimed with ``FOR UPDATE
SKIP LOCKED`` (so replicas share the work), then the contact's row is locked, so a due send and
a webhook for the same contact never both get past the frequency cap.

A due send continues the trace of the webhook whose event scheduled it (the trace is kept with the
received event), so a delayed survey's ``SurveyRequested`` is in the webhook's trace; each round of
a recurring survey starts a trace of its own (weeks later, it is work of its own).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches
from services.trigger.domain.conditions import Facts
from services.trigger.domain.decisions import decide_due
from services.trigger.domain.model import survey_state
from services.trigger.handlers.contacts import contact_facts, contact_view
from services.trigger.handlers.history import load_history
from services.trigger.handlers.rules import load_workspace, rule_view
from services.trigger.handlers.tx import in_transaction
from services.trigger.handlers.writes import Batch, record_verdict, write_batch
from services.trigger.models import CONTACT_COLUMNS, ReceivedEvent, Rule, Schedule, contacts_table
from shared import tracing
from shared.clock import Clock
from shared.db import Database
from shared.outbox import Outbox
from shared.worker import Worker

# Outcomes after which a recurring survey stops; any other outcome (a closed survey, say) skips one
# round only.
_ENDS_ENROLLMENT = ("opted_out", "cancelled")


class Scheduler(Worker):
    """Turns due sends into survey requests, each in its own transaction."""

    name = "scheduler"

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        caches: Caches,
        *,
        poll_interval_s: float = 1.0,
        batch: int = 200,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(poll_interval_s=poll_interval_s, batch=batch)
        self.db = db
        self.outbox = outbox
        self.caches = caches
        self.clock = clock or Clock()

    async def work_once(self) -> int:
        return await self.run_due()

    async def run_due(self, *, now: datetime | None = None, limit: int | None = None) -> int:
        """Return how many due sends were handled (as of ``now``, default the clock)."""
        handled = 0
        for _ in range(limit or self.batch):
            handle_one = functools.partial(self._handle_one, now=now or self.clock.now())
            if not await in_transaction(self.db, handle_one):
                break
            handled += 1
        return handled

    async def _handle_one(self, session: AsyncSession, now: datetime) -> bool:
        schedule = await session.scalar(
            select(Schedule)
            .where(Schedule.status == "pending", Schedule.due_at <= now)
            .order_by(Schedule.due_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if schedule is None:
            return False
        row = (
            (
                await session.execute(
                    select(*CONTACT_COLUMNS)
                    .where(contacts_table.c.id == schedule.contact_id)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None:  # the contact was erased
            schedule.status = "cancelled"
            return True
        contact = dict(row)
        rule_row = await session.get(Rule, schedule.rule_id)
        assert rule_row is not None  # rules are soft-deleted, never removed
        rule = rule_view(rule_row)
        workspace = await load_workspace(session, self.caches, workspace_id=schedule.workspace_id)
        window = max(workspace.cap_window_days, rule.survey_cap.days if rule.survey_cap else 0)
        history = (await load_history(session, contact_ids=[contact["id"]], window_days=window, now=now))[
            contact["id"]
        ]
        facts = Facts(
            schedule.event_type,
            schedule.source,
            schedule.occurred_at,
            schedule.properties,
            contact_facts(contact),
        )
        verdict = decide_due(
            rule,
            contact_view(contact),
            now=now,
            policy=workspace.policy,
            history=history,
            facts=facts,
            survey=survey_state(workspace.surveys, rule.survey_id),
        )
        batch = Batch([], [], [], [])
        with tracing.span("scheduled send", parent=await self._trace_of(session, schedule)):
            record_verdict(
                batch,
                self.outbox,
                workspace_id=schedule.workspace_id,
                rule=rule,
                verdict=verdict,
                contact=contact,
                facts=facts,
                received_event_id=schedule.received_event_id,
                now=now,
                schedule_id=schedule.id,
            )
        schedule.runs += 1
        schedule.updated_at = now
        if verdict.outcome == "delayed" and verdict.send_at is not None:
            schedule.due_at = verdict.send_at  # quiet hours: try again when they end
        elif schedule.recurrence_days and verdict.outcome not in _ENDS_ENROLLMENT:
            next_due = schedule.due_at + timedelta(days=schedule.recurrence_days)
            schedule.due_at = next_due if next_due > now else now + timedelta(days=schedule.recurrence_days)
        else:
            schedule.status = "done" if verdict.outcome == "sent" else "cancelled"
        await write_batch(session, self.outbox, batch)
        return True

    async def _trace_of(self, session: AsyncSession, schedule: Schedule) -> str | None:
        """The trace a due send continues: the webhook's whose event scheduled it (kept with the event);
        None (a trace of its own) for the rounds of a recurring survey, or once the event is gone."""
        if schedule.received_event_id is None or schedule.recurrence_days:
            return None
        return await session.scalar(
            select(ReceivedEvent.traceparent).where(ReceivedEvent.id == schedule.received_event_id)
        )
