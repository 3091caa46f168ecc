"""Scoring's batch writes (``ingest.flush``: one ``INSERT … SELECT FROM unnest(…)`` per table) against
the real database, as the consumer's transaction runs them (a rolled-back session, no broker): every
row of a batch lands once with its columns, rollups are summed, an invitation answered twice in one
batch keeps its last answer, a response repeated in a batch or in a later one changes nothing, and
each event is stored once, in order, in its response's trace."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.handlers import ingest
from services.scoring.models import Answer as AnswerRow
from services.scoring.models import Comment, DailyHistogram, DailyLoyalty, Invitation, ScoredResponse, Survey
from services.scoring.models import outbox as scoring_outbox
from shared import tracing
from shared.events import Answer, ResponseCompleted, ResponseScored, new_id, utcnow
from shared.outbox import Outbox
from tests.support.db import outbox_events

OUTBOX = Outbox(scoring_outbox, source="scoring")


def response(
    workspace: str, *, nps: int, invitation_id: str | None = None, comment: str | None = None, **extra
):
    answers = [
        Answer(question_id="nps", type="nps", value=nps),
        Answer(question_id="nls", type="nls", value=9),
    ]
    if comment:
        answers.append(Answer(question_id="why", type="open", value=comment))
    return ResponseCompleted(
        workspace_id=workspace,
        response_id=new_id(),
        invitation_id=invitation_id,
        request_id=new_id(),
        contact_id="c-" + new_id()[:8],
        survey_id="svy-batch",
        survey_version=1,
        kind="transactional",
        channel="email",
        locale="en",
        answers=tuple(answers),
        consent_to_contact=True,
        completed_at=utcnow(),
        hidden_fields={"agent": "Grace", "attr.plan": "pro", "attr.tier": "gold"},
        **extra,
    )


async def handle(session: AsyncSession, events: list[ResponseCompleted]) -> list[str]:
    """Score ``events`` as one batch, each in a span of its own; return the spans' traceparents."""
    traces = []
    for event in events:
        with tracing.span("test") as traceparent:
            traces.append(traceparent)
            await ingest.score_response(session, OUTBOX, event=event, default_scale="standard")
    await ingest.flush(session)
    return traces


async def test_a_batch_writes_each_row_once_and_a_repeat_changes_nothing(uow, workspace):
    invitation = new_id()
    first = response(workspace, nps=3, invitation_id=invitation, comment="The delivery was late")
    second = response(workspace, nps=10, invitation_id=invitation)
    second = second.model_copy(update={"completed_at": first.completed_at + timedelta(seconds=5)})
    third = response(workspace, nps=10)
    traces = await handle(uow, [first, second, third, first])  # the first one twice in the batch

    responses = (
        await uow.execute(
            select(ScoredResponse.response_id, ScoredResponse.score, ScoredResponse.dimensions)
            .where(ScoredResponse.workspace_id == workspace)
            .order_by(ScoredResponse.key)
        )
    ).all()
    assert [(r.response_id, r.score) for r in responses] == [
        (first.response_id, 3),
        (second.response_id, 10),
        (third.response_id, 10),
    ]
    assert responses[0].dimensions == {
        "agent": "Grace",
        "channel": "email",
        "kind": "transactional",
        "language": "en",
        "plan": "pro",
        "tier": "gold",
    }
    survey_key = await uow.scalar(
        select(Survey.key).where(Survey.workspace_id == workspace, Survey.survey_id == "svy-batch")
    )
    answers = (
        await uow.execute(
            select(AnswerRow.metric, AnswerRow.score, AnswerRow.paired, AnswerRow.plan, AnswerRow.attributes)
            .where(AnswerRow.survey_key == survey_key)
            .order_by(AnswerRow.response_key, AnswerRow.question_id)
        )
    ).all()
    assert [tuple(a) for a in answers] == [
        ("nls", 9, None, "pro", {"tier": "gold"}),
        ("nps", 3, 9, "pro", {"tier": "gold"}),
        ("nls", 9, None, "pro", {"tier": "gold"}),
        ("nps", 10, 9, "pro", {"tier": "gold"}),
        ("nls", 9, None, "pro", {"tier": "gold"}),
        ("nps", 10, 9, "pro", {"tier": "gold"}),
    ]
    nps = await uow.scalar(
        select(DailyHistogram).where(DailyHistogram.survey_key == survey_key, DailyHistogram.metric == "nps")
    )
    assert nps is not None and (nps.n3, nps.n10, nps.n9) == (1, 2, 0)
    loyalty = await uow.scalar(select(DailyLoyalty).where(DailyLoyalty.survey_key == survey_key))
    assert loyalty is not None and (loyalty.standard_pure, loyalty.standard_trapped) == (2, 1)
    (comment,) = (await uow.scalars(select(Comment).where(Comment.workspace_id == workspace))).all()
    assert (comment.text, comment.language, comment.nps) == ("The delivery was late", "en", 3)
    answered = await uow.scalar(
        select(Invitation).where(Invitation.workspace_id == workspace, Invitation.invitation_id == invitation)
    )
    assert answered is not None and answered.responded_at == second.completed_at

    events = [e for e in await outbox_events(uow, scoring_outbox) if e.workspace_id == workspace]
    assert [(type(e).__name__, e.response_id) for e in events] == [  # type: ignore[attr-defined]
        ("ResponseScored", first.response_id),
        ("NegativeFeedbackDetected", first.response_id),
        ("ResponseScored", second.response_id),
        ("ResponseScored", third.response_id),
    ]
    payloads = (
        await uow.execute(
            select(scoring_outbox.c.event_id, scoring_outbox.c.payload)
            .where(scoring_outbox.c.payload["workspaceid"].astext == workspace)
            .order_by(scoring_outbox.c.seq)
        )
    ).all()
    assert [p.payload["traceparent"] for p in payloads] == [traces[0], traces[0], traces[1], traces[2]]
    assert all(p.event_id == p.payload["id"] for p in payloads)

    # The same responses again, in a later batch: nothing changes, nothing is published.
    before = await _counts(uow, workspace, survey_key)
    await handle(uow, [third, first])
    assert await _counts(uow, workspace, survey_key) == before
    scored = [e for e in await outbox_events(uow, scoring_outbox) if isinstance(e, ResponseScored)]
    assert len([e for e in scored if e.workspace_id == workspace]) == 3


async def _counts(session: AsyncSession, workspace: str, survey_key: int) -> str:
    rows = {
        "responses": await session.scalar(
            select(func.count()).select_from(ScoredResponse).where(ScoredResponse.workspace_id == workspace)
        ),
        "answers": await session.scalar(
            select(func.count()).select_from(AnswerRow).where(AnswerRow.survey_key == survey_key)
        ),
        "histograms": await session.scalar(
            text("SELECT sum(n3 + n9 + n10) FROM scoring.daily_histograms WHERE survey_key = :k"),
            {"k": survey_key},
        ),
        "outbox": await session.scalar(
            select(func.count())
            .select_from(scoring_outbox)
            .where(scoring_outbox.c.payload["workspaceid"].astext == workspace)
        ),
    }
    return json.dumps(rows, default=str)
