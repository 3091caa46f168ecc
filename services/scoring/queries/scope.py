"""What a report counts: which surveys, question, metric, kinds, days and segment, grouped how."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Date, Integer, and_, case, cast, func, literal, not_, or_
from sqlalchemy.sql.elements import ColumnElement as Col

from services.scoring.domain import DECLARED, Segment, Tally, tally
from services.scoring.handlers.surveys import SurveyInfo
from services.scoring.models import Answer, ScoredResponse
from shared.vocabulary import Interval, NpsScale

GroupKey = Any
"""A group's value (a dimension's value, None where the response has none, or a survey id)."""


@dataclass(frozen=True)
class Scope:
    surveys: dict[int, SurveyInfo]
    kinds: tuple[str, ...] | None = None
    """None: every kind."""
    since: date | None = None
    until: date | None = None
    segment: Segment = field(default_factory=Segment)
    group_by: str | None = None
    interval: Interval | None = None
    scale: NpsScale | None = None
    """Overrides every survey's own NPS scale."""
    workspace_id: str | None = None
    """Whose surveys (what the answer cache keeps by); None: the answers table answers."""

    def scale_of(self, survey_key: int) -> NpsScale:
        return self.scale or self.surveys[survey_key].scale

    @property
    def unsegmented(self) -> bool:
        """Whether the rollups can answer (no filter, and groups by nothing, kind or survey)."""
        return not self.segment.conditions and self.group_by in (None, "kind", "survey")

    def by_scale(self, survey_key: Any) -> list[Any]:
        """Return the column that tells the surveys' NPS scales apart (``scale_of`` reads it back), or
        none when every survey has the same: rows are summed per scale, not per survey."""
        european = [k for k in self.surveys if self.scale_of(k) == "european"]
        if not european or len(european) == len(self.surveys):
            return []
        return [case((survey_key.in_(european), 1), else_=0).label("european")]

    def scale_of_row(self, row: Any) -> NpsScale:
        """Return the NPS scale of a result row of a query grouped by ``by_scale``."""
        flag = row._mapping.get("european")
        if flag is None:
            return self.scale_of(next(iter(self.surveys)))
        return "european" if flag else "standard"

    def shifted(self, since: date, until: date) -> Scope:
        return Scope(
            self.surveys,
            self.kinds,
            since,
            until,
            self.segment,
            self.group_by,
            self.interval,
            self.scale,
            self.workspace_id,
        )


def dimension_column(name: str, *, on_answers: bool = True) -> Col[Any]:
    """Return a dimension on ``answers`` (its column, or its key in ``attributes`` for an ad-hoc one),
    or with ``on_answers=False`` in ``scored_responses.dimensions``."""
    if not on_answers:
        return ScoredResponse.dimensions[name].astext
    if name in DECLARED:
        return getattr(Answer, name)
    return Answer.attributes[name].astext


def segment_conditions(segment: Segment, *, on_answers: bool = True) -> list[ColumnElement[bool]]:
    """Return SQL conditions for a segment (a missing dimension equals nothing and differs from all)."""
    conditions: list[ColumnElement[bool]] = []
    for c in segment.conditions:
        column = dimension_column(c.dimension, on_answers=on_answers)
        if c.include:
            conditions.append(column.in_(c.include))
        if c.exclude:
            conditions.append(or_(column.is_(None), not_(column.in_(c.exclude))))
    return conditions


def day_conditions(column: Any, scope: Scope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if scope.since is not None:
        conditions.append(column >= scope.since)
    if scope.until is not None:
        conditions.append(column <= scope.until)
    return conditions


def period_of(column: Any, interval: Interval | None) -> list[Any]:
    """Return the period column of a trend (``period``, its first day), or none without an interval.

    Date arithmetic, not ``date_trunc`` (which goes through timestamps): weeks start on Monday."""
    if interval is None:
        return []
    if interval == "day":
        return [column.label("period")]
    if interval == "week":
        return [(column - cast(func.extract("isodow", column), Integer) + 1).label("period")]
    return [cast(func.date_trunc("month", column), Date).label("period")]


def keys_of(row: Any) -> tuple[Any, Any]:
    """Return a result row's (group, period), None where the query has no such column."""
    mapping = row._mapping
    return mapping.get("grp"), mapping.get("period")


def combine(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return and_(*conditions) if conditions else literal(True)


Histograms = dict[tuple[GroupKey, date | None], dict[NpsScale, dict[int, int]]]
"""(group, period start) → NPS scale → score → count (surveys of one scale are summed)."""


def tallies(histograms: Histograms, metric: str, scope: Scope) -> dict[tuple[GroupKey, date | None], Tally]:
    """Return the counts per (group, period), each survey's answers classified on its own scale."""
    out: dict[tuple[GroupKey, date | None], Tally] = {}
    for key, by_scale in histograms.items():
        total = Tally()
        for scale, histogram in by_scale.items():
            total = total + tally(histogram, metric, nps_scale=scale)
        out[key] = total
    return out
