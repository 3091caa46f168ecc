"""ORM rows to API bodies (the read models of the routes)."""

from __future__ import annotations

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
from shared.rows import from_row


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
    return from_row(
        CaseOut,
        c,
        contact=from_row(Contact, c, prefix="contact_"),
        answers=[AnswerOut(**a) for a in c.scores],
        sla=from_row(
            Sla,
            c,
            policy_id=c.sla_policy_id,
            first_contact_met=sla.met(c.first_contacted_at, c.first_contact_due_at),
            resolution_met=sla.met(c.resolved_at, c.resolution_due_at),
        ),
        resolution=from_row(Resolution, c, note=c.resolution_note),
        retention=from_row(Retention, c, prefix="retention_", won_back=c.won_back),
        erased=c.erased_at is not None,
    )


def note_out(n: CaseNote) -> NoteOut:
    return from_row(NoteOut, n)


def history_out(e: CaseEntry) -> HistoryOut:
    return from_row(HistoryOut, e)


def decision_out(d: Decision) -> DecisionOut:
    return from_row(DecisionOut, d)
