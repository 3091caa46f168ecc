"""Settings: surveys scoring knows and their NPS scale; the workspace's minimum n and thresholds."""

from __future__ import annotations

from fastapi import APIRouter

from services.scoring.api.params import SurveyId
from services.scoring.deps import RuntimeDep
from services.scoring.domain import NegativeRules
from services.scoring.handlers import surveys
from services.scoring.schemas import (
    NegativeIn,
    SurveyOut,
    SurveyScoringIn,
    SurveyScoringOut,
    SurveysOut,
    WorkspaceSettingsIn,
    WorkspaceSettingsOut,
)
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["settings"])


@router.get(
    "/v1/surveys",
    summary="The surveys scoring knows (published or answered)",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def list_surveys(workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep) -> SurveysOut:
    known = await surveys.list_surveys(
        session, workspace_id=workspace, default_scale=runtime.settings.default_nps_scale
    )
    return SurveysOut(surveys=[from_row(SurveyOut, s, nps_scale=scale) for s, scale in known])


@router.get(
    "/v1/surveys/{survey_id}/scoring",
    summary="How a survey's answers are classified",
    description="A survey scoring does not know (never published nor answered) is a 404.",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def get_survey_scoring(
    survey_id: SurveyId, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyScoringOut:
    await surveys.known_survey(session, workspace_id=workspace, survey_id=survey_id)
    own = await surveys.survey_scoring(session, workspace_id=workspace, survey_id=survey_id)
    scale = own.nps_scale if own else runtime.settings.default_nps_scale
    return SurveyScoringOut(survey_id=survey_id, nps_scale=scale, configured=own is not None)


@router.put(
    "/v1/surveys/{survey_id}/scoring",
    summary="Choose a survey's NPS scale (standard: promoters 9–10; european: 8–10)",
    description="A survey scoring does not know (never published nor answered) is a 404.",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def put_survey_scoring(
    survey_id: SurveyId, body: SurveyScoringIn, workspace: WorkspaceDep, session: SessionDep
) -> SurveyScoringOut:
    await surveys.set_survey_scoring(
        session, workspace_id=workspace, survey_id=survey_id, nps_scale=body.nps_scale
    )
    return SurveyScoringOut(survey_id=survey_id, nps_scale=body.nps_scale, configured=True)


def _settings_out(s: surveys.Settings) -> WorkspaceSettingsOut:
    return WorkspaceSettingsOut(min_n=s.min_n, negative=NegativeIn(**s.negative.__dict__))


@router.get(
    "/v1/settings",
    summary="The workspace's minimum n and negative-feedback thresholds",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def get_settings(workspace: WorkspaceDep, session: SessionDep) -> WorkspaceSettingsOut:
    return _settings_out(await surveys.workspace_settings(session, workspace_id=workspace))


@router.put(
    "/v1/settings",
    summary="Set the workspace's minimum n and negative-feedback thresholds",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_settings(
    body: WorkspaceSettingsIn, workspace: WorkspaceDep, session: SessionDep
) -> WorkspaceSettingsOut:
    saved = await surveys.put_workspace_settings(
        session,
        workspace_id=workspace,
        min_n=body.min_n,
        negative=NegativeRules(**body.negative.model_dump()),
    )
    return _settings_out(saved)
