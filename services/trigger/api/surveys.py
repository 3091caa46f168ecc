"""Routes for the surveys trigger knows: what a rule's ``survey_id`` may name, and whether it is open."""

from __future__ import annotations

from fastapi import APIRouter

from services.trigger import queries
from services.trigger.schemas.surveys import SurveyOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["surveys"])


@router.get(
    "/v1/surveys",
    summary="The workspace's surveys as trigger knows them (rules may name these), open or closed",
    description="Responses publishes a survey when it is created or versioned, closed or reopened; "
    "trigger knows it a moment later. A rule naming a survey missing here is refused (422).",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def list_surveys(workspace: WorkspaceDep, session: SessionDep) -> list[SurveyOut]:
    return [SurveyOut.model_validate(s) for s in await queries.list_surveys(session, workspace_id=workspace)]


@router.get(
    "/v1/surveys/{survey_id}",
    summary="One survey as trigger knows it; 404 until responses' event about it has arrived",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def get_survey(survey_id: str, workspace: WorkspaceDep, session: SessionDep) -> SurveyOut:
    return SurveyOut.model_validate(
        await queries.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    )
