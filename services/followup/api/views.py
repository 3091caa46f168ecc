"""ORM rows to API bodies (the read models of the routes)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from services.followup.domain import sla
from services.followup.models import Case, CaseEntry, CaseNote, Decision
from services.followup.schemas.cases import (
    AnswerOut,
    CaseOut,
    Contact,
    DecisionOut,
    HistoryOut,
    NoteOut,
    Resolution,
    Retention,
    Sla,
)
from shared.access import Permission, Principal

M = TypeVar("M", bound=BaseModel)


def from_row(schema: type[M], row: object, **computed: Any) -> M:
    """Return ``schema`` filled from the same-named attributes of the ORM ``row``, but for the ``computed``
    fields given here."""
    return schema(
        **{name: getattr(row, name) for name in schema.model_fields if name not in computed}, **computed
    )


def shows_customer(principal: Principal) -> bool:
    """Whether the caller sees who a case's customer is (name, email, phone, company): those who work
    cases (``cases:write``: agents) or read contacts (``contacts:read``). Viewers see the case without them."""
    return principal.can(Permission.CASES_WRITE) or principal.can(Permission.CONTACTS_READ)


def for_caller(case: CaseOut, principal: Principal) -> CaseOut:
    """Return ``case`` as ``principal`` may see it: without the customer's details unless ``shows_customer``."""
    if shows_customer(principal):
        return case
    hidden = Contact(known=case.contact.known, locale=case.contact.locale, timezone=case.contact.timezone)
    return case.model_copy(update={"contact": hidden})


def case_out(c: Case) -> CaseOut:
    return CaseOut(
        id=c.id,
        status=c.status,
        priority=c.priority,
        opened_because=c.opened_because,
        response_id=c.response_id,
        request_id=c.request_id,
        survey_id=c.survey_id,
        contact_id=c.contact_id,
        kind=c.kind,
        channel=c.channel,
        contact=Contact(
            known=c.contact_known,
            name=c.contact_name,
            email=c.contact_email,
            phone=c.contact_phone,
            locale=c.contact_locale,
            timezone=c.contact_timezone,
            company=c.contact_company,
        ),
        answers=[AnswerOut(**a) for a in c.scores],
        loyalty=c.loyalty,
        dimensions=c.dimensions,
        comment=c.comment,
        team_id=c.team_id,
        assignee=c.assignee,
        sla=Sla(
            policy_id=c.sla_policy_id,
            first_contact_due_at=c.first_contact_due_at,
            first_contact_due_business_at=c.first_contact_due_business_at,
            resolution_due_at=c.resolution_due_at,
            resolution_due_business_at=c.resolution_due_business_at,
            paused_at=c.paused_at,
            first_contacted_at=c.first_contacted_at,
            first_contact_met=sla.met(c.first_contacted_at, c.first_contact_due_at),
            resolution_met=sla.met(c.resolved_at, c.resolution_due_at),
        ),
        resolution=Resolution(
            root_cause_category=c.root_cause_category,
            root_cause=c.root_cause,
            action_taken=c.action_taken,
            note=c.resolution_note,
            resolved_at=c.resolved_at,
        ),
        retention=Retention(
            status=c.retention_status,
            request_id=c.retention_request_id,
            channel=c.retention_channel,
            won_back=c.won_back,
            score=c.retention_score,
        ),
        climbed_at=c.climbed_at,
        reopen_count=c.reopen_count,
        erased=c.erased_at is not None,
        feedback_at=c.feedback_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
        closed_at=c.closed_at,
    )


def note_out(n: CaseNote) -> NoteOut:
    return from_row(NoteOut, n)


def history_out(e: CaseEntry) -> HistoryOut:
    return from_row(HistoryOut, e)


def decision_out(d: Decision) -> DecisionOut:
    return from_row(DecisionOut, d)
