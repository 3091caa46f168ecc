"""Pure rules of the trigger service: who is asked, when, and why not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Outcome = Literal["requested", "opted_out", "no_channel"]

CHANNEL_NEEDS = {"email": "email", "sms": "phone", "whatsapp": "phone", "chat": None, "link": None}


@dataclass(frozen=True)
class RuleView:
    id: str
    event_type: str
    channel: str
    delay_seconds: int
    enabled: bool = True


@dataclass(frozen=True)
class ContactView:
    email: str | None
    phone: str | None
    opted_out: bool


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    send_at: datetime | None = None


def matching_rules(rules: list[RuleView], event_type: str) -> list[RuleView]:
    """Return the enabled rules that fire for ``event_type``."""
    return [r for r in rules if r.enabled and r.event_type == event_type]


def decide(rule: RuleView, contact: ContactView, *, occurred_at: datetime, now: datetime) -> Verdict:
    """Return whether ``rule`` asks ``contact`` for feedback, when, and why."""
    if contact.opted_out:
        return Verdict("opted_out", "the contact opted out of surveys")
    needs = CHANNEL_NEEDS.get(rule.channel)
    if needs and not getattr(contact, needs):
        return Verdict("no_channel", f"channel {rule.channel} needs the contact's {needs}, which is unknown")
    send_at = max(occurred_at + timedelta(seconds=rule.delay_seconds), now)
    when = "now" if send_at <= now else f"at {send_at.isoformat()}"
    return Verdict("requested", f"rule {rule.id} matched event type {rule.event_type}; send {when}", send_at)
