"""Explore (any metric by any dimension: a table and bars with their intervals, "too few answers" for small
groups, CSV) and Responses (comments with filters and search; one response with its answers, sentiment,
themes and its case). Figures are scoring's for the same filters; answers are responses'; cases followup's."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.api.forms import Id, page_router, reading, refused_page
from services.console.api.overview import METRICS, NAMES, Day, Filters, PeriodKey, Scope, ScopeDep, Text
from services.console.apis import ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.domain import charts
from services.console.domain.periods import PERIODS, period_of
from services.console.views import can, page, query
from services.console.web import SECURITY_HEADERS
from shared.access import Permission

router = page_router(
    "a browser page: the session cookie; the page checks the role and calls the services as the person"
)
DIMENSIONS = (
    "survey",
    "channel",
    "kind",
    "language",
    "country",
    "team",
    "agent",
    "product",
    "journey_stage",
    "plan",
)


@router.get("/explore", summary="A metric by a dimension", response_class=HTMLResponse)
async def explore(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    scope: ScopeDep,
    metric: Annotated[str, Query(max_length=8)] = "nps",
    group_by: Annotated[str, Query(max_length=40, pattern=r"^[A-Za-z0-9_.\-]*$")] = "channel",
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.METRICS_READ)
    metric = metric if metric in (*METRICS, "rating") else "nps"
    group_by = group_by or "channel"
    data = await caller.gather(
        report=caller.get("scoring", "/v1/metrics", metric=metric, group_by=group_by, **scope.params()),
        surveys=caller.get("scoring", "/v1/surveys"),
    )
    report = data["report"]
    rows: list[dict[str, Any]] = []
    svg = None
    if isinstance(report, dict):
        rows = [{"value": g["value"], **g["metrics"][0]} for g in report["groups"] if g["metrics"]]
        lo, hi = charts.score_range(metric)
        svg = charts.bars(
            [
                charts.Bar(
                    r["value"] or "(none)",
                    None if r["too_few_answers"] else r["score"],
                    r["low"],
                    r["high"],
                    note="too few answers" if r["too_few_answers"] else "no answers",
                )
                for r in rows
            ],
            title=f"{NAMES.get(metric, metric)} by {group_by} with 95% intervals",
            lo=lo,
            hi=hi,
        )
    keep = scope.kept(metric=metric, group_by=group_by)
    return page(
        "explore.html",
        request,
        person,
        data=data,
        report=report,
        rows=rows,
        svg=svg,
        metric=metric,
        metrics={**NAMES, "rating": "Stars"},
        group_by=group_by,
        dimensions=DIMENSIONS,
        period=scope.period,
        periods=PERIODS,
        survey_id=scope.survey_id or "",
        filters=scope.filters,
        csv_url="/explore.csv" + query(**keep) if can(person, Permission.METRICS_EXPORT) else None,
    )


@router.get("/explore.csv", summary="The explored figures as CSV", response_class=Response)
async def explore_csv(
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    scope: ScopeDep,
    metric: Annotated[str, Query(max_length=8)] = "nps",
    group_by: Annotated[str, Query(max_length=40, pattern=r"^[A-Za-z0-9_.\-]*$")] = "channel",
) -> Response:
    _, caller = reading(runtime, signed_in, Permission.METRICS_EXPORT)
    chosen = scope.period
    report = await caller.get(
        "scoring", "/v1/metrics", metric=metric, group_by=group_by or "channel", **scope.params()
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([group_by, "metric", "n", "score", "low", "high", "too_few_answers", "from", "to"])
    for g in report["groups"]:
        for m in g["metrics"]:
            writer.writerow(
                [
                    g["value"] or "",
                    m["metric"],
                    m["n"],
                    _cell(m["score"]),
                    _cell(m["low"]),
                    _cell(m["high"]),
                    str(m["too_few_answers"]).lower(),
                    chosen.since,
                    chosen.until,
                ]
            )
    name = f"closeloop-{metric}-by-{group_by}-{chosen.since}-{chosen.until}.csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@router.get("/responses", summary="Responses: comments with filters and search", response_class=HTMLResponse)
async def responses(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    label: Annotated[str | None, Query(max_length=10)] = None,
    period: PeriodKey = None,
    since: Annotated[Day, Query(alias="from")] = None,
    until: Annotated[Day, Query(alias="to")] = None,
    survey_id: Text = None,
    filters: Filters = [],  # noqa: B006
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.RESPONSES_READ)
    chosen = period_of(period or "90d", today=runtime.deps.clock.now().date(), since=since, until=until)
    scope = Scope.of(chosen, survey_id, filters)
    label = label if label in ("positive", "neutral", "negative") else None
    calls: dict[str, Any] = {
        "comments": caller.get(
            "scoring", "/v1/comments", q=q, label=label, limit=50, offset=offset, **scope.params()
        ),
        "surveys": caller.get("scoring", "/v1/surveys"),
    }
    if survey_id and not q and not label:
        # One survey chosen: also every response to it, with or without a comment (responses' own list).
        calls["all"] = caller.get("responses", f"/v1/surveys/{survey_id}/responses", limit=50)
    data = await caller.gather(**calls)
    keep = scope.kept(q=q, label=label)
    found = data["comments"]["comments"] if isinstance(data["comments"], dict) else []
    return page(
        "responses.html",
        request,
        person,
        data=data,
        q=q or "",
        label=label or "",
        period=chosen,
        periods=PERIODS,
        survey_id=survey_id or "",
        filters=scope.filters,
        found=found,
        every=data["all"] if isinstance(data.get("all"), list) else None,
        more="/responses" + query(**keep, offset=offset + 50) if len(found) == 50 else None,
    )


@router.get("/responses/{response_id}", summary="One response", response_class=HTMLResponse)
async def one_response(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    response_id: Id,
    survey_id: Text = None,
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.RESPONSES_READ)
    calls: dict[str, Any] = {
        "response": caller.get("responses", f"/v1/responses/{response_id}"),
        "comments": caller.get(
            "scoring", "/v1/comments", response_id=response_id, survey_id=survey_id, limit=20
        ),
    }
    if can(person, Permission.CASES_READ):
        calls["decisions"] = caller.get("followup", "/v1/decisions", response_id=response_id)
    data = await caller.gather(**calls)
    decisions = data.get("decisions")
    case_ids = (
        [d["case_id"] for d in decisions["items"] if d.get("case_id")] if isinstance(decisions, dict) else []
    )
    comments = data["comments"]["comments"] if isinstance(data["comments"], dict) else []
    if isinstance(data["response"], ServiceError) and not comments:
        return refused_page(request, person, "Response not found", data["response"], status=404)
    return page(
        "response.html",
        request,
        person,
        response_id=response_id,
        response=data["response"] if isinstance(data["response"], dict) else None,
        missing=data["response"].detail if isinstance(data["response"], ServiceError) else None,
        comments=comments,
        case_id=case_ids[0] if case_ids else None,
    )
