"""Which surveys scoring knows, how each is classified, and the workspace's own settings."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine, func, select, tuple_
from sqlalchemy import event as orm_events
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from services.scoring.domain import NegativeRules
from services.scoring.models import Survey, SurveyScoring, WorkspaceSettings, table_of
from shared.db import unnest_insert, unnest_params
from shared.errors import NotFound
from shared.events import SurveyClosed, SurveyPublished, SurveyReopened
from shared.vocabulary import NpsScale

DEFAULT_MIN_N = 5


@dataclass(frozen=True)
class SurveyInfo:
    key: int
    survey_id: str
    scale: NpsScale


@dataclass(frozen=True)
class Settings:
    """A workspace's reporting settings, defaults filled in."""

    min_n: int = DEFAULT_MIN_N
    negative: NegativeRules = field(default_factory=NegativeRules)
    themes_configured: bool = False


def memo(session: AsyncSession, name: str) -> dict[Any, Any]:
    """Return a cache that lives as long as the unit of work (a consumer's batch: lookups happen once
    per workspace or survey and batch, never across transactions, so nothing goes stale)."""
    return cast(dict[Any, Any], session.info.setdefault(f"scoring.{name}", {}))


async def survey_keys(
    session: AsyncSession, surveys: dict[tuple[str, str], bool]
) -> dict[tuple[str, str], int]:
    """Return the keys of (workspace, survey) pairs with one statement, adding new surveys (``True``:
    the survey has a scored answer now)."""
    if not surveys:
        return {}
    rows = await session.execute(
        _survey_keys(), unnest_params(("workspace_id", "survey_id", "answered"), _sorted_rows(surveys))
    )
    return {(ws, sid): key for ws, sid, key in rows}


async def unanswered_keys(
    session: AsyncSession, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Return the keys of (workspace, survey) pairs, adding new surveys as not answered: the keys this
    process saw committed, the others with one statement (``survey_keys``), remembered once the
    transaction commits. A survey keeps its key and its row for good, so what is remembered stays true;
    and for a known survey the statement would change nothing. (A consumer's batch of invitation events
    then needs no statement for its surveys: the write and row lock each batch took before.)"""
    bind = session.get_bind()
    committed = _COMMITTED_KEYS.setdefault(bind if isinstance(bind, Engine) else bind.engine, {})
    found: dict[tuple[str, str], int] = {}
    missing: dict[tuple[str, str], bool] = {}
    for pair in pairs:
        key = committed.get(pair)
        if key is None:
            missing[pair] = False
        else:
            found[pair] = key
    if missing:
        looked_up = await survey_keys(session, missing)
        found.update(looked_up)
        orm_events.listen(
            session.sync_session, "after_commit", lambda _: committed.update(looked_up), once=True
        )
    return found


_COMMITTED_KEYS: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str], int]] = weakref.WeakKeyDictionary()
"""Per database (its engine), the survey keys committed transactions of this process returned."""


def _sorted_rows(surveys: dict[tuple[str, str], bool]) -> list[tuple[str, str, bool]]:
    """In key order, as every consumer writes them: concurrent batches lock the rows in one order."""
    return [(ws, sid, answered) for (ws, sid), answered in sorted(surveys.items())]


@functools.cache
def _survey_keys() -> Executable:
    statement = unnest_insert(table_of(Survey), ("workspace_id", "survey_id", "answered"))
    return statement.on_conflict_do_update(
        index_elements=["workspace_id", "survey_id"],
        set_={"answered": Survey.answered.op("OR")(statement.excluded.answered)},
    ).returning(Survey.workspace_id, Survey.survey_id, Survey.key)


async def nps_scales(session: AsyncSession, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], NpsScale]:
    """Return the NPS scales the given (workspace, survey) pairs have of their own."""
    if not pairs:
        return {}
    rows = await session.execute(
        select(SurveyScoring.workspace_id, SurveyScoring.survey_id, SurveyScoring.nps_scale).where(
            tuple_(SurveyScoring.workspace_id, SurveyScoring.survey_id).in_(sorted(pairs))
        )
    )
    return {(ws, sid): scale for ws, sid, scale in rows}


async def survey_published(session: AsyncSession, *, event: SurveyPublished) -> None:
    """Know the survey (a newer version replaces an older one; an older one changes nothing)."""
    values = {
        "name": event.name,
        "version": event.survey_version,
        "open": event.open,
        "published": True,
        "questions": [q.model_dump(mode="json") for q in event.questions],
        "languages": list(event.languages),
        "updated_at": event.published_at,
    }
    statement = insert(Survey).values(workspace_id=event.workspace_id, survey_id=event.survey_id, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace_id", "survey_id"],
            set_=values,
            where=func.coalesce(Survey.version, 0) <= event.survey_version,
        )
    )


async def survey_opened(session: AsyncSession, *, event: SurveyClosed | SurveyReopened) -> None:
    """Record that a survey closed or reopened."""
    is_open = isinstance(event, SurveyReopened)
    at = event.reopened_at if isinstance(event, SurveyReopened) else event.closed_at
    statement = insert(Survey).values(
        workspace_id=event.workspace_id, survey_id=event.survey_id, open=is_open, updated_at=at
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace_id", "survey_id"],
            set_={"open": is_open, "updated_at": at},
            where=Survey.updated_at <= at,
        )
    )


def is_known(survey: Survey | None) -> bool:
    return survey is not None and (survey.published or survey.answered)


async def known_survey(session: AsyncSession, *, workspace_id: str, survey_id: str) -> Survey:
    """Return the survey, or raise ``NotFound`` (404) naming ``survey_id`` when scoring does not know it."""
    survey = await session.scalar(
        select(Survey).where(Survey.workspace_id == workspace_id, Survey.survey_id == survey_id)
    )
    if survey is None or not is_known(survey):
        raise NotFound(
            f"No survey {survey_id!r} in this workspace: scoring knows a survey once it is published or "
            "answered.",
            field="survey_id",
        )
    return survey


async def surveys(
    session: AsyncSession, *, workspace_id: str, default_scale: NpsScale, survey_id: str | None = None
) -> dict[int, SurveyInfo]:
    """Return the workspace's known surveys (or the one named) by key, with their NPS scales."""
    query = (
        select(Survey.key, Survey.survey_id, SurveyScoring.nps_scale)
        .outerjoin(
            SurveyScoring,
            (SurveyScoring.workspace_id == Survey.workspace_id)
            & (SurveyScoring.survey_id == Survey.survey_id),
        )
        .where(Survey.workspace_id == workspace_id, Survey.published | Survey.answered)
    )
    if survey_id is not None:
        query = query.where(Survey.survey_id == survey_id)
    rows = await session.execute(query)
    return {key: SurveyInfo(key, sid, scale or default_scale) for key, sid, scale in rows}


async def list_surveys(
    session: AsyncSession, *, workspace_id: str, default_scale: NpsScale
) -> list[tuple[Survey, NpsScale]]:
    """Return the workspace's known surveys by id, each with its NPS scale (``default_scale`` when it has
    none), read by one statement: a survey that becomes known meanwhile is in the list with its scale, or
    not at all."""
    rows = await session.execute(
        select(Survey, SurveyScoring.nps_scale)
        .outerjoin(
            SurveyScoring,
            (SurveyScoring.workspace_id == Survey.workspace_id)
            & (SurveyScoring.survey_id == Survey.survey_id),
        )
        .where(Survey.workspace_id == workspace_id, Survey.published | Survey.answered)
        .order_by(Survey.survey_id)
    )
    return [(survey, cast(NpsScale, scale or default_scale)) for survey, scale in rows.tuples()]


async def nps_scale_for(
    session: AsyncSession, *, workspace_id: str, survey_id: str | None, default: NpsScale
) -> NpsScale:
    """Return the survey's NPS scale, or ``default`` when it has none."""
    if survey_id is None:
        return default
    known = memo(session, "scales")
    if (workspace_id, survey_id) in known:
        return cast(NpsScale, known[(workspace_id, survey_id)] or default)
    scale = await session.scalar(
        select(SurveyScoring.nps_scale).where(
            SurveyScoring.workspace_id == workspace_id, SurveyScoring.survey_id == survey_id
        )
    )
    known[(workspace_id, survey_id)] = scale
    return scale or default


async def set_survey_scoring(
    session: AsyncSession, *, workspace_id: str, survey_id: str, nps_scale: NpsScale
) -> None:
    """Store the survey's NPS scale; ``NotFound`` for a survey scoring does not know."""
    await known_survey(session, workspace_id=workspace_id, survey_id=survey_id)
    memo(session, "scales").pop((workspace_id, survey_id), None)
    await session.execute(
        insert(SurveyScoring)
        .values(workspace_id=workspace_id, survey_id=survey_id, nps_scale=nps_scale)
        .on_conflict_do_update(
            index_elements=["workspace_id", "survey_id"],
            set_={"nps_scale": nps_scale, "updated_at": func.now()},
        )
    )


async def survey_scoring(session: AsyncSession, *, workspace_id: str, survey_id: str) -> SurveyScoring | None:
    """Return the survey's own scoring settings, or None when the default applies."""
    return await session.get(SurveyScoring, (workspace_id, survey_id))


async def workspace_settings(session: AsyncSession, *, workspace_id: str) -> Settings:
    """Return the workspace's settings, defaults where it has none."""
    known = memo(session, "settings")
    if workspace_id not in known:
        row = await session.get(WorkspaceSettings, workspace_id)
        known[workspace_id] = (
            Settings()
            if row is None
            else Settings(row.min_n, NegativeRules(**row.negative), row.themes_configured)
        )
    return cast(Settings, known[workspace_id])


async def put_workspace_settings(
    session: AsyncSession, *, workspace_id: str, min_n: int, negative: NegativeRules
) -> Settings:
    """Store the workspace's minimum n and negative-feedback thresholds; return the settings."""
    memo(session, "settings").pop(workspace_id, None)
    values = {"min_n": min_n, "negative": negative.__dict__, "updated_at": func.now()}
    await session.execute(
        insert(WorkspaceSettings)
        .values(workspace_id=workspace_id, **values)
        .on_conflict_do_update(index_elements=["workspace_id"], set_=values)
    )
    return await workspace_settings(session, workspace_id=workspace_id)


async def mark_themes_configured(session: AsyncSession, *, workspace_id: str) -> None:
    """Record that the workspace edits its own themes (the built-in list no longer applies)."""
    current = await workspace_settings(session, workspace_id=workspace_id)
    memo(session, "settings").pop(workspace_id, None)
    await session.execute(
        insert(WorkspaceSettings)
        .values(
            workspace_id=workspace_id,
            min_n=current.min_n,
            negative=current.negative.__dict__,
            themes_configured=True,
        )
        .on_conflict_do_update(index_elements=["workspace_id"], set_={"themes_configured": True})
    )
