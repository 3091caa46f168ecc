"""Exports for BI tools: every completed response scoring holds in a scope, with its scores, comments
(language, sentiment, themes), loyalty cell and dimensions, read in keyset batches (``key``, the
order responses arrived in), so a million rows stream in the memory of one batch.

One row per response. What scoring does not hold is not in it: answers that are neither scores nor open
text (choices, hidden fields other than dimensions) live in responses. Case outcomes come from followup's
``FollowUp*`` events (``handlers/cases.py``). Erased contacts' rows stay (the scores are not personal data) without contact id
or comments, as erasure leaves them; anonymised ones likewise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain import DECLARED
from services.scoring.handlers import themes as rules
from services.scoring.models import Answer, CaseOutcome, Comment, ScoredResponse
from services.scoring.queries.scope import Scope, segment_conditions
from services.scoring.text.themes import themes_of
from shared.vocabulary import SCORE_METRICS

DIMENSIONS = tuple(d for d in DECLARED if d not in ("channel", "kind"))
_AS_STORED = ("response_id", "survey_id", "survey_version", "kind", "channel", "locale", "contact_id")
_CLASSES_AS_STORED = ("classification", "loyalty", "negative", "consent_to_contact")
"""Columns of ``scored_responses`` the export copies as they are (before and after the scores)."""
COLUMNS = (
    *_AS_STORED,
    "completed_at",
    *SCORE_METRICS,
    *_CLASSES_AS_STORED,
    "scores",
    "comment",
    "comment_language",
    "sentiment",
    "sentiment_label",
    "themes",
    "case_id",
    "case_status",
    "case_root_cause_category",
    "case_root_cause",
    "won_back",
    "retention_score",
    *DIMENSIONS,
    "dimensions",
)
"""The export's columns: per metric the response's first answer of it; ``scores`` every scored answer
(``{question_id: score}``); ``comment`` the first open answer, ``themes`` those of every open answer;
the case opened from the response (its latest, when several) with its status, root cause and whether
the customer was won back (``case_outcomes``, from followup's events); the declared dimensions as columns
and ``dimensions`` every one (JSON)."""


# Core columns, not ORM entities: an export reads rows, and ORM loading was a third of its time.
_RESPONSES = ScoredResponse.__table__.c
_ANSWERS = Answer.__table__.c
_COMMENTS = Comment.__table__.c
_CASES = CaseOutcome.__table__.c
_RESPONSE_COLUMNS = tuple(
    getattr(_RESPONSES, name)
    for name in ("key", *_AS_STORED, "completed_at", "metric", "score", *_CLASSES_AS_STORED, "dimensions")
)


def _conditions(scope: Scope, workspace_id: str) -> list[ColumnElement[bool]]:
    r = ScoredResponse
    conditions = [
        r.workspace_id == workspace_id,
        r.survey_id.in_(sorted({s.survey_id for s in scope.surveys.values()})),
        *segment_conditions(scope.segment, on_answers=False),
    ]
    if scope.kinds is not None:
        conditions.append(r.kind.in_(scope.kinds))
    if scope.since is not None:
        conditions.append(r.completed_at >= datetime.combine(scope.since, time(), UTC))
    if scope.until is not None:
        conditions.append(r.completed_at < datetime.combine(scope.until + timedelta(days=1), time(), UTC))
    return conditions


async def response_rows(
    session: AsyncSession, scope: Scope, *, workspace_id: str, batch: int = 2000
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the scope's responses, in arrival order, as export rows in batches of ``batch``."""
    if not scope.surveys:
        return
    patterns = await rules.patterns_of(session, workspace_id=workspace_id)
    conditions = _conditions(scope, workspace_id)
    after = 0
    while True:
        responses = (
            await session.execute(
                select(*_RESPONSE_COLUMNS)
                .where(*conditions, _RESPONSES.key > after)
                .order_by(_RESPONSES.key)
                .limit(batch)
            )
        ).all()
        if not responses:
            return
        keys = [x.key for x in responses]
        scores: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
        for key, qid, metric, score in await session.execute(
            select(_ANSWERS.response_key, _ANSWERS.question_id, _ANSWERS.metric, _ANSWERS.score).where(
                _ANSWERS.response_key.in_(keys)
            )
        ):
            scores[key].append((qid, metric, score))
        comments: dict[int, list[Any]] = defaultdict(list)
        for comment in await session.execute(
            select(
                _COMMENTS.response_key,
                _COMMENTS.question_id,
                _COMMENTS.text,
                _COMMENTS.language,
                _COMMENTS.sentiment,
                _COMMENTS.label,
                _COMMENTS.lemmas,
            ).where(_COMMENTS.response_key.in_(keys))
        ):
            comments[comment.response_key].append(comment)
        cases: dict[str, Any] = {}
        for case in await session.execute(
            select(
                _CASES.response_id,
                _CASES.case_id,
                _CASES.status,
                _CASES.root_cause_category,
                _CASES.root_cause,
                _CASES.won_back,
                _CASES.retention_score,
            )
            .where(
                _CASES.workspace_id == workspace_id,
                _CASES.response_id.in_([x.response_id for x in responses]),
            )
            .order_by(_CASES.opened_at, _CASES.case_id)
        ):
            cases[case.response_id] = case  # the latest case of a response wins
        yield [_row(x, scores[x.key], comments[x.key], cases.get(x.response_id), patterns) for x in responses]
        if len(responses) < batch:
            return
        after = keys[-1]


def _row(
    response: Any,
    scores: list[tuple[str, str, int]],
    comments: list[Any],
    case: Any,
    patterns: dict[str, list[str]],
) -> dict[str, Any]:
    # Survey order is not kept in ``answers``; the first answer of a metric is the one the response's
    # own ``metric``/``score`` names when it is that metric, else the lowest question id.
    first: dict[str, int] = {}
    for _, metric, score in sorted(scores):
        first.setdefault(metric, score)
    if response.metric is not None and response.score is not None:
        first[response.metric] = response.score
    texts = sorted(comments, key=lambda c: c.question_id)
    lead = texts[0] if texts else None
    dims = dict(response.dimensions or {})
    return {
        **{name: getattr(response, name) for name in _AS_STORED},
        "completed_at": response.completed_at.isoformat(),
        **{metric: first.get(metric) for metric in SCORE_METRICS},
        **{name: getattr(response, name) for name in _CLASSES_AS_STORED},
        "scores": {qid: score for qid, _, score in sorted(scores)},
        "comment": lead.text if lead else None,
        "comment_language": lead.language if lead else None,
        "sentiment": lead.sentiment if lead else None,
        "sentiment_label": lead.label if lead else None,
        "themes": sorted({t for c in texts for t in themes_of(c.lemmas, patterns)}),
        "case_id": case.case_id if case else None,
        "case_status": case.status if case else None,
        "case_root_cause_category": case.root_cause_category if case else None,
        "case_root_cause": case.root_cause if case else None,
        "won_back": case.won_back if case else None,
        "retention_score": case.retention_score if case else None,
        **{d: dims.get(d) for d in DIMENSIONS},
        "dimensions": dims,
    }
