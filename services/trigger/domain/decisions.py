"""Decisions, pure: whether a rule asks a contact for feedback after an event, when, over which
channel, and why not (``decide``, ``decide_all``); what to do with a send that came due
(``decide_due``); and the context a survey request carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from services.trigger.domain.conditions import Facts, as_text, evaluate
from services.trigger.domain.model import (
    ContactView,
    Outcome,
    Policy,
    RuleView,
    Sent,
    Verdict,
    channels_for,
    in_sample,
)
from services.trigger.domain.policy import cap_block, quiet_until
from shared.timezones import zone
from shared.vocabulary import Channel


def decide(
    rule: RuleView,
    contact: ContactView,
    *,
    occurred_at: datetime,
    now: datetime,
    policy: Policy | None = None,
    history: Sequence[Sent] = (),
    facts: Facts | None = None,
    enrolled: bool = False,
    trace: list[dict[str, Any]] | None = None,
) -> Verdict:
    """Return whether ``rule`` asks ``contact`` for feedback after an event, when, and why (or why not)."""
    policy = policy or Policy()
    if facts is not None and not evaluate(rule.conditions, facts, trace):
        return Verdict(
            "conditions_not_met", f"rule {rule.id}: the event or contact does not meet its conditions"
        )
    if contact.opted_out:
        return Verdict("opted_out", "the contact opted out of surveys")
    if not in_sample(rule.id, contact.id, rule.sample_percent):
        return Verdict(
            "not_sampled", f"rule {rule.id} samples {rule.sample_percent:g}% of contacts; not this one"
        )
    usable, why_not = channels_for(rule, contact)
    if not usable:
        if all("opted out" in w for w in why_not):
            return Verdict(
                "opted_out", "the contact opted out of every channel this rule uses: " + "; ".join(why_not)
            )
        return Verdict("no_channel", "no channel can reach the contact: " + "; ".join(why_not))
    if enrolled:
        return Verdict(
            "already_enrolled",
            f"the contact already gets this survey every {rule.recurrence_days} days (rule {rule.id})",
        )
    # An event dated in the future is the sender's clock running ahead: count from now instead.
    due = max(min(occurred_at, now) + timedelta(seconds=rule.delay_seconds), now)
    tz = zone(contact.timezone, policy.default_timezone)
    quiet = quiet_until(due, policy.quiet_hours, tz) if rule.respect_quiet_hours else None
    channel, fallbacks = usable[0], tuple(usable[1:])
    if quiet is not None:
        return Verdict(
            "delayed",
            f"quiet hours {policy.quiet_hours.describe() if policy.quiet_hours else ''} in {tz.key}; "
            f"send at {quiet.isoformat()}",
            quiet,
            channel,
            fallbacks,
        )
    if due > now:
        return Verdict(
            "delayed",
            f"rule {rule.id} waits {_human(rule.delay_seconds)} after the event; send at {due.isoformat()}",
            due,
            channel,
            fallbacks,
        )
    return _send_now(rule, policy, history, now, channel, fallbacks)


def decide_due(
    rule: RuleView,
    contact: ContactView,
    *,
    now: datetime,
    policy: Policy | None = None,
    history: Sequence[Sent] = (),
    facts: Facts | None = None,
) -> Verdict:
    """Return what to do with a scheduled send that is due: the contact and caps are checked again."""
    policy = policy or Policy()
    if not rule.enabled:
        return Verdict("cancelled", f"rule {rule.id} was disabled or deleted before the send was due")
    if facts is not None and not evaluate(rule.conditions, facts):
        return Verdict(
            "conditions_not_met", f"rule {rule.id}: the conditions no longer hold when the send is due"
        )
    if contact.opted_out:
        return Verdict("opted_out", "the contact opted out of surveys before the send was due")
    usable, why_not = channels_for(rule, contact)
    if not usable:
        outcome: Outcome = "opted_out" if all("opted out" in w for w in why_not) else "no_channel"
        return Verdict(outcome, "no channel can reach the contact: " + "; ".join(why_not))
    tz = zone(contact.timezone, policy.default_timezone)
    quiet = quiet_until(now, policy.quiet_hours, tz) if rule.respect_quiet_hours else None
    if quiet is not None:
        return Verdict("delayed", f"quiet hours in {tz.key}; send at {quiet.isoformat()}", quiet, usable[0])
    return _send_now(rule, policy, history, now, usable[0], tuple(usable[1:]))


def _send_now(
    rule: RuleView,
    policy: Policy,
    history: Sequence[Sent],
    now: datetime,
    channel: Channel,
    fallbacks: tuple[Channel, ...],
) -> Verdict:
    blocked = cap_block(rule, policy, history, now)
    if blocked:
        return Verdict("suppressed_by_cap", blocked)
    exempt = " (exempt from the workspace cap)" if rule.kind == "retention" or rule.exempt_from_caps else ""
    return Verdict("sent", f"rule {rule.id} asks over {channel} now{exempt}", now, channel, fallbacks)


def _human(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def decide_all(
    rules: Sequence[RuleView],
    contact: ContactView,
    *,
    facts: Facts,
    now: datetime,
    policy: Policy,
    history: list[Sent],
    enrolled: frozenset[str] = frozenset(),
) -> list[tuple[RuleView, Verdict]]:
    """Return a verdict per matching rule; each send joins ``history`` so the next rule sees it."""
    verdicts = []
    for rule in rules:
        if not rule.matches(facts.source, facts.event_type):
            continue
        verdict = decide(
            rule,
            contact,
            occurred_at=facts.occurred_at,
            now=now,
            policy=policy,
            history=history,
            facts=facts,
            enrolled=rule.id in enrolled,
        )
        if verdict.outcome == "sent":
            history.append(Sent(rule.survey_id, now, rule.id))
        verdicts.append((rule, verdict))
    return verdicts


def survey_context(
    event_type: str, source: str, properties: Mapping[str, Any], *, limit: int = 30
) -> dict[str, str]:
    """Return merge/hidden fields for the survey: the event's scalar top-level properties as text."""
    context = {"event_type": event_type[:200], "source": source[:200]}
    for key, value in properties.items():
        if len(context) >= limit:
            break
        if isinstance(value, str | int | float | bool) and not isinstance(key, bool) and len(str(key)) <= 64:
            context.setdefault(str(key), as_text(value, True)[:500])
    return context
