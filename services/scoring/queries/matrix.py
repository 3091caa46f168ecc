"""The NPS × NLS loyalty matrix of a scope: counts per cell, per group and period."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain import classify, loyalty_cell
from services.scoring.models import LOYALTY_COLUMNS, Answer, DailyLoyalty
from services.scoring.queries.metrics import answers_group, day_of, label, rollup_group
from services.scoring.queries.scope import (
    GroupKey,
    Scope,
    combine,
    day_conditions,
    keys_of,
    period_of,
    segment_conditions,
)
from shared.vocabulary import LoyaltyCell

Cells = dict[tuple[GroupKey, date | None], Counter[LoyaltyCell]]


async def cells(session: AsyncSession, scope: Scope) -> Cells:
    """Return the respondents per loyalty cell (those who answered an NPS and an NLS question)."""
    if not scope.surveys:
        return {}
    if scope.unsegmented:
        return await _from_rollup(session, scope)
    return await _from_answers(session, scope)


async def _from_rollup(session: AsyncSession, scope: Scope) -> Cells:
    t = DailyLoyalty
    keys = [*rollup_group(scope, t), *period_of(t.day, scope.interval)]
    conditions = [t.survey_key.in_(list(scope.surveys)), *day_conditions(t.day, scope)]
    if scope.kinds is not None:
        conditions.append(t.kind.in_(scope.kinds))
    scales = scope.by_scale(t.survey_key)
    rows = await session.execute(
        select(*keys, *scales, *(func.sum(getattr(t, c)).label(c) for c in LOYALTY_COLUMNS))
        .where(combine(conditions))
        .group_by(*keys, *scales)
    )
    out: Cells = defaultdict(Counter)
    for row in rows:
        value, start = keys_of(row)
        scale = scope.scale_of_row(row)
        bucket = out[(label(scope, value), day_of(start))]
        for column in LOYALTY_COLUMNS:
            on_scale, cell = column.split("_", 1)
            count = row._mapping[column]
            if on_scale == scale and count:
                bucket[cell] += int(count)  # type: ignore[index]
    return dict(out)


async def _from_answers(session: AsyncSession, scope: Scope) -> Cells:
    a = Answer
    keys = [*answers_group(scope), *period_of(a.day, scope.interval)]
    conditions = [
        a.survey_key.in_(list(scope.surveys)),
        a.metric == "nps",
        a.paired.is_not(None),
        *day_conditions(a.day, scope),
        *segment_conditions(scope.segment),
    ]
    if scope.kinds is not None:
        conditions.append(a.kind.in_(scope.kinds))
    scales = scope.by_scale(a.survey_key)
    query = select(*keys, *scales, a.score, a.paired, func.count().label("answers")).where(
        combine(conditions)
    )
    rows = await session.execute(query.group_by(*keys, *scales, a.score, a.paired))
    out: Cells = defaultdict(Counter)
    for row in rows:
        value, start = keys_of(row)
        scale = scope.scale_of_row(row)
        cell = loyalty_cell(
            classify("nps", row.score, nps_scale=scale), classify("nls", row.paired, nps_scale=scale)
        )
        out[(label(scope, value), day_of(start))][cell] += int(row.answers)
    return dict(out)
