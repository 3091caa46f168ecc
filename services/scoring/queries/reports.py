"""Reports as the API shows them: scopes built from a request, figures with n, intervals, groups
(too few answers hidden) and the change against the previous period."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import domain
from services.scoring.handlers import surveys
from services.scoring.queries import funnel, matrix, metrics, themes
from services.scoring.queries.scope import GroupKey, Scope, tallies
from services.scoring.schemas import (
    CellOut,
    ChangeOut,
    GroupOut,
    LoyaltyMatrixOut,
    MatrixGroup,
    MatrixPoint,
    MetricOut,
    MetricsOut,
    RateGroup,
    ResponseRateOut,
    SeriesOut,
    ThemeOut,
    ThemesOut,
    TrendOut,
    TrendPoint,
)
from shared.errors import InvalidInput
from shared.vocabulary import LOYALTY_CELLS, Interval, NpsScale

EVERYDAY_KINDS = ("transactional", "relationship")
"""What workspace-wide figures count unless ``kind`` says otherwise (retention surveys measure
follow-ups, not the customer experience)."""


@dataclass(frozen=True)
class Request:
    """A report's parameters, as parsed from the query string."""

    workspace_id: str
    survey_id: str | None = None
    question_id: str | None = None
    kinds: tuple[str, ...] | None = None
    since: date | None = None
    until: date | None = None
    segment: domain.Segment = field(default_factory=domain.Segment)
    group_by: str | None = None
    compare: bool = False
    scale: NpsScale | None = None
    interval: Interval | None = None


def r2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def scope_for(session: AsyncSession, request: Request, *, default_scale: NpsScale) -> Scope:
    """Return the scope of a request; ``NotFound`` for a survey scoring does not know."""
    if request.survey_id is not None:
        await surveys.known_survey(session, workspace_id=request.workspace_id, survey_id=request.survey_id)
    known = await surveys.surveys(
        session, workspace_id=request.workspace_id, default_scale=default_scale, survey_id=request.survey_id
    )
    kinds = request.kinds or (None if request.survey_id else EVERYDAY_KINDS)
    return Scope(
        known,
        kinds,
        request.since,
        request.until,
        request.segment,
        request.group_by,
        request.interval,
        request.scale,
        request.workspace_id,
    )


async def _scope_and_min_n(
    session: AsyncSession, request: Request, *, default_scale: NpsScale
) -> tuple[Scope, int]:
    """Return the request's scope and the workspace's minimum n (below it a group shows no figure)."""
    scope = await scope_for(session, request, default_scale=default_scale)
    return scope, (await surveys.workspace_settings(session, workspace_id=request.workspace_id)).min_n


def _echo(request: Request) -> dict[str, Any]:
    """Return what a report repeats of its request: the survey, the period and the segment."""
    return {
        "survey_id": request.survey_id,
        "since": request.since,
        "until": request.until,
        "filters": list(request.segment.as_filters()),
    }


def previous_period(request: Request, *, today: date) -> tuple[date, date]:
    """Return the period of the same length just before the request's."""
    if request.since is None:
        raise InvalidInput("compare=previous needs 'from' (the period's first day).", field="compare")
    until = request.until or today
    length = (until - request.since).days + 1
    return request.since - timedelta(days=length), request.since - timedelta(days=1)


def metric_out(
    metric: str,
    counts: domain.Tally,
    *,
    question_id: str | None,
    hide_below: int = 0,
    change: ChangeOut | None = None,
) -> MetricOut:
    """Return one figure; below ``hide_below`` answers only n is shown (a group with too few answers)."""
    s = domain.summarise(metric, counts)
    if 0 < s.n < hide_below:
        return MetricOut(
            metric=metric,
            question_id=question_id,
            n=s.n,
            too_few_answers=True,
            positive=None,
            neutral=None,
            negative=None,
            score=None,
            mean=None,
            margin_of_error=None,
        )
    return MetricOut(
        metric=metric,
        question_id=question_id,
        n=s.n,
        positive=s.positive,
        neutral=s.neutral,
        negative=s.negative,
        score=r2(s.score),
        mean=r2(s.mean),
        margin_of_error=r2(s.margin_of_error),
        low=r2(s.low),
        high=r2(s.high),
        mean_low=r2(s.mean_low),
        mean_high=r2(s.mean_high),
        change=change,
    )


def change_out(
    metric: str, current: domain.Tally, previous: domain.Tally, period: tuple[date, date], min_n: int
) -> ChangeOut:
    c = domain.metric_change(metric, current, previous, min_n=min_n)
    return ChangeOut(
        previous_from=period[0],
        previous_to=period[1],
        previous_n=previous.n,
        previous_score=r2(domain.summarise(metric, previous).score),
        difference=r2(c.difference),
        p_value=None if c.p_value is None else round(c.p_value, 4),
        significant=c.significant,
    )


def _sorted_groups(keys: set[GroupKey]) -> list[GroupKey]:
    return sorted(keys, key=lambda k: (k is None, str(k)))


def _label(value: GroupKey) -> str | None:
    """Return a group's value as the API shows it (null: answers without the dimension)."""
    return None if value is None else str(value)


async def metrics_report(
    session: AsyncSession,
    request: Request,
    *,
    metrics_wanted: Sequence[str],
    default_scale: NpsScale,
    today: date,
) -> MetricsOut:
    """Return every wanted metric's figure in the scope, per group when asked, with its change."""
    scope, min_n = await _scope_and_min_n(session, request, default_scale=default_scale)
    period = previous_period(request, today=today) if request.compare else None
    before = scope.shifted(*period) if period else None
    totals: list[MetricOut] = []
    by_group: dict[GroupKey, list[MetricOut]] = {}
    counted = await metrics.histograms_of(
        session, scope, metrics=metrics_wanted, question_id=request.question_id
    )
    counted_before = (
        await metrics.histograms_of(session, before, metrics=metrics_wanted, question_id=request.question_id)
        if before
        else {}
    )
    for metric in metrics_wanted:
        now = tallies(counted[metric], metric, scope)
        then = tallies(counted_before[metric], metric, before) if before else {}
        total = sum(now.values(), domain.Tally())
        total_before = sum(then.values(), domain.Tally())
        change = change_out(metric, total, total_before, period, min_n) if period else None
        totals.append(metric_out(metric, total, question_id=request.question_id, change=change))
        if request.group_by is None:
            continue
        for (value, _), counts in now.items():
            previous = then.get((value, None), domain.Tally())
            group_change = change_out(metric, counts, previous, period, min_n) if period else None
            by_group.setdefault(value, []).append(
                metric_out(
                    metric, counts, question_id=request.question_id, hide_below=min_n, change=group_change
                )
            )
    groups = [GroupOut(value=_label(v), metrics=by_group[v]) for v in _sorted_groups(set(by_group))]
    return MetricsOut(
        **_echo(request),
        scale=request.scale or _shown_scale(scope, default_scale),
        kind=list(scope.kinds) if scope.kinds else None,
        group_by=request.group_by,
        min_n=min_n,
        metrics=totals,
        groups=groups,
    )


def _shown_scale(scope: Scope, default: NpsScale) -> NpsScale:
    scales = {s.scale for s in scope.surveys.values()}
    return scales.pop() if len(scales) == 1 else default


async def trend_report(
    session: AsyncSession, request: Request, *, metric: str, default_scale: NpsScale
) -> TrendOut:
    """Return one metric per period, oldest first (per group when asked)."""
    scope, min_n = await _scope_and_min_n(session, request, default_scale=default_scale)
    found = tallies(
        await metrics.histograms(session, scope, metric=metric, question_id=request.question_id),
        metric,
        scope,
    )
    per_period: dict[date, domain.Tally] = {}
    series: dict[GroupKey, list[TrendPoint]] = {}
    for (value, start), counts in sorted(found.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        assert start is not None
        per_period[start] = per_period.get(start, domain.Tally()) + counts
        if request.group_by is not None:
            out = metric_out(metric, counts, question_id=request.question_id, hide_below=min_n)
            series.setdefault(value, []).append(TrendPoint(period_start=start, **out.model_dump()))
    points = [
        TrendPoint(
            period_start=start, **metric_out(metric, counts, question_id=request.question_id).model_dump()
        )
        for start, counts in sorted(per_period.items())
    ]
    return TrendOut(
        survey_id=request.survey_id,
        metric=metric,
        question_id=request.question_id,
        interval=request.interval or "week",
        scale=request.scale or _shown_scale(scope, default_scale),
        filters=list(request.segment.as_filters()),
        group_by=request.group_by,
        points=points,
        series=[SeriesOut(value=_label(v), points=series[v]) for v in _sorted_groups(set(series))],
    )


def _cells(counts: dict[str, int], *, hide_below: int = 0) -> tuple[int, bool, dict[Any, CellOut]]:
    n = sum(counts.values())
    hidden = 0 < n < hide_below
    cells = {}
    for cell in LOYALTY_CELLS:
        k = counts.get(cell, 0)
        interval = None if hidden else domain.wilson_interval(k, n)
        cells[cell] = CellOut(
            count=None if hidden else k,
            share=None if hidden else r2(domain.share_percent(k, n)),
            low=r2(interval[0]) if interval else None,
            high=r2(interval[1]) if interval else None,
        )
    return n, hidden, cells


async def matrix_report(
    session: AsyncSession, request: Request, *, default_scale: NpsScale
) -> LoyaltyMatrixOut:
    """Return the NPS × NLS matrix: counts and shares with Wilson intervals, per group and period."""
    scope, min_n = await _scope_and_min_n(session, request, default_scale=default_scale)
    found = await matrix.cells(session, scope)
    total: dict[str, int] = {}
    by_group: dict[GroupKey, dict[str, int]] = {}
    by_period: dict[date, dict[str, int]] = {}
    for (value, start), counts in found.items():
        for cell, k in counts.items():
            total[cell] = total.get(cell, 0) + k
            if request.group_by is not None:
                by_group.setdefault(value, {})[cell] = by_group.get(value, {}).get(cell, 0) + k
            if start is not None:
                by_period.setdefault(start, {})[cell] = by_period.get(start, {}).get(cell, 0) + k
    n, _, cells = _cells(total)
    groups = []
    for value in _sorted_groups(set(by_group)):
        gn, hidden, gcells = _cells(by_group[value], hide_below=min_n)
        groups.append(MatrixGroup(value=_label(value), n=gn, too_few_answers=hidden, cells=gcells))
    points = []
    for start in sorted(by_period):
        pn, _, pcells = _cells(by_period[start])
        points.append(MatrixPoint(period_start=start, n=pn, cells=pcells))
    return LoyaltyMatrixOut(
        **_echo(request),
        scale=request.scale or _shown_scale(scope, default_scale),
        group_by=request.group_by,
        interval=request.interval,
        n=n,
        cells=cells,
        groups=groups,
        points=points,
    )


def _rate(f: funnel.Funnel, *, hide_below: int = 0) -> dict[str, object]:
    hidden = 0 < f.delivered < hide_below
    interval = None if hidden else domain.wilson_interval(f.responded, f.delivered)
    return {
        **f.__dict__,
        "too_few_answers": hidden,
        "response_rate": None if hidden else r2(domain.share_percent(f.responded, f.delivered)),
        "low": r2(interval[0]) if interval else None,
        "high": r2(interval[1]) if interval else None,
    }


async def response_rate_report(
    session: AsyncSession, request: Request, *, default_scale: NpsScale
) -> ResponseRateOut:
    """Return responses / delivered invitations, per group when asked."""
    scope, min_n = await _scope_and_min_n(session, request, default_scale=default_scale)
    found = await funnel.funnels(session, scope)
    total = funnel.Funnel(
        *[sum(getattr(f, name) for f in found.values()) for name in funnel.Funnel.__dataclass_fields__]
    )
    groups = (
        [
            RateGroup(value=_label(v), **_rate(found[(v, None)], hide_below=min_n))
            for v in _sorted_groups({v for v, _ in found})
        ]
        if request.group_by
        else []
    )
    return ResponseRateOut(
        **_echo(request),
        group_by=request.group_by,
        groups=groups,
        **_rate(total),
    )


async def themes_report(session: AsyncSession, request: Request, *, default_scale: NpsScale) -> ThemesOut:
    """Return each theme's mentions, negative sentiment and the NPS of those who mention it."""
    scope, min_n = await _scope_and_min_n(session, request, default_scale=default_scale)
    total, counts = await themes.theme_counts(session, scope, workspace_id=request.workspace_id)
    out = []
    for t in counts:
        hidden = 0 < t.mentions < min_n
        negative = None if hidden else domain.wilson_interval(t.negative, t.scored)
        nps = domain.summarise("nps", t.nps)
        show_nps = not hidden and t.nps.n >= min_n
        out.append(
            ThemeOut(
                theme=t.theme,
                mentions=t.mentions,
                share=r2(domain.share_percent(t.mentions, total)),
                too_few_answers=hidden,
                negative_share=None if hidden else r2(domain.share_percent(t.negative, t.scored)),
                negative_low=r2(negative[0]) if negative else None,
                negative_high=r2(negative[1]) if negative else None,
                nps_n=t.nps.n,
                nps=r2(nps.score) if show_nps else None,
                nps_low=r2(nps.low) if show_nps else None,
                nps_high=r2(nps.high) if show_nps else None,
            )
        )
    return ThemesOut(
        **_echo(request),
        comments=total,
        themes=out,
    )
