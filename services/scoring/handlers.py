"""What happens when a response is completed or a contact erased, and how reports are read."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import domain
from services.scoring.models import DailyScore, ScoredResponse, SurveyScoring
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
from shared.vocabulary import Interval, NpsScale


async def nps_scale_for(
    session: AsyncSession, *, workspace_id: str, survey_id: str | None, default: NpsScale
) -> NpsScale:
    """Return the survey's NPS scale, or ``default`` when it has none."""
    if survey_id is None:
        return default
    scale = await session.scalar(
        select(SurveyScoring.nps_scale).where(
            SurveyScoring.workspace_id == workspace_id, SurveyScoring.survey_id == survey_id
        )
    )
    return scale or default  # type: ignore[return-value]


async def score_response(
    session: AsyncSession, outbox: Outbox, *, event: ResponseCompleted, default_scale: NpsScale
) -> domain.Scored | None:
    """Record the response once, count its score and publish what it means; return the score.

    A response seen before (same workspace and response id) changes nothing, whatever the event id.
    """
    scale = await nps_scale_for(
        session, workspace_id=event.workspace_id, survey_id=event.survey_id, default=default_scale
    )
    answers = [domain.AnswerView(a.type, a.value, a.scale) for a in event.answers]
    try:
        scored = domain.score_answers(answers, nps_scale=scale)
    except domain.ScoreOutOfRange as exc:
        raise PoisonMessage(f"response {event.response_id}: {exc}") from exc

    inserted = (
        await session.execute(
            insert(ScoredResponse)
            .values(
                workspace_id=event.workspace_id,
                response_id=event.response_id,
                request_id=event.request_id,
                contact_id=event.contact_id,
                survey_id=event.survey_id,
                survey_version=event.survey_version,
                kind=event.kind,
                channel=event.channel,
                consent_to_contact=event.consent_to_contact,
                completed_at=event.completed_at,
                metric=scored.metric if scored else None,
                score=scored.score if scored else None,
                classification=scored.classification if scored else None,
                negative=scored.negative if scored else False,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "response_id"])
            .returning(ScoredResponse.id)
        )
    ).scalar_one_or_none()
    if inserted is None or scored is None:
        return None

    day = _utc_day(event.completed_at)
    await session.execute(
        insert(DailyScore)
        .values(
            workspace_id=event.workspace_id,
            survey_id=event.survey_id,
            metric=scored.metric,
            day=day,
            score=scored.score,
            count=1,
        )
        .on_conflict_do_update(
            index_elements=["workspace_id", "survey_id", "metric", "day", "score"],
            set_={"count": DailyScore.count + 1},
        )
    )
    now = utcnow()
    answer = ScoredAnswer(
        question_id=next(
            a.question_id for a in event.answers if a.type == scored.metric and a.value is not None
        ),
        metric=scored.metric,
        score=scored.score,
        classification=scored.classification,
        negative=scored.negative,
    )
    about = {
        "workspace_id": event.workspace_id,
        "response_id": event.response_id,
        "request_id": event.request_id,
        "contact_id": event.contact_id,
        "survey_id": event.survey_id,
        "kind": event.kind,
        "channel": event.channel,
        "scores": (answer,),
        "consent_to_contact": event.consent_to_contact,
        "respondent": event.respondent,
        "comment": domain.first_comment(answers),
    }
    await outbox.add(session, ResponseScored(**about, negative=scored.negative, scored_at=now))
    if scored.negative:
        await outbox.add(session, NegativeFeedbackDetected(**about, negatives=(answer,), detected_at=now))
    return scored


def _utc_day(moment: datetime) -> date:
    """Return the UTC calendar day of ``moment`` (a naive time is taken as UTC)."""
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


async def erase_contact(session: AsyncSession, *, event: ContactErased) -> int:
    """Unlink the contact from their scored responses (the scores stay, anonymous); return how many."""
    result = await session.execute(
        update(ScoredResponse)
        .where(
            ScoredResponse.workspace_id == event.workspace_id, ScoredResponse.contact_id == event.contact_id
        )
        .values(contact_id=None)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


async def set_survey_scoring(
    session: AsyncSession, *, workspace_id: str, survey_id: str, nps_scale: NpsScale
) -> None:
    """Store the survey's NPS scale."""
    await session.execute(
        insert(SurveyScoring)
        .values(workspace_id=workspace_id, survey_id=survey_id, nps_scale=nps_scale)
        .on_conflict_do_update(
            index_elements=["workspace_id", "survey_id"],
            set_={"nps_scale": nps_scale, "updated_at": func.now()},
        )
    )


async def survey_scoring(session: AsyncSession, *, workspace_id: str, survey_id: str) -> SurveyScoring | None:
    """Return the survey's own scoring settings, or None when the default applies."""
    return await session.get(SurveyScoring, (workspace_id, survey_id))


def _daily_filter(workspace_id: str, survey_id: str | None, since: date | None, until: date | None) -> list:
    conditions = [DailyScore.workspace_id == workspace_id]
    if survey_id is not None:
        conditions.append(DailyScore.survey_id == survey_id)
    if since is not None:
        conditions.append(DailyScore.day >= since)
    if until is not None:
        conditions.append(DailyScore.day <= until)
    return conditions


async def summaries(
    session: AsyncSession,
    *,
    workspace_id: str,
    survey_id: str | None,
    metrics: list[domain.Metric],
    scale: NpsScale,
    since: date | None = None,
    until: date | None = None,
) -> list[domain.Summary]:
    """Return one summary per metric (n = 0 and null scores where nothing was answered)."""
    rows = await session.execute(
        select(DailyScore.metric, DailyScore.score, func.sum(DailyScore.count))
        .where(*_daily_filter(workspace_id, survey_id, since, until), DailyScore.metric.in_(metrics))
        .group_by(DailyScore.metric, DailyScore.score)
    )
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    for metric, score, count in rows:
        histograms[metric][score] = int(count)
    return [domain.summarise(m, domain.tally(histograms[m], m, nps_scale=scale)) for m in metrics]


async def trend(
    session: AsyncSession,
    *,
    workspace_id: str,
    survey_id: str | None,
    metric: domain.Metric,
    scale: NpsScale,
    interval: Interval,
    since: date | None = None,
    until: date | None = None,
) -> list[tuple[date, domain.Summary]]:
    """Return (period start, summary) for every period with responses, oldest first."""
    period = func.date_trunc(interval, DailyScore.day).label("period")
    rows = await session.execute(
        select(period, DailyScore.score, func.sum(DailyScore.count))
        .where(*_daily_filter(workspace_id, survey_id, since, until), DailyScore.metric == metric)
        .group_by(period, DailyScore.score)
        .order_by(period)
    )
    histograms: dict[date, dict[int, int]] = defaultdict(dict)
    for start, score, count in rows:
        histograms[start.date()][score] = int(count)
    return [
        (start, domain.summarise(metric, domain.tally(h, metric, nps_scale=scale)))
        for start, h in sorted(histograms.items())
    ]
