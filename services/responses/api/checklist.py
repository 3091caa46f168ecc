"""The checklist of a survey definition (double questions, leading wording, jargon, length), and the
workspace's glossary of internal terms it flags."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.deps import ResponsesRuntime, RuntimeDep
from services.responses.handlers import surveys, workspace_settings
from services.responses.schemas import GlossaryIn, LintOut, LintWarningOut, SurveyCreate
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["checklist"])
Lang = Annotated[Literal["en", "nl"], Query(description="Language of the explanations")]


async def _lint_out(
    session: AsyncSession, runtime: ResponsesRuntime, workspace: str, raw: dict[str, Any], lang: str
) -> LintOut:
    limit = runtime.settings.lint_max_seconds
    seconds, warnings = await workspace_settings.lint_definition(
        session, workspace_id=workspace, raw=raw, max_seconds=limit, lang=lang
    )
    return LintOut(
        estimated_seconds=seconds,
        max_seconds=limit,
        warnings=[LintWarningOut(**w.__dict__) for w in warnings],
    )


@router.post(
    "/v1/surveys/lint",
    summary="Check a survey definition without saving it: double questions, leading wording, jargon, …",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def lint_survey(
    body: SurveyCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, lang: Lang = "en"
) -> LintOut:
    raw = body.model_dump(mode="json", exclude_none=True)
    return await _lint_out(session, runtime, workspace, raw, lang)


@router.get(
    "/v1/surveys/{survey_id}/lint",
    summary="The checklist for a saved survey",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def lint_saved_survey(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, lang: Lang = "en"
) -> LintOut:
    survey = await surveys.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    version = await surveys.get_version(session, survey=survey)
    return await _lint_out(session, runtime, workspace, version.definition, lang)


@router.get(
    "/v1/glossary",
    summary="The workspace's internal terms the checklist flags",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def get_glossary(workspace: WorkspaceDep, session: SessionDep) -> GlossaryIn:
    return GlossaryIn(
        terms=[
            {"term": g.term, "hint": g.hint}
            for g in await workspace_settings.glossary_of(session, workspace_id=workspace)
        ]
    )


@router.put(
    "/v1/glossary",
    summary="Replace the workspace's glossary of internal terms",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def put_glossary(body: GlossaryIn, workspace: WorkspaceDep, session: SessionDep) -> GlossaryIn:
    return GlossaryIn(terms=await workspace_settings.put_glossary(session, workspace_id=workspace, body=body))
