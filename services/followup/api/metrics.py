"""The closed-loop report: cases, SLAs, reopen and won-back rates by group, and the recovery funnel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.followup import queries
from services.followup.deps import RuntimeDep
from services.followup.domain import metrics as maths
from services.followup.schemas.metrics import FunnelOut, FunnelStepOut, MetricsGroup, MetricsOut
from shared.access import Permission
from shared.errors import InvalidInput
from shared.guard import GuardedRoute, requires
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["metrics"])
By = queries.Grouping
Since = Annotated[datetime | None, Query(description="Cases opened (responses scored) from this moment on.")]
Until = Annotated[datetime | None, Query(description="... and before this moment.")]


def _pct(part: int, whole: int) -> float | None:
    value = maths.rate(part, whole)
    return None if value is None else round(100 * value, 1)


def _hours(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since and until and since >= until:
        raise InvalidInput("since must be before until.", field="until")
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone (e.g. 2026-11-01T00:00:00Z).", field=name)


@router.get(
    "/v1/metrics",
    summary="Closed-loop metrics by team, agent, root cause, segment or period, with the won-back rate and its 95% interval",
    description="Counts cases opened in the range. **Within SLA** = contacted (resolved) by the due time / cases "
    "contacted (resolved) or already past their due time. **Won-back rate** = closed with a non-negative retention "
    "answer / retention answers, with a 95% Wilson interval. **Reopen rate** = reopened / ever resolved. **Climbed** = "
    "detractors with a case who answered a later survey as promoters. `by=segment&dimension=country` slices by a "
    "response dimension; `by=period&period=week` by when cases opened.",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def get_metrics(
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    by: By = "none",
    dimension: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")] = None,
    period: Literal["day", "week", "month"] = "month",
    since: Since = None,
    until: Until = None,
) -> MetricsOut:
    _check_range(since, until)
    rows = await queries.metrics(
        session,
        workspace_id=workspace,
        by=by,
        dimension=dimension,
        period=period,
        since=since,
        until=until,
        now=runtime.deps.clock.now(),
    )
    groups = [
        MetricsGroup(
            key=str(r["key"]),
            opened=r["opened"],
            contacted=r["contacted"],
            contacted_within_sla_pct=_pct(r["contacted_in_sla"], r["contact_measured"]),
            contacted_within_business_sla_pct=_pct(
                r["contacted_in_business_sla"], r["contact_business_measured"]
            ),
            resolved=r["resolved"],
            resolved_within_sla_pct=_pct(r["resolved_in_sla"], r["resolution_measured"]),
            resolved_within_business_sla_pct=_pct(
                r["resolved_in_business_sla"], r["resolution_business_measured"]
            ),
            median_hours_to_first_contact=_hours(r["median_first_contact_h"]),
            p90_hours_to_first_contact=_hours(r["p90_first_contact_h"]),
            median_hours_to_resolution=_hours(r["median_resolution_h"]),
            p90_hours_to_resolution=_hours(r["p90_resolution_h"]),
            reopen_rate=maths.rate(r["reopened"], r["ever_resolved"]),
            retention_requested=r["retention_requested"],
            retention_not_possible=r["retention_not_possible"],
            retention_answered=r["retention_answered"],
            won_back=r["won_back"],
            won_back_rate=maths.rate(r["won_back"], r["retention_answered"]),
            won_back_interval=maths.wilson(r["won_back"], r["retention_answered"]),
            detractors=r["detractors"],
            climbed=r["climbed"],
            climbed_rate=maths.rate(r["climbed"], r["detractors"]),
        )
        for r in rows
    ]
    return MetricsOut(by=by, since=since, until=until, groups=groups)


@router.get(
    "/v1/metrics/funnel",
    summary="The recovery funnel: negative answers → consented → case opened → contacted → resolved → retention answered → won back",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def get_funnel(
    workspace: WorkspaceDep, session: SessionDep, since: Since = None, until: Until = None
) -> FunnelOut:
    _check_range(since, until)
    counts = await queries.funnel_counts(session, workspace_id=workspace, since=since, until=until)
    steps = [FunnelStepOut(**vars(s)) for s in maths.funnel(counts)]
    return FunnelOut(since=since, until=until, steps=steps)
