"""For followup's tests: a respondent, answers as scoring publishes them (``ResponseScored``) — a
retention survey's answer that closes the loop, or any one-question answer — and the negative feedback
scoring publishes for a detractor (``NegativeFeedbackDetected``)."""

from __future__ import annotations

from typing import Any

from shared.events import NegativeFeedbackDetected, Recipient, ResponseScored, ScoredAnswer, new_id, utcnow

ADA = Recipient(
    name="Ada Lovelace",
    email="ada@example.com",
    phone="+31612345678",
    locale="nl-NL",
    timezone="Europe/Amsterdam",
    company="Engines BV",
)
"""A respondent with every contact detail, in another timezone than the agent's."""


def scored_answer(
    workspace: str,
    *,
    contact_id: str,
    request_id: str | None,
    kind: str,
    metric: str,
    score: int,
    classification: str,
    negative: bool,
) -> ResponseScored:
    """A scored response of one ``metric`` answer to the workspace's ``svy-{kind}`` survey."""
    return ResponseScored(
        workspace_id=workspace,
        response_id=new_id(),
        request_id=request_id,
        contact_id=contact_id,
        survey_id=f"svy-{kind}",
        kind=kind,
        scores=(
            ScoredAnswer(
                question_id=metric,
                metric=metric,
                score=score,
                classification=classification,
                negative=negative,
            ),
        ),
        negative=negative,
        scored_at=utcnow(),
    )


def retention_answer(
    workspace: str, request_id: str, *, score: int, negative: bool, contact_id: str = "c-1"
) -> ResponseScored:
    """The answer to the retention survey (CSAT) that followup requested with ``request_id``."""
    return scored_answer(
        workspace,
        contact_id=contact_id,
        request_id=request_id,
        kind="retention",
        metric="csat",
        score=score,
        classification="negative" if negative else "positive",
        negative=negative,
    )


def detractor_answers(**overrides: Any) -> tuple[ScoredAnswer, ...]:
    """One NPS answer of 3, a detractor's (``overrides`` change its fields)."""
    answer = {
        "question_id": "nps",
        "metric": "nps",
        "score": 3,
        "classification": "detractor",
        "negative": True,
    }
    return (ScoredAnswer(**{**answer, **overrides}),)


def negative_feedback(
    workspace: str,
    *,
    comment: str | None,
    scores: tuple[ScoredAnswer, ...] | None = None,
    contact_id: str = "c-1",
    kind: str = "transactional",
    consent: bool = True,
    **fields: Any,
) -> NegativeFeedbackDetected:
    """The negative feedback on a new response to the workspace's ``svy-nps`` survey: ``scores`` (by
    default ``detractor_answers()``) and the negative ones among them, with ``fields`` (``channel``,
    ``respondent``, ``dimensions`` …) as given."""
    answers = scores or detractor_answers()
    return NegativeFeedbackDetected(
        workspace_id=workspace,
        response_id=new_id(),
        request_id=new_id(),
        contact_id=contact_id,
        survey_id="svy-nps",
        kind=kind,
        scores=answers,
        negatives=tuple(a for a in answers if a.negative),
        consent_to_contact=consent,
        comment=comment,
        detected_at=utcnow(),
        **fields,
    )
