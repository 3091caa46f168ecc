"""The dispatch service: survey requests in; invitations, reminders, notifications and webhooks out."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import catalogue
from services.dispatch.api import public, router
from services.dispatch.channels import HttpChannels, SmtpPool
from services.dispatch.crm import queue
from services.dispatch.crm.worker import CrmWorker
from services.dispatch.deps import DispatchDeps, DispatchRuntime
from services.dispatch.handlers import (
    erasure,
    funnel,
    optouts,
    outbound,
    owners,
    retention,
    survey_requests,
    surveys,
)
from services.dispatch.handlers.workspace import WorkspaceCache
from services.dispatch.models import inbox, outbox, revoked_keys
from services.dispatch.notifier import Notifier, notification_requested
from services.dispatch.sending.sender import InvitationSender
from services.dispatch.settings import DispatchSettings
from shared.clock import Clock
from shared.events import (
    CUSTOMER_EVENTS,
    FOLLOWUPS,
    INVITATIONS,
    NOTIFICATIONS,
    RESPONSES,
    SCORES,
    SURVEY_REQUESTS,
    SURVEYS,
    WORKSPACES,
    AnonymisationDue,
    BrandingChanged,
    ContactErased,
    ContactOptedOut,
    EventData,
    NotificationRequested,
    QuietHoursChanged,
    ResponseCompleted,
    ResponseStarted,
    SurveyPublished,
    SurveyRequested,
)
from shared.headers import SecurityHeaders
from shared.inbox import CURRENT_EVENT, EventCallback
from shared.netguard import OutboundGuard
from shared.service import ConsumerGroup, ServiceSpec, build_app
from shared.worker import Worker


async def _setup(runtime: DispatchRuntime) -> DispatchDeps:
    settings = runtime.settings
    clock = Clock()
    guard = OutboundGuard(settings.outbound_networks)
    smtp = SmtpPool(settings)
    http = HttpChannels(settings, guard)
    sender_http = HttpChannels(settings, guard)
    return DispatchDeps(
        clock=clock,
        cache=WorkspaceCache(settings),
        guard=guard,
        smtp=smtp,
        http=http,
        sender_http=sender_http,
        sender=InvitationSender(
            runtime.db, runtime.outbox, settings, clock=clock, smtp=smtp, http=sender_http
        ),
        notifier=Notifier(runtime.db, settings, clock=clock, smtp=smtp, http=http),
        crm=CrmWorker(runtime.db, settings, clock=clock, guard=guard),
    )


async def _teardown(runtime: DispatchRuntime) -> None:
    await runtime.deps.crm.close()
    await runtime.deps.http.close()
    await runtime.deps.sender_http.close()
    await runtime.deps.smtp.close()


def workers(runtime: DispatchRuntime) -> list[Worker]:
    """The ``sender`` (invitations and reminders), the ``notifier`` (notifications, webhooks) and ``crm``."""
    return [runtime.deps.sender, runtime.deps.notifier, runtime.deps.crm]


def consumes(runtime: DispatchRuntime) -> dict[type, EventCallback]:
    sender, notifier, clock, cache = (
        runtime.deps.sender,
        runtime.deps.notifier,
        runtime.deps.clock,
        runtime.deps.cache,
    )

    async def handle_requests(session: AsyncSession, requests: survey_requests.Requests) -> None:
        now = clock.now()
        invitations = await survey_requests.request_surveys(
            session, runtime.outbox, runtime.settings, requests=requests, now=now, cache=cache
        )
        if any(i.status == "scheduled" and i.send_at <= now for i in invitations):
            sender.wake_after_commit(session)

    async def on_survey_requested(session: AsyncSession, event: SurveyRequested) -> None:
        # Handled with the rest of the batch's requests (``consumer_flush``), before any other event.
        survey_requests.defer(session, event, handle_requests)

    async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
        await erasure.erase_contact(session, runtime.outbox, event=event, now=clock.now())

    async def on_anonymisation_due(session: AsyncSession, event: AnonymisationDue) -> None:
        await retention.anonymise(session, event=event)

    async def on_survey_published(session: AsyncSession, event: SurveyPublished) -> None:
        await surveys.survey_published(session, event=event)

    async def on_branding_changed(session: AsyncSession, event: BrandingChanged) -> None:
        await owners.branding_changed(session, event=event)
        cache.invalidate_after_commit(session, event.workspace_id)

    async def on_quiet_hours_changed(session: AsyncSession, event: QuietHoursChanged) -> None:
        if await owners.quiet_hours_changed(session, event=event, now=clock.now()):
            sender.wake_after_commit(session)
        cache.invalidate_after_commit(session, event.workspace_id)

    async def on_contact_opted_out(session: AsyncSession, event: ContactOptedOut) -> None:
        await optouts.opted_out(session, runtime.outbox, event=event, now=clock.now())

    async def on_response(session: AsyncSession, event: ResponseStarted | ResponseCompleted) -> None:
        await funnel.responded(session, event=event, now=clock.now())

    async def on_notification(session: AsyncSession, event: NotificationRequested) -> None:
        if await notification_requested(session, event=event, now=clock.now()):
            notifier.wake_after_commit(session)

    def after_requests(callback: EventCallback) -> EventCallback:
        """The callback, run after the survey requests the batch had before its event."""

        async def run(session: AsyncSession, event: EventData) -> None:
            await survey_requests.flush_pending(session)
            await callback(session, event)

        return run

    return {
        SurveyRequested: on_survey_requested,
        **{
            kind: after_requests(callback)  # type: ignore[arg-type]
            for kind, callback in {
                ContactErased: on_contact_erased,
                AnonymisationDue: on_anonymisation_due,
                ContactOptedOut: on_contact_opted_out,
                ResponseStarted: on_response,
                ResponseCompleted: on_response,
                NotificationRequested: on_notification,
                SurveyPublished: on_survey_published,
                BrandingChanged: on_branding_changed,
                QuietHoursChanged: on_quiet_hours_changed,
            }.items()
        },
    }


def groups(runtime: DispatchRuntime) -> list[ConsumerGroup]:
    """The ``outbound`` group: every public event (``catalogue``) to the webhook subscriptions that want
    it. A group of its own, batched: a burst of scores never holds up invitations, nor they it."""
    notifier, crm, clock = runtime.deps.notifier, runtime.deps.crm, runtime.deps.clock

    async def on_public_event(session: AsyncSession, event: EventData) -> None:
        envelope = CURRENT_EVENT.get()
        assert envelope is not None, "called by the inbox, which names the event"
        now = clock.now()
        subscribed, connected = await outbound.listeners(session, event.workspace_id)
        if subscribed and await outbound.fan_out(
            session, event, event_id=envelope.id, occurred_at=envelope.time, now=now
        ):
            notifier.wake_after_commit(session)
        if connected and await queue.enqueue(
            session, event, event_id=envelope.id, occurred_at=envelope.time, now=now
        ):
            crm.wake_after_commit(session)

    return [
        ConsumerGroup(
            suffix="outbound",
            topics=[CUSTOMER_EVENTS, INVITATIONS, RESPONSES, SCORES, FOLLOWUPS],
            callbacks={public.source: on_public_event for public in catalogue.CATALOGUE},
            batch=True,
        )
    ]


def create_app(settings: DispatchSettings | None = None) -> FastAPI:
    app = build_app(
        ServiceSpec(
            name="dispatch",
            title="closeloop dispatch",
            description="Turns survey requests into invitations — email, SMS, WhatsApp, chat or a link — one per "
            "request, personalised from templates, scheduled around quiet hours, reminded, tracked through the "
            "funnel from invited to completed; and sends staff notifications and signed outgoing webhooks.",
            routers=[router, public],
            outbox_table=outbox,
            inbox_table=inbox,
            revoked_keys=revoked_keys,
            topics=[SURVEY_REQUESTS, CUSTOMER_EVENTS, RESPONSES, NOTIFICATIONS, SURVEYS, WORKSPACES],
            consumes=consumes,
            consumer_batch=True,
            consumer_flush=survey_requests.flush_pending,
            groups=groups,
            workers=workers,
            setup=_setup,
            teardown=_teardown,
            openapi_tags=[
                {
                    "name": "invitations",
                    "description": "Survey invitations, their delivery state and the funnel",
                },
                {
                    "name": "settings",
                    "description": "Branding, quiet hours, reminders and channel credentials",
                },
                {"name": "templates", "description": "Message templates per survey, channel and locale"},
                {"name": "webhooks", "description": "Outgoing webhook subscriptions and their delivery log"},
                {
                    "name": "crm",
                    "description": "CRM connectors (scores back into HubSpot) and their call log",
                },
                {"name": "public", "description": "Links in messages: short links, unsubscribe, open pixel"},
                {"name": "providers", "description": "Delivery callbacks from SendGrid, Mailgun and Twilio"},
            ],
        ),
        settings or DispatchSettings.from_env(),
    )
    # Every response, HTML or not, forbids framing and sniffing and sends no Referer (pages keep their own policy).
    app.add_middleware(SecurityHeaders)
    return app
