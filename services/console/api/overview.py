"""The overview: NPS, NLS, CSAT and CES with n, interval and a change marked only when significant; the
trend with its band; the loyalty matrix; the invitation funnel; themes; targets; the newest comments —
every figure as scoring answers it for the same filters (kept a few seconds: ``FiguresCache``).
``/overview/live`` streams a ``changed`` event (server-sent events) when the figures' counts move, drops
the workspace's kept figures, and ``/console.js`` reloads the figures then."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.api.forms import errors_of, page_router, reading
from services.console.apis import Caller, ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.domain import charts
from services.console.domain.periods import PERIODS, Period, period_of
from services.console.live import live_stream
from services.console.views import need, page, query
from shared.access import Permission

router = page_router(
    "a browser page: the session cookie; the page checks the role and calls the services as the person"
)

METRICS = ("nps", "nls", "csat", "ces")
NAMES = {"nps": "NPS", "nls": "NLS", "csat": "CSAT", "ces": "CES"}
CELLS = {
    "pure": "Pure loyalty",
    "false": "False loyalty",
    "trapped": "Trapped loyalty",
    "disloyal": "Disloyalty",
    "undecided": "Undecided",
}
Filters = Annotated[list[str], Query(alias="filter", max_length=10)]
Text = Annotated[str | None, Query(max_length=64)]
PeriodKey = Annotated[str | None, Query(max_length=10)]
Day = Annotated[str | None, Query(max_length=10)]
RATE_DIMENSIONS = {"channel", "kind", "language"}


@dataclass(frozen=True)
class Scope:
    """What a page of figures is about: the period, one survey or all, and the dimension filters (blank
    ones dropped)."""

    period: Period
    survey_id: str | None
    filters: list[str]

    @classmethod
    def of(cls, period: Period, survey_id: str | None, filters: list[str]) -> Scope:
        return cls(period, survey_id, [f for f in filters if f.strip()])

    def params(self) -> dict[str, Any]:
        """Return the report parameters scoring takes for this scope."""
        return {
            "from": self.period.since.isoformat(),
            "to": self.period.until.isoformat(),
            "survey_id": self.survey_id,
            "filter": self.filters,
        }

    def kept(self, **first: Any) -> dict[str, Any]:
        """Return the query of a link that shows this scope again, after the page's own ``first``."""
        keep = {**first, "period": self.period.key, "survey_id": self.survey_id, "filter": self.filters}
        if self.period.key == "custom":
            keep |= {"from": self.period.since.isoformat(), "to": self.period.until.isoformat()}
        return keep


def page_scope(
    runtime: RuntimeDep,
    period: PeriodKey = None,
    since: Annotated[Day, Query(alias="from")] = None,
    until: Annotated[Day, Query(alias="to")] = None,
    survey_id: Text = None,
    filters: Filters = [],  # noqa: B006 - FastAPI copies defaults
) -> Scope:
    """Return the scope a page's query asks for: the period picker's choice, its custom days put right."""
    today = runtime.deps.clock.now().date()
    return Scope.of(period_of(period, today=today, since=since, until=until), survey_id, filters)


ScopeDep = Annotated[Scope, Depends(page_scope)]


async def overview_data(caller: Caller, scope: Scope, trend_metric: str) -> dict[str, Any]:
    """Every figure of the overview, each as scoring answers it (or the error it gave)."""
    params, interval = scope.params(), scope.period.interval
    rate_filters = [f for f in scope.filters if f.split("!=")[0].split("=")[0] in RATE_DIMENSIONS]
    return await caller.gather(
        metrics=caller.get("scoring", "/v1/metrics", compare="true", metric=list(METRICS), **params),
        trend=caller.get("scoring", "/v1/metrics/trend", metric=trend_metric, interval=interval, **params),
        matrix=caller.get("scoring", "/v1/metrics/matrix", **params),
        rate=caller.get("scoring", "/v1/metrics/response-rate", **{**params, "filter": rate_filters}),
        themes=caller.get("scoring", "/v1/themes", **params),
        targets=caller.get("scoring", "/v1/targets"),
        comments=caller.get("scoring", "/v1/comments", limit=8, **params),
        surveys=caller.get("scoring", "/v1/surveys"),
    )


def trend_points(trend: dict[str, Any], period: Period) -> list[charts.Point]:
    """Every bucket of the period in order, with a gap where nobody answered."""
    found = {date.fromisoformat(p["period_start"]): p for p in trend.get("points", [])}
    step = period.interval
    start = period.since
    if step == "week":
        start -= timedelta(days=start.weekday())
    elif step == "month":
        start = start.replace(day=1)
    points, day = [], start
    while day <= period.until:
        p = found.get(day)
        points.append(
            charts.Point(
                day,
                p["score"] if p else None,
                p.get("low") if p else None,
                p.get("high") if p else None,
                p["n"] if p else 0,
            )
        )
        if step == "day":
            day += timedelta(days=1)
        elif step == "week":
            day += timedelta(days=7)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return points


@router.get("/overview", summary="The overview of the programme", response_class=HTMLResponse)
async def overview(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    scope: ScopeDep,
    trend: Annotated[str, Query(max_length=4)] = "nps",
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.METRICS_READ)
    chosen = scope.period
    trend_metric = trend if trend in METRICS else "nps"
    data, as_of = await runtime.deps.figures.get_or_load(
        workspace_id=person.workspace_id,
        role=person.role.value,
        scope={**scope.params(), "trend": trend_metric, "interval": chosen.interval},
        load=lambda: overview_data(caller, scope, trend_metric),
        now=runtime.deps.clock.now,
    )
    lo, hi = charts.score_range(trend_metric)
    trend_svg = None
    if not isinstance(data["trend"], ServiceError):
        trend_svg = charts.trend(
            trend_points(data["trend"], chosen),
            title=f"{NAMES[trend_metric]} per {chosen.interval} with its 95% interval",
            lo=lo,
            hi=hi,
        )
    rate = data["rate"]
    funnel_svg = None
    steps: list[tuple[str, int]] = []
    if not isinstance(rate, ServiceError):
        steps = [
            (k.capitalize(), rate[k])
            for k in ("invited", "sent", "delivered", "opened", "clicked", "responded")
        ]
        funnel_svg = charts.funnel(steps, title="Invitation funnel, as a share of invitations")
    keep = scope.kept()
    return page(
        "overview.html",
        request,
        person,
        data=data,
        errors=errors_of(data),
        period=chosen,
        periods=PERIODS,
        survey_id=scope.survey_id or "",
        filters=scope.filters,
        names=NAMES,
        now=as_of.strftime("%H:%M:%S"),
        cells=CELLS,
        trend_metric=trend_metric,
        trend_svg=trend_svg,
        funnel_svg=funnel_svg,
        steps=steps,
        live_url="/overview/live"
        + query(
            **keep, mark=None if isinstance(data["metrics"], ServiceError) else fingerprint(data["metrics"])
        ),
        this_url="/overview" + query(**keep, trend=trend_metric if trend_metric != "nps" else None),
        trend_links={m: "/overview" + query(**keep, trend=m if m != "nps" else None) for m in METRICS},
    )


def fingerprint(metrics: dict[str, Any]) -> str:
    return json.dumps([(m["metric"], m["n"]) for m in metrics.get("metrics", [])])


@router.get(
    "/overview/live",
    summary="Server-sent events: `changed` when the overview's figures move",
    response_class=Response,
)
async def overview_live(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    scope: ScopeDep,
    mark: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    person = need(signed_in, Permission.METRICS_READ)

    def changed() -> None:
        runtime.deps.figures.changed(person.workspace_id)

    return live_stream(
        request,
        runtime,
        person,
        mark,
        service="scoring",
        path="/v1/metrics",
        params={"metric": list(METRICS), **scope.params()},
        fingerprint=fingerprint,
        on_change=changed,
    )
