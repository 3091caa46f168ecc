"""What happens when a response is completed: every scored answer counted, the rollups updated, the
comments read, and what it means published — all in the consumer's transaction (inbox + outbox)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import domain
from services.scoring.handlers import notify, surveys
from services.scoring.models import (
    DIMENSION_COLUMNS,
    HISTOGRAM,
    Answer,
    Comment,
    DailyHistogram,
    DailyLoyalty,
    Invitation,
    ScoredResponse,
)
from services.scoring.text import analyse
from shared.errors import PoisonMessage
from shared.events import (
    ContactErased,
    NegativeFeedbackDetected,
    ResponseCompleted,
    ResponseScored,
    ScoredAnswer,
    utcnow,
)
from shared.outbox import Outbox
from shared.vocabulary import NpsScale


def utc_day(moment: datetime) -> date:
    """Return the UTC calendar day of ``moment`` (a naive time is taken as UTC)."""
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


async def score_response(
    session: AsyncSession, outbox: Outbox, *, event: ResponseCompleted, default_scale: NpsScale
) -> tuple[domain.Scored, ...] | None:
    """Record the response once, count every scored answer and publish what it means; return the
    scored answers (None when the response was seen before).

    A response seen before (same workspace and response id) changes nothing, whatever the event id.
    """
    settings = await surveys.workspace_settings(session, workspace_id=event.workspace_id)
    scale = await surveys.nps_scale_for(
        session, workspace_id=event.workspace_id, survey_id=event.survey_id, default=default_scale
    )
    views = [domain.AnswerView(a.type, a.value, a.scale, a.question_id) for a in event.answers]
    try:
        scored = domain.score_all(views, nps_scale=scale, negative=settings.negative)
    except domain.ScoreOutOfRange as exc:
        raise PoisonMessage(f"response {event.response_id}: {exc}") from exc
    dims = domain.dimensions_of(
        channel=event.channel, kind=event.kind, locale=event.locale, hidden_fields=event.hidden_fields
    )
    pair = domain.loyalty_pair(scored)
    cell = domain.loyalty_cell(pair[0].classification, pair[1].classification) if pair else None
    negative = any(s.negative for s in scored)
    first = scored[0] if scored else None
    key = await surveys.survey_key(
        session, workspace_id=event.workspace_id, survey_id=event.survey_id, answered=bool(scored)
    )
    response_key = (
        await session.execute(
            insert(ScoredResponse)
            .values(
                workspace_id=event.workspace_id,
                response_id=event.response_id,
                request_id=event.request_id,
                invitation_id=event.invitation_id,
                contact_id=event.contact_id,
                survey_id=event.survey_id,
                survey_version=event.survey_version,
                kind=event.kind,
                channel=event.channel,
                locale=event.locale,
                dimensions=dims,
                consent_to_contact=event.consent_to_contact,
                completed_at=event.completed_at,
                metric=first.metric if first else None,
                score=first.score if first else None,
                classification=first.classification if first else None,
                negative=negative,
                loyalty=cell,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "response_id"])
            .returning(ScoredResponse.key)
        )
    ).scalar_one_or_none()
    if response_key is None:
        return None

    day = utc_day(event.completed_at)
    if event.invitation_id:
        await _responded(session, event, survey_key=key, language=dims.get("language"))
    nps = next((s.score for s in scored if s.metric == "nps"), None)
    await _comments(session, event, response_key=response_key, survey_key=key, day=day, nps=nps, dims=dims)
    if not scored:
        return None
    await _count(
        session, scored, pair, response_key=response_key, survey_key=key, day=day, kind=event.kind, dims=dims
    )

    now = utcnow()
    about: dict[str, Any] = {
        "workspace_id": event.workspace_id,
        "response_id": event.response_id,
        "request_id": event.request_id,
        "contact_id": event.contact_id,
        "survey_id": event.survey_id,
        "kind": event.kind,
        "channel": event.channel,
        "scores": tuple(_scored_answer(s) for s in scored),
        "loyalty": cell,
        "dimensions": dims,
        "consent_to_contact": event.consent_to_contact,
        "respondent": event.respondent,
        "comment": domain.first_comment(views),
    }
    await outbox.add(session, ResponseScored(**about, negative=negative, scored_at=now))
    if negative:
        negatives = tuple(_scored_answer(s) for s in scored if s.negative)
        await outbox.add(session, NegativeFeedbackDetected(**about, negatives=negatives, detected_at=now))
    await notify.on_low_scores(
        session, outbox, event=event, scored=scored, dimensions=dims, negative=settings.negative
    )
    return scored


def _scored_answer(s: domain.Scored) -> ScoredAnswer:
    return ScoredAnswer(
        question_id=s.question_id,
        metric=s.metric,
        score=s.score,
        classification=s.classification,
        negative=s.negative,
    )


async def _count(
    session: AsyncSession,
    scored: tuple[domain.Scored, ...],
    pair: tuple[domain.Scored, domain.Scored] | None,
    *,
    response_key: int,
    survey_key: int,
    day: date,
    kind: str,
    dims: dict[str, str],
) -> None:
    """Add the answers to the fact table and to the daily rollups."""
    columns = {c: dims.get(c) for c in DIMENSION_COLUMNS}
    await session.execute(
        insert(Answer).values(
            [
                {
                    "response_key": response_key,
                    "question_id": s.question_id,
                    "survey_key": survey_key,
                    "metric": s.metric,
                    "day": day,
                    "score": s.score,
                    "kind": kind,
                    "paired": pair[1].score if pair and s is pair[0] else None,
                    **columns,
                }
                for s in scored
            ]
        )
    )
    rows = [
        {
            "survey_key": survey_key,
            "question_id": s.question_id,
            "metric": s.metric,
            "kind": kind,
            "day": day,
            **{c: int(c == f"n{s.score}") for c in HISTOGRAM},
        }
        for s in scored
    ]
    statement = insert(DailyHistogram).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["survey_key", "question_id", "metric", "kind", "day"],
            set_={c: getattr(DailyHistogram, c) + getattr(statement.excluded, c) for c in HISTOGRAM},
        )
    )
    if pair is None:
        return
    nps, nls = pair
    cells = {
        f"{scale}_{domain.loyalty_cell(domain.classify('nps', nps.score, nps_scale=scale), domain.classify('nls', nls.score, nps_scale=scale))}": 1
        for scale in ("standard", "european")
    }
    loyalty = insert(DailyLoyalty).values(survey_key=survey_key, kind=kind, day=day, **cells)
    await session.execute(
        loyalty.on_conflict_do_update(
            index_elements=["survey_key", "kind", "day"],
            set_={c: getattr(DailyLoyalty, c) + getattr(loyalty.excluded, c) for c in cells},
        )
    )


async def _responded(
    session: AsyncSession, event: ResponseCompleted, *, survey_key: int, language: str | None
) -> None:
    """Mark the invitation answered (its funnel events may come later, or never for a link)."""
    statement = insert(Invitation).values(
        workspace_id=event.workspace_id,
        invitation_id=event.invitation_id,
        survey_key=survey_key,
        kind=event.kind,
        channel=event.channel,
        language=language,
        day=utc_day(event.completed_at),
        responded_at=event.completed_at,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace_id", "invitation_id"], set_={"responded_at": event.completed_at}
        )
    )


async def _comments(
    session: AsyncSession,
    event: ResponseCompleted,
    *,
    response_key: int,
    survey_key: int,
    day: date,
    nps: int | None,
    dims: dict[str, str],
) -> None:
    """Read every open answer: language, sentiment and lemmas (for themes), on this machine."""
    rows = []
    for answer in event.answers:
        if answer.type != "open" or not isinstance(answer.value, str) or not answer.value.strip():
            continue
        text = answer.value.strip()
        found = analyse(text, hint=dims.get("language"))
        rows.append(
            {
                "response_key": response_key,
                "question_id": answer.question_id,
                "workspace_id": event.workspace_id,
                "survey_key": survey_key,
                "day": day,
                "kind": event.kind,
                "text": text,
                "language": found.language,
                "confidence": found.confidence,
                "sentiment": found.sentiment,
                "label": found.label,
                "lemmas": found.lemma_text,
                "nps": nps,
            }
        )
    if rows:
        await session.execute(insert(Comment).values(rows).on_conflict_do_nothing())


async def erase_contact(session: AsyncSession, *, event: ContactErased) -> int:
    """Remove the contact's comments and what was read from them, and unlink them from their scored
    responses (the scores and segments stay, anonymous); return how many responses."""
    theirs = select(ScoredResponse.key).where(
        ScoredResponse.workspace_id == event.workspace_id, ScoredResponse.contact_id == event.contact_id
    )
    await session.execute(delete(Comment).where(Comment.response_key.in_(theirs)))
    result = await session.execute(
        update(ScoredResponse)
        .where(
            ScoredResponse.workspace_id == event.workspace_id, ScoredResponse.contact_id == event.contact_id
        )
        .values(contact_id=None)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
