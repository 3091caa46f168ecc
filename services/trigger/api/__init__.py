"""The trigger service's routes, one module per resource: they parse, call a handler (or a query
of ``queries.py``) and map the result to the API's bodies. ``router`` holds them all."""

from __future__ import annotations

from fastapi import APIRouter

from services.trigger.api import contacts, events, integrations, retention, rules, settings, surveys, webhooks

router = APIRouter()
for module in (integrations, webhooks, events, contacts, rules, surveys, settings, retention):
    router.include_router(module.router)
