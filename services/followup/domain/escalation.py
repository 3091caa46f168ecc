"""The escalation ladder: steps by a case's age or by a breached SLA, each applied once per case.

A step fires when its moment has come: ``age`` steps ``after_minutes`` after the case opened,
``first_contact_breach`` and ``resolution_breach`` steps ``after_minutes`` after the due time on the
step's clock (business by default: nobody is paged over a weekend the team does not work). A step
never fires on a resolved or closed case, a first-contact step never once the customer was
contacted, breach steps not while the case's clocks are paused, and a step scoped to a team only on
that team's cases.

**Never retroactive** (Qualtrics' rule): a step applies to cases opened after it was added, so adding
a step to a ladder does not set off a burst of escalations over every old case.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

Trigger = Literal["age", "first_contact_breach", "resolution_breach"]
TRIGGERS: tuple[Trigger, ...] = ("age", "first_contact_breach", "resolution_breach")
Action = Literal["notify_assignee", "notify_lead", "reassign"]
ACTIONS: tuple[Action, ...] = ("notify_assignee", "notify_lead", "reassign")
Clock = Literal["calendar", "business"]
MAX_STEPS = 50
"""Qualtrics' limit on escalation rules; a longer ladder is a design smell, not a need."""


@dataclass(frozen=True)
class Step:
    id: str
    position: int
    name: str
    trigger: Trigger
    after_minutes: int
    action: Action
    created_at: datetime
    clock: Clock = "business"
    team_id: str | None = None
    """Only cases of this team; None: every case."""
    reassign_team_id: str | None = None
    reassign_agent_id: str | None = None


class CaseClock(NamedTuple):
    """What the ladder reads of a case (a tuple: a pass builds one for each of thousands of cases)."""

    opened_at: datetime
    active: bool
    team_id: str | None
    contacted: bool
    paused: bool
    first_contact_due: datetime | None
    first_contact_due_business: datetime | None
    resolution_due: datetime | None
    resolution_due_business: datetime | None


def step_due_at(step: Step, case: CaseClock) -> datetime | None:
    """Return when ``step`` fires for ``case``, or None when it never does (as things stand)."""
    if not case.active or case.opened_at < step.created_at:
        return None
    if step.team_id is not None and step.team_id != case.team_id:
        return None
    after = timedelta(minutes=step.after_minutes)
    if step.trigger == "age":
        return _utc(case.opened_at) + after
    if case.paused:
        return None
    if step.trigger == "first_contact_breach":
        if case.contacted:
            return None
        due = case.first_contact_due_business if step.clock == "business" else case.first_contact_due
    else:
        due = case.resolution_due_business if step.clock == "business" else case.resolution_due
    return None if due is None else _utc(due) + after


def _utc(moment: datetime) -> datetime:
    """Elapsed-time arithmetic, whatever zone ``moment`` is in (PostgreSQL's are UTC already)."""
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def due_steps(steps: Sequence[Step], case: CaseClock, *, done: Collection[str], now: datetime) -> list[Step]:
    """Return the steps that fire now and have not fired for this case, in ladder order."""
    return sorted(
        (s for s in steps if s.id not in done and (at := step_due_at(s, case)) is not None and at <= now),
        key=lambda s: s.position,
    )


def next_due(steps: Sequence[Step], case: CaseClock, *, done: Collection[str]) -> datetime | None:
    """Return when the next step not yet applied fires, or None when none will."""
    moments = [at for s in steps if s.id not in done and (at := step_due_at(s, case)) is not None]
    return min(moments, default=None)
