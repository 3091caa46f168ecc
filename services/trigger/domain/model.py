"""The plain data the pure rules work on — a rule, a contact, a workspace's policy, the frequency
history, a verdict — and the outcomes (channels and survey kinds are ``shared.vocabulary``'s); with
what needs nothing else: which rules listen to an event, which contacts a rule samples, which
channels reach a contact."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal, get_args

from services.trigger.domain.conditions import Condition
from shared.vocabulary import SEND_CHANNELS, Channel, SurveyKind

Outcome = Literal[
    "sent",
    "delayed",
    "conditions_not_met",
    "opted_out",
    "not_sampled",
    "no_channel",
    "suppressed_by_cap",
    "already_enrolled",
    "cancelled",
    "survey_closed",
    "survey_unknown",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

SurveyState = Literal["open", "closed", "unknown"]
"""A rule's survey as trigger knows it from responses' events."""

CHANNEL_NEEDS: dict[Channel, str | None] = {
    "email": "email",
    "sms": "phone",
    "whatsapp": "phone",
    "chat": None,
    "link": None,
}


@dataclass(frozen=True)
class Cap:
    max_surveys: int
    days: int


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    channels: frozenset[Channel] = frozenset(SEND_CHANNELS)
    """The channels that keep them (a ``link`` is never sent, so it never waits)."""

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    def applies_to(self, channel: Channel) -> bool:
        """Return whether a send over ``channel`` keeps the quiet hours."""
        return channel in self.channels


@dataclass(frozen=True)
class RuleView:
    id: str
    event_type: str
    survey_id: str = "survey"
    channel: Channel = "email"
    delay_seconds: int = 0
    enabled: bool = True
    source: str | None = None
    conditions: Condition | None = None
    kind: SurveyKind = "transactional"
    fallback_channels: tuple[Channel, ...] = ()
    locale: str | None = None
    sample_percent: float = 100.0
    survey_cap: Cap | None = None
    exempt_from_caps: bool = False
    recurrence_days: int | None = None
    respect_quiet_hours: bool = True
    version: int = 1
    name: str = ""

    def matches(self, source: str, event_type: str) -> bool:
        """Return whether this rule listens to ``event_type`` from ``source`` (``ticket.*`` wildcards)."""
        if not self.enabled or (self.source is not None and self.source != source):
            return False
        if self.event_type == "*":
            return True
        if self.event_type.endswith(".*"):
            return event_type.startswith(self.event_type[:-1])
        return self.event_type == event_type


@dataclass(frozen=True)
class ContactView:
    email: str | None
    phone: str | None
    opted_out: bool
    id: str = ""
    opted_out_channels: frozenset[str] = frozenset()
    timezone: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """A workspace's contact-frequency and quiet-hours settings."""

    cap: Cap | None = None
    quiet_hours: QuietHours | None = None
    default_timezone: str = "UTC"


@dataclass(frozen=True)
class Sent:
    """One survey this service requested for a contact (the frequency history)."""

    survey_id: str
    sent_at: datetime
    rule_id: str | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    send_at: datetime | None = None
    channel: Channel | None = None
    fallback_channels: tuple[Channel, ...] = ()


def survey_state(surveys: Mapping[str, bool] | None, survey_id: str) -> SurveyState:
    """Return the state of ``survey_id`` in ``surveys`` (survey id → open); None: every survey is open."""
    if surveys is None:
        return "open"
    if survey_id not in surveys:
        return "unknown"
    return "open" if surveys[survey_id] else "closed"


def matching_rules(rules: Iterable[RuleView], event_type: str, source: str | None = None) -> list[RuleView]:
    """Return the enabled rules that fire for ``event_type`` (from ``source`` when given)."""
    return [r for r in rules if r.matches(source if source is not None else (r.source or ""), event_type)]


def in_sample(rule_id: str, contact_id: str, percent: float) -> bool:
    """Return whether the contact falls in the rule's sample: the same answer every time."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{rule_id}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < round(percent * 100)


def channels_for(rule: RuleView, contact: ContactView) -> tuple[list[Channel], list[str]]:
    """Return (channels that can reach the contact, in the rule's order; why each other one cannot)."""
    usable: list[Channel] = []
    why_not: list[str] = []
    for channel in dict.fromkeys((rule.channel, *rule.fallback_channels)):
        need = CHANNEL_NEEDS.get(channel)
        if channel in contact.opted_out_channels:
            why_not.append(f"{channel}: the contact opted out of it")
        elif need and not getattr(contact, need):
            why_not.append(f"{channel}: no {need} known")
        else:
            usable.append(channel)
    return usable, why_not
