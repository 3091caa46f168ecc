"""Settings for who works the cases: followup's agents (people of the workspace), its teams (create,
rename, members, delete) and the escalation ladder (followup replaces it as a whole, so the console
reads it, changes one step and puts it back). An admin's forms; followup names the field it refuses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form
from fastapi.responses import Response

from services.console.api.forms import Id, back_to, form_router, settled
from services.console.api.settings_policies import Text, Writer, put_list
from services.console.apis import Caller
from services.console.deps import RuntimeDep, SignedInDep
from services.console.queries import members
from shared.service import SessionDep

router = form_router("each service")
TEAMS = "/settings#teams"
LADDER = "/settings#ladder"
Members = Annotated[list[str], Form(max_length=500)]
Short = Annotated[str, Form(max_length=64)]
HourMinute = Annotated[str, Form(max_length=5)]
TEAM_FIELDS: tuple[str, ...] = ("name", "timezone", "members", "lead_agent_id", "strategy", "weekdays")
TEAM_FIELDS += ("day_start", "day_end", "holiday_country", "holiday_subdivision", "days_off")
TEAM_FIELDS += ("notify_channel", "notify_to")
STEP_FIELDS: tuple[str, ...] = ("id", "name", "trigger", "after_minutes", "clock", "action", "team_id")
STEP_FIELDS += ("reassign_team_id", "reassign_agent_id")


def picked(ids: list[str]) -> list[str]:
    """The chosen agents, each once, in the order given."""
    return list(dict.fromkeys(i for i in ids if i))


async def rename_team(caller: Caller, team_id: str, name: str, chosen: list[str]) -> None:
    """Put the team back with its new name and members, everything else as followup keeps it."""
    team = await caller.get("followup", f"/v1/teams/{team_id}")
    body = {k: team.get(k) for k in TEAM_FIELDS} | {"name": name, "members": chosen}
    if body["lead_agent_id"] not in chosen:
        body["lead_agent_id"] = None
    await caller.put("followup", f"/v1/teams/{team_id}", body)


@router.post("/settings/agents", summary="Make a person of the workspace an agent in followup")
async def add_agent(
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    session: SessionDep,
    caller: Writer,
    user_id: Short = "",
) -> Response:
    workspace = signed_in.workspace_id if signed_in else ""
    person = next((p for p in await members(session, workspace_id=workspace) if p.user_id == user_id), None)
    if person is None:
        return back_to(runtime, TEAMS, done="Choose a person of this workspace (user_id).")
    change = caller.put("followup", f"/v1/agents/{user_id}", {"name": person.name, "email": person.email})
    return await settled(runtime, TEAMS, change, done=f"{person.name} is an agent.", service="followup")


@router.post("/settings/teams", summary="Create a team")
async def add_team(
    runtime: RuntimeDep,
    caller: Writer,
    name: Text = "",
    timezone: Short = "UTC",
    day_start: HourMinute = "09:00",
    day_end: HourMinute = "17:00",
    agents: Members = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    body = {
        "name": name.strip(),
        "timezone": timezone.strip() or "UTC",
        "day_start": day_start,
        "day_end": day_end,
        "members": picked(agents),
    }
    change = caller.post("followup", "/v1/teams", body)
    return await settled(runtime, TEAMS, change, done=f"Team “{body['name']}” added.", service="followup")


@router.post("/settings/teams/{team_id}", summary="Rename a team or change its members")
async def change_team(
    team_id: Id,
    runtime: RuntimeDep,
    caller: Writer,
    name: Text = "",
    agents: Members = [],  # noqa: B006
) -> Response:
    change = rename_team(caller, team_id, name.strip(), picked(agents))
    return await settled(runtime, TEAMS, change, done=f"Team “{name.strip()}” saved.", service="followup")


@router.post("/settings/teams/{team_id}/remove", summary="Delete a team")
async def remove_team(team_id: Id, runtime: RuntimeDep, caller: Writer) -> Response:
    change = caller.delete("followup", f"/v1/teams/{team_id}")
    return await settled(runtime, TEAMS, change, done="Team deleted.", service="followup")


def put_ladder(caller: Caller, step: dict[str, Any] | None = None, *, without: str | None = None) -> Any:
    """Read followup's escalation ladder, add ``step`` at its end (or leave one out) and put it back."""
    return put_list(
        caller,
        "/v1/escalation-ladder",
        "steps",
        STEP_FIELDS,
        lambda steps: [*steps, step] if step else steps,
        without=without,
    )


@router.post("/settings/escalation-ladder", summary="Add a step at the end of the escalation ladder")
async def add_step(
    runtime: RuntimeDep,
    caller: Writer,
    name: Text = "",
    trigger: Annotated[str, Form(max_length=24)] = "",
    after_hours: Annotated[float, Form(ge=0, le=365 * 24)] = 0,
    clock: Annotated[str, Form(max_length=10)] = "business",
    action: Annotated[str, Form(max_length=20)] = "",
    team_id: Short = "",
    reassign_team_id: Short = "",
) -> Response:
    step = {
        "name": name.strip(),
        "trigger": trigger,
        "after_minutes": round(after_hours * 60),
        "clock": clock,
        "action": action,
        "team_id": team_id or None,
        "reassign_team_id": reassign_team_id or None,
    }
    done = f"Escalation step “{step['name']}” added."
    return await settled(runtime, LADDER, put_ladder(caller, step), done=done, service="followup")


@router.post("/settings/escalation-ladder/{step_id}/remove", summary="Remove a step of the escalation ladder")
async def remove_step(step_id: Id, runtime: RuntimeDep, caller: Writer) -> Response:
    change = put_ladder(caller, without=step_id)
    return await settled(runtime, LADDER, change, done="Escalation step removed.", service="followup")
