"""Themes of a scope's comments: counts, negative sentiment, the NPS of those who mention each theme,
the comments behind a theme, and suggested new themes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain import Tally, classify, tally
from services.scoring.handlers import themes as rules
from services.scoring.models import Comment, ScoredResponse
from services.scoring.queries.scope import Scope, combine, day_conditions, segment_conditions
from services.scoring.schemas import CommentOut
from services.scoring.text.themes import Suggestion, suggest, themes_of
from shared.paging import after, decode_cursor, page

COMMENTS = "scoring.theme-comments"
MAX_SUGGESTION_COMMENTS = 5000
"""Suggestions read the newest comments of the scope, at most this many."""


@dataclass(frozen=True)
class ThemeCount:
    theme: str
    mentions: int
    negative: int
    """Mentions with negative sentiment (of those whose language has a lexicon)."""
    scored: int
    """Mentions with a sentiment at all."""
    nps: Tally
    """The NPS answers of the respondents who mention the theme."""


def _conditions(scope: Scope) -> list[ColumnElement[bool]]:
    c = Comment
    conditions = [c.survey_key.in_(list(scope.surveys)), *day_conditions(c.day, scope)]
    if scope.kinds is not None:
        conditions.append(c.kind.in_(scope.kinds))
    return conditions + segment_conditions(scope.segment, on_answers=False)


def _select(scope: Scope, *columns: Any) -> Select[Any]:
    query = select(*columns).where(combine(_conditions(scope)))
    if scope.segment.conditions:
        query = query.join(ScoredResponse, ScoredResponse.key == Comment.response_key)
    return query


async def theme_counts(
    session: AsyncSession, scope: Scope, *, workspace_id: str
) -> tuple[int, list[ThemeCount]]:
    """Return the number of comments in the scope and, per theme, its mentions and what they say."""
    patterns = await rules.patterns_of(session, workspace_id=workspace_id)
    if not scope.surveys:
        return 0, [ThemeCount(t, 0, 0, 0, Tally()) for t in sorted(patterns)]
    c = Comment
    rows = await session.execute(_select(scope, c.survey_key, c.lemmas, c.label, c.nps))
    mentions: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    nps: dict[str, dict[int, dict[int, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    total = 0
    for survey_key, lemmas, label, score in rows:
        total += 1
        for theme in themes_of(lemmas, patterns):
            counts = mentions[theme]
            counts[0] += 1
            counts[1] += label == "negative"
            counts[2] += label is not None
            if score is not None:
                nps[theme][survey_key][score] += 1
    out = []
    for theme in sorted(patterns):
        m, neg, scored = mentions.get(theme, [0, 0, 0])
        answers = Tally()
        for survey_key, histogram in nps.get(theme, {}).items():
            answers = answers + tally(histogram, "nps", nps_scale=scope.scale_of(survey_key))
        out.append(ThemeCount(theme, m, neg, scored, answers))
    out.sort(key=lambda t: (-t.mentions, t.theme))
    return total, out


async def comments_about(
    session: AsyncSession,
    scope: Scope,
    *,
    workspace_id: str,
    theme: str,
    limit: int,
    offset: int,
    cursor: str | None = None,
) -> tuple[list[CommentOut], str | None]:
    """Return a page of the comments that mention ``theme``, newest first, and the next page's cursor."""
    patterns = (await rules.patterns_of(session, workspace_id=workspace_id)).get(theme)
    if patterns is None:
        await rules.get_theme(session, workspace_id=workspace_id, theme=theme)  # raises NotFound
    if not scope.surveys or not patterns:
        return [], None
    c, r = Comment, ScoredResponse
    order = (c.day, c.response_key, c.question_id)
    query = (
        select(
            r.response_id,
            c.survey_key,
            c.question_id,
            c.day,
            c.text,
            c.language,
            c.confidence,
            c.sentiment,
            c.label,
            c.nps,
        )
        .join(r, r.key == c.response_key)
        .where(combine(_conditions(scope)))
        .order_by(*(col.desc() for col in order))
    )
    if cursor:
        query = query.where(after(order, decode_cursor(cursor, COMMENTS, (date, int, str)), descending=True))
    found: list[CommentOut] = []
    keys: list[tuple[date, int, str]] = []
    skipped = 0
    rows = await session.execute(query.add_columns(c.lemmas, c.response_key))
    for rid, survey_key, qid, day, text, language, confidence, sentiment, label, nps, lemmas, key in rows:
        if not any(p in lemmas for p in patterns):
            continue
        if skipped < offset:
            skipped += 1
            continue
        found.append(
            CommentOut(
                response_id=rid,
                survey_id=scope.surveys[survey_key].survey_id,
                question_id=qid,
                day=day,
                text=text,
                language=language,
                confidence=confidence,
                sentiment=sentiment,
                label=label,
                nps=nps,
            )
        )
        keys.append((day, key, qid))
        if len(found) > limit:
            break
    kept, next_cursor = page(keys, limit=limit, scope=COMMENTS, key=lambda k: k)
    return found[: len(kept)], next_cursor


async def suggestions(
    session: AsyncSession, scope: Scope, *, workspace_id: str, limit: int = 10, min_mentions: int = 3
) -> list[Suggestion]:
    """Return suggested new themes: terms that set detractors' comments apart from everyone else's."""
    if not scope.surveys:
        return []
    patterns = await rules.patterns_of(session, workspace_id=workspace_id)
    covered = [p for pats in patterns.values() for p in pats]
    c = Comment
    rows = await session.execute(
        _select(scope, c.survey_key, c.lemmas, c.label, c.nps, c.language)
        .order_by(c.day.desc())
        .limit(MAX_SUGGESTION_COMMENTS)
    )
    docs = []
    for survey_key, lemmas, label, score, language in rows:
        if score is not None:
            detractor = classify("nps", score, nps_scale=scope.scale_of(survey_key)) == "detractor"
        else:
            detractor = label == "negative"
        docs.append((lemmas.split(), detractor, language))
    return suggest(docs, covered=covered, limit=limit, min_mentions=min_mentions)
