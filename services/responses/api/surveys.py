"""Routes for survey definitions and their versions (workspace API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.deps import ResponsesRuntime, RuntimeDep
from services.responses.handlers import surveys, workspace_settings
from services.responses.models import Survey, SurveyVersion
from services.responses.schemas import LintWarningOut, SurveyCreate, SurveyOut, SurveyVersionOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["surveys"])


async def _survey_out(
    session: AsyncSession,
    runtime: ResponsesRuntime,
    workspace: str,
    survey: Survey,
    version: SurveyVersion | None = None,
) -> SurveyOut:
    """The survey as its ``version`` (the current one when not given) reads, with its checklist."""
    if version is None:
        version = await surveys.get_version(session, survey=survey)
    _, warnings = await workspace_settings.lint_definition(
        session, workspace_id=workspace, raw=version.definition, max_seconds=runtime.settings.lint_max_seconds
    )
    d = version.definition
    return SurveyOut(
        id=survey.id,
        name=survey.name,
        version=version.version,
        title=d.get("title"),
        default_locale=d.get("default_locale", "en"),
        questions=d["questions"],
        thank_you_text=d.get("thank_you_text"),
        outcomes=d.get("outcomes", []),
        branding=d.get("branding"),
        reward_pool_id=d.get("reward_pool_id"),
        closed=survey.closed_at is not None,
        created_at=survey.created_at,
        updated_at=survey.updated_at,
        warnings=[LintWarningOut(**w.__dict__) for w in warnings],
    )


@router.post(
    "/v1/surveys",
    status_code=status.HTTP_201_CREATED,
    summary="Define a survey: questions, logic, languages, thank-you pages; returns checklist warnings",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def create_survey(
    body: SurveyCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey, version = await surveys.create_survey(
        session,
        runtime.outbox,
        workspace_id=workspace,
        body=body,
        max_logo_bytes=runtime.settings.max_logo_bytes,
    )
    return await _survey_out(session, runtime, workspace, survey, version)


@router.get(
    "/v1/surveys",
    summary="List the workspace's surveys (current versions)",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def list_surveys(workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep) -> list[SurveyOut]:
    rows = await surveys.list_surveys(session, workspace_id=workspace)
    return [await _survey_out(session, runtime, workspace, s, v) for s, v in rows]


@router.get(
    "/v1/surveys/{survey_id}",
    summary="Read a survey's current version",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def get_survey(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey = await surveys.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    return await _survey_out(session, runtime, workspace, survey)


@router.put(
    "/v1/surveys/{survey_id}",
    summary="Edit a survey: stores a new version; responses keep the version they answered",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def update_survey(
    survey_id: str, body: SurveyCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey, version = await surveys.update_survey(
        session,
        runtime.outbox,
        workspace_id=workspace,
        survey_id=survey_id,
        body=body,
        max_logo_bytes=runtime.settings.max_logo_bytes,
    )
    return await _survey_out(session, runtime, workspace, survey, version)


@router.get(
    "/v1/surveys/{survey_id}/versions",
    summary="Every version of a survey",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def list_versions(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep
) -> list[SurveyVersionOut]:
    survey = await surveys.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    return [SurveyVersionOut.model_validate(v) for v in await surveys.list_versions(session, survey=survey)]


@router.get(
    "/v1/surveys/{survey_id}/versions/{version}",
    summary="One version of a survey",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def get_version(
    survey_id: str, version: Annotated[int, Path(ge=1)], workspace: WorkspaceDep, session: SessionDep
) -> SurveyVersionOut:
    survey = await surveys.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    return SurveyVersionOut.model_validate(await surveys.get_version(session, survey=survey, version=version))


@router.post(
    "/v1/surveys/{survey_id}/close",
    summary="Close a survey: its links show a friendly 'closed' page; completed responses stay",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def close_survey(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey = await surveys.set_closed(
        session, runtime.outbox, workspace_id=workspace, survey_id=survey_id, closed=True
    )
    return await _survey_out(session, runtime, workspace, survey)


@router.post(
    "/v1/surveys/{survey_id}/reopen",
    summary="Take responses again",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def reopen_survey(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey = await surveys.set_closed(
        session, runtime.outbox, workspace_id=workspace, survey_id=survey_id, closed=False
    )
    return await _survey_out(session, runtime, workspace, survey)
