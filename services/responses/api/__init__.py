"""Routes of the responses service, one module per resource: each route parses, calls a handler and
maps the result. ``router`` assembles them in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from services.responses.api import (
    branding,
    checklist,
    kiosks,
    public,
    responses,
    rewards,
    survey_pages,
    surveys,
)

router = APIRouter()
for module in (surveys, checklist, branding, responses, kiosks, rewards, survey_pages, public):
    router.include_router(module.router)
