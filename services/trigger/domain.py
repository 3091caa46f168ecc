"""Pure rules of the trigger service: which rules match an event, who is asked, when, over which
channel, and why not. No I/O here: everything is plain data in, plain data out."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.timezones import zone

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
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]

CHANNELS = ("email", "sms", "whatsapp", "chat", "link")
CHANNEL_NEEDS: dict[str, str | None] = {
    "email": "email",
    "sms": "phone",
    "whatsapp": "phone",
    "chat": None,
    "link": None,
}
SURVEY_KINDS = ("transactional", "relationship", "retention")

# --- conditions ------------------------------------------------------------------------------

OPERATORS = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "exists",
    "not_exists",
    "contains",
    "not_contains",
    "starts_with",
    "before",
    "after",
    "within_last",
    "older_than",
)
_NO_VALUE = ("exists", "not_exists")
_LIST_VALUE = ("in", "not_in")
MAX_CONDITION_DEPTH = 8
MAX_CONDITION_LEAVES = 100
_DURATION = re.compile(r"^([+-]?)(\d{1,6})([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ConditionError(ValueError):
    """A condition tree that cannot be evaluated; ``path`` names the part at fault."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Leaf:
    field: str
    op: str
    value: Any = None
    case_sensitive: bool = False


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Leaf | All | Any_ | Not


def parse_duration(text: str) -> timedelta:
    """Return ``"30d"``, ``"-2h"``, ``"+90m"`` as a timedelta; raise ValueError otherwise."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 15m, 2w")
    sign = -1 if match[1] == "-" else 1
    return timedelta(seconds=sign * int(match[2]) * _UNIT_S[match[3]])


def parse_condition(raw: Any, *, path: str = "conditions") -> Condition:
    """Return the condition tree in ``raw`` (the JSON form); raise ``ConditionError`` naming the path."""
    leaves = [0]

    def walk(node: Any, where: str, depth: int) -> Condition:
        if depth > MAX_CONDITION_DEPTH:
            raise ConditionError(f"conditions nest deeper than {MAX_CONDITION_DEPTH} levels", path=where)
        if not isinstance(node, dict):
            raise ConditionError(
                "a condition is an object: {field, op, value} or {all|any: [...]}", path=where
            )
        combinators = [k for k in ("all", "any", "not") if k in node]
        if combinators:
            if len(node) != 1:
                raise ConditionError(f"{combinators[0]!r} stands alone in its object", path=where)
            key = combinators[0]
            if key == "not":
                return Not(walk(node["not"], f"{where}.not", depth + 1))
            items = node[key]
            if not isinstance(items, list) or not items:
                raise ConditionError(f"{key!r} takes a non-empty list of conditions", path=f"{where}.{key}")
            parsed = tuple(walk(c, f"{where}.{key}.{i}", depth + 1) for i, c in enumerate(items))
            return All(parsed) if key == "all" else Any_(parsed)
        leaves[0] += 1
        if leaves[0] > MAX_CONDITION_LEAVES:
            raise ConditionError(f"at most {MAX_CONDITION_LEAVES} conditions per rule", path=where)
        unknown = set(node) - {"field", "op", "value", "case_sensitive"}
        if unknown:
            raise ConditionError(f"unknown keys {sorted(unknown)}", path=where)
        fld, op = node.get("field"), node.get("op", "equals")
        if not isinstance(fld, str) or not _valid_field(fld):
            raise ConditionError(
                "field is 'event.<property path>' or 'contact.<attribute>', e.g. event.status",
                path=f"{where}.field",
            )
        if op not in OPERATORS:
            raise ConditionError(f"op must be one of {', '.join(OPERATORS)}", path=f"{where}.op")
        value = node.get("value")
        _check_value(op, value, "value" in node, f"{where}.value")
        return Leaf(fld, op, value, bool(node.get("case_sensitive", False)))

    return walk(raw, path, 0)


def _valid_field(name: str) -> bool:
    head, _, rest = name.partition(".")
    return head in ("event", "contact") and bool(rest) and len(name) <= 300


def _check_value(op: str, value: Any, present: bool, where: str) -> None:
    if op in _NO_VALUE:
        return
    if not present:
        raise ConditionError(f"op {op!r} needs a value", path=where)
    if op in _LIST_VALUE and not isinstance(value, list):
        raise ConditionError(f"op {op!r} takes a list of values", path=where)
    if op == "between" and not (isinstance(value, list) and len(value) == 2):
        raise ConditionError("op 'between' takes [low, high]", path=where)
    if op in ("gt", "gte", "lt", "lte") and _number(value) is None and _when(value, None) is None:
        raise ConditionError(f"op {op!r} compares numbers or dates", path=where)
    if op in ("before", "after"):
        try:
            _reference_time(value, datetime(2000, 1, 1, tzinfo=UTC))
        except ValueError as exc:
            raise ConditionError(
                f"{exc}; use an ISO date (2026-01-31), a datetime, or a duration from the event time (-30d)",
                path=where,
            ) from exc
    if op in ("within_last", "older_than"):
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ConditionError(str(exc), path=where) from exc


@dataclass(frozen=True)
class Facts:
    """What conditions can look at: the event and the contact."""

    event_type: str
    source: str
    occurred_at: datetime
    properties: Mapping[str, Any]
    contact: Mapping[str, Any]


def lookup(facts: Facts, name: str) -> tuple[bool, Any]:
    """Return (found, value) of ``event.<path>`` or ``contact.<path>``."""
    head, _, rest = name.partition(".")
    if head == "event":
        if rest == "type":
            return True, facts.event_type
        if rest == "source":
            return True, facts.source
        if rest == "occurred_at":
            return True, facts.occurred_at
        return _dig(facts.properties, rest.removeprefix("properties."))
    found, value = _dig(facts.contact, rest)
    if not found:
        attributes = facts.contact.get("attributes")
        if isinstance(attributes, Mapping):
            found, value = _dig(attributes, rest.removeprefix("attributes."))
    return found, value


def _dig(data: Any, path: str) -> tuple[bool, Any]:
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and part.lstrip("-").isdigit()
            and -len(current) <= int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _when(value: Any, tz: ZoneInfo | None) -> datetime | None:
    """Return a datetime from a datetime, an ISO string, a date or epoch milliseconds (HubSpot)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz or UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=tz or UTC)
    if isinstance(value, str) and len(value) >= 10 and value[:4].isdigit() and value[4] == "-":
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz or UTC)
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).isdigit():
        number = int(value)
        if 10**11 < number < 10**14:  # epoch milliseconds, as HubSpot sends dates
            return datetime.fromtimestamp(number / 1000, UTC)
    return None


def _reference_time(value: Any, event_time: datetime) -> datetime:
    if isinstance(value, str) and _DURATION.match(value.strip()):
        return event_time + parse_duration(value)
    when = _when(value, None)
    if when is None:
        raise ValueError(f"{value!r} is not a date")
    return when


def _text(value: Any, case_sensitive: bool) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return text if case_sensitive else text.casefold()


def _same(actual: Any, expected: Any, case_sensitive: bool) -> bool:
    if actual is None or expected is None:
        return actual is expected
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None:
        return a == b
    return _text(actual, case_sensitive) == _text(expected, case_sensitive)


def _compare(actual: Any, expected: Any) -> int | None:
    """Return -1/0/1 comparing numbers or dates; None when they are not comparable."""
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    da, db = _when(actual, None), _when(expected, None)
    if da is not None and db is not None:
        return (da > db) - (da < db)
    return None


def evaluate_leaf(leaf: Leaf, facts: Facts) -> tuple[bool, Any]:
    """Return (holds, the value the condition looked at)."""
    found, actual = lookup(facts, leaf.field)
    present = found and actual is not None and actual != "" and actual != []
    op, expected, cs = leaf.op, leaf.value, leaf.case_sensitive
    if op == "exists":
        return present, actual
    if op == "not_exists":
        return not present, actual
    if not found:
        return op in ("not_equals", "not_in", "not_contains"), None
    if op == "equals":
        return _same(actual, expected, cs), actual
    if op == "not_equals":
        return not _same(actual, expected, cs), actual
    if op in ("in", "not_in"):
        values = actual if isinstance(actual, list) else [actual]
        hit = any(_same(v, e, cs) for v in values for e in expected)
        return hit if op == "in" else not hit, actual
    if op in ("contains", "not_contains", "starts_with"):
        if isinstance(actual, list):
            hit = any(_same(v, expected, cs) for v in actual)
        elif op == "starts_with":
            hit = _text(actual, cs).startswith(_text(expected, cs))
        else:
            hit = _text(expected, cs) in _text(actual, cs)
        return (not hit if op == "not_contains" else hit), actual
    if op in ("gt", "gte", "lt", "lte"):
        order = _compare(actual, expected)
        if order is None:
            return False, actual
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op], actual
    if op == "between":
        low, high = _compare(actual, expected[0]), _compare(actual, expected[1])
        return (low is not None and high is not None and low >= 0 and high <= 0), actual
    when = _when(actual, None)
    if when is None:
        return False, actual
    if op in ("before", "after"):
        reference = _reference_time(expected, facts.occurred_at)
        return (when < reference if op == "before" else when > reference), actual
    age = facts.occurred_at - when
    limit = abs(parse_duration(expected))
    return (timedelta(0) <= age <= limit if op == "within_last" else age > limit), actual


def evaluate(condition: Condition | None, facts: Facts, trace: list[dict[str, Any]] | None = None) -> bool:
    """Return whether ``condition`` holds; with ``trace``, every leaf is evaluated and recorded."""
    if condition is None:
        return True
    if isinstance(condition, Leaf):
        holds, actual = evaluate_leaf(condition, facts)
        if trace is not None:
            trace.append(
                {
                    "field": condition.field,
                    "op": condition.op,
                    "value": condition.value,
                    "actual": _jsonable(actual),
                    "holds": holds,
                }
            )
        return holds
    if isinstance(condition, Not):
        return not evaluate(condition.item, facts, trace)
    results: Iterable[bool] = (evaluate(c, facts, trace) for c in condition.items)
    if trace is not None:
        results = list(results)  # evaluate every leaf so the trace is complete
    return all(results) if isinstance(condition, All) else any(results)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# --- rules, contacts, policy -----------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    max_surveys: int
    days: int


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class RuleView:
    id: str
    event_type: str
    survey_id: str = "survey"
    channel: str = "email"
    delay_seconds: int = 0
    enabled: bool = True
    source: str | None = None
    conditions: Condition | None = None
    kind: str = "transactional"
    fallback_channels: tuple[str, ...] = ()
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
    channel: str | None = None
    fallback_channels: tuple[str, ...] = ()


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


def channels_for(rule: RuleView, contact: ContactView) -> tuple[list[str], list[str]]:
    """Return (channels that can reach the contact, in the rule's order; why each other one cannot)."""
    usable, why_not = [], []
    for channel in dict.fromkeys((rule.channel, *rule.fallback_channels)):
        need = CHANNEL_NEEDS.get(channel)
        if channel in contact.opted_out_channels:
            why_not.append(f"{channel}: the contact opted out of it")
        elif need and not getattr(contact, need):
            why_not.append(f"{channel}: no {need} known")
        else:
            usable.append(channel)
    return usable, why_not


def cap_block(rule: RuleView, policy: Policy, history: Sequence[Sent], now: datetime) -> str | None:
    """Return why a frequency cap blocks this send, or None.

    Retention surveys are never blocked. An exempt rule skips the workspace cap but keeps its own
    per-survey cap, if it has one.
    """
    if rule.kind == "retention":
        return None
    if policy.cap is not None and not rule.exempt_from_caps:
        since = now - timedelta(days=policy.cap.days)
        recent = [s for s in history if s.sent_at > since]
        if len(recent) >= policy.cap.max_surveys:
            last = max(s.sent_at for s in recent)
            return (
                f"workspace cap: at most {policy.cap.max_surveys} survey(s) per {policy.cap.days} days "
                f"per contact; last one {last.isoformat()}"
            )
    if rule.survey_cap is not None:
        since = now - timedelta(days=rule.survey_cap.days)
        same = [s for s in history if s.survey_id == rule.survey_id and s.sent_at > since]
        if len(same) >= rule.survey_cap.max_surveys:
            return (
                f"survey cap: at most {rule.survey_cap.max_surveys} of survey {rule.survey_id} per "
                f"{rule.survey_cap.days} days per contact"
            )
    return None


def quiet_until(moment: datetime, quiet: QuietHours | None, tz: ZoneInfo) -> datetime | None:
    """Return when the quiet hours around ``moment`` end (UTC), or None if ``moment`` is not quiet."""
    if quiet is None or quiet.start == quiet.end:
        return None
    local = moment.astimezone(tz)
    now_t = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:  # e.g. 12:00–14:00 the same day
        if not quiet.start <= now_t < quiet.end:
            return None
        end_day = local.date()
    else:  # e.g. 21:00–08:00 across midnight
        if quiet.end <= now_t < quiet.start:
            return None
        end_day = local.date() + timedelta(days=1) if now_t >= quiet.start else local.date()
    end = datetime.combine(end_day, quiet.end, tzinfo=tz)
    # A DST gap can put the wall-clock end before the start; never return a time in the past.
    return max(end.astimezone(UTC), moment.astimezone(UTC))


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
    channel: str,
    fallbacks: tuple[str, ...],
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


# --- context, rate limits ----------------------------------------------------------------------


def survey_context(
    event_type: str, source: str, properties: Mapping[str, Any], *, limit: int = 30
) -> dict[str, str]:
    """Return merge/hidden fields for the survey: the event's scalar top-level properties as text."""
    context = {"event_type": event_type[:200], "source": source[:200]}
    for key, value in properties.items():
        if len(context) >= limit:
            break
        if isinstance(value, str | int | float | bool) and not isinstance(key, bool) and len(str(key)) <= 64:
            context.setdefault(str(key), _text(value, True)[:500])
    return context
