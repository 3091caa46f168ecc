"""The trigger service: CRM and helpdesk events in, survey requests out."""

from __future__ import annotations

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.anonymiser import Anonymiser
from services.trigger.api import router
from services.trigger.batcher import IngestBatcher
from services.trigger.caches import Caches
from services.trigger.deps import TriggerDeps, TriggerRuntime
from services.trigger.evaluator import Evaluator
from services.trigger.fastpath import WebhookFastPath
from services.trigger.handlers.contacts import on_contact_opted_out
from services.trigger.handlers.surveys import on_survey_event
from services.trigger.hubspot import HubSpotClient
from services.trigger.models import inbox, outbox, revoked_keys
from services.trigger.scheduler import Scheduler
from services.trigger.settings import TriggerSettings
from shared.clock import Clock
from shared.db import driver_dsn
from shared.events import (
    CUSTOMER_EVENTS,
    SURVEYS,
    ContactOptedOut,
    SurveyClosed,
    SurveyPublished,
    SurveyReopened,
)
from shared.headers import SecurityHeaders
from shared.inbox import EventCallback
from shared.process import ServiceApp
from shared.ratelimit import TokenBuckets
from shared.service import ServiceSpec, build_app


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """Storing events leaves no session state (no LISTEN, locks or SET): skip the pool's reset."""


def create_app(settings: TriggerSettings | None = None, *, clock: Clock | None = None) -> ServiceApp:
    """Return the trigger app; ``clock`` is the time every decision is made at (tests move it)."""
    settings = settings or TriggerSettings.from_env()
    clock = clock or Clock()

    async def setup(runtime: TriggerRuntime) -> TriggerDeps:
        caches = Caches(settings.cache_ttl_s)
        dsn = driver_dsn(settings.database_url)
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=settings.group_commit_concurrency, reset=_nothing_to_reset
        )
        return TriggerDeps(
            clock=clock,
            caches=caches,
            limiter=TokenBuckets(rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst),
            hubspot=HubSpotClient(
                httpx.AsyncClient(timeout=settings.hubspot_timeout_s), base_url=settings.hubspot_api_url
            ),
            pool=pool,
            batcher=IngestBatcher(
                pool,
                clock,
                max_events=settings.group_commit_events,
                concurrency=settings.group_commit_concurrency,
            ),
            evaluator=Evaluator(
                runtime.db,
                runtime.outbox,
                caches,
                dsn=dsn,
                batch=settings.evaluate_batch or (100 if settings.serves_api else 500),
                poll_interval_s=settings.evaluate_poll_ms / 1000,
                linger_s=settings.evaluate_linger_ms / 1000,
                clock=clock,
            ),
            scheduler=Scheduler(
                runtime.db,
                runtime.outbox,
                caches,
                poll_interval_s=settings.scheduler_interval_ms / 1000,
                batch=settings.scheduler_batch,
                clock=clock,
            ),
            anonymiser=Anonymiser(
                runtime.db, runtime.outbox, clock=clock, poll_interval_s=settings.anonymise_interval_s
            ),
        )

    async def teardown(runtime: TriggerRuntime) -> None:
        # The workers are stopped and drained by then; the store's pool, then the HubSpot client.
        await runtime.deps.pool.close()
        await runtime.deps.hubspot.http.aclose()

    def consumes(runtime: TriggerRuntime) -> dict[type, EventCallback]:
        async def on_opted_out(session: AsyncSession, event: ContactOptedOut) -> None:
            await on_contact_opted_out(session, event)

        async def on_survey(
            session: AsyncSession, event: SurveyPublished | SurveyClosed | SurveyReopened
        ) -> None:
            await on_survey_event(session, runtime.deps.caches, event)

        return {
            ContactOptedOut: on_opted_out,
            SurveyPublished: on_survey,
            SurveyClosed: on_survey,
            SurveyReopened: on_survey,
        }

    app = build_app(
        ServiceSpec[TriggerSettings, TriggerDeps](
            name="trigger",
            title="closeloop trigger",
            description="Receives signed CRM and helpdesk webhooks (HubSpot, Zendesk, Standard Webhooks, "
            "CloudEvents, any JSON), keeps contacts and rules, and decides — by rules, never by hand — "
            "who is asked for feedback, when, and over which channel.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
            revoked_keys=revoked_keys,
            topics=[CUSTOMER_EVENTS, SURVEYS],
            consumes=consumes,
            workers=lambda runtime: [runtime.deps.evaluator, runtime.deps.scheduler, runtime.deps.anonymiser],
            setup=setup,
            teardown=teardown,
            # Webhook POSTs are answered in front of FastAPI (fastpath.py); a worker's port serves
            # health checks only, so it gets no front door.
            front=lambda app, settings: WebhookFastPath(app.handle, max_bytes=settings.max_body_bytes),
            openapi_tags=[
                {"name": "webhooks", "description": "Signed inbound webhooks, one URL per integration"},
                {"name": "integrations", "description": "Sources: secrets, mappings, enabled flags"},
                {"name": "events", "description": "Received events and the decisions they caused"},
                {"name": "contacts", "description": "Contacts, bulk import, opt-outs and erasure"},
                {"name": "rules", "description": "Who is asked when: rules, dry runs, the audit log"},
                {
                    "name": "settings",
                    "description": "Contact-frequency cap, quiet hours and the retention policy",
                },
                {"name": "surveys", "description": "The surveys rules may name, as responses published them"},
            ],
        ),
        settings,
    )
    # Every response (the API docs pages too) forbids framing and sniffing and sends no Referer.
    app.add_middleware(SecurityHeaders)
    return app
