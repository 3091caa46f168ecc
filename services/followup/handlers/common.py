"""What every follow-up use case shares: the workspace's configuration as domain values, recording a
change (history row and event in one go), and keeping a case's SLA due times and next escalation
moment in step with its state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain import cases as rules
from services.followup.domain import escalation as ladder
from services.followup.domain import sla
from services.followup.domain.taxonomy import DEFAULT_TAXONOMY, Taxonomy
from services.followup.models import (
    Case,
    CaseEntry,
    Escalation,
    EscalationSchedule,
    EscalationStep,
    SlaPolicy,
    Team,
    WorkspaceSettings,
)
from shared.errors import NotFound
from shared.events import CloudEvent, EventData, FollowUpStatusChanged, is_uuid
from shared.outbox import Outbox


@dataclass(frozen=True)
class WorkspaceConfig:
    settings: WorkspaceSettings | None
    workflow: rules.Workflow
    opening: rules.OpeningRules
    taxonomy: Taxonomy


def config_of(settings: WorkspaceSettings | None) -> WorkspaceConfig:
    """Return the workspace's rules as domain values (defaults before anything was set)."""
    if settings is None:
        return WorkspaceConfig(None, rules.Workflow(), rules.OpeningRules(), DEFAULT_TAXONOMY)
    return WorkspaceConfig(
        settings,
        rules.Workflow(
            tuple(
                rules.CustomStatus(s["name"], bool(s.get("waits_on_customer")))
                for s in settings.custom_statuses
            ),
            settings.allow_backward,
            settings.note_on_status_change,
            settings.note_on_reassign,
        ),
        rules.OpeningRules(frozenset(settings.open_on_loyalty), dict(settings.open_below)),
        settings.root_causes or DEFAULT_TAXONOMY,
    )


async def load_config(session: AsyncSession, workspace_id: str) -> WorkspaceConfig:
    return config_of(await session.get(WorkspaceSettings, workspace_id))


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def calendar_of(team: Team | None) -> sla.BusinessCalendar:
    """Return a team's business calendar (UTC, Monday to Friday 09:00-17:00 for cases without a team)."""
    if team is None:
        return sla.BusinessCalendar()
    return sla.BusinessCalendar(
        timezone=team.timezone,
        weekdays=frozenset(team.weekdays),
        start=_clock(team.day_start),
        end=_clock(team.day_end),
        holiday_country=team.holiday_country,
        holiday_subdivision=team.holiday_subdivision,
        days_off=frozenset(date.fromisoformat(d) for d in team.days_off),
    )


def policy_of(row: SlaPolicy) -> sla.Policy:
    return sla.Policy(
        row.id,
        row.team_id,
        row.priority,
        sla.Targets(
            row.first_contact_minutes,
            row.resolution_minutes,
            row.first_contact_business_minutes,
            row.resolution_business_minutes,
            row.pause_while_waiting,
        ),
    )


def step_of(row: EscalationStep) -> ladder.Step:
    return ladder.Step(
        row.id,
        row.position,
        row.name,
        row.trigger,  # type: ignore[arg-type]
        row.after_minutes,
        row.action,  # type: ignore[arg-type]
        row.created_at,
        row.clock,  # type: ignore[arg-type]
        row.team_id,
        row.reassign_team_id,
        row.reassign_agent_id,
    )


async def load_steps(session: AsyncSession, workspace_id: str) -> list[ladder.Step]:
    rows = await session.scalars(
        select(EscalationStep)
        .where(EscalationStep.workspace_id == workspace_id)
        .order_by(EscalationStep.position)
    )
    return [step_of(r) for r in rows]


async def load_policies(session: AsyncSession, workspace_id: str) -> list[sla.Policy]:
    rows = await session.scalars(select(SlaPolicy).where(SlaPolicy.workspace_id == workspace_id))
    return [policy_of(r) for r in rows]


async def team_of(session: AsyncSession, case: Case) -> Team | None:
    return await session.get(Team, case.team_id) if case.team_id else None


def due_of(case: Case) -> sla.DueTimes:
    return sla.DueTimes(
        case.first_contact_due_at,
        case.resolution_due_at,
        case.first_contact_due_business_at,
        case.resolution_due_business_at,
    )


def set_due(case: Case, due: sla.DueTimes) -> None:
    case.first_contact_due_at = due.first_contact
    case.resolution_due_at = due.resolution
    case.first_contact_due_business_at = due.first_contact_business
    case.resolution_due_business_at = due.resolution_business


async def apply_sla(session: AsyncSession, case: Case, *, team: Team | None) -> sla.Policy | None:
    """Set the case's due times from the policy for its team and priority, counted from its opening."""
    policy = sla.pick_policy(
        await load_policies(session, case.workspace_id), team_id=case.team_id, priority=case.priority
    )
    targets = policy.targets if policy else sla.DEFAULT_TARGETS
    case.sla_policy_id = policy.id if policy else None
    set_due(case, sla.due_times(case.created_at, targets, calendar_of(team)))
    return policy


async def pauses(session: AsyncSession, case: Case) -> bool:
    """Whether the case's policy pauses its clocks while it waits on the customer."""
    if case.sla_policy_id is None:
        return sla.DEFAULT_TARGETS.pause_while_waiting
    policy = await session.get(SlaPolicy, case.sla_policy_id)
    return bool(policy and policy.pause_while_waiting)


def clock_of(case: Case) -> ladder.CaseClock:
    return ladder.CaseClock(
        case.created_at,
        rules.is_active(case.status),
        case.team_id,
        case.first_contacted_at is not None,
        case.paused_at is not None,
        case.first_contact_due_at,
        case.first_contact_due_business_at,
        case.resolution_due_at,
        case.resolution_due_business_at,
    )


async def schedule_escalation(
    session: AsyncSession, case: Case, *, steps: Sequence[ladder.Step] | None = None, done: Iterable[str] = ()
) -> None:
    """Set when the scheduler next looks at the case (no row: no step of the ladder is left for it)."""
    if steps is None:
        steps = await load_steps(session, case.workspace_id)
        if steps:
            done = list(
                await session.scalars(select(Escalation.step_id).where(Escalation.case_id == case.id))
            )
    at = ladder.next_due(steps, clock_of(case), done=set(done)) if steps else None
    if at is None:
        await session.execute(delete(EscalationSchedule).where(EscalationSchedule.case_id == case.id))
        return
    await session.execute(
        insert(EscalationSchedule)
        .values(case_id=case.id, workspace_id=case.workspace_id, next_at=at)
        .on_conflict_do_update(index_elements=["case_id"], set_={"next_at": at})
    )


def entry(case: Case, kind: str, *, actor: str, now: datetime, **details: Any) -> CaseEntry:
    return CaseEntry(
        workspace_id=case.workspace_id,
        case_id=case.id,
        kind=kind,
        actor=actor,
        details={k: v for k, v in details.items() if v is not None},
        occurred_at=now,
    )


async def record(
    session: AsyncSession,
    outbox: Outbox,
    case: Case,
    kind: str,
    event: EventData | None,
    *,
    actor: str,
    now: datetime,
    **details: Any,
) -> None:
    """Add a history entry and publish ``event`` (through the outbox) for one change to a case."""
    session.add(entry(case, kind, actor=actor, now=now, **details))
    case.updated_at = now
    if event is not None:
        await outbox.add(session, event)


async def record_status_change(
    session: AsyncSession,
    outbox: Outbox,
    case: Case,
    *,
    from_status: str,
    to_status: str,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Record ``case`` moving from ``from_status`` to ``to_status``: its history entry and
    ``FollowUpStatusChanged``, both with the ``reason`` when there is one."""
    change: dict[str, Any] = {"from_status": from_status, "to_status": to_status}
    if reason is not None:
        change["reason"] = reason
    event = FollowUpStatusChanged(**about(case, now=now, actor=actor), **change)
    await record(session, outbox, case, "status_changed", event, actor=actor, now=now, **change)


async def close_without_retention(
    session: AsyncSession, outbox: Outbox, case: Case, *, reason: str, now: datetime
) -> None:
    """Close a resolved case whose retention survey cannot go out (the system's move, saying why)."""
    case.status, case.closed_at = rules.CLOSED, now
    await record_status_change(
        session,
        outbox,
        case,
        from_status=rules.RESOLVED,
        to_status=rules.CLOSED,
        actor="system",
        now=now,
        reason=reason,
    )


async def add_events(session: AsyncSession, outbox: Outbox, events: Sequence[EventData]) -> None:
    """Write many events to the outbox in one statement (the escalation pass writes hundreds)."""
    if not events:
        return
    await session.execute(
        outbox.table.insert(),
        [
            {
                "event_id": (envelope := CloudEvent.wrap_json(e, source=outbox.source))["id"],
                "topic": e.topic,
                "key": e.partition_key(),
                "payload": envelope,
            }
            for e in events
        ],
    )
    session.info["outbox_written"] = True


async def get_case(
    session: AsyncSession,
    *,
    workspace_id: str,
    case_id: str,
    for_update: bool = False,
    field: str = "case_id",
) -> Case:
    """Return the workspace's case or raise ``NotFound`` (naming ``field``)."""
    case = None
    if is_uuid(case_id):
        query = select(Case).where(Case.workspace_id == workspace_id, Case.id == case_id)
        case = await session.scalar(query.with_for_update() if for_update else query)
    if case is None:
        raise NotFound(f"No case {case_id!r} in this workspace.", field=field)
    return case


def about(case: Case, *, now: datetime, actor: str) -> dict[str, Any]:
    """The fields every follow-up event of ``case`` carries."""
    return {
        "workspace_id": case.workspace_id,
        "task_id": case.id,
        "contact_id": case.contact_id or "",
        "occurred_at": now,
        "actor": actor,
    }
