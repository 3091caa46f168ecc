"""One pass of the escalation ladder over the cases whose next step has come due.

Cases are claimed with ``FOR UPDATE SKIP LOCKED`` (replicas share the work, never the same case) and
each applied step is inserted into ``escalations`` first: its primary key (case, step) makes a second
application impossible even if two passes ever saw the same case."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import ARRAY, String, any_, cast, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain import cases as rules
from services.followup.domain import escalation as ladder
from services.followup.domain import notices
from services.followup.handlers import common, notify
from services.followup.handlers.routing import active_agent, pick_in_team
from services.followup.models import Case, Escalation, EscalationSchedule, Team, WorkspaceSettings
from shared.events import EventData, FollowUpAssigned, FollowUpEscalated
from shared.outbox import Outbox

WHY = {
    "age": "The case is {age} old.",
    "first_contact_breach": "Nobody has contacted the customer yet: the first-contact SLA was breached.",
    "resolution_breach": "The case is not resolved in time: the resolution SLA was breached.",
}


ESCALATIONS = Counter(
    "closeloop_followup_escalations_total",
    "Escalation steps applied to cases, by what triggered them (age, first_contact_breach, resolution_breach)",
    ["trigger"],
)

_CLOCK_COLUMNS = (
    Case.id,
    Case.workspace_id,
    Case.created_at,
    Case.status,
    Case.team_id,
    Case.first_contacted_at,
    Case.paused_at,
    Case.first_contact_due_at,
    Case.first_contact_due_business_at,
    Case.resolution_due_at,
    Case.resolution_due_business_at,
)
_RESCHEDULE = text(
    "UPDATE followup.escalation_schedule AS s SET next_at = v.at "
    "FROM unnest(CAST(:ids AS varchar[]), CAST(:ats AS timestamptz[])) AS v(id, at) WHERE s.case_id = v.id"
)


async def escalate_due(session: AsyncSession, outbox: Outbox, *, now: datetime, limit: int) -> int:
    """Apply the due steps of up to ``limit`` claimed cases; return how many cases were looked at.

    Most claimed cases only need their next moment recomputed (a step became inapplicable, or the
    ladder changed): that is done from the clock columns alone and written in one statement. Cases with
    a step to apply are locked (skipping any an agent is changing right now: they stay due for the next
    pass) and loaded whole."""
    rows = (
        await session.execute(
            select(*_CLOCK_COLUMNS)
            .join(EscalationSchedule, EscalationSchedule.case_id == Case.id)
            .where(EscalationSchedule.next_at <= now)
            .order_by(EscalationSchedule.next_at)
            .limit(limit)
            .with_for_update(of=EscalationSchedule, skip_locked=True)
        )
    ).all()
    if not rows:
        return 0
    steps: dict[str, list[ladder.Step]] = {}
    for workspace_id in {r[1] for r in rows}:
        steps[workspace_id] = await common.load_steps(session, workspace_id)
    done: dict[str, set[str]] = defaultdict(set)
    ids = [r[0] for r in rows]
    for case_id, step_id in await session.execute(
        select(Escalation.case_id, Escalation.step_id).where(
            Escalation.case_id == any_(cast(ids, ARRAY(String)))
        )
    ):
        done[case_id].add(step_id)
    later: dict[str, datetime | None] = {}
    busy: list[str] = []
    for case_id, workspace_id, *clock in rows:
        at = ladder.next_due(steps[workspace_id], _clock_of(clock), done=done[case_id])
        if at is not None and at <= now:
            busy.append(case_id)
        else:
            later[case_id] = at
    events: list[EventData] = []
    if busy:
        locked = await session.scalars(
            select(Case).where(Case.id.in_(busy)).with_for_update(skip_locked=True)
        )
        for case in locked:
            events.extend(await _escalate(session, case, steps[case.workspace_id], done[case.id], now=now))
    gone = [case_id for case_id, at in later.items() if at is None]
    if gone:
        await session.execute(delete(EscalationSchedule).where(EscalationSchedule.case_id.in_(gone)))
    moved = {case_id: at for case_id, at in later.items() if at is not None}
    if moved:
        await session.execute(_RESCHEDULE, {"ids": list(moved), "ats": list(moved.values())})
    await common.add_events(session, outbox, events)
    return len(rows)


async def _escalate(
    session: AsyncSession, case: Case, steps: list[ladder.Step], done: set[str], *, now: datetime
) -> list[EventData]:
    """Apply the steps due for one locked case (read afresh); return the events they cause."""
    due = ladder.due_steps(steps, common.clock_of(case), done=done, now=now)
    events: list[EventData] = []
    if due:
        inserted = await session.execute(
            insert(Escalation)
            .values(
                [
                    {
                        "case_id": case.id,
                        "step_id": s.id,
                        "workspace_id": case.workspace_id,
                        "action": s.action,
                        "applied_at": now,
                    }
                    for s in due
                ]
            )
            .on_conflict_do_nothing()
            .returning(Escalation.step_id)
        )
        claimed = set(inserted.scalars())
        for step in due:
            if step.id in claimed:
                events.extend(await _apply(session, case, step, now=now))
            done.add(step.id)  # applied now, or by another pass already
    await common.schedule_escalation(session, case, steps=steps, done=done)
    return events


def _clock_of(columns: list[Any]) -> ladder.CaseClock:
    """The ladder's view of a case from ``_CLOCK_COLUMNS`` after the id and workspace."""
    opened_at, status, team_id, contacted_at, paused_at, *due = columns
    return ladder.CaseClock(
        opened_at, rules.is_active(status), team_id, contacted_at is not None, paused_at is not None, *due
    )


async def _apply(session: AsyncSession, case: Case, step: ladder.Step, *, now: datetime) -> list[EventData]:
    """Apply one step to one case; return the events it causes."""
    team = await common.team_of(session, case)
    why = WHY[step.trigger].format(age=_age(now - case.created_at))
    ESCALATIONS.labels(step.trigger).inc()  # the SLA-breach alert counts the *_breach ones
    notified: str | None = None
    reassigned_to: str | None = None
    events: list[EventData] = []
    targets: list[notify.Target] = []
    if step.action == "notify_assignee":
        targets = await notify.agent_targets(
            session, case.workspace_id, case.assignee
        ) or notify.team_targets(team)
    elif step.action == "notify_lead":
        lead = team.lead_agent_id if team else None
        targets = await notify.agent_targets(session, case.workspace_id, lead) or notify.team_targets(team)
    else:
        reassigned_to = await _reassign(session, case, step, team, now=now)
        if reassigned_to:
            previous, case.assignee = case.assignee, reassigned_to
            events.append(
                FollowUpAssigned(
                    **common.about(case, now=now, actor="system"),
                    assignee=reassigned_to,
                    team_id=case.team_id,
                    previous_assignee=previous,
                    reason=f"escalation: {step.name}",
                )
            )
            targets = await notify.agent_targets(session, case.workspace_id, reassigned_to)
    if not targets:
        settings = await session.get(WorkspaceSettings, case.workspace_id)
        targets = [("email", settings.notify_email)] if settings is not None and settings.notify_email else []
    notified = ", ".join(to for _, to in targets) or None
    subject, body = notices.escalation_notice(
        step=step.name, why=why, case_id=case.id, assignee=case.assignee
    )
    events.extend(notify.notifications(case.workspace_id, targets, subject, body))
    escalated: dict[str, Any] = {
        "step": step.name,
        "trigger": step.trigger,
        "action": step.action,
        "notified": notified,
        "reassigned_to": reassigned_to,
    }
    events.append(
        FollowUpEscalated(**common.about(case, now=now, actor="system"), step_id=step.id, **escalated)
    )
    session.add(common.entry(case, "escalated", actor="system", now=now, **escalated))
    case.updated_at = now
    return events


async def _reassign(
    session: AsyncSession, case: Case, step: ladder.Step, team: Team | None, *, now: datetime
) -> str | None:
    """Return who the case goes to: the step's agent, the next member of the step's team, or the lead."""
    if step.reassign_agent_id and await active_agent(
        session, workspace_id=case.workspace_id, agent_id=step.reassign_agent_id
    ):
        return step.reassign_agent_id
    if step.reassign_team_id:
        target = await session.get(Team, step.reassign_team_id)
        if target is not None and target.workspace_id == case.workspace_id:
            case.team_id = target.id
            return await pick_in_team(session, target, now=now)
    lead = team.lead_agent_id if team else None
    if (
        lead
        and lead != case.assignee
        and await active_agent(session, workspace_id=case.workspace_id, agent_id=lead)
    ):
        return lead
    return None


def _age(delta: object) -> str:
    hours = int(getattr(delta, "total_seconds", lambda: 0)() // 3600)
    return f"{hours // 24} days {hours % 24} hours" if hours >= 24 else f"{hours} hours"
