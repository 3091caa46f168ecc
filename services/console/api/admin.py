"""Settings (channels and templates, routing teams and the case workflow, experience targets, people and
roles, API keys, outgoing webhook subscriptions with their delivery log and replay). Read views for the
roles that may read them, the main actions for the roles that may act; each service checks the role again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from services.console.api.forms import (
    Csrf,
    Id,
    acting,
    back_to,
    checked,
    errors_of,
    form_router,
    items_of,
    reading,
    settled,
)
from services.console.api.settings_channels import typed_back
from services.console.apis import ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.handlers import people
from services.console.queries import members
from services.console.views import can, flashed, page
from shared.access import PERSON_ROLES, Permission, Principal, Role, may_grant
from shared.errors import CloseloopError
from shared.service import SessionDep

router = form_router("each service")


@router.get("/settings", summary="The workspace's settings", response_class=HTMLResponse)
async def settings_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.SETTINGS_READ)
    calls: dict[str, Any] = {
        "targets": caller.get("scoring", "/v1/targets"),
        "teams": caller.get("followup", "/v1/teams"),
        "workflow": caller.get("followup", "/v1/workflow"),
        "routing": caller.get("followup", "/v1/routing-rules"),
        "sla": caller.get("followup", "/v1/sla-policies"),
        "ladder": caller.get("followup", "/v1/escalation-ladder"),
        "agents": caller.get("followup", "/v1/agents"),
        "notifications": caller.get("scoring", "/v1/notification-rules"),
    }
    if can(person, Permission.CHANNELS_READ):
        calls["channels"] = caller.get("dispatch", "/v1/channels")
        calls["templates"] = caller.get("dispatch", "/v1/templates")
    if can(person, Permission.INTEGRATIONS_READ):
        calls["webhooks"] = caller.get("dispatch", "/v1/webhooks")
    data = await caller.gather(**calls)
    people_rows = (
        await members(session, workspace_id=person.workspace_id) if can(person, Permission.USERS_READ) else []
    )
    teams, agents = data["teams"], data["agents"]
    return page(
        "settings.html",
        request,
        person,
        data=data,
        teams=items_of(teams),
        agents=items_of(agents),
        errors=errors_of(data),
        people=people_rows,
        roles=[r.value for r in PERSON_ROLES if may_grant(person.role, r)],
        done=flashed(request, runtime.settings, "done"),
        field=flashed(request, runtime.settings, "field"),
        why=flashed(request, runtime.settings, "why"),
        typed=typed_back(flashed(request, runtime.settings, "typed")),
        may_settings=can(person, Permission.SETTINGS_WRITE),
        may_people=can(person, Permission.USERS_WRITE),
        may_keys=can(person, Permission.KEYS_READ),
    )


@router.post("/settings/targets", summary="Add an experience target", response_class=HTMLResponse)
async def add_target(
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    name: Annotated[str, Form(max_length=200)] = "",
    metric: Annotated[str, Form(max_length=8)] = "nps",
    direction: Annotated[str, Form(max_length=10)] = "at_least",
    threshold: Annotated[float, Form(ge=-100, le=100)] = 0,
    window_days: Annotated[int, Form(ge=1, le=366)] = 30,
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.SETTINGS_WRITE)
    body = {
        "name": name,
        "metric": metric,
        "direction": direction,
        "threshold": threshold,
        "window_days": window_days,
    }
    try:
        await caller.post("scoring", "/v1/targets", body)
        runtime.deps.figures.changed(person.workspace_id)  # the overview shows the targets
        done = f"Target “{name}” added."
    except ServiceError as exc:
        done = f"scoring refused: {exc.detail}"
    return back_to(runtime, "/settings#targets", done=done)


@router.post("/settings/people", summary="Invite someone with a role", response_class=HTMLResponse)
async def invite_person(
    session: SessionDep,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[str, Form(max_length=20)] = "viewer",
) -> Response:
    person = checked(signed_in, csrf_token, Permission.USERS_WRITE)
    by = Principal(
        workspace_id=person.workspace_id,
        role=person.role,
        kind="user",
        id=person.user.id,
        name=person.user.name,
    )
    try:
        await people.invite(
            session,
            runtime.outbox,
            runtime.settings,
            by=by,
            email=email,
            role=Role(role) if role in {r.value for r in Role} else Role.VIEWER,
            now=runtime.deps.clock.now(),
        )
        done = f"Invitation sent to {email}."
    except (CloseloopError, ValidationError) as exc:
        await session.rollback()
        done = f"Not invited: {getattr(exc, 'detail', exc)}"
    return back_to(runtime, "/settings#people", done=done)


@router.get(
    "/settings/webhooks/{subscription_id}",
    summary="A webhook subscription's delivery log",
    response_class=HTMLResponse,
)
async def webhook_log(
    request: Request,
    subscription_id: Id,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.INTEGRATIONS_READ)
    data = await caller.gather(
        subscription=caller.get("dispatch", f"/v1/webhooks/{subscription_id}"),
        deliveries=caller.get("dispatch", f"/v1/webhooks/{subscription_id}/deliveries"),
    )
    return page(
        "webhook.html",
        request,
        person,
        data=data,
        deliveries=items_of(data["deliveries"]),
        errors=errors_of(data),
        done=flashed(request, runtime.settings, "done"),
        may_replay=can(person, Permission.INTEGRATIONS_WRITE),
    )


@router.post(
    "/settings/webhooks/{subscription_id}/deliveries/{delivery_id}/replay",
    summary="Replay a webhook delivery",
    response_class=HTMLResponse,
)
async def replay(
    subscription_id: Id, delivery_id: Id, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = ""
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.INTEGRATIONS_WRITE)
    change = caller.post("dispatch", f"/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay")
    back = f"/settings/webhooks/{subscription_id}"
    return await settled(runtime, back, change, done="Delivery queued again.", service="dispatch")
