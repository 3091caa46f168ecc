"""Score histograms of one metric for a scope: per group and period, per survey (for its scale)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.models import HISTOGRAM, Answer, DailyHistogram
from services.scoring.queries import answer_cache
from services.scoring.queries.scope import (
    Histograms,
    Scope,
    combine,
    day_conditions,
    dimension_column,
    keys_of,
    period_of,
    segment_conditions,
)


def day_of(value: Any) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def label(scope: Scope, value: Any) -> Any:
    """Groups by survey are labelled with the survey's id."""
    if scope.group_by == "survey" and value is not None:
        return scope.surveys[value].survey_id
    return value


def rollup_group(scope: Scope, table: Any) -> list[Any]:
    """Return the group column of a rollup query (rollups group by kind or survey only)."""
    if scope.group_by == "kind":
        return [table.kind.label("grp")]
    if scope.group_by == "survey":
        return [table.survey_key.label("grp")]
    return []


def answers_group(scope: Scope) -> list[Any]:
    """Return the group column of a query on ``answers``."""
    if scope.group_by == "survey":
        return [Answer.survey_key.label("grp")]
    if scope.group_by is not None:
        return [dimension_column(scope.group_by).label("grp")]
    return []


async def histograms(
    session: AsyncSession, scope: Scope, *, metric: str, question_id: str | None = None
) -> Histograms:
    """Return score counts of ``metric`` (one question, or every question of the metric) in ``scope``."""
    return (await histograms_of(session, scope, metrics=[metric], question_id=question_id))[metric]


async def histograms_of(
    session: AsyncSession, scope: Scope, *, metrics: Sequence[str], question_id: str | None = None
) -> dict[str, Histograms]:
    """Return ``histograms`` of each of ``metrics``: one query for them all where the rollups answer
    (each query costs a millisecond or two of Python, more than the rollups' rows)."""
    if not scope.surveys:
        return {metric: {} for metric in metrics}
    if scope.unsegmented:
        return await _from_rollup(session, scope, metrics=metrics, question_id=question_id)
    out: dict[str, Histograms] = {}
    cache = answer_cache.active()
    for metric in metrics:
        found = None
        if cache is not None and scope.workspace_id is not None:
            found = await cache.histograms(
                scope, workspace_id=scope.workspace_id, metric=metric, question_id=question_id
            )
        if found is None:
            found = await _from_answers(session, scope, metric=metric, question_id=question_id)
        out[metric] = found
    return out


async def _from_rollup(
    session: AsyncSession, scope: Scope, *, metrics: Sequence[str], question_id: str | None
) -> dict[str, Histograms]:
    t = DailyHistogram
    keys = [*rollup_group(scope, t), *period_of(t.day, scope.interval)]
    conditions = [t.survey_key.in_(list(scope.surveys)), t.metric.in_(metrics), *day_conditions(t.day, scope)]
    if question_id is not None:
        conditions.append(t.question_id == question_id)
    if scope.kinds is not None:
        conditions.append(t.kind.in_(scope.kinds))
    scales = scope.by_scale(t.survey_key)
    rows = await session.execute(
        select(t.metric, *keys, *scales, *(func.sum(getattr(t, c)).label(c) for c in HISTOGRAM))
        .where(combine(conditions))
        .group_by(t.metric, *keys, *scales)
    )
    out: dict[str, Histograms] = {metric: defaultdict(dict) for metric in metrics}
    for row in rows:
        value, start = keys_of(row)
        counts = row._mapping
        out[row.metric][(label(scope, value), day_of(start))][scope.scale_of_row(row)] = {
            score: int(counts[c]) for score, c in enumerate(HISTOGRAM) if counts[c]
        }
    return {metric: dict(found) for metric, found in out.items()}


async def _from_answers(
    session: AsyncSession, scope: Scope, *, metric: str, question_id: str | None
) -> Histograms:
    a = Answer
    keys = [*answers_group(scope), *period_of(a.day, scope.interval)]
    conditions = [
        a.survey_key.in_(list(scope.surveys)),
        a.metric == metric,
        *day_conditions(a.day, scope),
        *segment_conditions(scope.segment),
    ]
    if question_id is not None:
        conditions.append(a.question_id == question_id)
    if scope.kinds is not None:
        conditions.append(a.kind.in_(scope.kinds))
    scales = scope.by_scale(a.survey_key)
    query = select(*keys, *scales, a.score, func.count().label("answers")).where(combine(conditions))
    rows = await session.execute(query.group_by(*keys, *scales, a.score))
    out: Histograms = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        value, start = keys_of(row)
        out[(label(scope, value), day_of(start))][scope.scale_of_row(row)][row.score] = int(row.answers)
    return {k: dict(v) for k, v in out.items()}
