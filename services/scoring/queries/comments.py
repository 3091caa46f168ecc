"""The newest comments of a scope, with what was read from them (sentiment, themes), optionally only those
that contain a phrase: the console's overview and its list of responses read them."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.handlers import themes as rules
from services.scoring.models import Comment, ScoredResponse
from services.scoring.queries.scope import Scope
from services.scoring.queries.themes import _select
from services.scoring.schemas import NewCommentOut
from services.scoring.text.themes import themes_of


async def newest_comments(
    session: AsyncSession,
    scope: Scope,
    *,
    workspace_id: str,
    contains: str | None,
    label: str | None,
    response_id: str | None = None,
    limit: int,
    offset: int,
) -> list[NewCommentOut]:
    """Return the scope's comments, newest first; ``contains`` keeps those with the phrase (any case)."""
    if not scope.surveys:
        return []
    c, r = Comment, ScoredResponse
    query = _select(
        scope,
        r.response_id,
        c.survey_key,
        c.question_id,
        c.day,
        c.text,
        c.language,
        c.sentiment,
        c.label,
        c.nps,
        c.lemmas,
    )
    if not scope.segment.conditions:
        query = query.join(r, r.key == c.response_key)
    if contains:
        query = query.where(func.lower(c.text).contains(contains.lower(), autoescape=True))
    if label:
        query = query.where(c.label == label)
    if response_id:
        query = query.where(r.response_id == response_id)
    query = query.order_by(c.day.desc(), c.response_key.desc()).limit(limit).offset(offset)
    patterns = await rules.patterns_of(session, workspace_id=workspace_id)
    return [
        NewCommentOut(
            response_id=rid,
            survey_id=scope.surveys[key].survey_id,
            question_id=qid,
            day=day.isoformat(),
            text=text,
            language=language,
            sentiment=sentiment,
            label=lab,
            nps=nps,
            themes=themes_of(lemmas, patterns),
        )
        for rid, key, qid, day, text, language, sentiment, lab, nps, lemmas in await session.execute(query)
    ]
