"""The routing rules that give a new case to a team or an agent, and the default team."""

from __future__ import annotations

from fastapi import APIRouter

from services.followup.handlers import config
from services.followup.schemas.config import RuleOut, RulesIn, RulesOut
from shared.access import Permission
from shared.errors import InvalidInput
from shared.guard import GuardedRoute, requires
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["routing"])


@router.get(
    "/v1/routing-rules",
    summary="The routing rules, in the order they are evaluated",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_rules(workspace: WorkspaceDep, session: SessionDep) -> RulesOut:
    settings = await config.get_settings(session, workspace_id=workspace)
    rules = await config.list_rules(session, workspace_id=workspace)
    return RulesOut(
        rules=[from_row(RuleOut, r) for r in rules],
        default_team_id=settings.default_team_id if settings else None,
    )


@router.put(
    "/v1/routing-rules",
    summary="Replace the routing rules (first match wins) and the default team",
    description="Each rule sends matching cases to a team (its next member in turn) or an agent; every condition "
    "of a rule must hold. Unmatched cases go to `default_team_id`, or to the unassigned queue.",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_rules(body: RulesIn, workspace: WorkspaceDep, session: SessionDep) -> RulesOut:
    for i, rule in enumerate(body.rules):
        if not rule.team_id and not rule.agent_id:
            raise InvalidInput("A rule sends cases to a team_id or an agent_id.", field=f"rules.{i}.team_id")
    await config.check_team(
        session, workspace_id=workspace, team_id=body.default_team_id, field="default_team_id"
    )
    rules = await config.replace_rules(
        session, workspace_id=workspace, rules_in=[r.model_dump(mode="json") for r in body.rules]
    )
    await config.put_settings(
        session, workspace_id=workspace, values={"default_team_id": body.default_team_id}
    )
    return RulesOut(rules=[from_row(RuleOut, r) for r in rules], default_team_id=body.default_team_id)
