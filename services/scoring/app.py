"""The scoring service: completed responses in, scores, detractor events and metrics out."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import handlers
from services.scoring.api import router
from services.scoring.deps import ScoringRuntime
from services.scoring.models import inbox, outbox
from services.scoring.settings import ScoringSettings
from shared.events import CUSTOMER_EVENTS, RESPONSES, ContactErased, ResponseCompleted
from shared.inbox import EventCallback
from shared.service import ServiceSpec, build_app


def consumes(runtime: ScoringRuntime) -> dict[type, EventCallback]:
    """Return the handler of each consumed event type, bound to this runtime."""

    async def on_response_completed(session: AsyncSession, event: ResponseCompleted) -> None:
        await handlers.score_response(
            session, runtime.outbox, event=event, default_scale=runtime.settings.default_nps_scale
        )

    async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
        await handlers.erase_contact(session, event=event)

    return {ResponseCompleted: on_response_completed, ContactErased: on_contact_erased}


def create_app(settings: ScoringSettings | None = None) -> FastAPI:
    return build_app(
        ServiceSpec(
            name="scoring",
            title="closeloop scoring",
            description="Scores completed responses (NPS, NLS, CSAT, CES), keeps daily rollups, raises the "
            "detractor event for negative feedback and serves the metrics API.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
            topics=[RESPONSES, CUSTOMER_EVENTS],
            consumes=consumes,
            openapi_tags=[
                {"name": "metrics", "description": "NPS, NLS, CSAT and CES with n and margins of error"},
                {"name": "settings", "description": "How answers are classified"},
            ],
        ),
        settings or ScoringSettings.from_env(),
    )
