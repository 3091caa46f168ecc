"""Automation: integrations with their webhook URLs (rotate the secret, send a test event), trigger rules
(create, enable/disable, dry run) and the decisions log. Every action calls trigger's public API as the
signed-in person; trigger checks the role again."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any

from fastapi import Form, Request
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
    settled,
)
from services.console.apis import Caller, ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.handlers.accounts import SignedIn
from services.console.views import can, flashed, page
from shared.access import Permission

router = form_router("each service")
CHANNELS = ("email", "sms", "whatsapp", "chat", "link")


@router.get("/automation", summary="Integrations, rules and the decisions log", response_class=HTMLResponse)
async def automation(request: Request, runtime: RuntimeDep, signed_in: SignedInDep) -> Response:
    person, caller = reading(runtime, signed_in, Permission.RULES_READ)
    return await automation_page(request, person, caller, done=flashed(request, runtime.settings, "done"))


@router.post(
    "/automation/dry-run",
    summary="Which rules an event would fire, writing nothing",
    response_class=HTMLResponse,
)
async def dry_run(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    event_type: Annotated[str, Form(max_length=200)] = "",
    source: Annotated[str, Form(max_length=40)] = "api",
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.RULES_READ)
    body = {"source": source or "api", "event_type": event_type, "contact": {"email": email} if email else {}}
    try:
        result, refused = await caller.post("trigger", "/v1/rules/dry-run", body), None
    except ServiceError as exc:
        result, refused = None, exc.detail
    return await automation_page(
        request,
        person,
        caller,
        dry_run=result,
        dry_refused=refused,
        tried={"event_type": event_type, "source": source, "email": email},
    )


@router.post("/automation/rules", summary="Create a trigger rule", response_class=HTMLResponse)
async def create_rule(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    name: Annotated[str, Form(max_length=200)] = "",
    event_type: Annotated[str, Form(max_length=200)] = "",
    source: Annotated[str, Form(max_length=40)] = "",
    survey_id: Annotated[str, Form(max_length=36)] = "",
    channel: Annotated[str, Form(max_length=10)] = "email",
    delay_minutes: Annotated[int, Form(ge=0, le=365 * 24 * 60)] = 0,
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.RULES_WRITE)
    body: dict[str, Any] = {
        "name": name,
        "event_type": event_type,
        "survey_id": survey_id,
        "channel": channel if channel in CHANNELS else "email",
        "delay_seconds": delay_minutes * 60,
    }
    if source.strip():
        body["source"] = source.strip()
    try:
        await caller.post("trigger", "/v1/rules", body)
    except ServiceError as exc:
        # Shown beside the form, with what was typed kept.
        tried = {**body, "source": source, "delay_minutes": delay_minutes}
        return await automation_page(request, person, caller, rule_refused=exc.detail, rule_tried=tried)
    return back_to(runtime, "/automation#rules-h", done=f"Rule “{name}” created.")


@router.post(
    "/automation/rules/{rule_id}/toggle", summary="Enable or disable a rule", response_class=HTMLResponse
)
async def toggle_rule(
    rule_id: Id,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    enabled: Annotated[str, Form(max_length=5)] = "false",
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.RULES_WRITE)
    change = caller.call("trigger", "PATCH", f"/v1/rules/{rule_id}", json={"enabled": enabled == "true"})
    done = "Rule enabled." if enabled == "true" else "Rule disabled."
    return await settled(runtime, "/automation", change, done=done, service="trigger")


@router.post(
    "/automation/integrations/{integration_id}/rotate",
    summary="Give an integration a new webhook secret, shown once",
    response_class=HTMLResponse,
)
async def rotate_secret(
    request: Request, integration_id: Id, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = ""
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.INTEGRATION_SECRETS_WRITE)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    try:
        integration = await caller.call(
            "trigger", "PATCH", f"/v1/integrations/{integration_id}", json={"secret": secret}
        )
    except ServiceError as exc:
        return back_to(runtime, "/automation", done=f"trigger refused: {exc.detail}")
    # Shown on this answer only: the console keeps no copy, trigger keeps it encrypted.
    return page("secret.html", request, person, integration=integration, secret=secret)


@router.post(
    "/automation/integrations/{integration_id}/test",
    summary="Send a test event for an integration and show the decisions it caused",
    response_class=HTMLResponse,
)
async def send_test_event(
    request: Request,
    integration_id: Id,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    event_type: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.EVENTS_WRITE)
    tried = {"integration_id": integration_id, "event_type": event_type}
    try:
        integration = await caller.get("trigger", f"/v1/integrations/{integration_id}")
        # The person is the sample's contact: a survey the event requests goes to them, nobody else.
        event = {
            "id": "console-test-" + secrets.token_hex(8),
            "type": event_type,
            "timestamp": runtime.deps.clock.now().isoformat(),
            "data": {
                "contact": {
                    "external_id": f"console-test-{person.user.id}",
                    "email": person.user.email,
                    "name": person.user.name,
                },
                "test": True,
                "integration": integration["name"],
            },
        }
        accepted = await caller.post("trigger", "/v1/events", event)
        decisions = await caller.get("trigger", f"/v1/events/{accepted['event_id']}/decisions")
    except ServiceError as exc:
        return await automation_page(request, person, caller, test_refused=exc.detail, test_tried=tried)
    test = {"integration": integration, "event_id": accepted["event_id"], "decisions": decisions}
    return await automation_page(request, person, caller, test=test, test_tried=tried)


async def automation_page(request: Request, person: SignedIn, caller: Caller, **extra: Any) -> Response:
    calls: dict[str, Any] = {
        "rules": caller.get("trigger", "/v1/rules"),
        "decisions": caller.get("trigger", "/v1/decisions", limit=20),
    }
    may_write = can(person, Permission.RULES_WRITE)
    if may_write:
        calls["surveys"] = caller.get("trigger", "/v1/surveys")
    if can(person, Permission.INTEGRATIONS_READ):
        calls["integrations"] = caller.get("trigger", "/v1/integrations")
    data = await caller.gather(**calls)
    rules = items_of(data["rules"])
    return page(
        "automation.html",
        request,
        person,
        data=data,
        errors=errors_of(data),
        rule_names={r["id"]: r["name"] for r in rules},
        surveys=[s for s in items_of(data.get("surveys")) if s.get("open")],
        channels=CHANNELS,
        sample_type=next((r["event_type"] for r in rules if "*" not in r["event_type"]), "ticket.solved"),
        may_write=may_write,
        may_rotate=can(person, Permission.INTEGRATION_SECRETS_WRITE),
        may_test=can(person, Permission.EVENTS_WRITE),
        **{
            "done": None,
            "dry_run": None,
            "dry_refused": None,
            "tried": {},
            "rule_refused": None,
            "rule_tried": {},
            "test": None,
            "test_refused": None,
            "test_tried": {},
            **extra,
        },
    )
