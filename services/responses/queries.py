"""The read side of the responses service: responses with their answers, and drop-off per question."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.domain.definition import Definition
from services.responses.handlers.surveys import get_version
from services.responses.models import Response, ResponseAnswer, Survey


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
    session: AsyncSession, *, workspace_id: str, survey_id: str, limit: int, status: str | None = None
) -> list[tuple[Response, list[ResponseAnswer]]]:
    """Return the survey's newest responses (completed, partial or both) with their answers in order."""
    query = select(Response).where(Response.workspace_id == workspace_id, Response.survey_id == survey_id)
    if status == "completed":
        query = query.where(Response.completed_at.is_not(None))
    elif status == "partial":
        query = query.where(Response.completed_at.is_(None))
    responses = (
        await session.scalars(query.order_by(Response.updated_at.desc(), Response.id).limit(limit))
    ).all()
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
    return [(r, by_response[r.id]) for r in responses]


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
