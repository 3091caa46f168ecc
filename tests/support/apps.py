"""Running any service's API alone in a test, by the service's name (the route-wide tests go through all)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from closeloop.cli import app_factory, settings_class
from tests.support.stack import running


@asynccontextmanager
async def api_alone(name: str, settings_for: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    """Run service ``name``'s API alone (no consumer to join a group, no background loops: every request
    reaches the database) with the test stack's settings; yield a client for it."""
    settings = settings_for(settings_class(name), role="api")
    async with running(app_factory(name)(settings)) as client:
        yield client
