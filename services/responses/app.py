"""The responses service: survey definitions, the public survey pages, and responses."""

from __future__ import annotations

from fastapi import FastAPI

from services.responses.api import router
from services.responses.deps import ResponsesDeps, ResponsesRuntime
from services.responses.fastpath import SurveyFastPath
from services.responses.handlers.erasure import on_contact_erased
from services.responses.handlers.reads import DefinitionCache, create_read_pool
from services.responses.handlers.retention import on_anonymisation_due
from services.responses.models import inbox, outbox, revoked_keys
from services.responses.settings import ResponsesSettings
from shared.db import driver_dsn
from shared.events import CUSTOMER_EVENTS, WORKSPACES, AnonymisationDue, ContactErased
from shared.headers import SecurityHeaders
from shared.ratelimit import TokenBuckets
from shared.service import ServiceSpec, build_app


async def _setup(runtime: ResponsesRuntime) -> ResponsesDeps:
    settings = runtime.settings
    return ResponsesDeps(
        kiosk_buckets=TokenBuckets(rate=settings.kiosk_rate_per_minute / 60, burst=settings.kiosk_burst),
        pool=await create_read_pool(driver_dsn(settings.database_url), max_size=settings.read_pool_size),
        definitions=DefinitionCache(),
    )


async def _teardown(runtime: ResponsesRuntime) -> None:
    await runtime.deps.pool.close()


def create_app(settings: ResponsesSettings | None = None) -> FastAPI:
    app = build_app(
        ServiceSpec(
            name="responses",
            title="closeloop responses",
            description="Keeps versioned survey definitions (questions, logic, languages) and the "
            "workspace's branding, serves the public survey pages (HTML and JSON) behind opaque links and "
            "kiosk/QR links, saves each answer as it is given and publishes ResponseStarted and "
            "ResponseCompleted, the survey lifecycle (SurveyPublished, SurveyClosed, SurveyReopened) and "
            "BrandingChanged.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
            revoked_keys=revoked_keys,
            topics=[CUSTOMER_EVENTS, WORKSPACES],
            consumes=lambda runtime: {
                ContactErased: on_contact_erased,
                AnonymisationDue: on_anonymisation_due,
            },
            setup=_setup,
            teardown=_teardown,
            # The page, an answer and the form post are answered in front of FastAPI (fastpath.py); a
            # worker's port serves health checks only, so it gets no front door.
            front=lambda app, settings: SurveyFastPath(app.handle, max_bytes=settings.max_body_bytes),
            openapi_tags=[
                {"name": "surveys", "description": "Versioned survey definitions (workspace API key)"},
                {"name": "checklist", "description": "Question checklist warnings and the glossary"},
                {
                    "name": "branding",
                    "description": "The workspace's look: pages (logo, colours, font, tone) and emails (name, "
                    "logo URL, footer)",
                },
                {"name": "responses", "description": "Completed and partial responses, drop-off"},
                {"name": "kiosks", "description": "Public per-location links and their QR codes"},
                {"name": "rewards", "description": "Reward code pools"},
                {"name": "survey pages", "description": "The HTML pages customers open from an invitation"},
                {"name": "public", "description": "The same survey as JSON, authorised by the link token"},
            ],
        ),
        settings or ResponsesSettings.from_env(),
    )
    # Every response, HTML or not, forbids framing and sniffing and sends no Referer.
    app.add_middleware(SecurityHeaders)
    return app
