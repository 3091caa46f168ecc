"""Routing: which team or agent a new case goes to, and who in a team takes it.

Rules are evaluated in their order; the first whose every condition holds wins. A condition names
segment dimensions (country, product, team, the agent who served the customer, …) with the values
that match, survey ids, themes, or a score range on one metric. A case no rule matches goes to the
workspace's default team, or to the unassigned queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Strategy = Literal["round_robin", "least_open"]
STRATEGIES: tuple[Strategy, ...] = ("round_robin", "least_open")


@dataclass(frozen=True)
class Condition:
    dimensions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """dimension → accepted values (any of them, compared without case)."""
    survey_ids: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    metric: str | None = None
    score_min: int | None = None
    score_max: int | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    condition: Condition
    team_id: str | None = None
    agent_id: str | None = None
    priority: str | None = None


@dataclass(frozen=True)
class Facts:
    """What routing looks at: the response's survey, segment dimensions and scores."""

    survey_id: str
    dimensions: Mapping[str, str]
    scores: Sequence[tuple[str, int]]

    @property
    def themes(self) -> set[str]:
        raw = self.dimensions.get("themes", "") + "," + self.dimensions.get("theme", "")
        return {t.strip().lower() for t in raw.split(",") if t.strip()}


@dataclass(frozen=True)
class Route:
    rule_id: str | None
    team_id: str | None
    agent_id: str | None
    priority: str | None
    reason: str


def matches(condition: Condition, facts: Facts) -> bool:
    """Return whether every part of ``condition`` holds for ``facts``."""
    for name, accepted in condition.dimensions.items():
        value = facts.dimensions.get(name)
        if value is None or value.casefold() not in {a.casefold() for a in accepted}:
            return False
    if condition.survey_ids and facts.survey_id not in condition.survey_ids:
        return False
    if condition.themes and not facts.themes & {t.lower() for t in condition.themes}:
        return False
    if condition.metric is not None or condition.score_min is not None or condition.score_max is not None:
        in_range = [
            score
            for metric, score in facts.scores
            if (condition.metric is None or metric == condition.metric)
            and (condition.score_min is None or score >= condition.score_min)
            and (condition.score_max is None or score <= condition.score_max)
        ]
        if not in_range:
            return False
    return True


def route(rules: Sequence[Rule], facts: Facts, *, default_team_id: str | None) -> Route:
    """Return where a case goes: the first matching rule's target, else the default queue."""
    for position, rule in enumerate(rules, start=1):
        if matches(rule.condition, facts):
            target = f"agent {rule.agent_id}" if rule.agent_id else f"team {rule.team_id}"
            return Route(
                rule.id,
                rule.team_id,
                rule.agent_id,
                rule.priority,
                f"rule {position} {rule.name!r} matched → {target}",
            )
    if default_team_id:
        return Route(None, default_team_id, None, None, f"no rule matched → default team {default_team_id}")
    return Route(None, None, None, None, "no rule matched → the unassigned queue")


@dataclass(frozen=True)
class Member:
    agent_id: str
    open_cases: int
    last_assigned_at: datetime | None


def pick_member(members: Sequence[Member], strategy: Strategy) -> Member | None:
    """Return the team member who takes the next case, or None for a team without members.

    Round robin gives it to whoever was given one longest ago (never first); least-open to whoever
    has the fewest open cases, the longest-waiting of them on a tie. The agent id breaks what is left.
    """
    if not members:
        return None

    def waited(m: Member) -> tuple[int, float]:
        return (0, 0.0) if m.last_assigned_at is None else (1, m.last_assigned_at.timestamp())

    if strategy == "least_open":
        return min(members, key=lambda m: (m.open_cases, waited(m), m.agent_id))
    return min(members, key=lambda m: (waited(m), m.agent_id))
