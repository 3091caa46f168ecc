"""Pure rules of the dispatch service: whom to reach, what to say, when to try again."""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr

from shared.events import Recipient

QUESTIONS = {
    "transactional": "how was your experience with us?",
    "relationship": "how are we doing?",
    "retention": "did we solve it for you?",
}
INTROS = {
    "transactional": "Thank you for being in touch with us recently. We'd love to hear how it went.",
    "relationship": "You have been with us for a while now, and we'd love to know how we are doing.",
    "retention": "We recently followed up on your feedback. We'd like to know whether we got it right.",
}
MAX_RETRY_DELAY_S = 3600.0


def choose_recipient(requested: Recipient | None, previous: Recipient | None) -> Recipient | None:
    """Return the recipient the request names, else the one the contact was last invited at.

    A request without a recipient (a retention survey from followup) means "reach the contact
    the way dispatch reached them last"; a request that names one is authoritative.
    """
    return requested if requested is not None else previous


def undeliverable_reason(channel: str, recipient: Recipient | None) -> str | None:
    """Return why an invitation over ``channel`` cannot be delivered, or None when it can."""
    if channel == "link":
        return None
    if channel != "email":
        return f"channel {channel} not configured yet"
    if recipient is None:
        return (
            "no email address known: the request named no recipient and the contact "
            "has no earlier invitation with an email address"
        )
    if not recipient.email:
        return "no email address known: the request's recipient has no email address"
    return None


def clean_name(name: str | None) -> str | None:
    """Return the name on one line with single spaces, or None when there is none."""
    cleaned = " ".join((name or "").split())
    return cleaned or None


def first_name(name: str | None) -> str | None:
    """Return the first word of the name, the way a person is greeted."""
    cleaned = clean_name(name)
    return cleaned.split(" ")[0] if cleaned else None


def subject(kind: str, name: str | None) -> str:
    """Return the subject line: the question, addressed by first name when it is known."""
    question = QUESTIONS.get(kind, QUESTIONS["transactional"])
    first = first_name(name)
    return f"{first}, {question}" if first else question[0].upper() + question[1:]


def greeting(name: str | None) -> str:
    """Return "Hi Ada," or, without a name, "Hi,"."""
    first = first_name(name)
    return f"Hi {first}," if first else "Hi,"


def intro(kind: str) -> str:
    return INTROS.get(kind, INTROS["transactional"])


def retry_delay_s(attempts: int, *, base_s: float, cap_s: float = MAX_RETRY_DELAY_S) -> float:
    """Return the wait after the ``attempts``-th failed attempt: base, 2×base, 4×base …, capped."""
    return min(base_s * 2 ** max(attempts - 1, 0), cap_s)


def gives_up(attempts: int, *, max_attempts: int, permanent: bool = False) -> bool:
    """Return whether a failed send is final: a permanent error, or no attempts left."""
    return permanent or attempts >= max_attempts


def is_permanent_smtp_code(code: int | None) -> bool:
    """5xx replies (unknown mailbox, rejected sender) will not change on a retry; 4xx and I/O errors may."""
    return code is not None and 500 <= code < 600


def due_at(send_at: datetime | None, now: datetime) -> datetime:
    """Return when the invitation is due: the requested time, or now."""
    return send_at or now


def link_ttl_s(ttl_days: int, *, send_at: datetime, now: datetime) -> int:
    """Return the survey link's lifetime, counted from when it is sent rather than created."""
    return ttl_days * 86400 + max(int((send_at - now).total_seconds()), 0)


def survey_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/s/{token}"


def message_id(invitation_id: str, mail_from: str) -> str:
    """Return the RFC 5322 Message-ID of an invitation, stable across send attempts."""
    _, at, domain = parseaddr(mail_from)[1].rpartition("@")
    domain = domain if at and domain else "closeloop.localhost"
    return f"<invitation.{invitation_id}@{domain}>"
