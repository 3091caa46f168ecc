"""The scoring service: completed responses in, every answer scored, rollups, segments, the loyalty
matrix, text analysis and experience targets; detractor events, target changes and metrics out."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.api import routers
from services.scoring.deps import Scoring, ScoringRuntime
from services.scoring.handlers import cases, erasure, funnel, ingest, retention, surveys
from services.scoring.handlers.targets import TargetEvaluator
from services.scoring.models import inbox, outbox, revoked_keys
from services.scoring.queries import answer_cache
from services.scoring.settings import ScoringSettings
from services.scoring.text import warm_up
from shared.clock import Clock
from shared.events import (
    CUSTOMER_EVENTS,
    FOLLOWUPS,
    INVITATIONS,
    RESPONSES,
    SURVEYS,
    WORKSPACES,
    AnonymisationDue,
    ContactErased,
    ResponseCompleted,
    SurveyClosed,
    SurveyPublished,
    SurveyReopened,
)
from shared.headers import SecurityHeaders
from shared.inbox import EventCallback
from shared.process import freeze_startup_objects
from shared.service import ServiceSpec, build_app
from shared.worker import Worker


def consumes(runtime: ScoringRuntime) -> dict[type, EventCallback]:
    """Return the handler of each consumed event type, bound to this runtime."""

    async def on_response_completed(session: AsyncSession, event: ResponseCompleted) -> None:
        await ingest.score_response(
            session, runtime.outbox, event=event, default_scale=runtime.settings.default_nps_scale
        )

    async def on_contact_erased(session: AsyncSession, event: ContactErased) -> None:
        await erasure.erase_contact(session, event=event)

    async def on_anonymisation_due(session: AsyncSession, event: AnonymisationDue) -> None:
        await retention.anonymise(session, event=event)

    async def on_survey_published(session: AsyncSession, event: SurveyPublished) -> None:
        await surveys.survey_published(session, event=event)

    async def on_survey_opened(session: AsyncSession, event: SurveyClosed | SurveyReopened) -> None:
        await surveys.survey_opened(session, event=event)

    async def on_invitation(session: AsyncSession, event: funnel.FunnelEvent) -> None:
        await funnel.invitation_event(session, event=event)

    async def on_case(session: AsyncSession, event: cases.CaseEvent) -> None:
        await cases.case_event(session, event=event)

    return {
        ResponseCompleted: on_response_completed,
        ContactErased: on_contact_erased,
        AnonymisationDue: on_anonymisation_due,
        SurveyPublished: on_survey_published,
        SurveyClosed: on_survey_opened,
        SurveyReopened: on_survey_opened,
        **dict.fromkeys(funnel.FUNNEL_EVENTS, on_invitation),
        **dict.fromkeys(cases.CASE_EVENTS, on_case),
    }


async def flush(session: AsyncSession) -> None:
    """Write what a unit of work's events gathered: the invitations' funnel, then the responses."""
    await funnel.flush(session)
    await ingest.flush(session)


CONSUMER_GC_THRESHOLD = 50_000
"""Allocations between collections of the youngest generation in a consumer process (default 700):
about a hundred per response of a batch (CLOSELOOP_CONSUMER_MAX_RECORDS, 500 by default)."""


async def _warm_up() -> None:
    """Load the text dictionaries in a thread, then set the collector up for a busy consumer.

    What the service built since its startup freeze (the dictionaries' few thousand containers, the
    consumer's clients) is frozen too. A consumer's batch of 500 responses keeps tens of thousands of objects
    alive until its commit: with the default youngest-generation threshold (700 allocations) they are
    examined and promoted by collections that find nothing (the batch is freed by reference counting);
    a larger threshold lets the batch end first, and cycles are still collected (bench/RESULTS.md,
    scoring: 14–21 µs of CPU per response spent collecting at 700, 2–3 µs at 20,000 with batches of
    200; batches of 500 need 50,000)."""
    await asyncio.to_thread(warm_up)
    freeze_startup_objects()
    gc.set_threshold(CONSUMER_GC_THRESHOLD, *gc.get_threshold()[1:])


def create_app(settings: ScoringSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Return the scoring app; ``clock`` is what targets are evaluated against (tests move it)."""
    settings = settings or ScoringSettings.from_env()
    the_clock = clock or Clock()

    async def setup(runtime: ScoringRuntime) -> Scoring:
        evaluator = TargetEvaluator(
            runtime.db,
            runtime.outbox,
            the_clock,
            every_s=settings.target_interval_s,
            default_scale=settings.default_nps_scale,
        )
        warming = asyncio.create_task(_warm_up()) if settings.runs("consumer") else None
        cache = None
        if settings.serves_api and settings.answer_cache_days:
            cache = answer_cache.AnswerCache(
                runtime.db, days=settings.answer_cache_days, max_answers=settings.answer_cache_max_answers
            )
            answer_cache.install(cache)
        return Scoring(clock=the_clock, evaluator=evaluator, warming=warming, answers=cache)

    async def teardown(runtime: ScoringRuntime) -> None:
        if runtime.deps.warming is not None:
            await runtime.deps.warming  # a thread cannot be cancelled; it ends within seconds
        if runtime.deps.answers is not None:
            await runtime.deps.answers.close()
            if answer_cache.active() is runtime.deps.answers:
                answer_cache.install(None)

    def workers(runtime: ScoringRuntime) -> Sequence[Worker]:
        return [runtime.deps.evaluator]

    app = build_app(
        ServiceSpec(
            name="scoring",
            title="closeloop scoring",
            description="Scores every answer of completed responses (NPS, NLS, CSAT, CES, star ratings), keeps "
            "rollups by day and segment, the NPS × NLS loyalty matrix, response rates, the themes and "
            "sentiment of comments and experience targets; raises the detractor event for negative "
            "feedback and serves the metrics API with n and 95% intervals on every number.",
            routers=routers,
            outbox_table=outbox,
            inbox_table=inbox,
            revoked_keys=revoked_keys,
            topics=[RESPONSES, CUSTOMER_EVENTS, SURVEYS, INVITATIONS, WORKSPACES, FOLLOWUPS],
            setup=setup,
            teardown=teardown,
            consumes=consumes,
            consumer_batch=True,
            consumer_flush=flush,
            workers=workers,
            openapi_tags=[
                {
                    "name": "metrics",
                    "description": "NPS, NLS, CSAT, CES and ratings with n and 95% intervals",
                },
                {"name": "segments", "description": "The loyalty matrix and response rates"},
                {"name": "themes", "description": "What customers wrote: themes, sentiment, suggestions"},
                {"name": "targets", "description": "Experience targets and notification rules"},
                {"name": "settings", "description": "How answers are classified; surveys scoring knows"},
            ],
        ),
        settings,
    )
    # Every response (the API docs pages too) forbids framing and sniffing and sends no Referer.
    app.add_middleware(SecurityHeaders)
    return app
