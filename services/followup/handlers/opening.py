"""What happens when scores arrive: a response opens a case (or the reason it did not is recorded),
every scored response is counted for the funnel (later answers go to ``outcomes``); a score of a
contact erased by now opens nothing and names nobody (``erasure``)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain import cases as rules
from services.followup.domain import notices
from services.followup.domain import routing as routing_rules
from services.followup.handlers import common, erasure, notify, outcomes
from services.followup.handlers.routing import active_agent, load_rules, lock_team, pick_in_team
from services.followup.models import Agent, Case, Decision, SeenResponse, Team
from shared.events import (
    EventData,
    FollowUpAssigned,
    FollowUpOpened,
    NegativeFeedbackDetected,
    ResponseScored,
    new_id,
)
from shared.outbox import Outbox
from shared.rows import from_row

RESPONSES_SKIPPED = Counter(
    "closeloop_followup_negative_feedback_skipped_total",
    "Responses calling for a follow-up that opened no case",
    ["reason"],
)
_ScoreEvent = NegativeFeedbackDetected | ResponseScored


def _decision(
    event: _ScoreEvent, *, kind: str, outcome: str, reason: str, now: datetime, **more: str | None
) -> Decision:
    return Decision(
        workspace_id=event.workspace_id,
        response_id=event.response_id,
        contact_id=event.contact_id or None,
        kind=kind,
        outcome=outcome,
        reason=reason,
        created_at=now,
        **more,
    )


async def open_case(
    session: AsyncSession,
    outbox: Outbox,
    *,
    event: _ScoreEvent,
    now: datetime,
    because: rules.OpenedBecause | None,
) -> Case | None:
    """Return the case opened for this response, or None (the reason is recorded as a decision).

    The case is routed and its due times and escalation schedule computed before it is written, so
    that opening one takes one insert per table (this runs for every detractor, at the consumer's pace).
    """
    respondent = event.respondent
    decision = rules.decide_opening(
        kind=event.kind,
        consent_to_contact=event.consent_to_contact,
        respondent=rules.Respondent(respondent is not None, respondent is not None and respondent.reachable),
        because=because,
    )
    if not decision.open_task:
        if decision.code in ("no_consent", "unreachable"):
            RESPONSES_SKIPPED.labels(decision.code).inc()
            session.add(
                _decision(event, kind="opening", outcome=decision.code, reason=decision.reason, now=now)
            )
        return None
    seen = await session.scalar(
        select(Case.id).where(Case.workspace_id == event.workspace_id, Case.response_id == event.response_id)
    )
    if seen is not None:  # the same response again (another event id, or both of scoring's events)
        return None
    trigger = next((s for s in event.scores if s.negative), event.scores[0] if event.scores else None)
    contact = respondent
    case = Case(
        id=new_id(),
        workspace_id=event.workspace_id,
        status=rules.OPEN,
        priority="normal",
        opened_because=decision.because,
        response_id=event.response_id,
        request_id=event.request_id,
        survey_id=event.survey_id,
        contact_id=event.contact_id,
        kind=event.kind,
        channel=event.channel,
        metric=trigger.metric if trigger else "nps",
        score=trigger.score if trigger else 0,
        scores=[s.model_dump(mode="json") for s in event.scores],
        loyalty=event.loyalty,
        dimensions=dict(event.dimensions),
        comment=event.comment,
        contact_known=contact is not None,
        contact_name=contact.name if contact else None,
        contact_email=contact.email if contact else None,
        contact_phone=contact.phone if contact else None,
        contact_locale=contact.locale if contact else None,
        contact_timezone=contact.timezone if contact else None,
        contact_company=contact.company if contact else None,
        reopen_count=0,
        feedback_at=getattr(event, "detected_at", None) or getattr(event, "scored_at", now),
        created_at=now,
        updated_at=now,
    )
    opened = _decision(
        event, kind="opening", outcome="opened", reason=decision.reason, now=now, case_id=case.id
    )
    session.add(opened)
    with session.no_autoflush:  # everything is written at once below
        config = await common.load_config(session, case.workspace_id)
        team, agent_email = await _route(session, event, case, config=config, now=now)
        await common.apply_sla(session, case, team=team)
        steps = await common.load_steps(session, case.workspace_id)
    session.add(case)
    session.add(
        common.entry(
            case,
            "opened",
            actor="system",
            now=now,
            score=case.score,
            metric=case.metric,
            because=decision.because,
            team_id=case.team_id,
            assignee=case.assignee,
        )
    )
    await session.flush()
    await common.schedule_escalation(session, case, steps=steps, done=())
    events: list[EventData] = [
        from_row(
            FollowUpOpened,
            case,
            **common.about(case, now=now, actor="system"),
            opened_because=decision.because or "negative",
        )
    ]
    if case.assignee:
        events.append(
            FollowUpAssigned(
                **common.about(case, now=now, actor="system"),
                assignee=case.assignee,
                team_id=case.team_id,
                reason="routing",
            )
        )
    subject, body = notices.new_case_notice(
        metric=case.metric, score=case.score, comment=case.comment, case_id=case.id
    )
    settings = config.settings
    targets: list[notify.Target] = (
        [("email", settings.notify_email)] if settings and settings.notify_email else []
    )
    targets += notify.team_targets(team)
    if agent_email:
        targets.append(("email", agent_email))
    # The notice quotes the customer's comment: it names them, so that their erasure can take it back.
    events += notify.notifications(case.workspace_id, targets, subject, body, contact_id=case.contact_id)
    await common.add_events(session, outbox, events)
    return case


async def _route(
    session: AsyncSession, event: _ScoreEvent, case: Case, *, config: common.WorkspaceConfig, now: datetime
) -> tuple[Team | None, str | None]:
    """Route the new case (team, agent, priority), record why; return its team and the agent's email."""
    facts = routing_rules.Facts(
        case.survey_id,
        {**event.dimensions, "channel": event.channel or ""},
        [(s.metric, s.score) for s in event.scores],
    )
    verdict = routing_rules.route(
        await load_rules(session, case.workspace_id),
        facts,
        default_team_id=config.settings.default_team_id if config.settings else None,
    )
    reason = verdict.reason
    team = (
        await lock_team(session, workspace_id=case.workspace_id, team_id=verdict.team_id)
        if verdict.team_id
        else None
    )
    if verdict.priority:
        case.priority = verdict.priority
    email = None
    if verdict.agent_id:
        agent = await active_agent(session, workspace_id=case.workspace_id, agent_id=verdict.agent_id)
        if agent is not None:
            case.assignee, email = agent.id, agent.email
        else:
            reason += f"; agent {verdict.agent_id} is unknown or inactive → the unassigned queue"
    if team is not None:
        case.team_id = team.id
        if case.assignee is None:
            case.assignee = await pick_in_team(session, team, now=now, locked=True)
            reason += (
                f" ({team.strategy}: {case.assignee})"
                if case.assignee
                else " (no active member: the team's queue)"
            )
            if case.assignee:
                agent = await session.get(Agent, (case.workspace_id, case.assignee))
                email = agent.email if agent else None
    session.add(
        _decision(
            event,
            kind="routing",
            outcome="routed" if verdict.rule_id else "default",
            reason=reason,
            now=now,
            case_id=case.id,
            rule_id=verdict.rule_id,
            team_id=case.team_id,
            assignee=case.assignee,
        )
    )
    return team, email


async def on_negative_feedback(
    session: AsyncSession, outbox: Outbox, *, event: NegativeFeedbackDetected, now: datetime
) -> Case | None:
    """Return the case opened for negative feedback, or None."""
    anonymous = await erasure.anonymous(session, event)
    if anonymous is not event:
        _erased(session, anonymous, now=now)
        return None
    return await open_case(session, outbox, event=event, now=now, because="negative")


def _erased(session: AsyncSession, event: _ScoreEvent, *, now: datetime) -> None:
    """Record that no case opens: the contact was erased before their score arrived."""
    RESPONSES_SKIPPED.labels("erased").inc()
    reason = "the contact was erased before the score arrived: nobody is left to call"
    session.add(_decision(event, kind="opening", outcome="erased", reason=reason, now=now))


async def on_response_scored(
    session: AsyncSession, outbox: Outbox, *, event: ResponseScored, now: datetime
) -> None:
    """Count the response, open a case when a workspace rule asks for one (negative feedback opens
    through its own event), record a retention outcome, and mark detractors who climbed. The score of a
    contact erased by now is counted without naming them."""
    event = await erasure.anonymous(session, event)
    consented = event.consent_to_contact
    await session.execute(
        insert(SeenResponse)
        .values(
            workspace_id=event.workspace_id,
            response_id=event.response_id,
            contact_id=event.contact_id or None,
            survey_id=event.survey_id,
            kind=event.kind,
            negative=event.negative,
            consented=consented,
            promoter=any(s.classification == "promoter" for s in event.scores),
            dimensions=dict(event.dimensions),
            scored_at=event.scored_at,
        )
        .on_conflict_do_nothing()
    )
    await outcomes.record_outcome(session, outbox, event=event, now=now)
    await outcomes.record_climb(session, outbox, event=event, now=now)
    if event.negative or event.kind == "retention":
        return
    config = await common.load_config(session, event.workspace_id)
    because = rules.why_open(
        negative=False,
        loyalty=event.loyalty,
        scores=[(s.metric, s.score) for s in event.scores],
        rules=config.opening,
    )
    if because is not None and not event.contact_id:
        _erased(session, event, now=now)
    elif because is not None:
        await open_case(session, outbox, event=event, now=now, because=because)
