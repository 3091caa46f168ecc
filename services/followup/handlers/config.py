"""How a workspace sets up its case work: agents, teams, routing rules, SLA policies, the escalation
ladder, the workflow, opening rules, the root-cause taxonomy and the retention survey."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain import cases as rules
from services.followup.domain import escalation as ladder
from services.followup.handlers import surveys
from services.followup.models import (
    Agent,
    Case,
    EscalationSchedule,
    EscalationStep,
    RoutingRule,
    SlaPolicy,
    Team,
    TeamMember,
    WorkspaceSettings,
)
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import new_id, utcnow


async def get_settings(session: AsyncSession, *, workspace_id: str) -> WorkspaceSettings | None:
    """Return the workspace's follow-up settings, or None before any were set."""
    return await session.get(WorkspaceSettings, workspace_id)


async def put_settings(
    session: AsyncSession, *, workspace_id: str, values: dict[str, Any]
) -> WorkspaceSettings:
    """Return the workspace's settings after replacing the columns in ``values``; a retention survey
    must be an open survey of the workspace (422 naming ``retention_survey_id`` otherwise)."""
    if values.get("retention_survey_id") is not None:
        await surveys.require_open(
            session, workspace_id=workspace_id, survey_id=values["retention_survey_id"]
        )
    return (
        await session.execute(
            insert(WorkspaceSettings)
            .values(workspace_id=workspace_id, **values)
            .on_conflict_do_update(index_elements=["workspace_id"], set_={**values, "updated_at": utcnow()})
            .returning(WorkspaceSettings)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


# --- agents -------------------------------------------------------------------------------------


async def put_agent(
    session: AsyncSession, *, workspace_id: str, agent_id: str, values: dict[str, Any]
) -> Agent:
    """Return the agent created or replaced with ``values`` (name, email, active)."""
    return (
        await session.execute(
            insert(Agent)
            .values(workspace_id=workspace_id, id=agent_id, **values)
            .on_conflict_do_update(index_elements=["workspace_id", "id"], set_=values)
            .returning(Agent)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def get_agent(session: AsyncSession, *, workspace_id: str, agent_id: str) -> Agent:
    agent = await session.get(Agent, (workspace_id, agent_id))
    if agent is None:
        raise NotFound(f"No agent {agent_id!r} in this workspace.", field="agent_id")
    return agent


async def check_agents(
    session: AsyncSession, *, workspace_id: str, agent_ids: Sequence[str], field: str
) -> None:
    """Raise ``InvalidInput`` naming ``field`` unless every agent exists."""
    if not agent_ids:
        return
    known = set(
        await session.scalars(
            select(Agent.id).where(Agent.workspace_id == workspace_id, Agent.id.in_(agent_ids))
        )
    )
    missing = [a for a in agent_ids if a not in known]
    if missing:
        raise InvalidInput(
            f"Unknown agents: {', '.join(missing)} (PUT /v1/agents/{{id}} adds one).", field=field
        )


# --- teams --------------------------------------------------------------------------------------


async def get_team(session: AsyncSession, *, workspace_id: str, team_id: str, field: str = "team_id") -> Team:
    team = await session.get(Team, team_id) if len(team_id) <= 36 else None
    if team is None or team.workspace_id != workspace_id:
        raise NotFound(f"No team {team_id!r} in this workspace.", field=field)
    return team


async def check_team(session: AsyncSession, *, workspace_id: str, team_id: str | None, field: str) -> None:
    if team_id is None:
        return
    try:
        await get_team(session, workspace_id=workspace_id, team_id=team_id)
    except NotFound as exc:
        raise InvalidInput(exc.detail, field=field) from exc


async def team_members(session: AsyncSession, team_id: str) -> list[str]:
    return list(
        await session.scalars(
            select(TeamMember.agent_id).where(TeamMember.team_id == team_id).order_by(TeamMember.agent_id)
        )
    )


async def save_team(
    session: AsyncSession,
    *,
    workspace_id: str,
    team_id: str | None,
    values: dict[str, Any],
    members: list[str],
) -> Team:
    """Return the team created (``team_id`` None) or replaced, with exactly ``members``."""
    await check_agents(session, workspace_id=workspace_id, agent_ids=members, field="members")
    if values.get("lead_agent_id"):
        await check_agents(
            session, workspace_id=workspace_id, agent_ids=[values["lead_agent_id"]], field="lead_agent_id"
        )
    clash = await session.scalar(
        select(Team.id).where(
            Team.workspace_id == workspace_id, Team.name == values["name"], Team.id != (team_id or "")
        )
    )
    if clash:
        raise Conflict(f"A team named {values['name']!r} exists already.", field="name")
    if team_id is None:
        team = Team(id=new_id(), workspace_id=workspace_id, **values)
        session.add(team)
        await session.flush()
    else:
        team = await get_team(session, workspace_id=workspace_id, team_id=team_id)
        for key, value in values.items():
            setattr(team, key, value)
    kept = await session.scalars(select(TeamMember).where(TeamMember.team_id == team.id))
    have = {m.agent_id: m for m in kept}
    for agent_id, member in have.items():
        if agent_id not in members:
            await session.delete(member)
    for agent_id in members:
        if agent_id not in have:
            session.add(TeamMember(team_id=team.id, agent_id=agent_id, workspace_id=workspace_id))
    await session.flush()
    return team


async def delete_team(session: AsyncSession, *, workspace_id: str, team_id: str) -> None:
    """Delete a team that no case being worked, rule or step refers to."""
    team = await get_team(session, workspace_id=workspace_id, team_id=team_id)
    in_use = await session.scalar(
        select(Case.id).where(
            Case.workspace_id == workspace_id,
            Case.team_id == team_id,
            Case.status.not_in(("resolved", "closed")),
        )
    ) or await session.scalar(select(RoutingRule.id).where(RoutingRule.team_id == team_id))
    if in_use:
        raise Conflict("The team still has open cases or routing rules; move them first.", field="team_id")
    await session.delete(team)


# --- lists replaced as a whole: routing rules, SLA policies, the escalation ladder ------------------


async def replace_rules(
    session: AsyncSession, *, workspace_id: str, rules_in: list[dict[str, Any]]
) -> list[RoutingRule]:
    """Return the workspace's routing rules after replacing them, in the given order."""
    for i, rule in enumerate(rules_in):
        await check_team(
            session, workspace_id=workspace_id, team_id=rule.get("team_id"), field=f"rules.{i}.team_id"
        )
        if rule.get("agent_id"):
            await check_agents(
                session, workspace_id=workspace_id, agent_ids=[rule["agent_id"]], field=f"rules.{i}.agent_id"
            )
    await session.execute(delete(RoutingRule).where(RoutingRule.workspace_id == workspace_id))
    rows = [
        RoutingRule(id=rule.pop("id", None) or new_id(), workspace_id=workspace_id, position=i, **rule)
        for i, rule in enumerate(rules_in, start=1)
    ]
    session.add_all(rows)
    await session.flush()
    return rows


async def list_rules(session: AsyncSession, *, workspace_id: str) -> list[RoutingRule]:
    return list(
        await session.scalars(
            select(RoutingRule).where(RoutingRule.workspace_id == workspace_id).order_by(RoutingRule.position)
        )
    )


async def replace_policies(
    session: AsyncSession, *, workspace_id: str, policies: list[dict[str, Any]]
) -> list[SlaPolicy]:
    """Return the workspace's SLA policies after replacing them; due times of cases already open stay."""
    seen: set[tuple[str | None, str | None]] = set()
    for i, policy in enumerate(policies):
        await check_team(
            session, workspace_id=workspace_id, team_id=policy.get("team_id"), field=f"policies.{i}.team_id"
        )
        key = (policy.get("team_id"), policy.get("priority"))
        if key in seen:
            raise InvalidInput("Two policies for the same team and priority.", field=f"policies.{i}")
        seen.add(key)
    await session.execute(delete(SlaPolicy).where(SlaPolicy.workspace_id == workspace_id))
    rows = [SlaPolicy(id=new_id(), workspace_id=workspace_id, **p) for p in policies]
    session.add_all(rows)
    await session.flush()
    return rows


async def list_policies(session: AsyncSession, *, workspace_id: str) -> list[SlaPolicy]:
    return list(
        await session.scalars(
            select(SlaPolicy)
            .where(SlaPolicy.workspace_id == workspace_id)
            .order_by(SlaPolicy.created_at, SlaPolicy.name)
        )
    )


async def replace_ladder(
    session: AsyncSession, *, workspace_id: str, steps: list[dict[str, Any]], now: datetime
) -> list[EscalationStep]:
    """Return the ladder after replacing it. A step given with the id of an existing one keeps its
    creation time (and so the cases it applies to); a new step applies to cases opened from now on."""
    if len(steps) > ladder.MAX_STEPS:
        raise InvalidInput(f"A ladder has at most {ladder.MAX_STEPS} steps.", field="steps")
    existing = {
        s.id: s
        for s in await session.scalars(
            select(EscalationStep).where(EscalationStep.workspace_id == workspace_id)
        )
    }
    for i, step in enumerate(steps):
        for key in ("team_id", "reassign_team_id"):
            await check_team(
                session, workspace_id=workspace_id, team_id=step.get(key), field=f"steps.{i}.{key}"
            )
        if step.get("reassign_agent_id"):
            await check_agents(
                session,
                workspace_id=workspace_id,
                agent_ids=[step["reassign_agent_id"]],
                field=f"steps.{i}.reassign_agent_id",
            )
        if step.get("id") and step["id"] not in existing:
            raise InvalidInput(
                f"No step {step['id']!r} in this ladder (leave id out for a new step).", field=f"steps.{i}.id"
            )
    timing = ("trigger", "after_minutes", "clock", "team_id")
    before = {i: tuple(getattr(s, k) for k in timing) for i, s in existing.items()}
    earlier = any(
        step.get("id") and tuple(step.get(k) for k in timing) != before[step["id"]] for step in steps
    )
    await session.execute(delete(EscalationStep).where(EscalationStep.workspace_id == workspace_id))
    rows = []
    for position, step in enumerate(steps, start=1):
        step_id = step.pop("id", None)
        created = existing[step_id].created_at if step_id else now
        rows.append(
            EscalationStep(
                id=step_id or new_id(),
                workspace_id=workspace_id,
                position=position,
                created_at=created,
                **step,
            )
        )
    session.add_all(rows)
    await session.flush()
    # A new step applies to cases opened from now on, and a removed one leaves at most an early look
    # (the pass finds nothing due and moves on): only a step whose timing changed may fire earlier
    # for cases already open, so only then does the scheduler look at every case again.
    if earlier:
        await reschedule_all(session, workspace_id=workspace_id, at=now)
    return rows


async def reschedule_all(session: AsyncSession, *, workspace_id: str, at: datetime) -> None:
    """Have the scheduler look at every case of the workspace still being worked at ``at``."""
    active = select(Case.id, Case.workspace_id, literal(at)).where(
        Case.workspace_id == workspace_id, Case.status.not_in(("resolved", "closed"))
    )
    await session.execute(
        insert(EscalationSchedule)
        .from_select(["case_id", "workspace_id", "next_at"], active)
        .on_conflict_do_update(index_elements=["case_id"], set_={"next_at": at})
    )


async def list_ladder(session: AsyncSession, *, workspace_id: str) -> list[EscalationStep]:
    return list(
        await session.scalars(
            select(EscalationStep)
            .where(EscalationStep.workspace_id == workspace_id)
            .order_by(EscalationStep.position)
        )
    )


def check_workflow(custom: list[dict[str, Any]]) -> None:
    try:
        rules.check_custom_statuses([s["name"] for s in custom])
    except ValueError as exc:
        raise InvalidInput(f"{exc}.", field="custom_statuses") from exc


async def check_statuses_in_use(session: AsyncSession, *, workspace_id: str, keep: Sequence[str]) -> None:
    """Refuse removing a workspace status that cases are in."""
    stuck = await session.scalar(
        select(Case.status).where(
            Case.workspace_id == workspace_id, Case.status.not_in((*rules.BUILTIN_STATUSES, *keep))
        )
    )
    if stuck:
        raise Conflict(
            f"Cases are in status {stuck!r}; move them before removing it.", field="custom_statuses"
        )
