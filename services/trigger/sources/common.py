"""What every inbound source shares: the normalised event (``Incoming``, ``ContactRef``), the
signed request (``SignedRequest``), the errors, and the small parsers (JSON, times, ids, emails)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pydantic_core

from shared.vocabulary import CONTACT_FIELDS, ContactField

REF_FIELDS: tuple[ContactField, ...] = tuple(f for f in CONTACT_FIELDS if f != "email")
"""The contact fields an event carries in ``ContactRef.fields``: all but the email, the ref's own."""
MAX_ID = 200
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


class SignatureError(ValueError):
    """The request is not signed by the integration's secret; ``header`` names what is at fault."""

    def __init__(self, message: str, *, header: str) -> None:
        super().__init__(message)
        self.header = header


class PayloadError(ValueError):
    """The (authentic) body cannot be turned into events; ``field`` names the part at fault."""

    def __init__(self, message: str, *, field: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.errors = errors or [{"field": field, "message": message}]


class MalformedPayload(PayloadError):
    """The body is not JSON at all."""


# Not frozen: a frozen dataclass's __init__ costs four times as much, and a HubSpot batch makes a
# hundred of each. Nothing changes them after parsing (``dataclasses.replace`` makes a new one).
@dataclass(slots=True)
class ContactRef:
    """A contact as an event names it: by external id and/or email, with fields and attributes."""

    external_id: str | None = None
    email: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Incoming:
    """One normalised inbound event."""

    source_event_id: str
    event_type: str
    occurred_at: datetime | None
    contact: ContactRef | None
    properties: dict[str, Any]
    object_ref: tuple[str, str] | None = None
    """(object type, id) of a CRM object whose contact must be looked up (HubSpot deals, tickets)."""
    traceparent: str | None = None
    """The W3C trace of the request that brought it (``shared.tracing``), kept with the stored event."""


@dataclass(frozen=True)
class SignedRequest:
    """What a signature is checked against: the request as received."""

    method: str
    uris: tuple[str, ...]
    """Every URI the sender may have signed: the public URL first, then the one this server saw."""
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes
    now: float
    """Unix seconds."""


def required_header(headers: Mapping[str, str], name: str) -> str:
    """Return the header ``name`` (lower case), or raise ``SignatureError`` when it is missing or empty."""
    value = headers.get(name)
    if not value:
        raise SignatureError(f"the {name} header is missing", header=name)
    return value


def check_age(age_s: float, tolerance_s: float, header: str) -> None:
    """Refuse a signed timestamp further than ``tolerance_s`` from now, either way."""
    if age_s > tolerance_s:
        raise SignatureError(
            f"{header} is more than {tolerance_s:g}s old; the request is stale or replayed", header=header
        )
    if age_s < -tolerance_s:
        raise SignatureError(
            f"{header} is more than {tolerance_s:g}s in the future; check the sender's clock", header=header
        )


def constant_time_equal(candidate: str, expected: str) -> bool:
    """Return whether ``candidate`` (stripped) is ``expected``, in time that does not tell how far it matched."""
    return hmac.compare_digest(candidate.strip().encode(), expected.encode())


def parse_json(body: bytes) -> Any:
    """Return the JSON in ``body`` (NUL characters dropped), or raise ``MalformedPayload``."""
    try:
        # pydantic-core's parser: about three times the standard library's speed on a webhook, and
        # it refuses what PostgreSQL could not store anyway (a lone UTF-16 surrogate).
        value = pydantic_core.from_json(body)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise MalformedPayload("The body nests too deeply.", field="body") from exc
        raise MalformedPayload(f"The body is not valid JSON ({exc}).", field="body") from exc
    # PostgreSQL cannot store NUL in text or JSON; in valid JSON it can only come as \u0000.
    return without_nul(value) if b"\\u0000" in body else value


def parse_time(value: Any) -> datetime | None:
    """Return an aware datetime from ISO 8601 text or Unix seconds/milliseconds; naive means UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        try:
            return datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def dig(data: Any, path: str) -> Any:
    """Return the value at a dot path (``ticket.requester.id``, ``items.0.id``) or None."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def id_text(value: Any) -> str | None:
    """Return a scalar as id text (stripped), or None for nothing, an empty text or a structure."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def event_key(*parts: Any) -> str:
    """Return a dedup key from ``parts``; long keys are hashed to fit the column."""
    key = ":".join(map(str, parts))
    return key if len(key) <= MAX_ID else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def body_digest(item: Any) -> str:
    """Return a dedup key from a body without an id of its own: the SHA-256 of its canonical JSON."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def parse_email(value: Any, where: str) -> str | None:
    """Return the email address in ``value``, lower-cased (None if absent), or raise ``PayloadError``."""
    text = id_text(value)
    if text is None:
        return None
    if not EMAIL_PATTERN.match(text):
        raise PayloadError(f"{text!r} is not an email address", field=where)
    return text.lower()


def without_nul(value: Any) -> Any:
    """Return ``value`` with NUL characters removed from every string in it."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value
