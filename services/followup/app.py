"""The follow-up service: case management that closes the loop.

Negative feedback (and, by workspace rule, at-risk loyalty or low scores) from customers who agreed to
be contacted opens a case that names who to call; routing gives it to a team or an agent; SLA clocks
and an escalation ladder keep it moving; resolving it with a root cause sends the retention survey,
whose answer records whether the customer was won back.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.api import router
from services.followup.deps import FollowUp, FollowUpRuntime
from services.followup.escalation import EscalationScheduler
from services.followup.handlers import erasure, opening, outcomes, retention, surveys
from services.followup.models import inbox, outbox, revoked_keys
from services.followup.settings import FollowUpSettings
from shared.clock import Clock
from shared.events import (
    CUSTOMER_EVENTS,
    INVITATIONS,
    SCORES,
    SURVEYS,
    WORKSPACES,
    AnonymisationDue,
    ContactErased,
    InvitationFailed,
    NegativeFeedbackDetected,
    ResponseScored,
    SurveyClosed,
    SurveyPublished,
    SurveyReopened,
)
from shared.headers import SecurityHeaders
from shared.inbox import EventCallback
from shared.service import ServiceSpec, build_app
from shared.worker import Worker


def consumes(runtime: FollowUpRuntime) -> dict[type, EventCallback]:
    """Return the handler of each consumed event type, bound to this runtime."""
    clock = runtime.deps.clock

    async def on_negative_feedback(session: AsyncSession, event: NegativeFeedbackDetected) -> None:
        if await opening.on_negative_feedback(session, runtime.outbox, event=event, now=clock.now()):
            runtime.deps.escalator.wake_after_commit(session)

    async def on_response_scored(session: AsyncSession, event: ResponseScored) -> None:
        await opening.on_response_scored(session, runtime.outbox, event=event, now=clock.now())

    async def on_invitation_failed(session: AsyncSession, event: InvitationFailed) -> None:
        await outcomes.retention_failed(session, runtime.outbox, event=event, now=clock.now())

    async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
        await erasure.erase_contact(session, event=event, now=clock.now())

    async def on_anonymisation_due(session: AsyncSession, event: AnonymisationDue) -> None:
        await retention.anonymise(session, event=event, now=clock.now())

    async def on_survey(
        session: AsyncSession, event: SurveyPublished | SurveyClosed | SurveyReopened
    ) -> None:
        await surveys.on_survey_event(session, event)

    return {
        SurveyPublished: on_survey,
        SurveyClosed: on_survey,
        SurveyReopened: on_survey,
        NegativeFeedbackDetected: on_negative_feedback,
        ResponseScored: on_response_scored,
        InvitationFailed: on_invitation_failed,
        ContactErased: on_contact_erased,
        AnonymisationDue: on_anonymisation_due,
    }


def create_app(settings: FollowUpSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Return the follow-up app; ``clock`` is the time every rule reads (tests move it)."""
    settings = settings or FollowUpSettings.from_env()
    clock = clock or Clock()

    async def setup(runtime: FollowUpRuntime) -> FollowUp:
        escalator = EscalationScheduler(
            runtime.db,
            runtime.outbox,
            clock,
            poll_interval_s=settings.escalation_interval_ms / 1000,
            batch=settings.escalation_batch,
        )
        return FollowUp(clock=clock, escalator=escalator)

    def workers(runtime: FollowUpRuntime) -> list[Worker]:
        return [runtime.deps.escalator]

    app = build_app(
        ServiceSpec(
            name="followup",
            title="closeloop follow-up",
            description="Case management that closes the loop: negative feedback from customers who agreed to "
            "be contacted opens a case naming who to call; routing, SLA clocks and an escalation ladder keep it "
            "moving; resolving it with a root cause sends a retention survey whose answer records whether the "
            "customer was won back, reported as the won-back rate.",
            routers=[router],
            outbox_table=outbox,
            inbox_table=inbox,
            revoked_keys=revoked_keys,
            topics=[SCORES, INVITATIONS, CUSTOMER_EVENTS, SURVEYS, WORKSPACES],
            setup=setup,
            consumes=consumes,
            workers=workers,
            openapi_tags=[
                {
                    "name": "cases",
                    "description": "Cases agents work: assign, status, notes, resolve, reopen, bulk",
                },
                {
                    "name": "teams",
                    "description": "Agents and teams (time zone, hours, holidays, members, lead)",
                },
                {"name": "routing", "description": "Rules that send a new case to a team or an agent"},
                {"name": "sla", "description": "SLA policies and the escalation ladder"},
                {
                    "name": "metrics",
                    "description": "Closed-loop metrics, the won-back rate and the recovery funnel",
                },
                {"name": "settings", "description": "Retention survey, workflow, opening rules, root causes"},
                {"name": "tasks (deprecated)", "description": "The old task API; use /v1/cases"},
            ],
        ),
        settings,
    )
    # Every response (the API docs pages too) forbids framing and sniffing and sends no Referer.
    app.add_middleware(SecurityHeaders)
    return app
