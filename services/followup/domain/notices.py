"""What people are told: a new case, an escalation (sent by dispatch as email or chat)."""

from __future__ import annotations


def new_case_notice(*, metric: str, score: int, comment: str | None, case_id: str) -> tuple[str, str]:
    """Return the subject and body that tell staff a customer is waiting to hear back."""
    subject = f"New follow-up: {metric.upper()} {score} from a customer who agreed to be contacted"
    said = f'They said: "{comment}"' if comment else "They left no comment."
    body = (
        f"A customer answered {score} on {metric.upper()} and agreed to be contacted.\n{said}\n\n"
        f"Case {case_id}: call them back (GET /v1/cases/{case_id} on the follow-up API)."
    )
    return subject, body


def escalation_notice(*, step: str, why: str, case_id: str, assignee: str | None) -> tuple[str, str]:
    """Return the subject and body of an escalation."""
    subject = f"Escalation: follow-up case {case_id[:8]} — {step}"
    body = (
        f"{why}\nAssigned to: {assignee or 'nobody yet'}.\n\n"
        f"Case {case_id}: GET /v1/cases/{case_id} on the follow-up API."
    )
    return subject, body


def assigned_notice(*, case_id: str, agent_name: str) -> tuple[str, str]:
    return (
        f"A follow-up case is yours: {case_id[:8]}",
        f"{agent_name}, case {case_id} was assigned to you. GET /v1/cases/{case_id} shows who to call.",
    )
