"""The agents who work cases and the teams they form: time zones, hours, members, lead and notices."""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Path, Response

from services.followup import queries
from services.followup.deps import PagingDep
from services.followup.domain import sla
from services.followup.handlers import config
from services.followup.models import Team
from services.followup.schemas.common import Page
from services.followup.schemas.config import AgentIn, AgentOut, TeamIn, TeamOut
from shared.access import Permission
from shared.errors import InvalidInput
from shared.guard import GuardedRoute, requires
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["teams"])
AgentPath = Annotated[str, Path(min_length=1, max_length=200, description="The agent's id (yours, opaque)")]
TeamPath = Annotated[str, Path(min_length=1, max_length=64, description="The team's id")]


@router.get(
    "/v1/agents",
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
    status_code=201,
    summary="Create a team: time zone, hours, members, lead",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def create_team(body: TeamIn, workspace: WorkspaceDep, session: SessionDep) -> TeamOut:
    team = await config.save_team(
        session, workspace_id=workspace, team_id=None, values=_team_values(body), members=body.members
    )
    return await _team_out(session, team)


@router.get("/v1/teams/{team_id}", summary="A team", dependencies=[requires(Permission.CASES_READ)])
async def get_team(team_id: TeamPath, workspace: WorkspaceDep, session: SessionDep) -> TeamOut:
    return await _team_out(session, await config.get_team(session, workspace_id=workspace, team_id=team_id))


@router.put(
    "/v1/teams/{team_id}",
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
    status_code=204,
    summary="Delete a team no open case or rule uses",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def delete_team(team_id: TeamPath, workspace: WorkspaceDep, session: SessionDep) -> Response:
    await config.delete_team(session, workspace_id=workspace, team_id=team_id)
    return Response(status_code=204)
