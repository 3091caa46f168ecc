"""The read side: case lists for agents, a case's history and notes, the decision log, and the
closed-loop metrics and recovery funnel (aggregated in PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, and_, extract, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.followup.domain import cases as rules
from services.followup.models import Agent, Case, CaseEntry, CaseNote, Decision, SeenResponse, Team
from shared.errors import InvalidInput
from shared.paging import after, decode_cursor, page

R = TypeVar("R")
CASES, AGENTS, TEAMS, DECISIONS = "followup.cases", "followup.agents", "followup.teams", "followup.decisions"


async def _page(
    session: AsyncSession,
    query: Select[R],
    order: tuple[InstrumentedAttribute[Any], ...],
    kinds: tuple[type, ...],
    scope: str,
    limit: int,
    cursor: str | None,
    *,
    descending: bool,
) -> tuple[list[R], str | None]:
    """Return the page of ``query``'s rows that follows ``cursor`` in ``order`` (its columns' values typed
    as ``kinds``), and the cursor of the next page."""
    if cursor:
        query = query.where(after(order, decode_cursor(cursor, scope, kinds), descending=descending))
    ordered = [c.desc() for c in order] if descending else list(order)
    rows = (await session.scalars(query.order_by(*ordered).limit(limit + 1))).all()
    return page(rows, limit=limit, scope=scope, key=lambda row: [getattr(row, c.key) for c in order])


@dataclass(frozen=True)
class CaseFilters:
    status: str | None = None
    active: bool | None = None
    assignee: str | None = None
    team_id: str | None = None
    priority: str | None = None
    opened_because: str | None = None
    contact_id: str | None = None
    overdue: bool | None = None
    unassigned: bool | None = None


async def list_cases(
    session: AsyncSession,
    *,
    workspace_id: str,
    filters: CaseFilters,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> tuple[list[Case], str | None]:
    """Return a page of the workspace's cases, newest first, and the cursor of the next page."""
    query = select(Case).where(Case.workspace_id == workspace_id)
    f = filters
    if f.status is not None:
        query = query.where(Case.status == f.status)
    if f.active is not None:
        closed = Case.status.in_((rules.RESOLVED, rules.CLOSED))
        query = query.where(~closed if f.active else closed)
    if f.assignee is not None:
        query = query.where(Case.assignee == f.assignee)
    if f.unassigned:
        query = query.where(Case.assignee.is_(None))
    for column, value in (
        (Case.team_id, f.team_id),
        (Case.priority, f.priority),
        (Case.opened_because, f.opened_because),
        (Case.contact_id, f.contact_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.overdue:
        query = query.where(
            Case.status.not_in((rules.RESOLVED, rules.CLOSED)),
            or_(
                and_(Case.first_contacted_at.is_(None), Case.first_contact_due_at < now),
                Case.resolution_due_at < now,
            ),
        )
    order = (Case.created_at, Case.id)
    return await _page(session, query, order, (datetime, str), CASES, limit, cursor, descending=True)


async def agents(
    session: AsyncSession, *, workspace_id: str, limit: int, cursor: str | None
) -> tuple[list[Agent], str | None]:
    """Return a page of the workspace's agents by id."""
    query = select(Agent).where(Agent.workspace_id == workspace_id)
    return await _page(session, query, (Agent.id,), (str,), AGENTS, limit, cursor, descending=False)


async def teams(
    session: AsyncSession, *, workspace_id: str, limit: int, cursor: str | None
) -> tuple[list[Team], str | None]:
    """Return a page of the workspace's teams by name (names are unique in a workspace)."""
    query = select(Team).where(Team.workspace_id == workspace_id)
    return await _page(session, query, (Team.name,), (str,), TEAMS, limit, cursor, descending=False)


async def history(session: AsyncSession, *, case: Case) -> list[CaseEntry]:
    """Return the case's history, oldest first."""
    return list(
        await session.scalars(select(CaseEntry).where(CaseEntry.case_id == case.id).order_by(CaseEntry.id))
    )


async def notes(session: AsyncSession, *, case: Case) -> list[CaseNote]:
    return list(
        await session.scalars(
            select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.created_at, CaseNote.id)
        )
    )


async def decisions(
    session: AsyncSession,
    *,
    workspace_id: str,
    kind: str | None,
    outcome: str | None,
    response_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Decision], str | None]:
    """Return a page of the decision log, newest first."""
    query = select(Decision).where(Decision.workspace_id == workspace_id)
    for column, value in (
        (Decision.kind, kind),
        (Decision.outcome, outcome),
        (Decision.response_id, response_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return await _page(session, query, (Decision.id,), (int,), DECISIONS, limit, cursor, descending=True)


# --- metrics ---------------------------------------------------------------------------------------

Grouping = Literal[
    "none",
    "team",
    "agent",
    "root_cause",
    "priority",
    "opened_because",
    "survey",
    "channel",
    "segment",
    "period",
]


def _group_key(by: str, *, dimension: str | None, period: str) -> ColumnElement[Any]:
    if by == "none":
        return literal("all")
    if by == "team":
        return func.coalesce(Case.team_id, "unassigned")
    if by == "agent":
        return func.coalesce(Case.assignee, "unassigned")
    if by == "root_cause":
        return func.coalesce(Case.root_cause_category + " › " + Case.root_cause, "unresolved")
    if by == "segment":
        if not dimension:
            raise InvalidInput("by=segment needs dimension=<name>, e.g. country.", field="dimension")
        return func.coalesce(Case.dimensions[dimension].astext, "unknown")
    if by == "period":
        return func.to_char(func.date_trunc(period, Case.created_at), "YYYY-MM-DD")
    column = {
        "priority": Case.priority,
        "opened_because": Case.opened_because,
        "survey": Case.survey_id,
        "channel": Case.channel,
    }[by]
    return func.coalesce(column, "unknown")


def _hours(later: Any, earlier: Any) -> ColumnElement[Any]:
    return extract("epoch", later - earlier) / 3600.0


def _count(*conditions: Any) -> ColumnElement[Any]:
    return func.count().filter(and_(*conditions))


def _percentile(q: float, value: ColumnElement[Any], present: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.percentile_cont(q).within_group(value).filter(present)


def metrics_query(
    *,
    workspace_id: str,
    by: str,
    dimension: str | None,
    period: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> Select[Any]:
    key = _group_key(by, dimension=dimension, period=period).label("key")
    contacted = Case.first_contacted_at.is_not(None)
    resolved = Case.resolved_at.is_not(None)
    first_contact_hours = _hours(Case.first_contacted_at, Case.created_at)
    resolution_hours = _hours(Case.resolved_at, Case.created_at)

    def within(done: Any, due: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        return (
            _count(due.is_not(None), done.is_not(None), done <= due),
            _count(due.is_not(None), or_(done.is_not(None), due < now)),
        )

    fc_in, fc_measured = within(Case.first_contacted_at, Case.first_contact_due_at)
    fcb_in, fcb_measured = within(Case.first_contacted_at, Case.first_contact_due_business_at)
    res_in, res_measured = within(Case.resolved_at, Case.resolution_due_at)
    resb_in, resb_measured = within(Case.resolved_at, Case.resolution_due_business_at)
    query = select(
        key,
        func.count().label("opened"),
        _count(contacted).label("contacted"),
        fc_in.label("contacted_in_sla"),
        fc_measured.label("contact_measured"),
        fcb_in.label("contacted_in_business_sla"),
        fcb_measured.label("contact_business_measured"),
        _count(resolved).label("resolved"),
        res_in.label("resolved_in_sla"),
        res_measured.label("resolution_measured"),
        resb_in.label("resolved_in_business_sla"),
        resb_measured.label("resolution_business_measured"),
        _percentile(0.5, first_contact_hours, contacted).label("median_first_contact_h"),
        _percentile(0.9, first_contact_hours, contacted).label("p90_first_contact_h"),
        _percentile(0.5, resolution_hours, resolved).label("median_resolution_h"),
        _percentile(0.9, resolution_hours, resolved).label("p90_resolution_h"),
        _count(Case.reopen_count > 0).label("reopened"),
        _count(or_(resolved, Case.reopen_count > 0)).label("ever_resolved"),
        _count(Case.retention_status.in_(("requested", "answered"))).label("retention_requested"),
        _count(Case.retention_status == "not_possible").label("retention_not_possible"),
        _count(Case.won_back.is_not(None)).label("retention_answered"),
        _count(Case.won_back.is_(True)).label("won_back"),
        _count(Case.climbed_at.is_not(None)).label("climbed"),
        _count(Case.scores.contains([{"classification": "detractor"}])).label("detractors"),
    ).where(Case.workspace_id == workspace_id)
    if since is not None:
        query = query.where(Case.created_at >= since)
    if until is not None:
        query = query.where(Case.created_at < until)
    return query.group_by(key).order_by(key)


async def metrics(session: AsyncSession, **kwargs: Any) -> list[dict[str, Any]]:
    """Return one row of counts and times per group."""
    return [dict(row) for row in (await session.execute(metrics_query(**kwargs))).mappings()]


async def funnel_counts(
    session: AsyncSession, *, workspace_id: str, since: datetime | None, until: datetime | None
) -> Sequence[int]:
    """Return the recovery funnel's counts: negative answers → consented → case opened → contacted →
    resolved → retention answered → won back (responses by when they were scored, cases by opening)."""
    seen = select(
        _count(SeenResponse.negative, SeenResponse.kind != "retention"),
        _count(SeenResponse.negative, SeenResponse.kind != "retention", SeenResponse.consented),
    ).where(SeenResponse.workspace_id == workspace_id)
    opened = select(
        func.count(),
        _count(Case.first_contacted_at.is_not(None)),
        _count(or_(Case.resolved_at.is_not(None), Case.reopen_count > 0)),
        _count(Case.won_back.is_not(None)),
        _count(Case.won_back.is_(True)),
    ).where(Case.workspace_id == workspace_id, Case.opened_because == "negative")
    if since is not None:
        seen, opened = seen.where(SeenResponse.scored_at >= since), opened.where(Case.created_at >= since)
    if until is not None:
        seen, opened = seen.where(SeenResponse.scored_at < until), opened.where(Case.created_at < until)
    negatives, consented = (await session.execute(seen)).one()
    cases_opened, contacted, resolved, answered, won = (await session.execute(opened)).one()
    return [negatives, consented, cases_opened, contacted, resolved, answered, won]
