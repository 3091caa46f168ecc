"""Survey definitions: create and edit them (every edit is a new version), read their versions,
close and reopen them. Each of these changes publishes its lifecycle event through the outbox, in the
same transaction: ``SurveyPublished`` (created, new version), ``SurveyClosed``, ``SurveyReopened``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.domain.branding import check_branding
from services.responses.domain.definition import Definition, FieldError, check_survey
from services.responses.domain.publication import survey_published
from services.responses.handlers.errors import invalid
from services.responses.handlers.rewards import find_pool
from services.responses.models import Survey, SurveyVersion
from services.responses.schemas import SurveyCreate
from shared.errors import NotFound
from shared.events import SurveyClosed, SurveyPublished, SurveyReopened, is_uuid, new_id, utcnow
from shared.outbox import Outbox


async def _check_definition(
    session: AsyncSession, *, workspace_id: str, body: SurveyCreate, max_logo_bytes: int
) -> dict[str, Any]:
    """Return the definition to store, or raise ``InvalidInput`` naming each field at fault."""
    raw = body.model_dump(mode="json", exclude_none=True)
    definition = Definition.of(0, raw)
    errors = check_survey(
        definition.questions, default_locale=definition.default_locale, outcomes=definition.outcomes
    )
    if body.branding:
        errors += check_branding(
            body.branding.model_dump(exclude_none=True), max_logo_bytes=max_logo_bytes, at="branding."
        )
    if (
        body.reward_pool_id is not None
        and await find_pool(session, workspace_id=workspace_id, pool_id=body.reward_pool_id) is None
    ):
        errors.append(FieldError("reward_pool_id", f"no reward pool {body.reward_pool_id!r} here"))
    if errors:
        raise invalid("The survey definition is not valid", errors)
    return raw


def _published(survey: Survey, version: SurveyVersion) -> SurveyPublished:
    return survey_published(
        workspace_id=survey.workspace_id,
        survey_id=survey.id,
        name=survey.name,
        open_=survey.closed_at is None,
        version=version.version,
        definition=version.definition,
        published_at=version.created_at,
    )


async def create_survey(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    body: SurveyCreate,
    max_logo_bytes: int,
) -> tuple[Survey, SurveyVersion]:
    """Return the new survey and its version 1, or raise ``InvalidInput`` having stored nothing."""
    raw = await _check_definition(
        session, workspace_id=workspace_id, body=body, max_logo_bytes=max_logo_bytes
    )
    now = utcnow()
    survey = Survey(
        id=new_id(), workspace_id=workspace_id, name=body.name, version=1, created_at=now, updated_at=now
    )
    session.add(survey)
    await session.flush()
    version = SurveyVersion(
        survey_id=survey.id, version=1, workspace_id=workspace_id, definition=raw, created_at=now
    )
    session.add(version)
    await session.flush()
    await outbox.add(session, _published(survey, version))
    return survey, version


async def update_survey(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    survey_id: str,
    body: SurveyCreate,
    max_logo_bytes: int,
) -> tuple[Survey, SurveyVersion]:
    """Return the survey with its new current version; responses keep the version they answered."""
    survey = await get_survey(session, workspace_id=workspace_id, survey_id=survey_id, lock=True)
    raw = await _check_definition(
        session, workspace_id=workspace_id, body=body, max_logo_bytes=max_logo_bytes
    )
    now = utcnow()
    survey.version += 1
    survey.name = body.name
    survey.updated_at = now
    version = SurveyVersion(
        survey_id=survey.id, version=survey.version, workspace_id=workspace_id, definition=raw, created_at=now
    )
    session.add(version)
    await session.flush()
    await outbox.add(session, _published(survey, version))
    return survey, version


async def get_survey(
    session: AsyncSession, *, workspace_id: str, survey_id: str, lock: bool = False
) -> Survey:
    """Return the workspace's survey or raise ``NotFound``."""
    query = select(Survey).where(Survey.workspace_id == workspace_id, Survey.id == survey_id)
    survey = await session.scalar(query.with_for_update() if lock else query) if is_uuid(survey_id) else None
    if survey is None:
        raise NotFound(f"No survey {survey_id!r} in this workspace.", field="survey_id")
    return survey


async def get_version(session: AsyncSession, *, survey: Survey, version: int | None = None) -> SurveyVersion:
    """Return one version of the survey (default: the current one) or raise ``NotFound``."""
    row = await session.get(SurveyVersion, (survey.id, version or survey.version))
    if row is None:
        raise NotFound(f"Survey {survey.id!r} has no version {version}.", field="version")
    return row


async def list_versions(session: AsyncSession, *, survey: Survey) -> list[SurveyVersion]:
    """Return every version of the survey, oldest first."""
    rows = await session.scalars(
        select(SurveyVersion).where(SurveyVersion.survey_id == survey.id).order_by(SurveyVersion.version)
    )
    return list(rows)


async def list_surveys(session: AsyncSession, *, workspace_id: str) -> list[tuple[Survey, SurveyVersion]]:
    """Return the workspace's surveys with their current versions, oldest first."""
    rows = await session.execute(
        select(Survey, SurveyVersion)
        .join(
            SurveyVersion, (SurveyVersion.survey_id == Survey.id) & (SurveyVersion.version == Survey.version)
        )
        .where(Survey.workspace_id == workspace_id)
        .order_by(Survey.created_at, Survey.id)
    )
    return [(s, v) for s, v in rows.all()]


async def set_closed(
    session: AsyncSession, outbox: Outbox, *, workspace_id: str, survey_id: str, closed: bool
) -> Survey:
    """Return the survey, closed to new answers or open again; a change publishes ``SurveyClosed`` or
    ``SurveyReopened`` (closing a closed survey, or reopening an open one, changes and publishes nothing)."""
    survey = await get_survey(session, workspace_id=workspace_id, survey_id=survey_id, lock=True)
    if (survey.closed_at is not None) == closed:
        return survey
    now = utcnow()
    survey.closed_at = now if closed else None
    survey.updated_at = now
    await session.flush()
    base = {"workspace_id": workspace_id, "survey_id": survey.id}
    await outbox.add(
        session, SurveyClosed(**base, closed_at=now) if closed else SurveyReopened(**base, reopened_at=now)
    )
    return survey
