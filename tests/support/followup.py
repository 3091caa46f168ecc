"""For followup's tests: a respondent, and answers as scoring publishes them (``ResponseScored``) — a
retention survey's answer that closes the loop, or any one-question answer."""

from __future__ import annotations

from shared.events import Recipient, ResponseScored, ScoredAnswer, new_id, utcnow

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
