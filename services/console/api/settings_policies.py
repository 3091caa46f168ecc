"""Settings that act on how cases are handled and who hears what: SLA policies and routing rules
(followup replaces each list as a whole, so the console reads it, changes one entry and puts it back) and
scoring's notification rules (a team channel told about low answers in a segment)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Form
from fastapi.responses import Response

from services.console.api.forms import Csrf, Id, acting, comma_separated, form_router, settled
from services.console.apis import Caller
from services.console.deps import RuntimeDep, SignedInDep
from shared.access import Permission

router = form_router("each service")
SLA = "/settings#sla"
ROUTING = "/settings#routing"
NOTIFICATIONS = "/settings#notifications"
Text = Annotated[str, Form(max_length=200)]
Hours = Annotated[float | None, Form(ge=0, le=365 * 24)]
POLICY_FIELDS: tuple[str, ...] = (
    "name",
    "team_id",
    "priority",
    "first_contact_minutes",
    "resolution_minutes",
)
POLICY_FIELDS += ("first_contact_business_minutes", "resolution_business_minutes", "pause_while_waiting")
RULE_FIELDS = ("id", "name", "conditions", "team_id", "agent_id", "priority", "enabled")


def settings_writer(runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = "") -> Caller:
    """Return a caller speaking for the signed-in person, once their role may change settings and the
    form's CSRF token is theirs (every settings form's prologue, as a dependency: ``Writer``)."""
    return acting(runtime, signed_in, csrf_token, Permission.SETTINGS_WRITE)[1]


Writer = Annotated[Caller, Depends(settings_writer)]


async def put_list(
    caller: Caller,
    path: str,
    key: str,
    fields: tuple[str, ...],
    change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    *,
    without: str | None = None,
) -> None:
    """Read a list followup replaces as a whole (SLA policies, the escalation ladder) at ``path``, keep
    ``fields`` of each entry (not the one whose id is ``without``), ``change`` it and put it back under
    ``key``."""
    found = await caller.get("followup", path)
    kept = [{k: e.get(k) for k in fields} for e in found if without is None or e.get("id") != without]
    await caller.put("followup", path, {key: change(kept)})


def put_policies(
    caller: Caller,
    change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    *,
    without: str | None = None,
) -> Awaitable[None]:
    """Read followup's SLA policies, ``change`` the list and put it back whole."""
    return put_list(caller, "/v1/sla-policies", "policies", POLICY_FIELDS, change, without=without)


async def put_rules(
    caller: Caller,
    change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    *,
    without: str | None = None,
) -> None:
    """Read followup's routing rules, ``change`` the list and put it back whole with the default team."""
    current = await caller.get("followup", "/v1/routing-rules")
    rules = [
        {k: r.get(k) for k in RULE_FIELDS}
        for r in current.get("rules", [])
        if without is None or r.get("id") != without
    ]
    body = {"rules": change(rules), "default_team_id": current.get("default_team_id")}
    await caller.put("followup", "/v1/routing-rules", body)


@router.post("/settings/sla-policies", summary="Add an SLA policy")
async def add_policy(
    runtime: RuntimeDep,
    caller: Writer,
    name: Text = "",
    team_id: Annotated[str, Form(max_length=64)] = "",
    priority: Annotated[str, Form(max_length=10)] = "",
    first_contact_hours: Hours = None,
    resolution_hours: Hours = None,
    pause_while_waiting: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    policy: dict[str, Any] = {
        "name": name.strip(),
        "team_id": team_id or None,
        "priority": priority or None,
        "pause_while_waiting": pause_while_waiting == "yes",
    }
    for key, hours in (
        ("first_contact_minutes", first_contact_hours),
        ("resolution_minutes", resolution_hours),
    ):
        if hours is not None:
            policy[key] = round(hours * 60)
    change = put_policies(caller, lambda current: [*current, policy])
    return await settled(
        runtime, SLA, change, done=f"SLA policy “{policy['name']}” added.", service="followup"
    )


@router.post("/settings/sla-policies/{policy_id}/remove", summary="Remove an SLA policy")
async def remove_policy(policy_id: Id, runtime: RuntimeDep, caller: Writer) -> Response:
    change = put_policies(caller, lambda kept: kept, without=policy_id)
    return await settled(runtime, SLA, change, done="SLA policy removed.", service="followup")


@router.post("/settings/routing-rules", summary="Add a routing rule")
async def add_routing_rule(
    runtime: RuntimeDep,
    caller: Writer,
    name: Text = "",
    metric: Annotated[str, Form(max_length=8)] = "",
    max_score: Annotated[int | None, Form(ge=0, le=10)] = None,
    country: Annotated[str, Form(max_length=64)] = "",
    team_id: Annotated[str, Form(max_length=64)] = "",
    priority: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    conditions: dict[str, Any] = {}
    if metric and max_score is not None:
        conditions["score"] = {"metric": metric, "max": max_score}
    if country.strip():
        conditions["dimensions"] = {"country": comma_separated(country)}
    rule = {
        "name": name.strip(),
        "conditions": conditions,
        "team_id": team_id or None,
        "priority": priority or None,
    }
    change = put_rules(caller, lambda rules: [*rules, rule])
    return await settled(
        runtime, ROUTING, change, done=f"Routing rule “{rule['name']}” added.", service="followup"
    )


@router.post("/settings/routing-rules/{rule_id}/remove", summary="Remove a routing rule")
async def remove_routing_rule(rule_id: Id, runtime: RuntimeDep, caller: Writer) -> Response:
    change = put_rules(caller, lambda kept: kept, without=rule_id)
    return await settled(runtime, ROUTING, change, done="Routing rule removed.", service="followup")


@router.post("/settings/notification-rules", summary="Add a notification rule")
async def add_notification_rule(
    runtime: RuntimeDep,
    caller: Writer,
    name: Text = "",
    metric: Annotated[str, Form(max_length=8)] = "nps",
    max_score: Annotated[int | None, Form(ge=0, le=10)] = None,
    filters: Annotated[str, Form(max_length=1000)] = "",
    channel: Annotated[str, Form(max_length=10)] = "email",
    to: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    body: dict[str, Any] = {
        "name": name.strip(),
        "metric": metric,
        "max_score": max_score,
        "filters": comma_separated(filters),
        "channel": channel,
        "to": to.strip() or "-",
    }
    change = caller.post("scoring", "/v1/notification-rules", body)
    done = f"Notification rule “{body['name']}” added."
    return await settled(runtime, NOTIFICATIONS, change, done=done, service="scoring")


@router.post("/settings/notification-rules/{rule_id}/remove", summary="Remove a notification rule")
async def remove_notification_rule(rule_id: Id, runtime: RuntimeDep, caller: Writer) -> Response:
    change = caller.delete("scoring", f"/v1/notification-rules/{rule_id}")
    return await settled(runtime, NOTIFICATIONS, change, done="Notification rule removed.", service="scoring")
