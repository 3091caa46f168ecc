"""Rule conditions, pure: the condition tree a rule's JSON describes (``parse_condition``, which
names the part at fault) and whether it holds for an event and a contact (``evaluate``, which can
trace every leaf with the value it looked at)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
_NUMBERS = (int, float)
_INT_OR_TEXT = (int, str)


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
        # A dict (what JSON gives) before the abstract Mapping, whose isinstance check costs more.
        if (type(current) is dict or isinstance(current, Mapping)) and part in current:
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
    if isinstance(value, _NUMBERS):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        # Words are most text compared: an ASCII letter other than the start of inf/nan cannot begin a
        # number, and a failed float() (an exception) costs ten times the check.
        if text[:1].isascii() and text[:1].isalpha() and text[0] not in "iInN":
            return None
        try:
            number = float(text)
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
    # ASCII digits only: '¹' and other Unicode digits pass isdigit() but are no number int() reads.
    if (
        isinstance(value, _INT_OR_TEXT)
        and not isinstance(value, bool)
        and str(value).isascii()
        and str(value).isdigit()
    ):
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


def as_text(value: Any, case_sensitive: bool) -> str:
    """Return ``value`` as conditions compare text (``true``, ``42`` for 42.0; case-folded unless ``case_sensitive``)."""
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
    return as_text(actual, case_sensitive) == as_text(expected, case_sensitive)


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
            hit = as_text(actual, cs).startswith(as_text(expected, cs))
        else:
            hit = as_text(expected, cs) in as_text(actual, cs)
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
