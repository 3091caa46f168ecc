"""Segments out: the contacts who are promoters, passives or detractors, or in a cell of the NPS × NLS
loyalty matrix, in a report's scope (surveys, kinds, days, dimension filters).

A contact is in a segment by their **latest** answer in the scope (the newest completed response with
the metric, or with NPS and NLS for a matrix cell): a promoter last month who is a detractor today is a
detractor, so marketing never reaches someone whose latest word was negative. Contacts come once, by
contact id (the keyset), each with the answer that put them there. Erased contacts are not listed: their
responses no longer name them (``contact_id`` is NULL). Each survey's answers are classified on its own
NPS scale (or the request's ``scale``), as every report is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, Select, and_, case, literal, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.models import Answer, ScoredResponse
from services.scoring.queries.scope import Scope, day_conditions, segment_conditions
from shared.paging import decode_cursor, page
from shared.vocabulary import LOYALTY_CELLS

NpsClass = Literal["promoter", "passive", "detractor"]
SegmentName = Literal["promoter", "passive", "detractor", "pure", "false", "trapped", "disloyal", "undecided"]
NPS_CLASSES: tuple[NpsClass, ...] = get_args(NpsClass)
SEGMENTS: tuple[SegmentName, ...] = get_args(SegmentName)
CONTACTS = "scoring.segment-contacts"


@dataclass(frozen=True)
class Member:
    contact_id: str
    response_id: str
    survey_id: str
    question_id: str
    score: int
    nls: int | None
    """The same response's NLS answer (for a matrix cell)."""
    completed_at: datetime
    dimensions: dict[str, str]


def _promoter_min(scope: Scope, survey_key: Any) -> ColumnElement[int]:
    european = [k for k in scope.surveys if scope.scale_of(k) == "european"]
    if not european:
        return literal(9)
    if len(european) == len(scope.surveys):
        return literal(8)
    return case((survey_key.in_(european), 8), else_=9)


def _in_segment(segment: SegmentName, score: Any, nls: Any, high: Any) -> ColumnElement[bool]:
    """The SQL condition of a segment on a latest answer (``high``: the promoter threshold)."""

    def klass(value: Any, name: NpsClass) -> ColumnElement[bool]:
        if name == "promoter":
            return value >= high
        if name == "detractor":
            return value <= 6
        return and_(value >= 7, value < high)

    if segment in NPS_CLASSES:
        return klass(score, segment)
    cells: dict[str, ColumnElement[bool]] = {
        "pure": and_(klass(score, "promoter"), klass(nls, "promoter")),
        "false": and_(klass(score, "promoter"), klass(nls, "detractor")),
        "trapped": and_(klass(score, "detractor"), klass(nls, "promoter")),
        "disloyal": and_(klass(score, "detractor"), klass(nls, "detractor")),
    }
    if segment == "undecided":
        return ~(cells["pure"] | cells["false"] | cells["trapped"] | cells["disloyal"])
    return cells[segment]


def members_query(
    scope: Scope,
    *,
    workspace_id: str,
    segment: SegmentName,
    metric: Literal["nps", "nls"],
    question_id: str | None,
    after: str | None,
) -> Select[Any]:
    """The query of a segment's members after contact id ``after``, by contact id."""
    a, r = Answer, ScoredResponse
    cell = segment in LOYALTY_CELLS
    conditions = [
        r.workspace_id == workspace_id,
        r.contact_id.is_not(None),
        a.survey_key.in_(list(scope.surveys)),
        a.metric == ("nps" if cell else metric),
        *day_conditions(a.day, scope),
        *segment_conditions(scope.segment),
    ]
    if cell:
        conditions.append(a.paired.is_not(None))
    if scope.kinds is not None:
        conditions.append(a.kind.in_(scope.kinds))
    if question_id is not None:
        conditions.append(a.question_id == question_id)
    if after is not None:
        conditions.append(r.contact_id > after)
    latest = (
        select(
            r.contact_id,
            r.response_id,
            r.survey_id,
            a.question_id,
            a.score,
            a.paired.label("nls"),
            _promoter_min(scope, a.survey_key).label("high"),
            r.completed_at,
            r.dimensions,
        )
        .join(r, r.key == a.response_key)
        .where(*conditions)
        .ext(distinct_on(r.contact_id))
        .order_by(r.contact_id, r.completed_at.desc(), a.response_key.desc(), a.question_id)
        .subquery("latest")
    )
    c = latest.c
    return (
        select(
            c.contact_id,
            c.response_id,
            c.survey_id,
            c.question_id,
            c.score,
            c.nls,
            c.completed_at,
            c.dimensions,
        )
        .where(_in_segment(segment, c.score, c.nls, c.high))
        .order_by(c.contact_id)
    )


def _member(row: Any) -> Member:
    return Member(
        row.contact_id,
        row.response_id,
        row.survey_id,
        row.question_id,
        row.score,
        row.nls,
        row.completed_at,
        dict(row.dimensions or {}),
    )


async def members(
    session: AsyncSession,
    scope: Scope,
    *,
    workspace_id: str,
    segment: SegmentName,
    metric: Literal["nps", "nls"] = "nps",
    question_id: str | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Member], str | None]:
    """Return a page of the segment's contacts, by contact id, and the next page's cursor."""
    after = decode_cursor(cursor, CONTACTS, (str,))[0] if cursor else None
    if not scope.surveys:
        return [], None
    query = members_query(
        scope, workspace_id=workspace_id, segment=segment, metric=metric, question_id=question_id, after=after
    )
    rows = [_member(row) for row in await session.execute(query.limit(limit + 1))]
    return page(rows, limit=limit, scope=CONTACTS, key=lambda m: (m.contact_id,))


async def every_member(
    session: AsyncSession,
    scope: Scope,
    *,
    workspace_id: str,
    segment: SegmentName,
    metric: Literal["nps", "nls"] = "nps",
    question_id: str | None = None,
    batch: int = 2000,
) -> AsyncIterator[list[Member]]:
    """Yield the whole segment in keyset batches of ``batch`` contacts (memory stays one batch)."""
    if not scope.surveys:
        return
    after: str | None = None
    while True:
        query = members_query(
            scope,
            workspace_id=workspace_id,
            segment=segment,
            metric=metric,
            question_id=question_id,
            after=after,
        )
        rows = [_member(row) for row in await session.execute(query.limit(batch))]
        if rows:
            yield rows
        if len(rows) < batch:
            return
        after = rows[-1].contact_id
