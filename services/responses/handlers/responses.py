"""A response's life: started by its first answer (``ResponseStarted``), answers saved as they are
given, completed (``ResponseCompleted``, with a reward code when the survey gives one).

Both events continue the trace of the invitation when the survey link carries it (a span whose
parent is the link's ``traceparent``), so that one trace runs from the webhook to the case; a link
without it (a kiosk's, one issued before links carried it) leaves them in the request's trace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.domain.answers import Answer as KeptAnswer
from services.responses.domain.answers import (
    answer_scale,
    check_answers,
    check_value,
    completed_answers,
    consent_given,
    no_answer,
)
from services.responses.domain.definition import Question
from services.responses.handlers.errors import already_answered, answer_problems
from services.responses.handlers.rewards import claim_reward
from services.responses.handlers.visits import Visit, find_response, is_kiosk, respondent
from services.responses.models import Response, ResponseAnswer
from shared import tracing
from shared.errors import InvalidInput
from shared.events import Answer, ResponseCompleted, ResponseStarted, new_id, utcnow
from shared.outbox import Outbox
from shared.rows import from_row


async def _start(session: AsyncSession, outbox: Outbox, visit: Visit) -> Response:
    link = visit.link
    now = utcnow()
    kiosk = is_kiosk(link)
    # Two first answers racing for one invitation meet at the unique (workspace, link key) index —
    # or at (workspace, invitation id), the same value for an invitation, whichever PostgreSQL checks
    # first: so any unique conflict means "already started". The second waits for the first to commit
    # and then locks the row the first created.
    response = (
        await session.execute(
            insert(Response)
            .values(
                id=new_id(),
                workspace_id=link.workspace_id,
                survey_id=visit.survey.id,
                survey_version=visit.definition.version,
                link_key=link.invitation_id,
                invitation_id=None if kiosk else link.invitation_id,
                request_id=None if kiosk else link.request_id,
                kiosk_id=visit.kiosk.id if visit.kiosk else None,
                contact_id=link.contact_id,
                kind=link.kind,
                channel=link.channel,
                locale=visit.locale,
                hidden_fields=visit.fields,
                passed=[],
                consent_to_contact=False,
                started_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(Response)
        )
    ).scalar_one_or_none()
    if response is None:
        existing = await find_response(session, link=link, lock=True)
        assert existing is not None
        if existing.completed_at is not None:
            raise already_answered()
        return existing
    with tracing.span("response started", parent=link.traceparent):
        await outbox.add(session, started_event(visit, response_id=response.id, now=now))
    return response


def started_event(visit: Visit, *, response_id: str, now: datetime) -> ResponseStarted:
    """Return the ``ResponseStarted`` of a response the visit's first answer starts."""
    link = visit.link
    kiosk = is_kiosk(link)
    return ResponseStarted(
        workspace_id=link.workspace_id,
        response_id=response_id,
        invitation_id=None if kiosk else link.invitation_id,
        request_id=None if kiosk else link.request_id,
        contact_id=link.contact_id,
        survey_id=visit.survey.id,
        survey_version=visit.definition.version,
        kind=link.kind,
        channel=link.channel,
        started_at=now,
        hidden_fields=visit.fields,
    )


async def save_answers(
    session: AsyncSession,
    outbox: Outbox,
    *,
    visit: Visit,
    answers: Mapping[str, Any],
    passed: Iterable[str],
) -> Response:
    """Return the response with ``answers`` saved (None clears one) and ``passed`` questions marked.

    The first saved answer starts the response and publishes ``ResponseStarted``. The visit must
    have been opened with ``lock=True``; a completed response raises ``Conflict``.
    """
    if visit.completed:
        raise already_answered()
    response = visit.response or await _start(session, outbox, visit)
    visit.response = response
    positions = {q.id: i for i, q in enumerate(visit.questions)}
    types = {q.id: q.type for q in visit.questions}
    now = utcnow()
    cleared = [qid for qid, v in answers.items() if v is None]
    if cleared:
        await session.execute(
            delete(ResponseAnswer).where(
                ResponseAnswer.response_id == response.id, ResponseAnswer.question_id.in_(cleared)
            )
        )
    rows = [
        {
            "response_id": response.id,
            "question_id": qid,
            "workspace_id": response.workspace_id,
            "position": positions[qid],
            "type": types[qid],
            "value": v,
            "answered_at": now,
        }
        for qid, v in answers.items()
        if v is not None
    ]
    if rows:
        stmt = insert(ResponseAnswer).values(rows)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["response_id", "question_id"],
                set_={"value": stmt.excluded.value, "answered_at": stmt.excluded.answered_at},
            )
        )
    for qid, v in answers.items():
        if v is None:
            visit.answers.pop(qid, None)
        else:
            visit.answers[qid] = v
    response.passed = sorted(set(response.passed) | set(passed), key=lambda q: positions.get(q, 0))
    response.updated_at = now
    await session.flush()
    return response


async def complete(session: AsyncSession, outbox: Outbox, *, visit: Visit) -> Response:
    """Return the completed response and publish ``ResponseCompleted``; raise ``InvalidInput`` when a
    required question the respondent sees has no answer (nothing is stored then)."""
    if visit.completed:
        raise already_answered()
    kept, missing = completed_answers(visit.questions, visit.answers, visit.fields)
    if missing:
        raise answer_problems(missing)
    response = visit.response or await _start(session, outbox, visit)
    visit.response = response
    # Answers to questions that logic no longer shows (an earlier answer changed) are not part of it.
    await session.execute(
        delete(ResponseAnswer).where(
            ResponseAnswer.response_id == response.id,
            ResponseAnswer.question_id.not_in([a.question_id for a in kept]),
        )
    )
    now = utcnow()
    # Nobody can act on a "yes" from someone they cannot reach (a kiosk, a link without an address).
    consent = consent_given(kept) and visit.reachable
    response.completed_at = now
    response.updated_at = now
    response.consent_to_contact = consent
    pool_id = visit.definition.raw.get("reward_pool_id")
    if pool_id and not is_kiosk(visit.link):
        response.reward_code = await claim_reward(session, pool_id=pool_id, response_id=response.id)
    with tracing.span("response completed", parent=visit.link.traceparent):
        await outbox.add(session, completed_event(visit, response, kept, consent=consent, now=now))
    await session.flush()
    return response


def completed_event(
    visit: Visit, response: Response, kept: Sequence[KeptAnswer], *, consent: bool, now: datetime
) -> ResponseCompleted:
    """Return the ``ResponseCompleted`` of ``response`` completed with the ``kept`` answers."""
    by_id = {q.id: q for q in visit.questions}
    return from_row(
        ResponseCompleted,
        response,
        response_id=response.id,
        answers=tuple(_event_answer(by_id[a.question_id], a.value) for a in kept),
        consent_to_contact=consent,
        completed_at=now,
        respondent=respondent(visit.link),
    )


def _event_answer(q: Question, value: Any) -> Answer:
    if isinstance(value, list):
        return Answer(question_id=q.id, type=q.type, value=",".join(value), choices=tuple(value))
    return Answer(question_id=q.id, type=q.type, value=value, scale=answer_scale(q))


async def answer_all(
    session: AsyncSession, outbox: Outbox, *, visit: Visit, answers: Mapping[str, object], max_chars: int
) -> Response:
    """Return the completed response for a whole set of answers (merged with those saved before)."""
    if visit.completed:
        raise already_answered()
    accepted, problems = check_answers(visit.questions, answers, max_chars=max_chars)
    merged = {**visit.answers, **accepted}
    _, missing = completed_answers(visit.questions, merged, visit.fields)
    problems = {**missing, **problems}
    if problems:
        raise answer_problems(problems)
    await save_answers(session, outbox, visit=visit, answers=accepted, passed=[q.id for q in visit.questions])
    return await complete(session, outbox, visit=visit)


async def answer_one(
    session: AsyncSession, outbox: Outbox, *, visit: Visit, question_id: str, value: object, max_chars: int
) -> Response | None:
    """Return the response with one answer saved (null clears it); raise ``InvalidInput`` or ``Conflict``.

    Clearing an answer before any was given stores nothing: only an answer starts a response (and
    ``ResponseStarted`` stops the invitation's reminders)."""
    typed = checked_answer(visit, question_id=question_id, value=value, max_chars=max_chars)
    if typed is None and visit.response is None:
        return None
    return await save_answers(
        session, outbox, visit=visit, answers={question_id: typed}, passed=[question_id]
    )


def checked_answer(visit: Visit, *, question_id: str, value: object, max_chars: int) -> Any:
    """Return ``value`` as the answer to ``question_id`` stores it (None: no answer, clears it); raise
    ``InvalidInput``, or ``Conflict`` when the response is completed."""
    if visit.completed:
        raise already_answered()
    question = next((q for q in visit.questions if q.id == question_id), None)
    if question is None:
        raise InvalidInput(f"There is no question {question_id!r} in this survey.", field="question_id")
    typed: Any = None
    if not no_answer(question, value):
        typed, problem = check_value(question, value, max_chars=max_chars)
        if problem:
            raise answer_problems({question_id: problem})
    return typed
