"""Notification rules: every answer at or below a score in a segment tells a team channel, whether or
not the customer agreed to be contacted (the message then names no contact)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import domain
from services.scoring.handlers import surveys
from services.scoring.models import NotificationRule
from shared.errors import NotFound
from shared.events import NotificationRequested, ResponseCompleted, new_id

WEBHOOK_EVENT = "scoring.low_score"
"""The webhook event type integrators subscribe to for notification rules with channel ``webhook``."""


async def list_rules(session: AsyncSession, *, workspace_id: str) -> list[NotificationRule]:
    """Return the workspace's rules (looked up once per unit of work)."""
    known = surveys.memo(session, "notification_rules")
    if workspace_id not in known:
        known[workspace_id] = await _rules(session, workspace_id)
    return cast(list[NotificationRule], known[workspace_id])


async def _rules(session: AsyncSession, workspace_id: str) -> list[NotificationRule]:
    return list(
        (
            await session.scalars(
                select(NotificationRule)
                .where(NotificationRule.workspace_id == workspace_id)
                .order_by(NotificationRule.created_at, NotificationRule.id)
            )
        ).all()
    )


async def add_rule(session: AsyncSession, *, workspace_id: str, **values: object) -> NotificationRule:
    surveys.memo(session, "notification_rules").pop(workspace_id, None)
    rule = NotificationRule(id=new_id(), workspace_id=workspace_id, **values)
    session.add(rule)
    await session.flush()
    return rule


async def delete_rule(session: AsyncSession, *, workspace_id: str, rule_id: str) -> None:
    deleted = await session.execute(
        delete(NotificationRule).where(
            NotificationRule.workspace_id == workspace_id, NotificationRule.id == rule_id
        )
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"No notification rule {rule_id!r} in this workspace.", field="rule_id")


def message(
    event: ResponseCompleted, low: list[domain.Scored], dims: dict[str, str], comment: str | None
) -> tuple[str, str]:
    """Return the subject and body of a low-score notice (contact details only with consent)."""
    scores = ", ".join(f"{s.metric.upper()} {s.score} ({s.question_id})" for s in low)
    subject = f"Low score on survey {event.survey_id}: {scores}"
    lines = [f"Survey: {event.survey_id}", f"Scores: {scores}", f"Response: {event.response_id}"]
    segment = ", ".join(f"{k}={v}" for k, v in dims.items())
    if segment:
        lines.append(f"Segment: {segment}")
    if comment:
        lines.append(f"Comment: {comment}")
    if event.consent_to_contact and event.respondent and event.respondent.reachable:
        who = event.respondent
        lines.append(
            f"Contact (agreed to be contacted): {who.name or ''} {who.email or who.phone or ''}".rstrip()
        )
    else:
        lines.append("The customer did not agree to be contacted: learn from it, do not reach out.")
    return subject, "\n".join(lines)


def notifications_for(
    rules: list[NotificationRule],
    *,
    event: ResponseCompleted,
    scored: tuple[domain.Scored, ...],
    dimensions: dict[str, str],
    negative: domain.NegativeRules,
) -> list[NotificationRequested]:
    """Return one ``NotificationRequested`` per rule the response matches (a low enough answer of the
    rule's metric, in the rule's segment)."""
    out = []
    comment = next(
        (
            a.value.strip()
            for a in event.answers
            if a.type == "open" and isinstance(a.value, str) and a.value.strip()
        ),
        None,
    )
    for rule in rules:
        limit = rule.max_score if rule.max_score is not None else getattr(negative, rule.metric)
        low = [s for s in scored if s.metric == rule.metric and s.score <= limit]
        if not low or not domain.parse_filters(rule.filters).matches(dimensions):
            continue
        subject, body = message(event, low, dimensions, comment)
        # A body with the comment or who to call quotes the contact: their erasure takes it back.
        quotes = bool(comment) or (event.consent_to_contact and event.respondent is not None)
        out.append(
            NotificationRequested(
                workspace_id=event.workspace_id,
                notification_id=new_id(),
                channel=rule.channel,
                to=WEBHOOK_EVENT if rule.channel == "webhook" else rule.to,
                subject=subject,
                body=body,
                contact_id=event.contact_id if quotes else None,
            )
        )
    return out
