"""Languages and text: the locale a respondent sees a survey in, and texts filled with hidden fields."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from services.responses.domain.definition import LocalText, Question

LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def locale_chain(requested: str | None, default: str) -> tuple[str, ...]:
    """Return the locales to try for a contact, best first: ``nl-BE`` → ``nl-be``, ``nl``, default."""
    chain: list[str] = []
    if requested and LOCALE.match(requested):
        tag = requested.replace("_", "-").lower()
        chain.append(tag)
        parts = tag.split("-")
        for n in range(len(parts) - 1, 0, -1):
            chain.append("-".join(parts[:n]))
    chain.append(default.replace("_", "-").lower())
    return tuple(dict.fromkeys(chain))


def localize(text: LocalText | None, chain: Sequence[str]) -> str:
    """Return ``text`` in the first locale of ``chain`` it has; a plain string is every locale's."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    lowered = {k.replace("_", "-").lower(): v for k, v in text.items()}
    for locale in chain:
        if lowered.get(locale):
            return lowered[locale]
    return next(iter(lowered.values()), "")


def survey_locales(questions: Iterable[Question], default: str) -> set[str]:
    """Return every locale some question text is written in (lowercase), plus the default."""
    found = {default.lower()}
    for q in questions:
        if not isinstance(q.text, str):
            found.update(k.replace("_", "-").lower() for k in q.text)
    return found


def page_locale(chain: Sequence[str], available: set[str]) -> str:
    """Return the locale the page is shown in: the first of ``chain`` the survey has."""
    return next((c for c in chain if c in available), chain[-1])


_PLACEHOLDER = re.compile(r"\{([a-z0-9_.-]{1,64})(?:\|([^{}]{0,100}))?\}")


def has_placeholder(value: Any) -> bool:
    """Return whether any text in ``value`` (strings, nested in lists and dicts) has a ``{field}`` to fill."""
    if isinstance(value, str):
        return _PLACEHOLDER.search(value) is not None
    if isinstance(value, dict):
        return any(has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(has_placeholder(v) for v in value)
    return False


def fill(text: str, fields: Mapping[str, str]) -> str:
    """Return ``text`` with ``{field}`` (or ``{field|fallback}``) replaced by hidden-field values.

    The result is plain text; the page escapes it like any other text.
    """

    def sub(m: re.Match[str]) -> str:
        value = fields.get(m.group(1), "")
        return value if value.strip() else (m.group(2) or "")

    return _PLACEHOLDER.sub(sub, text)
