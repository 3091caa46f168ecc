"""The dispatch service: survey requests in, invitations (emails, links) out."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import handlers
from services.dispatch.api import router
from services.dispatch.models import inbox, outbox
from services.dispatch.sender import InvitationSender
from services.dispatch.settings import DispatchSettings
from shared.events import CUSTOMER_EVENTS, SURVEY_REQUESTS, ContactErased, SurveyRequested, utcnow
from shared.inbox import Handler
from shared.service import Runtime, ServiceSpec, build_app


async def _setup(runtime: Runtime) -> None:
    runtime.extras["sender"] = InvitationSender(runtime.db, runtime.outbox, runtime.settings)


async def send_invitations(runtime: Runtime) -> None:
    await runtime.extras["sender"].run()


def _event_handlers(runtime: Runtime) -> dict[type, Handler]:
    sender: InvitationSender = runtime.extras["sender"]

    async def on_survey_requested(session: AsyncSession, event: SurveyRequested) -> None:
        now = utcnow()
        invitation = await handlers.request_survey(
            session, runtime.outbox, runtime.settings, event=event, now=now
        )
        if invitation is not None and invitation.status == "scheduled" and invitation.send_at <= now:
            sender.wake_after_commit(session)

    async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
        await handlers.erase_contact(session, runtime.outbox, event=event, now=utcnow())

    return {SurveyRequested: on_survey_requested, ContactErased: on_contact_erased}


def create_app(settings: DispatchSettings | None = None) -> FastAPI:
    return build_app(
        ServiceSpec(
            name="dispatch",
            title="closeloop dispatch",
            description="Turns survey requests into invitations: one per request, sent by email (or returned "
            "as a link), retried with backoff, and tracked from scheduled to sent or failed.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
            topics=[SURVEY_REQUESTS, CUSTOMER_EVENTS],
            handlers=_event_handlers,
            background=[send_invitations],
            setup=_setup,
            openapi_tags=[
                {"name": "invitations", "description": "Survey invitations and their delivery state"}
            ],
        ),
        settings or DispatchSettings(),  # type: ignore[call-arg]
    )
