"""Personal data in what dispatch records, as pure rules: the addresses an SMTP reply quotes, and the
strings that identify an erased contact in free text (notifications, webhook payloads, errors)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.dispatch.domain import clean_name, normalise_phone
from shared.erasure import ERASED

_EMAIL_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+\.[A-Za-z]{2,}")


def redact_addresses(text: str) -> str:
    """Return ``text`` with every email address in it replaced by ``[address]`` (what an SMTP server
    quotes back is the operator's to read, the recipient's address is not)."""
    return _EMAIL_ADDRESS.sub("[address]", text)


def identifiers(
    *, emails: Iterable[str | None], names: Iterable[str | None], phones: Iterable[str | None]
) -> list[str]:
    """Return the strings that identify a contact in free text: each email address, full name and phone
    number (as given and in E.164), longest first (so that a name inside an address goes with it)."""
    found: set[str] = set()
    for email in emails:
        if email and email.strip():
            found.add(email.strip())
    for name in names:
        cleaned = clean_name(name)
        if cleaned and len(cleaned) >= 2:
            found.add(cleaned)
    for phone in phones:
        if phone and phone.strip():
            found.add(phone.strip())
            normalised = normalise_phone(phone)
            if normalised:
                found.add(normalised)
    return sorted(found, key=lambda s: (-len(s), s))


def redaction(identifying: Iterable[str]) -> re.Pattern[str] | None:
    """Return the pattern that finds any of ``identifying`` as a whole word, any case (None: nothing)."""
    words = [w for w in identifying if w]
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![\w@.+])(?:{alternatives})(?![\w@])", re.IGNORECASE)


def redact(value: object, pattern: re.Pattern[str]) -> object:
    """Return ``value`` (text, or JSON: dicts and lists of text) with every match replaced by ``ERASED``."""
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, dict):
        return {k: redact(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, pattern) for v in value]
    return value
