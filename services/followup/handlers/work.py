"""What agents do to a case: assign it, move its status, add notes, set its priority, resolve it (which
sends the retention survey), reopen it — each change recorded with its actor and published."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.domain import cases as rules
from services.followup.domain import notices, sla
from services.followup.domain import taxonomy as causes
from services.followup.handlers import common, notify, surveys
from services.followup.handlers.routing import active_agent, pick_in_team
from services.followup.models import Agent, Case, CaseNote, Team
from shared.errors import Conflict, InvalidInput
from shared.events import (
    FollowUpAssigned,
    FollowUpNoteAdded,
    FollowUpPriorityChanged,
    FollowUpReopened,
    FollowUpResolved,
    Recipient,
    SurveyRequested,
    new_id,
)
from shared.outbox import Outbox
from shared.rows import from_row


def _refused(what: str, exc: Exception) -> Conflict:
    return Conflict(f"Cannot {what}: {exc}.", field="status")


async def add_note(
    session: AsyncSession,
    outbox: Outbox,
    case: Case,
    *,
    body: str,
    attachments: Sequence[dict[str, str]] = (),
    actor: str,
    now: datetime,
) -> CaseNote:
    """Return the note appended to the case (notes are never edited)."""
    note = CaseNote(
        id=new_id(),
        workspace_id=case.workspace_id,
        case_id=case.id,
        author=actor,
        body=body,
        attachments=list(attachments),
        created_at=now,
    )
    session.add(note)
    await common.record(
        session,
        outbox,
        case,
        "note_added",
        FollowUpNoteAdded(
            **common.about(case, now=now, actor=actor), note_id=note.id, attachments=len(attachments)
        ),
        actor=actor,
        now=now,
        note_id=note.id,
    )
    return note


async def assign(
    session: AsyncSession,
    outbox: Outbox,
    case: Case,
    *,
    agent_id: str | None,
    team_id: str | None,
    note: str | None,
    actor: str,
    now: datetime,
    legacy: bool = False,
    reason: str | None = None,
) -> Case:
    """Return the case given to an agent and/or a team (a team alone: its next member in turn)."""
    try:
        rules.check_assignable(case.status)
    except rules.TransitionRefused as exc:
        raise _refused("assign", exc) from exc
    config = await common.load_config(session, case.workspace_id)
    if config.workflow.note_on_reassign and not note and case.assignee is not None:
        raise InvalidInput("This workspace asks for a note with every reassignment.", field="note")
    team = await session.get(Team, team_id) if team_id else await common.team_of(session, case)
    if team_id and (team is None or team.workspace_id != case.workspace_id):
        raise InvalidInput(f"No team {team_id!r} in this workspace.", field="team_id")
    if agent_id is not None and not await active_agent(
        session, workspace_id=case.workspace_id, agent_id=agent_id
    ):
        if not legacy:
            raise InvalidInput(
                f"No active agent {agent_id!r}: add them with PUT /v1/agents/{{agent_id}} first.",
                field="agent_id",
            )
        # The old API assigned free text: the name becomes an agent of its own.
        await session.merge(Agent(workspace_id=case.workspace_id, id=agent_id, name=agent_id, active=True))
    if agent_id is None and team is not None and team_id:
        agent_id = await pick_in_team(session, team, now=now)
    new_team = team.id if team is not None and team_id else case.team_id
    if agent_id == case.assignee and new_team == case.team_id:
        return case
    previous = case.assignee
    case.assignee = agent_id
    if new_team != case.team_id:
        case.team_id = new_team
        await common.apply_sla(session, case, team=team)
        await common.schedule_escalation(session, case)
    if note:
        await add_note(session, outbox, case, body=note, actor=actor, now=now)
    await common.record(
        session,
        outbox,
        case,
        "assigned",
        FollowUpAssigned(
            **common.about(case, now=now, actor=actor),
            assignee=agent_id or "",
            team_id=case.team_id,
            previous_assignee=previous,
            reason=reason,
        ),
        actor=actor,
        now=now,
        assignee=agent_id,
        team_id=case.team_id,
        reason=reason,
    )
    agent = await session.get(Agent, (case.workspace_id, agent_id)) if agent_id else None
    if agent is not None and agent.email:
        subject, body = notices.assigned_notice(case_id=case.id, agent_name=agent.name)
        await notify.send(session, outbox, case.workspace_id, [("email", agent.email)], subject, body)
    return case


async def _resume(session: AsyncSession, case: Case, *, now: datetime) -> None:
    """End a pause: the due times move by the time the case waited on the customer."""
    if case.paused_at is None:
        return
    team = await common.team_of(session, case)
    common.set_due(
        case,
        sla.resume(common.due_of(case), paused_at=case.paused_at, now=now, calendar=common.calendar_of(team)),
    )
    case.paused_at = None


async def change_status(
    session: AsyncSession,
    outbox: Outbox,
    case: Case,
    *,
    status: str,
    note: str | None,
    actor: str,
    now: datetime,
) -> Case:
    """Return the case moved to ``status`` (forward only unless the workspace allows going back)."""
    config = await common.load_config(session, case.workspace_id)
    try:
        rules.check_status_change(config.workflow, current=case.status, target=status, note=note)
    except rules.UnknownStatus as exc:
        raise InvalidInput(str(exc), field="status") from exc
    except rules.NoteRequired as exc:
        raise InvalidInput(f"{exc}.", field="note") from exc
    except rules.TransitionRefused as exc:
        raise _refused(f"move the case to {status}", exc) from exc
    previous = case.status
    case.status = status
    if status == rules.CLOSED:
        case.closed_at = now
    if rules.counts_as_contact(config.workflow, status) and case.first_contacted_at is None:
        case.first_contacted_at = now
    waiting = config.workflow.waits_on_customer(status)
    if waiting and case.paused_at is None and await common.pauses(session, case):
        case.paused_at = now
    elif not waiting:
        await _resume(session, case, now=now)
    await common.schedule_escalation(session, case)
    if note:
        await add_note(session, outbox, case, body=note, actor=actor, now=now)
    await common.record_status_change(
        session, outbox, case, from_status=previous, to_status=status, actor=actor, now=now
    )
    return case


async def set_priority(
    session: AsyncSession, outbox: Outbox, case: Case, *, priority: str, actor: str, now: datetime
) -> Case:
    """Return the case at ``priority``, its due times recomputed from its opening by the matching policy."""
    if not rules.is_active(case.status):
        raise _refused("change the priority", rules.TransitionRefused(f"the case is {case.status}"))
    if priority == case.priority:
        return case
    previous, case.priority = case.priority, priority
    await common.apply_sla(session, case, team=await common.team_of(session, case))
    await common.schedule_escalation(session, case)
    await common.record(
        session,
        outbox,
        case,
        "priority_changed",
        FollowUpPriorityChanged(
            **common.about(case, now=now, actor=actor),
            from_priority=previous,
            to_priority=priority,
            first_contact_due_at=case.first_contact_due_at,
            resolution_due_at=case.resolution_due_at,
        ),
        actor=actor,
        now=now,
        from_priority=previous,
        to_priority=priority,
    )
    return case


async def resolve(
    session: AsyncSession,
    outbox: Outbox,
    case: Case,
    *,
    root_cause: tuple[str, str],
    action_taken: str,
    note: str | None,
    actor: str,
    now: datetime,
    legacy: bool = False,
) -> Case:
    """Return the resolved case; the retention survey is requested over the customer's channel, or the
    case closes at once when the customer has none (``retention_status`` says which)."""
    try:
        rules.check_resolvable(case.status)
    except rules.TransitionRefused as exc:
        raise _refused("resolve", exc) from exc
    config = await common.load_config(session, case.workspace_id)
    if not legacy:
        try:
            causes.check_root_cause(config.taxonomy, *root_cause)
        except ValueError as exc:
            raise InvalidInput(f"{exc}.", field="root_cause") from exc
    await _resume(session, case, now=now)
    previous = case.status
    case.status = rules.RESOLVED
    case.resolved_at = now
    case.first_contacted_at = case.first_contacted_at or now
    case.root_cause_category, case.root_cause = root_cause
    case.action_taken = action_taken
    case.resolution_note = note or action_taken
    settings = config.settings
    survey_id = settings.retention_survey_id if settings else None
    route = rules.retention_route(
        answered_on=case.channel,  # type: ignore[arg-type]
        default_channel=(settings.retention_channel if settings else "email"),  # type: ignore[arg-type]
        contact_known=case.contact_known or case.erased_at is not None,  # erased: no channel left
        email=case.contact_email,
        phone=case.contact_phone,
    )
    if survey_id is None:
        case.retention_status, case.retention_request_id = "not_requested", None
    elif not route.possible or not await _still_open(session, case.workspace_id, survey_id):
        case.retention_status, case.retention_request_id = "not_possible", None
    else:
        case.retention_status, case.retention_request_id = "requested", new_id()
        case.retention_channel = route.channel
    await common.schedule_escalation(session, case)
    await common.record(
        session,
        outbox,
        case,
        "resolved",
        FollowUpResolved(
            **common.about(case, now=now, actor=actor),
            note=case.resolution_note,
            retention_request_id=case.retention_request_id,
            root_cause_category=case.root_cause_category,
            root_cause=case.root_cause,
            action_taken=action_taken,
            retention=case.retention_status,
        ),
        actor=actor,
        now=now,
        note=case.resolution_note,
        root_cause=causes.label(*root_cause),
        retention_request_id=case.retention_request_id,
        from_status=previous,
    )
    if case.retention_status == "requested" and settings is not None and survey_id is not None:
        delay = settings.retention_delay_seconds
        await outbox.add(
            session,
            SurveyRequested(
                workspace_id=case.workspace_id,
                request_id=case.retention_request_id or "",
                contact_id=case.contact_id or "",
                survey_id=survey_id,
                kind="retention",
                channel=route.channel or "email",
                send_at=now + timedelta(seconds=delay) if delay else None,
                recipient=_recipient(case),
                reason=rules.retention_reason(case.id),
                fallback_channels=route.fallbacks,
                locale=case.contact_locale,
            ),
        )
    elif case.retention_status == "not_possible":
        await common.close_without_retention(
            session, outbox, case, reason="retention survey not possible", now=now
        )
    return case


def _recipient(case: Case) -> Recipient | None:
    if not case.contact_known:
        return None  # dispatch reaches the contact the way it did last
    return from_row(Recipient, case, prefix="contact_")


async def reopen(
    session: AsyncSession, outbox: Outbox, case: Case, *, reason: str, actor: str, now: datetime
) -> Case:
    """Return the case worked again: in progress once the customer was contacted, else open."""
    try:
        rules.check_reopenable(case.status)
    except rules.TransitionRefused as exc:
        raise _refused("reopen", exc) from exc
    previous = case.status
    case.status = rules.reopened_status(contacted=case.first_contacted_at is not None)
    case.reopen_count += 1
    case.resolved_at = case.closed_at = None
    case.retention_status = case.retention_request_id = case.retention_channel = None
    case.won_back = case.retention_score = None
    await common.schedule_escalation(session, case)
    await common.record(
        session,
        outbox,
        case,
        "reopened",
        FollowUpReopened(
            **common.about(case, now=now, actor=actor),
            reason=reason,
            from_status=previous,
            to_status=case.status,
        ),
        actor=actor,
        now=now,
        reason=reason,
        from_status=previous,
        to_status=case.status,
    )
    return case


def summary(case: Case) -> dict[str, Any]:
    return {"id": case.id, "status": case.status, "assignee": case.assignee, "team_id": case.team_id}


async def _still_open(session: AsyncSession, workspace_id: str, survey_id: str) -> bool:
    """Whether the retention survey can still be answered: closed since it was set, nobody is asked (a
    survey followup has not heard of is given the benefit of the doubt)."""
    return await surveys.is_open(session, workspace_id=workspace_id, survey_id=survey_id) is not False
