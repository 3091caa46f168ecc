"""Metrics: NPS of a survey, every metric with groups and comparisons, trends."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query

from services.scoring import domain
from services.scoring.api.params import (
    IntervalParam,
    ReportDep,
    ScaleParam,
    Since,
    SurveyId,
    Until,
    check_period,
)
from services.scoring.deps import RuntimeDep
from services.scoring.queries import reports
from services.scoring.schemas import MetricsOut, NpsOut, TrendOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep
from shared.vocabulary import ScoreMetric

router = APIRouter(route_class=GuardedRoute, tags=["metrics"])


@router.get(
    "/v1/surveys/{survey_id}/nps",
    summary="NPS of a survey with n, counts and the 95% interval",
    description="Every NPS question of the survey counts (`question_id` picks one). A survey scoring does not "
    "know (never published nor answered) is a 404; a known survey without answers has n = 0 and a null NPS.",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def survey_nps(
    survey_id: SurveyId,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    scale: ScaleParam = None,
    since: Since = None,
    until: Until = None,
    question_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> NpsOut:
    check_period(since, until)
    request = reports.Request(
        workspace_id=workspace,
        survey_id=survey_id,
        question_id=question_id,
        since=since,
        until=until,
        scale=scale,
    )
    report = await reports.metrics_report(
        session,
        request,
        metrics_wanted=["nps"],
        default_scale=runtime.settings.default_nps_scale,
        today=runtime.deps.clock.now().date(),
    )
    [s] = report.metrics
    return NpsOut(
        survey_id=survey_id,
        scale=report.scale,
        n=s.n,
        promoters=s.positive or 0,
        passives=s.neutral or 0,
        detractors=s.negative or 0,
        nps=s.score,
        margin_of_error=s.margin_of_error,
        low=s.low,
        high=s.high,
    )


@router.get(
    "/v1/metrics",
    response_model_by_alias=True,
    summary="Every metric (NPS, NLS, CSAT, CES, stars) for one survey or the workspace, by segment",
    description="Workspace-wide figures respect each survey's own NPS scale and leave retention surveys out "
    "unless `kind` asks for them. `group_by` gives the same figures per value of a dimension (groups with "
    "fewer answers than the workspace's minimum n show `too_few_answers` and no score); `filter` picks a "
    "segment; `compare=true` adds the previous period's figure and a two-sided test of the difference.",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def metrics(
    request: ReportDep,
    session: SessionDep,
    runtime: RuntimeDep,
    metric: Annotated[
        list[ScoreMetric] | None, Query(description="Repeat for several; all by default")
    ] = None,
) -> MetricsOut:
    wanted = list(dict.fromkeys(metric)) if metric else list(domain.METRICS)
    return await reports.metrics_report(
        session,
        request,
        metrics_wanted=wanted,
        default_scale=runtime.settings.default_nps_scale,
        today=runtime.deps.clock.now().date(),
    )


@router.get(
    "/v1/metrics/trend",
    summary="One metric over time, per day, week or month (per group with `group_by`)",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def metric_trend(
    request: ReportDep,
    session: SessionDep,
    runtime: RuntimeDep,
    metric: ScoreMetric = "nps",
    interval: IntervalParam = "week",
) -> TrendOut:
    return await reports.trend_report(
        session,
        replace(request, interval=interval),
        metric=metric,
        default_scale=runtime.settings.default_nps_scale,
    )
