"""What the trigger's routes depend on, typed: its runtime (settings, database, outbox, and the
``TriggerDeps`` that ``app.py`` builds), who makes a change (``ActorDep``), and the rate limit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.trigger.anonymiser import Anonymiser
from services.trigger.batcher import IngestBatcher
from services.trigger.caches import Caches
from services.trigger.evaluator import Evaluator
from services.trigger.hubspot import HubSpotClient
from services.trigger.scheduler import Scheduler
from services.trigger.settings import TriggerSettings
from shared.clock import Clock
from shared.errors import CloseloopError
from shared.ratelimit import TokenBuckets
from shared.service import Runtime, WorkspaceDep, get_runtime


@dataclass
class TriggerDeps:
    """What the trigger service builds once its database and producer exist, in building order."""

    clock: Clock
    """The time every decision is made at (tests move it)."""
    caches: Caches
    """Integrations and each workspace's rules and policy, in memory."""
    limiter: TokenBuckets
    """Webhook requests per integration, ``POST /v1/events`` per workspace."""
    hubspot: HubSpotClient
    """Looks up the contact of HubSpot deal and ticket webhooks."""
    pool: asyncpg.Pool
    """The driver's own connections that store webhooks (no ORM on that path)."""
    batcher: IngestBatcher
    """Group commit: webhooks arriving together are stored by one statement."""
    evaluator: Evaluator
    """The worker that applies the rules to stored events."""
    scheduler: Scheduler
    """The worker that decides due sends again."""
    anonymiser: Anonymiser
    """The worker that publishes each workspace's daily ``AnonymisationDue``."""


TriggerRuntime = Runtime[TriggerSettings, TriggerDeps]
RuntimeDep = Annotated[TriggerRuntime, Depends(get_runtime)]


class TooManyRequests(CloseloopError):
    """429: the integration (or workspace) sends faster than its rate; ``Retry-After`` says when to retry."""

    status, code, title = 429, "rate-limited", "Too many requests"


def rate_limit(runtime: TriggerRuntime, key: str, rate: float | None) -> None:
    """Take one request from ``key``'s bucket (``rate`` per second, default the service's) or raise 429."""
    wait = runtime.deps.limiter.acquire(key, time.monotonic(), rate=rate)
    if wait > 0:
        seconds = max(1, int(wait + 0.999))
        raise TooManyRequests(
            f"More than {rate or runtime.settings.rate_limit_per_s:g} requests per second; retry in {seconds}s.",
            headers={"Retry-After": str(seconds)},
        )


async def get_actor(request: Request, workspace: WorkspaceDep) -> str:
    """Return who makes this change: the API key's id, and the person the caller names in X-Actor."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    key_id = key.split(".")[1] if key.count(".") == 2 else "unknown"
    person = request.headers.get("x-actor", "").strip()[:200]
    return f"{person} (api key {key_id})" if person else f"api key {key_id}"


ActorDep = Annotated[str, Depends(get_actor)]
