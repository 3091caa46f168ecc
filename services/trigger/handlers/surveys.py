"""The surveys trigger knows: kept from responses' events (``SurveyPublished``, ``SurveyClosed``,
``SurveyReopened``), so that a rule may only name a survey of its own workspace that exists, and a
closed survey is recorded as the decision instead of being sent.

How an event is recorded (the newer state wins, an event redelivered late changes nothing) is shared
with followup: ``shared.known_surveys``.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches
from services.trigger.models import Survey, surveys_table
from shared.errors import InvalidInput
from shared.events import SurveyClosed, SurveyPublished, SurveyReopened
from shared.known_surveys import survey_upsert

log = logging.getLogger(__name__)

_SURVEY_ID_MAX = 36
"""As long as a rule's ``survey_id`` may be (responses' ids are UUIDs)."""


async def on_survey_event(
    session: AsyncSession, caches: Caches, event: SurveyPublished | SurveyClosed | SurveyReopened
) -> None:
    """Record what responses says about one of its surveys: published (a new version), closed, reopened."""
    if len(event.survey_id) > _SURVEY_ID_MAX:
        log.warning("survey id %r is longer than a rule's survey_id may be; ignored", event.survey_id[:80])
        return
    await session.execute(survey_upsert(surveys_table, event))
    caches.workspaces.invalidate(event.workspace_id)


async def workspace_surveys(session: AsyncSession, *, workspace_id: str) -> dict[str, bool]:
    """Return the workspace's known surveys: survey id → open."""
    rows = await session.execute(
        select(surveys_table.c.survey_id, surveys_table.c.open).where(
            surveys_table.c.workspace_id == workspace_id
        )
    )
    return {survey_id: is_open for survey_id, is_open in rows}


async def require_survey(
    session: AsyncSession, *, workspace_id: str, survey_id: str, field: str = "survey_id"
) -> Survey:
    """Return the workspace's survey ``survey_id``, or raise ``InvalidInput`` (422) saying how to fix it."""
    survey = await session.get(Survey, (workspace_id, survey_id))
    if survey is None:
        raise InvalidInput(
            f"No survey {survey_id!r} in this workspace. Create the survey in responses first "
            "(POST /v1/surveys there) and use the id it returns. A survey created a moment ago may take "
            f"a second to be known here: retry, or wait until GET /v1/surveys/{survey_id} on this "
            "service finds it.",
            field=field,
        )
    return survey
