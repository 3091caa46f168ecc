"""What a response is sliced by, and the filters that pick a segment.

A response's dimensions are its ``channel``, ``kind`` and ``language`` (the locale's language
subtag), plus its hidden fields: the triggering event's own fields (``agent``, ``product``, …) and
the contact's attributes at the time of the response (``attr.<name>`` becomes ``<name>``; the
event's own field wins when both name the same thing). Identifiers and contact details (``*_id``,
``email``, ``phone``, ``name``, ``*_address`` …) are not dimensions: they slice nothing and are personal
data (a dimension outlives the contact's erasure, anonymous).

``DECLARED`` dimensions have their own columns in the answers table (fast); any other dimension is
kept with the response and can still be filtered and grouped by (an ad-hoc attribute, slower).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.errors import InvalidInput

DECLARED: tuple[str, ...] = (
    "channel",
    "kind",
    "language",
    "country",
    "team",
    "agent",
    "product",
    "journey_stage",
    "plan",
    "role",
)
"""Dimensions with a column of their own in the answers table."""

OWN = ("channel", "kind", "language")
"""Set from the response itself; hidden fields cannot override them."""

NOT_DIMENSIONS = frozenset(
    {"id", "email", "phone", "name", "first_name", "last_name", "full_name", "address", "ticket", "order"}
)
NOT_DIMENSION_SUFFIXES = ("_id", "_address", "_email", "_phone")
"""``shipping_address``, ``billing_email``, ``mobile_phone``: contact details under another name."""
ATTRIBUTE_PREFIX = "attr."
MAX_VALUE_LENGTH = 100
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@functools.lru_cache(maxsize=4096)
def dimension_name(key: str) -> str | None:
    """Return the dimension a hidden field's key names (``attr.Journey-Stage`` → ``journey_stage``),
    or None when the key is no dimension (remembered: the same few keys arrive with every response)."""
    if key.startswith(ATTRIBUTE_PREFIX):
        key = key[len(ATTRIBUTE_PREFIX) :]
    name = re.sub(r"[\s\-.]+", "_", key.strip().lower())
    if not NAME.match(name) or name in NOT_DIMENSIONS or name.endswith(NOT_DIMENSION_SUFFIXES):
        return None
    return name


def language_of(locale: str | None) -> str | None:
    """Return a locale's language subtag, lower case (``nl-BE`` → ``nl``)."""
    if not locale:
        return None
    language = re.split(r"[-_]", locale.strip(), maxsplit=1)[0].lower()
    return language or None


def dimensions_of(
    *, channel: str | None, kind: str, locale: str | None, hidden_fields: Mapping[str, str]
) -> dict[str, str]:
    """Return a response's dimensions, sorted by name."""
    found: dict[str, str] = {}
    # Contact attributes first, so that the event's own fields override them.
    ordered = sorted(hidden_fields.items(), key=lambda kv: not kv[0].startswith(ATTRIBUTE_PREFIX))
    for key, raw in ordered:
        name = dimension_name(key)
        if name is None or name in OWN or not isinstance(raw, str):
            continue
        value = raw.strip()[:MAX_VALUE_LENGTH]
        if value:
            found[name] = value
    own = {"channel": channel, "kind": kind, "language": language_of(locale)}
    found.update({k: v for k, v in own.items() if v})
    return dict(sorted(found.items()))


class InvalidFilter(InvalidInput):
    """A filter or dimension name that cannot be (422 naming the parameter)."""

    def __init__(self, message: str, *, field: str = "filter") -> None:
        super().__init__(message, field=field)
        self.field = field


@dataclass(frozen=True)
class Condition:
    """What one dimension must be: one of ``include`` (when any) and none of ``exclude``."""

    dimension: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def declared(self) -> bool:
        return self.dimension in DECLARED

    def matches(self, value: str | None) -> bool:
        if self.include and value not in self.include:
            return False
        return value not in self.exclude


@dataclass(frozen=True)
class Segment:
    """A set of conditions that all hold (an empty segment is everyone)."""

    conditions: tuple[Condition, ...] = field(default_factory=tuple)

    @property
    def declared(self) -> bool:
        return all(c.declared for c in self.conditions)

    def matches(self, dimensions: Mapping[str, str]) -> bool:
        return all(c.matches(dimensions.get(c.dimension)) for c in self.conditions)

    def as_filters(self) -> tuple[str, ...]:
        return tuple(
            [f"{c.dimension}={v}" for c in self.conditions for v in c.include]
            + [f"{c.dimension}!={v}" for c in self.conditions for v in c.exclude]
        )


def parse_filters(raw: Iterable[str], *, field_name: str = "filter") -> Segment:
    """Return the segment of ``dim=value`` and ``dim!=value`` filters.

    Several values of one dimension with ``=`` are alternatives (country=NL or country=BE); ``!=``
    excludes each value; conditions on different dimensions all hold.
    """
    include: dict[str, list[str]] = {}
    exclude: dict[str, list[str]] = {}
    for i, text in enumerate(raw):
        name, negated, value = _split(text)
        if name is None or not NAME.match(name):
            raise InvalidFilter(
                f"{text!r} is not a filter: write dimension=value or dimension!=value "
                "(a dimension is lower case letters, digits and _)",
                field=f"{field_name}.{i}",
            )
        if not value or len(value) > MAX_VALUE_LENGTH:
            raise InvalidFilter(f"{text!r}: the value must be 1 to 100 characters", field=f"{field_name}.{i}")
        (exclude if negated else include).setdefault(name, []).append(value)
    names = sorted(set(include) | set(exclude))
    return Segment(tuple(Condition(n, tuple(include.get(n, ())), tuple(exclude.get(n, ()))) for n in names))


def _split(text: str) -> tuple[str | None, bool, str]:
    if "=" not in text:
        return None, False, ""
    name, value = text.split("=", 1)
    negated = name.endswith("!")
    name = name[:-1] if negated else name
    return name.strip(), negated, value.strip()


def check_dimension(name: str, *, field_name: str = "group_by") -> str:
    """Return ``name`` when it can be a dimension, else raise ``InvalidFilter``."""
    if not NAME.match(name):
        raise InvalidFilter(
            f"{name!r} is not a dimension name (lower case letters, digits and _)", field=field_name
        )
    return name
