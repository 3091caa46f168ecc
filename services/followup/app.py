"""The follow-up service: negative feedback becomes a task; resolving it asks whether the customer was won back."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup import handlers
from services.followup.api import router
from services.followup.deps import FollowUpRuntime
from services.followup.models import inbox, outbox
from services.followup.settings import FollowUpSettings
from shared.events import CUSTOMER_EVENTS, SCORES, ContactErased, NegativeFeedbackDetected, ResponseScored
from shared.inbox import EventCallback
from shared.service import ServiceSpec, build_app


def consumes(runtime: FollowUpRuntime) -> dict[type, EventCallback]:
    """Return the handler of each consumed event type, bound to this runtime."""

    async def on_negative_feedback(session: AsyncSession, event: NegativeFeedbackDetected) -> None:
        await handlers.open_task(session, runtime.outbox, event=event)

    async def on_response_scored(session: AsyncSession, event: ResponseScored) -> None:
        await handlers.record_outcome(session, runtime.outbox, event=event)

    async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
        await handlers.erase_contact(session, event=event)

    return {
        NegativeFeedbackDetected: on_negative_feedback,
        ResponseScored: on_response_scored,
        ContactErased: on_contact_erased,
    }


def create_app(settings: FollowUpSettings | None = None) -> FastAPI:
    return build_app(
        ServiceSpec(
            name="followup",
            title="closeloop follow-up",
            description="Opens a task for negative feedback from customers who agreed to be contacted, lets "
            "agents assign and resolve it, then sends a retention survey and records whether the "
            "customer was won back.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
            topics=[SCORES, CUSTOMER_EVENTS],
            consumes=consumes,
            openapi_tags=[
                {"name": "tasks", "description": "Follow-up tasks agents work"},
                {"name": "settings", "description": "The workspace's retention survey"},
            ],
        ),
        settings or FollowUpSettings.from_env(),
    )
