"""Routes of the scoring service: parse, call a handler, return."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.scoring import domain, handlers
from services.scoring.deps import RuntimeDep
from services.scoring.schemas import (
    MetricOut,
    MetricsOut,
    NpsOut,
    SurveyScoringIn,
    SurveyScoringOut,
    TrendOut,
    TrendPoint,
)
from shared.errors import InvalidInput
from shared.service import SessionDep, WorkspaceDep
from shared.vocabulary import Interval, Metric, NpsScale

router = APIRouter()

SurveyId = Annotated[str, Path(min_length=1, max_length=64, description="The survey's id")]
ScaleParam = Annotated[NpsScale | None, Query(description="Override the survey's NPS scale for this report")]
Since = Annotated[date | None, Query(alias="from", description="First UTC day included, e.g. 2026-11-01")]
Until = Annotated[date | None, Query(alias="to", description="Last UTC day included")]
SurveyFilter = Annotated[
    str | None, Query(min_length=1, max_length=64, description="Only this survey; all surveys when absent")
]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _metric_out(s: domain.Summary) -> MetricOut:
    return MetricOut(
        metric=s.metric,
        n=s.n,
        positive=s.positive,
        neutral=s.neutral,
        negative=s.negative,
        score=_round(s.score),
        mean=_round(s.mean),
        margin_of_error=_round(s.margin_of_error),
    )


def _check_period(since: date | None, until: date | None) -> None:
    if since and until and since > until:
        raise InvalidInput(f"'from' ({since}) is after 'to' ({until}).", field="from")


async def _scale(
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: str,
    survey_id: str | None,
    requested: NpsScale | None,
) -> NpsScale:
    return requested or await handlers.nps_scale_for(
        session, workspace_id=workspace, survey_id=survey_id, default=runtime.settings.default_nps_scale
    )


@router.get(
    "/v1/surveys/{survey_id}/nps",
    tags=["metrics"],
    summary="NPS of a survey with n, counts and the 95% margin of error",
    description="A survey without responses (or unknown) has n = 0 and a null NPS.",
)
async def survey_nps(
    survey_id: SurveyId,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    scale: ScaleParam = None,
    since: Since = None,
    until: Until = None,
) -> NpsOut:
    _check_period(since, until)
    used = await _scale(session, runtime, workspace, survey_id, scale)
    [s] = await handlers.summaries(
        session,
        workspace_id=workspace,
        survey_id=survey_id,
        metrics=["nps"],
        scale=used,
        since=since,
        until=until,
    )
    return NpsOut(
        survey_id=survey_id,
        scale=used,
        n=s.n,
        promoters=s.positive,
        passives=s.neutral,
        detractors=s.negative,
        nps=_round(s.score),
        margin_of_error=_round(s.margin_of_error),
    )


@router.get(
    "/v1/metrics",
    tags=["metrics"],
    response_model_by_alias=True,
    summary="Counts and scores per metric (NPS, NLS, CSAT, CES), for one survey or all",
)
async def metrics(
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    survey_id: SurveyFilter = None,
    metric: Annotated[list[Metric] | None, Query(description="Repeat for several; all by default")] = None,
    scale: ScaleParam = None,
    since: Since = None,
    until: Until = None,
) -> MetricsOut:
    _check_period(since, until)
    used = await _scale(session, runtime, workspace, survey_id, scale)
    wanted = list(dict.fromkeys(metric)) if metric else list(domain.METRICS)
    summaries = await handlers.summaries(
        session,
        workspace_id=workspace,
        survey_id=survey_id,
        metrics=wanted,
        scale=used,
        since=since,
        until=until,
    )
    return MetricsOut(
        survey_id=survey_id, since=since, until=until, scale=used, metrics=[_metric_out(s) for s in summaries]
    )


@router.get("/v1/metrics/trend", tags=["metrics"], summary="One metric over time, per day, week or month")
async def metric_trend(
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    metric: Metric = "nps",
    interval: Interval = "week",
    survey_id: SurveyFilter = None,
    scale: ScaleParam = None,
    since: Since = None,
    until: Until = None,
) -> TrendOut:
    _check_period(since, until)
    used = await _scale(session, runtime, workspace, survey_id, scale)
    points = await handlers.trend(
        session,
        workspace_id=workspace,
        survey_id=survey_id,
        metric=metric,
        scale=used,
        interval=interval,
        since=since,
        until=until,
    )
    return TrendOut(
        survey_id=survey_id,
        metric=metric,
        interval=interval,
        scale=used,
        points=[TrendPoint(period_start=start, **_metric_out(s).model_dump()) for start, s in points],
    )


@router.get(
    "/v1/surveys/{survey_id}/scoring", tags=["settings"], summary="How a survey's answers are classified"
)
async def get_survey_scoring(
    survey_id: SurveyId, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyScoringOut:
    own = await handlers.survey_scoring(session, workspace_id=workspace, survey_id=survey_id)
    scale = own.nps_scale if own else runtime.settings.default_nps_scale
    return SurveyScoringOut(survey_id=survey_id, nps_scale=scale, configured=own is not None)  # type: ignore[arg-type]


@router.put(
    "/v1/surveys/{survey_id}/scoring",
    tags=["settings"],
    summary="Choose a survey's NPS scale (standard: promoters 9–10; european: 8–10)",
)
async def put_survey_scoring(
    survey_id: SurveyId, body: SurveyScoringIn, workspace: WorkspaceDep, session: SessionDep
) -> SurveyScoringOut:
    await handlers.set_survey_scoring(
        session, workspace_id=workspace, survey_id=survey_id, nps_scale=body.nps_scale
    )
    return SurveyScoringOut(survey_id=survey_id, nps_scale=body.nps_scale, configured=True)
