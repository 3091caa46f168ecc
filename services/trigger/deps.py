"""What the trigger's routes depend on, typed: its runtime (settings, database, outbox, and the
``TriggerDeps`` that ``app.py`` builds), who makes a change (``ActorDep``, from the caller's credential),
and the rate limit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends

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
from shared.service import PrincipalDep, Runtime, get_runtime


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


async def get_actor(principal: PrincipalDep) -> str:
    """Return who makes this change, as the audit log names them: the person of a console user token
    (``Ada Lovelace (user:<id>)``) or the API key (``key:<id>``). An ``X-Actor`` header is not believed."""
    return principal.who[:300]


ActorDep = Annotated[str, Depends(get_actor)]
