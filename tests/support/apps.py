"""Running any service's API alone in a test, by the service's name (the route-wide tests go through all)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.stack import running

SETTINGS = {
    "trigger": "TriggerSettings",
    "dispatch": "DispatchSettings",
    "responses": "ResponsesSettings",
    "scoring": "ScoringSettings",
    "followup": "FollowUpSettings",
    "console": "ConsoleSettings",
}
"""Each service's settings class, in ``services.<name>.settings``."""


def settings_class(name: str) -> Any:
    """Service ``name``'s settings class."""
    return getattr(importlib.import_module(f"services.{name}.settings"), SETTINGS[name])


def create_service_app(name: str, settings: Any) -> Any:
    """Service ``name``'s FastAPI app made with ``settings`` (built, not started: no I/O yet)."""
    return importlib.import_module(f"services.{name}.app").create_app(settings)


@asynccontextmanager
async def api_alone(name: str, settings_for: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    """Run service ``name``'s API alone (no consumer to join a group, no background loops: every request
    reaches the database) with the test stack's settings; yield a client for it."""
    settings = settings_for(settings_class(name), role="api")
    async with running(create_service_app(name, settings)) as client:
        yield client
