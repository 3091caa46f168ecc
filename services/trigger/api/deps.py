"""What the trigger's route modules share: who makes a change (``ActorDep``), the clock and caches
of the running service, and the rate limit."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.trigger.caches import Caches
from shared.errors import CloseloopError
from shared.service import Runtime, WorkspaceDep


class TooManyRequests(CloseloopError):
    """429: the integration (or workspace) sends faster than its rate; ``Retry-After`` says when to retry."""

    status, code, title = 429, "rate-limited", "Too many requests"


def current_time(runtime: Runtime) -> datetime:
    """Return the service clock's time (the tests move it)."""
    return runtime.extras["clock"].now()  # type: ignore[no-any-return]


def caches_of(runtime: Runtime) -> Caches:
    """Return the service's in-memory caches of integrations and rules."""
    return runtime.extras["caches"]  # type: ignore[no-any-return]


async def get_actor(request: Request, workspace: WorkspaceDep) -> str:
    """Return who makes this change: the API key's id, and the person the caller names in X-Actor."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    key_id = key.split(".")[1] if key.count(".") == 2 else "unknown"
    person = request.headers.get("x-actor", "").strip()[:200]
    return f"{person} (api key {key_id})" if person else f"api key {key_id}"


ActorDep = Annotated[str, Depends(get_actor)]


def rate_limit(runtime: Runtime, key: str, rate: float | None) -> None:
    """Take one request from ``key``'s bucket (``rate`` per second, default the service's) or raise 429."""
    wait = runtime.extras["limiter"].acquire(key, time.monotonic(), rate=rate)
    if wait > 0:
        seconds = max(1, int(wait + 0.999))
        raise TooManyRequests(
            f"More than {rate or runtime.settings.rate_limit_per_s:g} requests per second; retry in {seconds}s.",
            headers={"Retry-After": str(seconds)},
        )
