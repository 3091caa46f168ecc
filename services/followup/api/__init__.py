"""Routes of the follow-up service, one module per part: cases (agents' work and the decision log),
config (teams, routing, SLA, escalation, workflow, taxonomy, settings), metrics, and the deprecated
task API."""

from fastapi import APIRouter

from services.followup.api import cases, config, legacy, metrics

router = APIRouter()
for part in (cases.router, config.router, metrics.router, legacy.router):
    router.include_router(part)
