"""The question checklist: warnings about double-barrelled, leading or jargon-laden questions,
scales without a neutral middle, required open questions and surveys that take too long."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.responses.domain.definition import LocalText, Question

SECONDS = {
    "nps": 6,
    "nls": 6,
    "csat": 6,
    "ces": 7,
    "rating": 5,
    "single_choice": 8,
    "multiple_choice": 12,
    "open": 30,
    "consent": 4,
    "hidden": 0,
}
"""Rough time a respondent on a phone spends per question type."""

_DOUBLE = {"en": re.compile(r"\w\s+(and|&)\s+\w", re.I), "nl": re.compile(r"\w\s+(en|&)\s+\w", re.I)}
_LEADING = {
    "en": re.compile(
        r"\bhow (great|amazing|awesome|wonderful|excellent|fantastic|brilliant|helpful|friendly|good|"
        r"pleasant|delightful|happy)\b|\b(don't|wouldn't|didn't|isn't|aren't) you\b|\bagree that\b",
        re.I,
    ),
    "nl": re.compile(
        r"\bhoe (geweldig|fantastisch|goed|prettig|fijn|vriendelijk|behulpzaam|uitstekend|super|blij)\b|"
        r"\b(vond|vindt|bent) (u|je) (ook )?niet\b|\bmee eens dat\b",
        re.I,
    ),
}

LINT_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "double_barrelled": "“{text}” may ask two things at once (“{match}”). Someone who found the agent "
        "friendly but not quick cannot answer honestly; ask one thing per question.",
        "leading": "“{text}” leads the respondent (“{match}”): it suggests the answer you hope for. "
        "Ask neutrally, e.g. “How would you rate …?”.",
        "internal_term": "“{text}” uses the internal term “{term}”, which customers may not know.{hint}",
        "no_neutral": "This {points}-point scale has no neutral middle; satisfaction scales usually offer "
        "one (use 5 points, or an odd number of stars).",
        "required_open": "A required open question makes people give up; make it optional.",
        "too_long": "Answering takes about {seconds} s, over the limit of {limit} s; every extra question "
        "loses respondents. Remove or make some questions conditional.",
    },
    "nl": {
        "double_barrelled": "“{text}” vraagt misschien twee dingen tegelijk (“{match}”). Wie de medewerker "
        "vriendelijk maar niet snel vond, kan niet eerlijk antwoorden; vraag één ding per vraag.",
        "leading": "“{text}” is sturend (“{match}”): de vraag suggereert het gewenste antwoord. Vraag "
        "neutraal, bijvoorbeeld “Hoe beoordeelt u …?”.",
        "internal_term": "“{text}” gebruikt de interne term “{term}”, die klanten misschien niet kennen.{hint}",
        "no_neutral": "Deze schaal met {points} punten heeft geen neutraal midden; een tevredenheidsschaal "
        "heeft er meestal wel een (gebruik 5 punten, of een oneven aantal sterren).",
        "required_open": "Een verplichte open vraag laat mensen afhaken; maak hem optioneel.",
        "too_long": "Invullen duurt ongeveer {seconds} s, meer dan de grens van {limit} s; elke extra vraag "
        "kost respondenten. Schrap vragen of stel ze alleen onder voorwaarden.",
    },
}


@dataclass(frozen=True)
class LintWarning:
    """One warning of the checklist, about a field of the definition, explained in a language."""

    code: str
    field: str
    question_id: str | None
    locale: str | None
    message: str


@dataclass(frozen=True)
class GlossaryTerm:
    """An internal term customers may not know, with a hint at what to say instead."""

    term: str
    hint: str | None = None


def estimated_seconds(questions: Iterable[Question]) -> int:
    """Return roughly how long answering takes when every question is shown (plus reading the page)."""
    return 5 + sum(SECONDS.get(q.type, 6) for q in questions)


def _texts(text: LocalText, default_locale: str) -> list[tuple[str, str]]:
    if isinstance(text, str):
        return [(default_locale, text)]
    return [(k, v) for k, v in text.items() if isinstance(v, str)]


def lint(
    questions: Sequence[Question],
    *,
    default_locale: str = "en",
    glossary: Sequence[GlossaryTerm] = (),
    max_seconds: int = 120,
    lang: str = "en",
) -> list[LintWarning]:
    """Return the checklist's warnings for a survey, explained in ``lang`` (en or nl)."""
    words = LINT_TEXT.get(lang, LINT_TEXT["en"])
    warnings: list[LintWarning] = []

    def warn(code: str, at: str, q: Question | None, locale: str | None, **params: object) -> None:
        warnings.append(LintWarning(code, at, q.id if q else None, locale, words[code].format(**params)))

    for i, q in enumerate(questions):
        if not q.asked:
            continue
        at = f"questions.{i}"
        for locale, text in _texts(q.text, default_locale):
            base = locale.replace("_", "-").split("-")[0].lower()
            short = text if len(text) <= 80 else text[:77] + "…"
            patterns = [base] if base in _DOUBLE else ["en", "nl"]
            for p in patterns:
                m = _DOUBLE[p].search(text)
                if m and q.type != "consent":
                    warn("double_barrelled", f"{at}.text", q, locale, text=short, match=_around(text, m))
                    break
            for p in patterns:
                m = _LEADING[p].search(text)
                if m:
                    warn("leading", f"{at}.text", q, locale, text=short, match=m.group(0))
                    break
            for g in glossary:
                if g.term.strip() and re.search(rf"(?<!\w){re.escape(g.term.strip())}(?!\w)", text, re.I):
                    hint = f" {_sentence(g.hint)}" if g.hint and g.hint.strip() else ""
                    warn("internal_term", f"{at}.text", q, locale, text=short, term=g.term, hint=hint)
        scale = q.scale
        if q.type in ("csat", "rating") and scale and (scale[1] - scale[0] + 1) % 2 == 0:
            warn("no_neutral", f"{at}.points", q, None, points=scale[1] - scale[0] + 1)
        if q.type == "open" and q.required:
            warn("required_open", f"{at}.required", q, None)
    seconds = estimated_seconds(questions)
    if seconds > max_seconds:
        warn("too_long", "questions", None, None, seconds=seconds, limit=max_seconds)
    return warnings


def _around(text: str, m: re.Match[str]) -> str:
    start = text.rfind(" ", 0, max(m.start() - 1, 0)) + 1
    end = text.find(" ", m.end() + 1)
    return text[start : end if end != -1 else len(text)].strip(" ?.,!")


def _sentence(text: str) -> str:
    """Return ``text`` as a sentence of its own: a capital first letter (the hint follows a full stop)."""
    text = text.strip()
    return text[:1].upper() + text[1:]
