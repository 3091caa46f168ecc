"""What dispatch knows of surveys: for each published version (``SurveyPublished``), its languages
and first question — what an invitation email needs to embed that question in its own scale and words."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import embeds
from services.dispatch.models import Survey
from shared.events import SurveyPublished


@dataclass(frozen=True)
class SurveyInfo:
    """The latest version dispatch heard of: its languages and its first question (as stored)."""

    version: int
    languages: tuple[str, ...]
    first_question: dict[str, Any] | None


async def survey_published(session: AsyncSession, *, event: SurveyPublished) -> None:
    """Keep what emails need of the new version (a redelivered event changes nothing)."""
    await session.execute(
        insert(Survey)
        .values(
            workspace_id=event.workspace_id,
            survey_id=event.survey_id,
            version=event.survey_version,
            languages=list(event.languages),
            first_question=embeds.first_question([q.model_dump(mode="json") for q in event.questions]),
            published_at=event.published_at,
        )
        .on_conflict_do_nothing()
    )


async def latest_surveys(
    session: AsyncSession, *, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], SurveyInfo]:
    """Return the latest known version of each (workspace, survey id); unknown surveys are left out."""
    wanted = set(keys)
    if not wanted:
        return {}
    latest = (
        select(Survey.workspace_id, Survey.survey_id, func.max(Survey.version))
        .where(tuple_(Survey.workspace_id, Survey.survey_id).in_(wanted))
        .group_by(Survey.workspace_id, Survey.survey_id)
    )
    rows = (
        await session.scalars(
            select(Survey).where(tuple_(Survey.workspace_id, Survey.survey_id, Survey.version).in_(latest))
        )
    ).all()
    return {
        (r.workspace_id, r.survey_id): SurveyInfo(r.version, tuple(r.languages or ()), r.first_question)
        for r in rows
    }
