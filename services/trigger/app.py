"""The trigger service: CRM and helpdesk events in, survey requests out."""

from __future__ import annotations

from fastapi import FastAPI

from services.trigger.api import router
from services.trigger.models import inbox, outbox
from services.trigger.settings import TriggerSettings
from shared.service import ServiceSpec, build_app


def create_app(settings: TriggerSettings | None = None) -> FastAPI:
    return build_app(
        ServiceSpec(
            name="trigger",
            title="closeloop trigger",
            description="Receives signed CRM and helpdesk webhooks, keeps contacts and rules, and decides "
            "who is asked for feedback when.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
        ),
        settings or TriggerSettings(),  # type: ignore[call-arg]
    )
