"""The read side of the responses service: responses with their answers, and drop-off per question."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.domain.definition import Definition
from services.responses.handlers.surveys import get_version
from services.responses.models import Response, ResponseAnswer, Survey
from shared.paging import after, decode_cursor, page

RESPONSES = "responses.responses"


async def get_response(
    session: AsyncSession, *, workspace_id: str, response_id: str
) -> tuple[Response, list[ResponseAnswer]] | None:
    """Return one response of the workspace with its answers in order, or None."""
    response = await session.scalar(
        select(Response).where(Response.workspace_id == workspace_id, Response.id == response_id)
    )
    if response is None:
        return None
    answers = (
        await session.scalars(
            select(ResponseAnswer)
            .where(ResponseAnswer.workspace_id == workspace_id, ResponseAnswer.response_id == response_id)
            .order_by(ResponseAnswer.position)
        )
    ).all()
    return response, list(answers)


async def list_responses(
    session: AsyncSession,
    *,
    workspace_id: str,
    survey_id: str,
    limit: int,
    status: str | None = None,
    cursor: str | None = None,
) -> tuple[list[tuple[Response, list[ResponseAnswer]]], str | None]:
    """Return a page of the survey's responses (completed, partial or both), newest started first,
    with their answers in order, and the next page's cursor. Ordered by when a response started,
    which never changes, so that a page walk is stable while partial responses are answered."""
    query = select(Response).where(Response.workspace_id == workspace_id, Response.survey_id == survey_id)
    if status == "completed":
        query = query.where(Response.completed_at.is_not(None))
    elif status == "partial":
        query = query.where(Response.completed_at.is_(None))
    order = (Response.started_at, Response.id)
    if cursor:
        query = query.where(after(order, decode_cursor(cursor, RESPONSES, (datetime, str)), descending=True))
    responses, next_cursor = page(
        (await session.scalars(query.order_by(*(c.desc() for c in order)).limit(limit + 1))).all(),
        limit=limit,
        scope=RESPONSES,
        key=lambda r: (r.started_at, r.id),
    )
    answers = (
        await session.scalars(
            select(ResponseAnswer)
            .where(
                ResponseAnswer.workspace_id == workspace_id,
                ResponseAnswer.response_id.in_([r.id for r in responses]),
            )
            .order_by(ResponseAnswer.position)
        )
    ).all()
    by_response: dict[str, list[ResponseAnswer]] = {r.id: [] for r in responses}
    for a in answers:
        by_response[a.response_id].append(a)
    return [(r, by_response[r.id]) for r in responses], next_cursor


async def drop_off(session: AsyncSession, *, survey: Survey) -> dict[str, Any]:
    """Return started and completed counts and, per question of the current version, how many
    responses answered it and how many partial responses stopped right after it."""
    started, completed = (
        await session.execute(
            select(func.count(), func.count(Response.completed_at)).where(Response.survey_id == survey.id)
        )
    ).one()
    answered = dict(
        (
            await session.execute(
                select(ResponseAnswer.question_id, func.count())
                .join(Response, Response.id == ResponseAnswer.response_id)
                .where(Response.survey_id == survey.id)
                .group_by(ResponseAnswer.question_id)
            )
        ).all()
    )
    last = (
        select(ResponseAnswer.question_id)
        .join(Response, Response.id == ResponseAnswer.response_id)
        .where(Response.survey_id == survey.id, Response.completed_at.is_(None))
        .ext(distinct_on(ResponseAnswer.response_id))
        .order_by(
            ResponseAnswer.response_id, ResponseAnswer.answered_at.desc(), ResponseAnswer.position.desc()
        )
        .subquery()
    )
    stopped: dict[str, int] = dict(
        (await session.execute(select(last.c.question_id, func.count()).group_by(last.c.question_id))).all()
    )
    version = await get_version(session, survey=survey)
    questions = [q for q in Definition.of(version.version, version.definition).questions if q.asked]
    return {
        "survey_id": survey.id,
        "started": started,
        "completed": completed,
        "completion_rate": round(completed / started, 4) if started else None,
        "questions": [
            {
                "question_id": q.id,
                "type": q.type,
                "answered": answered.get(q.id, 0),
                "last_answered": stopped.get(q.id, 0),
            }
            for q in questions
        ],
    }
