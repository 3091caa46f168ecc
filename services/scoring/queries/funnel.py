"""Response rates: responses / delivered invitations, per survey, channel, kind or language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain import InvalidFilter
from services.scoring.models import Invitation
from services.scoring.queries.metrics import day_of, label
from services.scoring.queries.scope import GroupKey, Scope, combine, day_conditions, keys_of, period_of

FUNNEL_DIMENSIONS = ("survey", "channel", "kind", "language")
"""What invitations carry: response rates are sliced by these only."""


@dataclass(frozen=True)
class Funnel:
    invited: int
    sent: int
    delivered: int
    """Delivered, or sent and neither bounced nor failed (SMTP confirms no delivery), or answered."""
    opened: int
    clicked: int
    bounced: int
    responded: int


def check_scope(scope: Scope) -> None:
    """Refuse groups and filters on dimensions that invitations do not carry."""
    if scope.group_by is not None and scope.group_by not in FUNNEL_DIMENSIONS:
        raise InvalidFilter(
            f"response rates group by {', '.join(FUNNEL_DIMENSIONS)} only: invitations carry no "
            f"{scope.group_by!r}",
            field="group_by",
        )
    for c in scope.segment.conditions:
        if c.dimension not in FUNNEL_DIMENSIONS[1:]:
            raise InvalidFilter(
                f"response rates filter by channel, kind and language only: invitations carry no {c.dimension!r}"
            )


async def funnels(session: AsyncSession, scope: Scope) -> dict[tuple[GroupKey, date | None], Funnel]:
    """Return the funnel counts per group and period (the day an invitation was sent)."""
    check_scope(scope)
    if not scope.surveys:
        return {}
    t = Invitation
    group: list[Any] = []
    if scope.group_by == "survey":
        group = [t.survey_key.label("grp")]
    elif scope.group_by is not None:
        group = [getattr(t, scope.group_by).label("grp")]
    keys = [*group, *period_of(t.day, scope.interval)]
    conditions = [t.survey_key.in_(list(scope.surveys)), *day_conditions(t.day, scope)]
    if scope.kinds is not None:
        conditions.append(t.kind.in_(scope.kinds))
    for c in scope.segment.conditions:
        column = getattr(t, c.dimension)
        if c.include:
            conditions.append(column.in_(c.include))
        if c.exclude:
            conditions.append(or_(column.is_(None), column.not_in(c.exclude)))
    delivered = or_(
        t.delivered_at.is_not(None),
        t.responded_at.is_not(None),
        and_(t.sent_at.is_not(None), t.bounced_at.is_(None), t.failed_at.is_(None)),
    )

    def count(condition: Any) -> Any:
        return func.count().filter(condition)

    rows = await session.execute(
        select(
            *keys,
            func.count(),
            count(t.sent_at.is_not(None)),
            count(delivered),
            count(t.opened_at.is_not(None)),
            count(t.clicked_at.is_not(None)),
            count(t.bounced_at.is_not(None)),
            count(t.responded_at.is_not(None)),
        )
        .where(combine(conditions))
        .group_by(*keys)
    )
    out = {}
    for row in rows:
        value, start = keys_of(row)
        out[(label(scope, value), day_of(start))] = Funnel(*map(int, tuple(row)[len(keys) :]))
    return out
