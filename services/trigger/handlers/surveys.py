"""The surveys trigger knows: kept from responses' events (``SurveyPublished``, ``SurveyClosed``,
``SurveyReopened``), so that a rule may only name a survey of its own workspace that exists, and a
closed survey is recorded as the decision instead of being sent.

Events of one survey arrive in order (they share a partition key), but a redelivered or replayed one
may come late: each carries the time responses opened or closed the survey, and an event older than
the state already kept changes nothing (nor does an older version's name).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches
from services.trigger.models import Survey, surveys_table
from shared.errors import InvalidInput
from shared.events import SurveyClosed, SurveyPublished, SurveyReopened

log = logging.getLogger(__name__)

_SURVEY_ID_MAX = 36
"""As long as a rule's ``survey_id`` may be (responses' ids are UUIDs)."""


def _upsert(
    *, workspace_id: str, survey_id: str, version: int, name: str | None, open_: bool, at: datetime
) -> Any:
    """The statement that records one survey event (the newer state and the newest version win)."""
    stmt = insert(surveys_table).values(
        workspace_id=workspace_id,
        survey_id=survey_id,
        version=version,
        name=name[:200] if name is not None else None,
        open=open_,
        state_at=at,
    )
    kept, new = surveys_table.c, stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[kept.workspace_id, kept.survey_id],
        set_={
            "version": func.greatest(kept.version, new.version),
            "name": case((new.name.is_not(None) & (new.version >= kept.version), new.name), else_=kept.name),
            "open": case((new.state_at >= kept.state_at, new.open), else_=kept.open),
            "state_at": func.greatest(kept.state_at, new.state_at),
            "updated_at": func.now(),
        },
    )


async def on_survey_event(
    session: AsyncSession, caches: Caches, event: SurveyPublished | SurveyClosed | SurveyReopened
) -> None:
    """Record what responses says about one of its surveys: published (a new version), closed, reopened."""
    if len(event.survey_id) > _SURVEY_ID_MAX:
        log.warning("survey id %r is longer than a rule's survey_id may be; ignored", event.survey_id[:80])
        return
    if isinstance(event, SurveyPublished):
        stmt = _upsert(
            workspace_id=event.workspace_id,
            survey_id=event.survey_id,
            version=event.survey_version,
            name=event.name,
            open_=event.open,
            at=event.published_at,
        )
    elif isinstance(event, SurveyClosed):
        stmt = _upsert(
            workspace_id=event.workspace_id,
            survey_id=event.survey_id,
            version=0,
            name=None,
            open_=False,
            at=event.closed_at,
        )
    else:
        stmt = _upsert(
            workspace_id=event.workspace_id,
            survey_id=event.survey_id,
            version=0,
            name=None,
            open_=True,
            at=event.reopened_at,
        )
    await session.execute(stmt)
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
