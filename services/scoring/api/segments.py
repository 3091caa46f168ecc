"""Segments: the NPS × NLS loyalty matrix and response rates."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query

from services.scoring.api.params import ReportDep
from services.scoring.deps import RuntimeDep
from services.scoring.queries import reports
from services.scoring.schemas import LoyaltyMatrixOut, ResponseRateOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep
from shared.vocabulary import Interval

router = APIRouter(route_class=GuardedRoute, tags=["segments"])


@router.get(
    "/v1/metrics/matrix",
    response_model_by_alias=True,
    summary="The NPS × NLS loyalty matrix: pure, false, trapped loyalty, disloyalty (and undecided)",
    description="Respondents who answered an NPS and an NLS question in one response. High = promoter, low = "
    "detractor on each question's scale (the survey's NPS scale); a passive on either is *undecided*, so "
    "the four named cells keep the seed's definition. Shares come with Wilson 95% intervals; `interval` "
    "gives the matrix over time, `group_by` per segment.",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def loyalty_matrix(
    request: ReportDep,
    session: SessionDep,
    runtime: RuntimeDep,
    interval: Annotated[Interval | None, Query(description="Also per day, week or month")] = None,
) -> LoyaltyMatrixOut:
    return await reports.matrix_report(
        session, replace(request, interval=interval), default_scale=runtime.settings.default_nps_scale
    )


@router.get(
    "/v1/metrics/response-rate",
    response_model_by_alias=True,
    summary="Response rate (responses / delivered invitations) per survey, channel, kind or language",
    description="Counted from dispatch's invitation events; the period is the day an invitation was sent. "
    "Invitations carry no contact attributes, so `group_by` and `filter` take survey, channel, kind and "
    "language only.",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def response_rate(request: ReportDep, session: SessionDep, runtime: RuntimeDep) -> ResponseRateOut:
    return await reports.response_rate_report(
        session, request, default_scale=runtime.settings.default_nps_scale
    )
