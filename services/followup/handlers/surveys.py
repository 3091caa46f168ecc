"""The surveys followup knows: kept from responses' events (``SurveyPublished``, ``SurveyClosed``,
``SurveyReopened``; ``shared.known_surveys``), so that the retention survey a workspace sets is one of
its own that exists and is open, and a case resolved after that survey was closed asks nobody."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.models import surveys
from shared.errors import InvalidInput
from shared.events import SurveyClosed, SurveyPublished, SurveyReopened
from shared.known_surveys import survey_upsert


async def on_survey_event(
    session: AsyncSession, event: SurveyPublished | SurveyClosed | SurveyReopened
) -> None:
    """Record what responses says about one of its surveys: published (a new version), closed, reopened."""
    await session.execute(survey_upsert(surveys, event))


async def is_open(session: AsyncSession, *, workspace_id: str, survey_id: str) -> bool | None:
    """Return whether the workspace's survey is open; None when followup has not heard of it."""
    return await session.scalar(
        select(surveys.c.open).where(surveys.c.workspace_id == workspace_id, surveys.c.survey_id == survey_id)
    )


async def require_open(
    session: AsyncSession, *, workspace_id: str, survey_id: str, field: str = "retention_survey_id"
) -> None:
    """Return when ``survey_id`` is an open survey of the workspace; raise ``InvalidInput`` (422) saying
    how to fix it otherwise."""
    state = await is_open(session, workspace_id=workspace_id, survey_id=survey_id)
    if state is None:
        raise InvalidInput(
            f"No survey {survey_id!r} in this workspace. Create the retention survey in responses first "
            "(POST /v1/surveys there) and use the id it returns. A survey created a moment ago may take a "
            "second to be known here: retry.",
            field=field,
        )
    if not state:
        raise InvalidInput(
            f"Survey {survey_id!r} is closed: nobody can answer it. Reopen it in responses "
            f"(POST /v1/surveys/{survey_id}/reopen there) or choose an open survey.",
            field=field,
        )
