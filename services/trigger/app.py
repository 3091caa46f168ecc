"""The trigger service: CRM and helpdesk events in, survey requests out."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.api import router
from services.trigger.batcher import IngestBatcher
from services.trigger.caches import Caches
from services.trigger.evaluator import Evaluator
from services.trigger.fastpath import WebhookFastPath
from services.trigger.handlers.contacts import on_contact_opted_out
from services.trigger.hubspot import HubSpotClient
from services.trigger.models import inbox, outbox
from services.trigger.scheduler import Scheduler
from services.trigger.settings import TriggerSettings
from shared.clock import Clock
from shared.db import driver_dsn
from shared.events import CUSTOMER_EVENTS, ContactOptedOut
from shared.inbox import EventCallback
from shared.ratelimit import TokenBuckets
from shared.service import Runtime, ServiceSpec, build_app


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """Storing events leaves no session state (no LISTEN, locks or SET): skip the pool's reset."""


def create_app(settings: TriggerSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Return the trigger app; ``clock`` is the time every decision is made at (tests move it)."""
    settings = settings or TriggerSettings.from_env()
    clock = clock or Clock()

    async def setup(runtime: Runtime) -> None:
        caches = Caches(settings.cache_ttl_s)
        runtime.extras["clock"] = clock
        runtime.extras["caches"] = caches
        runtime.extras["limiter"] = TokenBuckets(
            rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst
        )
        runtime.extras["hubspot"] = HubSpotClient(
            httpx.AsyncClient(timeout=settings.hubspot_timeout_s), base_url=settings.hubspot_api_url
        )
        dsn = driver_dsn(settings.database_url)
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=settings.group_commit_concurrency, reset=_nothing_to_reset
        )
        runtime.extras["pool"] = pool
        runtime.extras["batcher"] = IngestBatcher(
            pool,
            clock,
            max_events=settings.group_commit_events,
            concurrency=settings.group_commit_concurrency,
        )
        runtime.extras["evaluator"] = Evaluator(
            runtime.db,
            runtime.outbox,
            caches,
            dsn=dsn,
            batch=settings.evaluate_batch or (100 if settings.serves_api else 500),
            poll_interval_s=settings.evaluate_poll_ms / 1000,
            linger_s=settings.evaluate_linger_ms / 1000,
            clock=clock,
        )
        runtime.extras["scheduler"] = Scheduler(
            runtime.db,
            runtime.outbox,
            caches,
            interval_s=settings.scheduler_interval_ms / 1000,
            batch=settings.scheduler_batch,
            clock=clock,
        )

    async def run_scheduler(runtime: Runtime) -> None:
        if settings.run_scheduler:
            await runtime.extras["scheduler"].run()

    async def run_evaluator(runtime: Runtime) -> None:
        await runtime.extras["evaluator"].run()

    async def teardown(runtime: Runtime) -> None:
        runtime.extras["scheduler"].stop()
        runtime.extras["evaluator"].stop()
        await runtime.extras["hubspot"].http.aclose()
        await runtime.extras["pool"].close()

    def consumes(runtime: Runtime) -> dict[type, EventCallback]:
        async def on_opted_out(session: AsyncSession, event: ContactOptedOut) -> None:
            await on_contact_opted_out(session, event)

        return {ContactOptedOut: on_opted_out}

    app = build_app(
        ServiceSpec(
            name="trigger",
            title="closeloop trigger",
            description="Receives signed CRM and helpdesk webhooks (HubSpot, Zendesk, Standard Webhooks, "
            "CloudEvents, any JSON), keeps contacts and rules, and decides — by rules, never by hand — "
            "who is asked for feedback, when, and over which channel.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
            topics=[CUSTOMER_EVENTS],
            consumes=consumes,
            background=[run_evaluator, run_scheduler],
            setup=setup,
            teardown=teardown,
            openapi_tags=[
                {"name": "webhooks", "description": "Signed inbound webhooks, one URL per integration"},
                {"name": "integrations", "description": "Sources: secrets, mappings, enabled flags"},
                {"name": "events", "description": "Received events and the decisions they caused"},
                {"name": "contacts", "description": "Contacts, bulk import, opt-outs and erasure"},
                {"name": "rules", "description": "Who is asked when: rules, dry runs, the audit log"},
                {"name": "settings", "description": "Contact-frequency cap and quiet hours"},
            ],
        ),
        settings,
    )
    if settings.serves_api:  # a worker's port serves health checks only
        app.front = WebhookFastPath(app.handle, max_bytes=settings.max_body_bytes)
    return app
