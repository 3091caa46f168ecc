"""Routes of the dispatch service, one module per resource: each route parses, calls a handler and
maps the result. ``router`` has the workspace API (API key), ``public`` the links in messages and the
provider callbacks; each lists its routes in the order of the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from services.dispatch.api import (
    crm,
    invitations,
    links,
    message_templates,
    providers,
    webhooks,
    workspace_settings,
)

router = APIRouter()
for module in (invitations, workspace_settings, message_templates, webhooks, crm):
    router.include_router(module.router)

public = APIRouter()
for module in (links, providers):
    public.include_router(module.router)
