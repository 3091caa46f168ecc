"""Routes of the follow-up service, one module per resource: cases (agents' work and the decision log),
the workspace's settings, agents and teams, routing, SLA and escalation, the workflow (statuses, opening
rules, root causes), metrics, and the deprecated task API. ``router`` assembles them in the order the
OpenAPI document lists them."""

from fastapi import APIRouter

from services.followup.api import cases, legacy, metrics, routing, sla, teams, workflow, workspace_settings

router = APIRouter()
for module in (cases, workspace_settings, teams, routing, sla, workflow, metrics, legacy):
    router.include_router(module.router)
