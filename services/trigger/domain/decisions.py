"""Decisions, pure: whether a rule asks a contact for feedback after an event, when, over which
channel, and why not (``decide``, ``decide_all``); what to do with a send that came due
(``decide_due``); and the context a survey request carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.trigger.domain.conditions import Facts, as_text, evaluate
from services.trigger.domain.model import (
    ContactView,
    Outcome,
    Policy,
    RuleView,
    Sent,
    SurveyState,
    Verdict,
    channels_for,
    in_sample,
    survey_state,
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
    survey: SurveyState = "open",
) -> Verdict:
    """Return whether ``rule`` asks ``contact`` for feedback after an event, when, and why (or why not)."""
    policy = policy or Policy()
    if facts is not None and not evaluate(rule.conditions, facts, trace):
        return Verdict(
            "conditions_not_met", f"rule {rule.id}: the event or contact does not meet its conditions"
        )
    if survey != "open":
        return _survey_not_open(rule, survey)
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
    channel, fallbacks = usable[0], tuple(usable[1:])
    quiet = _quiet_until(rule, policy, channel, due, tz)
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
    survey: SurveyState = "open",
) -> Verdict:
    """Return what to do with a scheduled send that is due: the contact, the survey and the caps are
    checked again."""
    policy = policy or Policy()
    if not rule.enabled:
        return Verdict("cancelled", f"rule {rule.id} was disabled or deleted before the send was due")
    if facts is not None and not evaluate(rule.conditions, facts):
        return Verdict(
            "conditions_not_met", f"rule {rule.id}: the conditions no longer hold when the send is due"
        )
    if survey != "open":
        return _survey_not_open(rule, survey)
    if contact.opted_out:
        return Verdict("opted_out", "the contact opted out of surveys before the send was due")
    usable, why_not = channels_for(rule, contact)
    if not usable:
        outcome: Outcome = "opted_out" if all("opted out" in w for w in why_not) else "no_channel"
        return Verdict(outcome, "no channel can reach the contact: " + "; ".join(why_not))
    tz = zone(contact.timezone, policy.default_timezone)
    quiet = _quiet_until(rule, policy, usable[0], now, tz)
    if quiet is not None:
        return Verdict("delayed", f"quiet hours in {tz.key}; send at {quiet.isoformat()}", quiet, usable[0])
    return _send_now(rule, policy, history, now, usable[0], tuple(usable[1:]))


def _survey_not_open(rule: RuleView, survey: SurveyState) -> Verdict:
    if survey == "closed":
        return Verdict(
            "survey_closed",
            f"survey {rule.survey_id} is closed (responses takes no answers to it): rule {rule.id} "
            "asks nobody until the survey is reopened",
        )
    return Verdict(
        "survey_unknown",
        f"survey {rule.survey_id} is not a survey of this workspace that responses has published: rule "
        f"{rule.id} asks nobody; point it at an existing survey",
    )


def _quiet_until(
    rule: RuleView, policy: Policy, channel: Channel, moment: datetime, tz: ZoneInfo
) -> datetime | None:
    """Return when the quiet hours that hold a send over ``channel`` at ``moment`` end, or None."""
    quiet = policy.quiet_hours
    if quiet is None or not rule.respect_quiet_hours or not quiet.applies_to(channel):
        return None
    return quiet_until(moment, quiet, tz)


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
    surveys: Mapping[str, bool] | None = None,
) -> list[tuple[RuleView, Verdict]]:
    """Return a verdict per matching rule; each send joins ``history`` so the next rule sees it.

    ``surveys`` maps the workspace's known survey ids to whether they are open (None: all open)."""
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
            survey=survey_state(surveys, rule.survey_id),
        )
        if verdict.outcome == "sent":
            history.append(Sent(rule.survey_id, now, rule.id))
        verdicts.append((rule, verdict))
    return verdicts


CONTEXT_FIELDS = 50
"""Most fields a survey request's context carries: what responses keeps as hidden fields (50 fields of
at most 500 characters, string keys and values; docs/responses.md)."""
PROPERTY_FIELDS = 30
"""Of those, at most this many for the event type, the source and the event's properties: the rest is
left for the contact's attributes."""
ATTRIBUTE_PREFIX = "attr."
"""Contact attributes ride in the context as ``attr.<name>`` (responses' ``show_if`` reads them)."""
PROFILE_ATTRIBUTES = ("role", "plan", "country")
"""The contact's own fields that describe a segment rather than identify a person: sent as attributes."""


def contact_attributes(contact: Mapping[str, Any]) -> dict[str, Any]:
    """Return the contact's attributes as a survey sees them: its role, plan and country, then its custom
    attributes by name (the contact's own fields win over a custom attribute of the same name)."""
    custom = contact.get("attributes") or {}
    attributes = {f: contact.get(f) for f in PROFILE_ATTRIBUTES if contact.get(f) is not None}
    for name in sorted(custom):
        attributes.setdefault(name, custom[name])
    return attributes


_SCALARS = (str, int, float, bool)


def _field(key: object, value: object) -> bool:
    """Whether a property or attribute can be a context field: a short text key and a scalar value."""
    return isinstance(key, str) and 0 < len(key) <= 64 and isinstance(value, _SCALARS)


def _text(value: str | int | float | bool) -> str:
    """Return a context field's value as text of at most 500 characters."""
    return value[:500] if type(value) is str else as_text(value, True)[:500]


def survey_context(
    event_type: str,
    source: str,
    properties: Mapping[str, Any],
    attributes: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Return the survey's merge and hidden fields, as text of at most 500 characters: the event type and
    source, the event's scalar top-level properties (up to ``PROPERTY_FIELDS`` in all), then the
    contact's ``attributes`` as ``attr.<name>`` (up to ``CONTEXT_FIELDS`` in all). ``attr.`` keys are
    the contact's alone: an event property named so is left out."""
    context = {"event_type": event_type[:500], "source": source[:500]}
    for key, value in properties.items():
        if len(context) >= PROPERTY_FIELDS:
            break
        if _field(key, value) and not key.startswith(ATTRIBUTE_PREFIX):
            context.setdefault(key, _text(value))
    for name, value in (attributes or {}).items():
        if len(context) >= CONTEXT_FIELDS:
            break
        if _field(name, value):
            context[ATTRIBUTE_PREFIX + name] = _text(value)
    return context
