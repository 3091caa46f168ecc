"""Where a case goes: the routing rules' verdict, then who in the team takes it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain import routing
from services.followup.models import Agent, Case, RoutingRule, Team, TeamMember

ACTIVE = ("resolved", "closed")


def condition_of(raw: dict[str, Any]) -> routing.Condition:
    score = raw.get("score") or {}
    return routing.Condition(
        dimensions={k: tuple(v) for k, v in (raw.get("dimensions") or {}).items()},
        survey_ids=tuple(raw.get("survey_ids") or ()),
        themes=tuple(raw.get("themes") or ()),
        metric=score.get("metric"),
        score_min=score.get("min"),
        score_max=score.get("max"),
    )


async def load_rules(session: AsyncSession, workspace_id: str) -> list[routing.Rule]:
    rows = await session.scalars(
        select(RoutingRule)
        .where(RoutingRule.workspace_id == workspace_id, RoutingRule.enabled)
        .order_by(RoutingRule.position, RoutingRule.created_at)
    )
    return [
        routing.Rule(r.id, r.name, condition_of(r.conditions), r.team_id, r.agent_id, r.priority)
        for r in rows
    ]


async def open_counts(session: AsyncSession, *, workspace_id: str, agent_ids: list[str]) -> dict[str, int]:
    """Return how many cases each agent has that are still being worked."""
    if not agent_ids:
        return {}
    rows = await session.execute(
        select(Case.assignee, func.count())
        .where(Case.workspace_id == workspace_id, Case.assignee.in_(agent_ids), Case.status.not_in(ACTIVE))
        .group_by(Case.assignee)
    )
    return {agent: count for agent, count in rows.all() if agent is not None}


async def lock_team(session: AsyncSession, *, workspace_id: str, team_id: str) -> Team | None:
    """Return the workspace's team, its row locked so that concurrent cases take turns in it."""
    team = await session.scalar(select(Team).where(Team.id == team_id).with_for_update())
    return team if team is not None and team.workspace_id == workspace_id else None


async def pick_in_team(
    session: AsyncSession, team: Team, *, now: datetime, locked: bool = False
) -> str | None:
    """Return the active member of ``team`` who takes the next case (round robin or least open cases),
    marking them as just given one; None when the team has no active member.

    The team's row is locked first (here, or by ``lock_team``: ``locked``), so that concurrent cases take turns instead of all
    going to the same person."""
    if not locked:
        await session.execute(select(Team.id).where(Team.id == team.id).with_for_update())
    members = list(
        (
            await session.execute(
                select(TeamMember)
                .join(
                    Agent, (Agent.workspace_id == TeamMember.workspace_id) & (Agent.id == TeamMember.agent_id)
                )
                .where(TeamMember.team_id == team.id, Agent.active)
            )
        ).scalars()
    )
    counts = (
        await open_counts(session, workspace_id=team.workspace_id, agent_ids=[m.agent_id for m in members])
        if team.strategy == "least_open"
        else {}
    )
    chosen = routing.pick_member(
        [routing.Member(m.agent_id, counts.get(m.agent_id, 0), m.last_assigned_at) for m in members],
        team.strategy,  # type: ignore[arg-type]
    )
    if chosen is None:
        return None
    member = next(m for m in members if m.agent_id == chosen.agent_id)
    # Strictly after every earlier turn, even for many cases routed within one moment.
    latest = max((m.last_assigned_at for m in members if m.last_assigned_at), default=None)
    member.last_assigned_at = max(now, latest + timedelta(microseconds=1)) if latest else now
    return chosen.agent_id


async def active_agent(session: AsyncSession, *, workspace_id: str, agent_id: str) -> Agent | None:
    agent = await session.get(Agent, (workspace_id, agent_id))
    return agent if agent is not None and agent.active else None
