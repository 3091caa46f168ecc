"""The responses service: survey definitions, the public survey pages, and completed responses."""

from __future__ import annotations

from fastapi import FastAPI

from services.responses import handlers
from services.responses.api import router
from services.responses.models import inbox, outbox
from services.responses.settings import ResponsesSettings
from shared.events import CUSTOMER_EVENTS, ContactErased
from shared.service import ServiceSpec, build_app


def create_app(settings: ResponsesSettings | None = None) -> FastAPI:
    return build_app(
        ServiceSpec(
            name="responses",
            title="closeloop responses",
            description="Keeps survey definitions, serves the public survey pages (HTML and JSON) behind "
            "signed links, stores one response per invitation and publishes ResponseCompleted.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
            topics=[CUSTOMER_EVENTS],
            handlers=lambda runtime: {ContactErased: handlers.on_contact_erased},
            openapi_tags=[
                {"name": "surveys", "description": "Survey definitions (workspace API key)"},
                {"name": "survey pages", "description": "The HTML pages customers open from an invitation"},
                {"name": "public", "description": "The same survey as JSON, authorised by the link token"},
            ],
        ),
        settings or ResponsesSettings(),  # type: ignore[call-arg]
    )
