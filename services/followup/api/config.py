"""Routes that set up a workspace's case work: agents, teams, routing, SLA policies, the escalation
ladder, the workflow, opening rules, root causes and the retention survey."""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Path, Response

from services.followup import queries
from services.followup.deps import PagingDep, RuntimeDep
from services.followup.domain import sla
from services.followup.domain import taxonomy as causes
from services.followup.domain.taxonomy import DEFAULT_TAXONOMY
from services.followup.handlers import config
from services.followup.handlers.common import config_of
from services.followup.models import Team, WorkspaceSettings
from services.followup.schemas.common import Page
from services.followup.schemas.config import (
    AgentIn,
    AgentOut,
    LadderIn,
    OpeningRulesIn,
    PoliciesIn,
    PolicyOut,
    RootCausesIn,
    RootCausesOut,
    RuleOut,
    RulesIn,
    RulesOut,
    SettingsIn,
    SettingsOut,
    StepOut,
    TeamIn,
    TeamOut,
    WorkflowIn,
    WorkflowOut,
)
from shared.access import Permission
from shared.errors import InvalidInput
from shared.guard import GuardedRoute, requires
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute)
AgentPath = Annotated[str, Path(min_length=1, max_length=200, description="The agent's id (yours, opaque)")]
TeamPath = Annotated[str, Path(min_length=1, max_length=64, description="The team's id")]


def _settings_out(s: WorkspaceSettings | None) -> SettingsOut:
    if s is None:
        return SettingsOut(retention_survey_id=None, configured=False)
    return from_row(SettingsOut, s, configured=True)


@router.get(
    "/v1/settings",
    tags=["settings"],
    summary="The workspace's retention survey and staff address",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_settings(workspace: WorkspaceDep, session: SessionDep) -> SettingsOut:
    return _settings_out(await config.get_settings(session, workspace_id=workspace))


@router.put(
    "/v1/settings",
    tags=["settings"],
    summary="Set the retention survey sent when a case is resolved (null: send none)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_settings(body: SettingsIn, workspace: WorkspaceDep, session: SessionDep) -> SettingsOut:
    return _settings_out(await config.put_settings(session, workspace_id=workspace, values=body.model_dump()))


# --- agents and teams --------------------------------------------------------------------------------


@router.get(
    "/v1/agents",
    tags=["teams"],
    summary="The workspace's agents",
    dependencies=[requires(Permission.CASES_READ)],
)
async def list_agents(workspace: WorkspaceDep, session: SessionDep, paging: PagingDep) -> Page[AgentOut]:
    rows, next_cursor = await queries.agents(
        session, workspace_id=workspace, limit=paging.limit, cursor=paging.cursor
    )
    return paging.page([from_row(AgentOut, a) for a in rows], next_cursor)


@router.put(
    "/v1/agents/{agent_id}",
    tags=["teams"],
    summary="Add or change an agent (a person's id and name)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_agent(
    agent_id: AgentPath, body: AgentIn, workspace: WorkspaceDep, session: SessionDep
) -> AgentOut:
    return from_row(
        AgentOut,
        await config.put_agent(session, workspace_id=workspace, agent_id=agent_id, values=body.model_dump()),
    )


@router.get(
    "/v1/agents/{agent_id}",
    tags=["teams"],
    summary="An agent",
    dependencies=[requires(Permission.CASES_READ)],
)
async def get_agent(agent_id: AgentPath, workspace: WorkspaceDep, session: SessionDep) -> AgentOut:
    return from_row(AgentOut, await config.get_agent(session, workspace_id=workspace, agent_id=agent_id))


async def _team_out(session: SessionDep, t: Team) -> TeamOut:
    return from_row(TeamOut, t, members=await config.team_members(session, t.id))


def _is_email(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _team_values(body: TeamIn) -> dict[str, object]:
    if body.day_start >= body.day_end:
        raise InvalidInput("day_start must be before day_end.", field="day_end")
    if body.holiday_country:
        try:
            sla.check_holiday_country(body.holiday_country, body.holiday_subdivision)
        except ValueError as exc:
            raise InvalidInput(f"{exc}.", field="holiday_country") from exc
    if bool(body.notify_channel) != bool(body.notify_to):
        raise InvalidInput("notify_channel and notify_to go together.", field="notify_to")
    if body.notify_channel == "email" and not _is_email(body.notify_to or ""):
        raise InvalidInput("notify_to must be an email address for the email channel.", field="notify_to")
    if body.notify_channel == "chat" and not (body.notify_to or "").startswith(("https://", "http://")):
        raise InvalidInput(
            "notify_to must be the chat webhook's URL for the chat channel.", field="notify_to"
        )
    values = body.model_dump(mode="json", exclude={"members"})
    values["weekdays"] = sorted(set(body.weekdays))
    return values


@router.get(
    "/v1/teams",
    tags=["teams"],
    summary="The workspace's teams",
    dependencies=[requires(Permission.CASES_READ)],
)
async def list_teams(workspace: WorkspaceDep, session: SessionDep, paging: PagingDep) -> Page[TeamOut]:
    rows, next_cursor = await queries.teams(
        session, workspace_id=workspace, limit=paging.limit, cursor=paging.cursor
    )
    return paging.page([await _team_out(session, t) for t in rows], next_cursor)


@router.post(
    "/v1/teams",
    tags=["teams"],
    status_code=201,
    summary="Create a team: time zone, hours, members, lead",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def create_team(body: TeamIn, workspace: WorkspaceDep, session: SessionDep) -> TeamOut:
    team = await config.save_team(
        session, workspace_id=workspace, team_id=None, values=_team_values(body), members=body.members
    )
    return await _team_out(session, team)


@router.get(
    "/v1/teams/{team_id}", tags=["teams"], summary="A team", dependencies=[requires(Permission.CASES_READ)]
)
async def get_team(team_id: TeamPath, workspace: WorkspaceDep, session: SessionDep) -> TeamOut:
    return await _team_out(session, await config.get_team(session, workspace_id=workspace, team_id=team_id))


@router.put(
    "/v1/teams/{team_id}",
    tags=["teams"],
    summary="Replace a team (members included)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_team(team_id: TeamPath, body: TeamIn, workspace: WorkspaceDep, session: SessionDep) -> TeamOut:
    team = await config.save_team(
        session, workspace_id=workspace, team_id=team_id, values=_team_values(body), members=body.members
    )
    return await _team_out(session, team)


@router.delete(
    "/v1/teams/{team_id}",
    tags=["teams"],
    status_code=204,
    summary="Delete a team no open case or rule uses",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def delete_team(team_id: TeamPath, workspace: WorkspaceDep, session: SessionDep) -> Response:
    await config.delete_team(session, workspace_id=workspace, team_id=team_id)
    return Response(status_code=204)


# --- routing, SLA, escalation ----------------------------------------------------------------------


@router.get(
    "/v1/routing-rules",
    tags=["routing"],
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
    tags=["routing"],
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


@router.get(
    "/v1/sla-policies",
    tags=["sla"],
    summary="SLA policies (none: 48 h / 7 days calendar, 16 h / 40 h business)",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_policies(workspace: WorkspaceDep, session: SessionDep) -> list[PolicyOut]:
    return [from_row(PolicyOut, p) for p in await config.list_policies(session, workspace_id=workspace)]


@router.put(
    "/v1/sla-policies",
    tags=["sla"],
    summary="Replace the SLA policies; a case gets the most specific (team and priority, team, priority, any)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_policies(body: PoliciesIn, workspace: WorkspaceDep, session: SessionDep) -> list[PolicyOut]:
    rows = await config.replace_policies(
        session, workspace_id=workspace, policies=[p.model_dump() for p in body.policies]
    )
    return [from_row(PolicyOut, p) for p in rows]


@router.get(
    "/v1/escalation-ladder",
    tags=["sla"],
    summary="The escalation ladder, in order",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_ladder(workspace: WorkspaceDep, session: SessionDep) -> list[StepOut]:
    return [from_row(StepOut, s) for s in await config.list_ladder(session, workspace_id=workspace)]


@router.put(
    "/v1/escalation-ladder",
    tags=["sla"],
    summary="Replace the escalation ladder (at most 50 steps; new steps never apply to older cases)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_ladder(
    body: LadderIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[StepOut]:
    steps = await config.replace_ladder(
        session,
        workspace_id=workspace,
        steps=[s.model_dump() for s in body.steps],
        now=runtime.deps.clock.now(),
    )
    runtime.deps.escalator.wake_after_commit(session)
    return [from_row(StepOut, s) for s in steps]


# --- the workflow, opening rules, root causes --------------------------------------------------------


def _workflow_out(s: WorkspaceSettings | None) -> WorkflowOut:
    workflow = config_of(s).workflow
    return WorkflowOut(
        custom_statuses=[{"name": c.name, "waits_on_customer": c.waits_on_customer} for c in workflow.custom],
        allow_backward=workflow.allow_backward,
        note_on_status_change=workflow.note_on_status_change,
        note_on_reassign=workflow.note_on_reassign,
        statuses=list(workflow.order),
    )


@router.get(
    "/v1/workflow",
    tags=["settings"],
    summary="The statuses cases move through, and when a note is required",
    dependencies=[requires(Permission.CASES_READ)],
)
async def get_workflow(workspace: WorkspaceDep, session: SessionDep) -> WorkflowOut:
    return _workflow_out(await config.get_settings(session, workspace_id=workspace))


@router.put(
    "/v1/workflow",
    tags=["settings"],
    summary="Set the workspace's own statuses and note requirements",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_workflow(body: WorkflowIn, workspace: WorkspaceDep, session: SessionDep) -> WorkflowOut:
    values = body.model_dump()
    config.check_workflow(values["custom_statuses"])
    await config.check_statuses_in_use(
        session, workspace_id=workspace, keep=[s.name for s in body.custom_statuses]
    )
    return _workflow_out(await config.put_settings(session, workspace_id=workspace, values=values))


@router.get(
    "/v1/opening-rules",
    tags=["settings"],
    summary="When a response opens a case besides negative feedback",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_opening_rules(workspace: WorkspaceDep, session: SessionDep) -> OpeningRulesIn:
    s = await config.get_settings(session, workspace_id=workspace)
    return OpeningRulesIn(loyalty_cells=s.open_on_loyalty if s else [], score_below=s.open_below if s else {})


@router.put(
    "/v1/opening-rules",
    tags=["settings"],
    summary="Open cases on at-risk loyalty cells or low scores too",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_opening_rules(
    body: OpeningRulesIn, workspace: WorkspaceDep, session: SessionDep
) -> OpeningRulesIn:
    await config.put_settings(
        session,
        workspace_id=workspace,
        values={"open_on_loyalty": body.loyalty_cells, "open_below": body.score_below},
    )
    return body


@router.get(
    "/v1/root-causes",
    tags=["settings"],
    summary="The root-cause taxonomy resolutions name",
    dependencies=[requires(Permission.CASES_READ)],
)
async def get_root_causes(workspace: WorkspaceDep, session: SessionDep) -> RootCausesOut:
    s = await config.get_settings(session, workspace_id=workspace)
    custom = s.root_causes if s else None
    return RootCausesOut(taxonomy=custom or DEFAULT_TAXONOMY, default=custom is None)


@router.put(
    "/v1/root-causes",
    tags=["settings"],
    summary="Replace the root-cause taxonomy (category › cause)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_root_causes(body: RootCausesIn, workspace: WorkspaceDep, session: SessionDep) -> RootCausesOut:
    if body.taxonomy is not None:
        try:
            causes.check_taxonomy(body.taxonomy)
        except ValueError as exc:
            raise InvalidInput(f"{exc}.", field="taxonomy") from exc
    await config.put_settings(session, workspace_id=workspace, values={"root_causes": body.taxonomy})
    return RootCausesOut(taxonomy=body.taxonomy or DEFAULT_TAXONOMY, default=body.taxonomy is None)
