"""The agent's pages: the inbox (mine, my team's, unassigned, past due, due soon; SLA countdowns; bulk
actions), a case (who to call and their local time, the answers, history and notes, status changes,
resolve with a root cause) and the closed-loop report — all through followup's API as the person, so
followup decides what the role may see and do (a viewer sees no customer details and no buttons)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.api.forms import (
    Csrf,
    Id,
    acting,
    back_to,
    errors_of,
    form_router,
    items_of,
    reading,
    refused_page,
)
from services.console.apis import Caller, ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.domain import charts
from services.console.domain.cases import VIEWS, due_soon, local_time, sla_of
from services.console.handlers.accounts import SignedIn
from services.console.live import live_stream
from services.console.views import can, flashed, page, query
from shared.access import Permission

router = form_router("followup")
CaseId = Id
Note = Annotated[str, Form(max_length=5000)]
BUILTIN = ("open", "in_progress", "resolved", "closed")


async def my_team(caller: Any, person: SignedIn) -> dict[str, Any] | None:
    teams = await caller.get("followup", "/v1/teams")
    items = teams.get("items", teams) if isinstance(teams, dict) else teams
    return next((t for t in items if person.user.id in t.get("members", [])), None)


async def view_params(
    caller: Any, person: SignedIn, view: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return what followup's case list takes for ``view`` (and the person's team for the team view)."""
    params: dict[str, Any] = {"limit": 100, "active": "true"}
    team = None
    if view == "mine":
        params["assignee"] = person.user.id
    elif view == "team":
        team = await my_team(caller, person)
        params["team_id"] = team["id"] if team else "-"
    elif view == "unassigned":
        params["unassigned"] = "true"
    elif view == "escalated":
        params["overdue"] = "true"
    return params, team


async def _cases_in_view(
    caller: Any, person: SignedIn, view: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Return the active cases in ``view`` (and the person's team for the team view)."""
    params, team = await view_params(caller, person, view)
    return (await caller.get("followup", "/v1/cases", **params))["items"], team


def fingerprint(cases: list[dict[str, Any]]) -> str:
    """What changes when a case of the list comes, goes or moves (status, assignee, priority, notes)."""
    seen = sorted((c["id"], c["status"], c.get("assignee"), c["priority"], c["updated_at"]) for c in cases)
    return hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:32]


@router.get("/cases", summary="The agent's inbox", response_class=HTMLResponse)
async def inbox(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    view: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.CASES_READ)
    chosen = view in VIEWS
    view = view if chosen else ("mine" if can(person, Permission.CASES_WRITE) else "open")
    now = runtime.deps.clock.now()
    team = None
    error: ServiceError | None = None
    notice = None
    try:
        cases, team = await _cases_in_view(caller, person, view)
        if not cases and not chosen and view == "mine":
            # Nothing assigned to this person (an owner, a new agent): the inbox opens on every open
            # case rather than on an empty list.
            view, notice = "open", "No cases are assigned to you: these are all open cases."
            cases, team = await _cases_in_view(caller, person, view)
    except ServiceError as exc:
        cases, error = [], exc
    if view == "due_soon":
        cases = [c for c in cases if due_soon(c, now)]
    rows = [{"case": c, "sla": sla_of(c, now)} for c in cases]
    rows.sort(key=lambda r: (r["sla"] is None, r["sla"]["due"] if r["sla"] else now))
    return page(
        "cases.html",
        request,
        person,
        rows=rows,
        view=view,
        views=VIEWS,
        team=team,
        error=error,
        done=flashed(request, runtime.settings, "done") or notice,
        may_work=can(person, Permission.CASES_WRITE),
        statuses=BUILTIN[1:2],
        live_url=None if error else "/cases/live" + query(view=view, mark=fingerprint(cases)),
    )


@router.get(
    "/cases/live",
    summary="Server-sent events: `changed` when a case of the inbox's view comes, goes or moves",
    response_class=Response,
)
async def inbox_live(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    view: Annotated[str, Query(max_length=20)] = "open",
    mark: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.CASES_READ)
    params, _ = await view_params(caller, person, view if view in VIEWS else "open")
    return live_stream(
        request,
        runtime,
        person,
        mark,
        service="followup",
        path="/v1/cases",
        params=params,
        fingerprint=lambda found: fingerprint(found["items"]),
    )


@router.post("/cases/bulk", summary="Bulk actions on cases from the inbox", response_class=HTMLResponse)
async def bulk(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    case_ids: Annotated[list[str], Form(max_length=500)] = [],  # noqa: B006
    action: Annotated[str, Form(max_length=20)] = "",
    view: Annotated[str, Form(max_length=20)] = "open",
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.CASES_WRITE)
    bodies = {
        "take": {"action": "assign", "agent_id": person.user.id},
        "contacted": {"action": "status", "status": "in_progress", "note": "Contacted (bulk, console)."},
        "urgent": {"action": "priority", "priority": "urgent"},
    }
    if not case_ids or action not in bodies:
        return back_to(runtime, "/cases", keep={"view": view}, done="Choose cases and an action.")
    try:
        out = await caller.post("followup", "/v1/cases/bulk", {"case_ids": case_ids, **bodies[action]})
        done = f"{out['succeeded']} changed, {out['failed']} refused."
    except ServiceError as exc:
        done = f"followup refused: {exc.detail}"
    return back_to(runtime, "/cases", keep={"view": view}, done=done)


def won_back_bar(group: dict[str, Any]) -> charts.Bar:
    rate, interval = group["won_back_rate"], group["won_back_interval"]
    return charts.Bar(
        group["key"] or "—",
        None if rate is None else 100 * rate,
        None if not interval else 100 * interval[0],
        None if not interval else 100 * interval[1],
        note="no retention answers yet",
    )


@router.get("/cases/report", summary="The closed-loop report", response_class=HTMLResponse)
async def report(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    by: Annotated[str, Query(max_length=20)] = "team",
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.METRICS_READ)
    by = by if by in ("team", "agent", "root_cause", "none") else "team"
    data = await caller.gather(
        funnel=caller.get("followup", "/v1/metrics/funnel"),
        total=caller.get("followup", "/v1/metrics", by="none"),
        groups=caller.get("followup", "/v1/metrics", by=by),
        agents=caller.get("followup", "/v1/agents", limit=500),
    )
    names = {a["id"]: a["name"] for a in items_of(data["agents"])} if by == "agent" else {}
    if names and isinstance(data["groups"], dict):
        for g in data["groups"]["groups"]:
            g["key"] = names.get(g["key"], g["key"])
    funnel_svg = None
    if isinstance(data["funnel"], dict):
        steps = [(s["step"].replace("_", " ").capitalize(), s["count"]) for s in data["funnel"]["steps"]]
        funnel_svg = charts.funnel(steps, title="Recovery funnel, as a share of negative answers")
    bars_svg = None
    if isinstance(data["groups"], dict):
        bars_svg = charts.bars(
            [won_back_bar(g) for g in data["groups"]["groups"]],
            title=f"Won-back rate by {by.replace('_', ' ')} with its 95% interval",
            lo=0,
            hi=100,
            unit="%",
            cls="wonback",
        )
    return page(
        "case_report.html",
        request,
        person,
        data=data,
        by=by,
        funnel_svg=funnel_svg,
        bars_svg=bars_svg,
        errors=errors_of(data),
    )


@router.get("/cases/{case_id}", summary="A case", response_class=HTMLResponse)
async def case_page(
    request: Request,
    case_id: CaseId,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.CASES_READ)
    data = await caller.gather(
        case=caller.get("followup", f"/v1/cases/{case_id}"),
        causes=caller.get("followup", "/v1/root-causes"),
        workflow=caller.get("followup", "/v1/workflow"),
    )
    case = data["case"]
    if isinstance(case, ServiceError):
        return refused_page(request, person, "Case not shown", case)
    now = runtime.deps.clock.now()
    workflow = data["workflow"] if isinstance(data["workflow"], dict) else {}
    custom = [s["name"] for s in workflow.get("custom_statuses", [])]
    causes = data["causes"]["taxonomy"] if isinstance(data["causes"], dict) else {}
    return page(
        "case.html",
        request,
        person,
        case=case,
        sla=sla_of(case, now),
        local=local_time(case["contact"].get("timezone"), now),
        causes=causes,
        statuses=[s for s in ("in_progress", *custom) if s != case["status"]],
        done=flashed(request, runtime.settings, "done"),
        error=flashed(request, runtime.settings, "error"),
        may_work=can(person, Permission.CASES_WRITE),
        note_required=bool(workflow.get("note_on_status_change")),
    )


async def _act(
    runtime: RuntimeDep, caller: Caller, case_id: str, path: str, body: dict[str, Any], done: str
) -> Response:
    try:
        await caller.post("followup", f"/v1/cases/{case_id}{path}", body)
    except ServiceError as exc:
        return back_to(runtime, f"/cases/{case_id}#actions", error=f"followup refused: {exc.detail}")
    return back_to(runtime, f"/cases/{case_id}", done=done)


@router.post("/cases/{case_id}/status", summary="Move a case", response_class=HTMLResponse)
async def change_status(
    case_id: CaseId,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    status: Annotated[str, Form(max_length=40)] = "",
    note: Note = "",
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.CASES_WRITE)
    body = {"status": status, **({"note": note} if note.strip() else {})}
    return await _act(runtime, caller, case_id, "/status", body, f"Moved to {status.replace('_', ' ')}.")


@router.post("/cases/{case_id}/take", summary="Assign a case to oneself", response_class=HTMLResponse)
async def take(
    case_id: CaseId, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = ""
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.CASES_WRITE)
    return await _act(runtime, caller, case_id, "/assign", {"agent_id": person.user.id}, "The case is yours.")


@router.post("/cases/{case_id}/notes", summary="Add a note", response_class=HTMLResponse)
async def add_note(
    case_id: CaseId, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = "", note: Note = ""
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.CASES_WRITE)
    return await _act(runtime, caller, case_id, "/notes", {"body": note}, "Note added.")


@router.post(
    "/cases/{case_id}/resolve", summary="Resolve a case with a root cause", response_class=HTMLResponse
)
async def resolve(
    case_id: CaseId,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    root_cause: Annotated[str, Form(max_length=170)] = "",
    action_taken: Note = "",
    note: Note = "",
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.CASES_WRITE)
    category, _, cause = root_cause.partition("/")
    body = {
        "root_cause": {"category": category, "cause": cause},
        "action_taken": action_taken,
        **({"note": note} if note.strip() else {}),
    }
    return await _act(runtime, caller, case_id, "/resolve", body, "Resolved: the retention survey goes out.")


@router.post("/cases/{case_id}/reopen", summary="Reopen a case", response_class=HTMLResponse)
async def reopen(
    case_id: CaseId, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = "", note: Note = ""
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.CASES_WRITE)
    return await _act(runtime, caller, case_id, "/reopen", {"reason": note}, "Reopened.")
