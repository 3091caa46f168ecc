"""A saved survey as the editor's draft, and responses' refusal of an edit as errors beside the editor's
fields. What the editor does not show (choice options, texts in a third language, further conditions, the
title, thank-you texts, outcomes, the tone) travels along in the draft's ``kept`` fields, so saving an edit
keeps it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from services.console.domain.survey_form import (
    KEPT_BRANDING,
    KEPT_QUESTION,
    KEPT_SURVEY,
    Branding,
    Draft,
    QuestionRow,
)

QUESTION_INPUTS = {"id": "id", "type": "type", "text": "text", "required": "id", "show_if": "show-q"}
QUESTION_INPUTS |= {"end_if": "end-min", "options": "type", "style": "type", "points": "type"}
BRANDING_INPUTS = {"primary_color": "b-primary", "background_color": "b-background", "text_color": "b-text"}
BRANDING_INPUTS |= {"font": "b-font", "logo": "b-logo"}
SURVEY_INPUTS = {"name": "name", "default_locale": "default-locale", "reward_pool_id": "reward-pool"}
SURVEY_INPUTS |= {"questions": "q1-id"}


def _given(found: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that hold a value (responses answers every field of a condition, most of them null)."""
    return {k: v for k, v in found.items() if v is not None}


def _texts(value: Any, default: str) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {default: str(value)} if value else {}


def second_locale(survey: Mapping[str, Any]) -> str:
    """The language the editor shows beside the default: the one most of the questions' texts are in
    besides it (the others are kept as they are)."""
    default = survey.get("default_locale") or "en"
    found = Counter(k for q in survey.get("questions") or [] for k in _texts(q.get("text"), default))
    found.pop(default, None)
    return min(found, key=lambda k: (-found[k], k), default="")


def _number(value: Any) -> str:
    return "" if value is None else str(value)


def _split(conditions: Sequence[Any], first: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first condition the form shows (``first`` says which) and the rest, kept as they are."""
    given = [_given(c) for c in conditions if isinstance(c, dict)]
    at = next((i for i, c in enumerate(given) if first(c)), None)
    if at is None:
        return {}, given
    return given[at], given[:at] + given[at + 1 :]


def row_of(question: Mapping[str, Any], default: str, second: str) -> QuestionRow:
    """Return a saved question as an editor row, what the row cannot show kept as JSON."""
    qid = str(question.get("id") or "")
    texts = _texts(question.get("text"), default)
    show, show_rest = _split(
        question.get("show_if") or [], lambda c: "question" in c and "attribute" not in c
    )
    end, end_rest = _split(question.get("end_if") or [], lambda c: c.get("question") == qid)
    kept: dict[str, Any] = {k: question[k] for k in KEPT_QUESTION if question.get(k) is not None}
    if more := {k: v for k, v in texts.items() if k not in (default, second)}:
        kept["text"] = more
    kept |= {k: v for k, v in (("show_if", show_rest), ("end_if", end_rest)) if v}
    return QuestionRow(
        id=qid,
        type=str(question.get("type") or "open"),
        text=texts.get(default, ""),
        text2=texts.get(second, "") if second else "",
        required=bool(question.get("required")),
        show_q=str(show.get("question") or ""),
        show_min=_number(show.get("min")),
        show_max=_number(show.get("max")),
        show_values=", ".join(show.get("one_of") or []),
        end_min=_number(end.get("min")),
        end_max=_number(end.get("max")),
        end_values=", ".join(end.get("one_of") or []),
        kept=json.dumps(kept, ensure_ascii=False) if kept else "",
    )


def draft_of_survey(survey: Mapping[str, Any], *, blank_rows: int) -> Draft:
    """Return the current version of a saved survey as the editor's draft, ``blank_rows`` more to add."""
    default = str(survey.get("default_locale") or "en")
    second = second_locale(survey)
    rows = [row_of(q, default, second) for q in survey.get("questions") or [] if isinstance(q, dict)]
    own = survey.get("branding") if isinstance(survey.get("branding"), dict) else None
    kept: dict[str, Any] = {k: survey[k] for k in KEPT_SURVEY if survey.get(k)}
    if own and (look := {k: own[k] for k in KEPT_BRANDING if own.get(k)}):
        kept["branding"] = look
    plain = Branding()
    branding = Branding(
        own=own is not None,
        primary_color=(own or {}).get("primary_color") or plain.primary_color,
        background_color=(own or {}).get("background_color") or plain.background_color,
        text_color=(own or {}).get("text_color") or plain.text_color,
        font=(own or {}).get("font") or plain.font,
        logo=(own or {}).get("logo"),
    )
    return Draft(
        name=str(survey.get("name") or ""),
        default_locale=default,
        second_locale=second,
        rows=rows + [QuestionRow() for _ in range(blank_rows)],
        branding=branding,
        reward_pool_id=str(survey.get("reward_pool_id") or ""),
        kept=json.dumps(kept, ensure_ascii=False) if kept else "",
    )


def input_of(path: str, second: str) -> str | None:
    """Return the id of the editor's input that responses' error ``path`` (e.g. ``questions.1.text.nl``)
    is about, or None when the editor does not show that field."""
    parts = path.split(".")
    if parts[0] == "questions" and len(parts) > 2 and parts[1].isdigit():
        name = QUESTION_INPUTS.get(parts[2])
        if name == "text" and second and second in parts[3:]:
            name = "text2"
        return f"q{int(parts[1]) + 1}-{name}" if name else None
    if parts[0] == "branding" and len(parts) > 1:
        return BRANDING_INPUTS.get(parts[1])
    return SURVEY_INPUTS.get(parts[0])


def field_errors(errors: Sequence[Mapping[str, Any]], second: str) -> dict[str, str]:
    """Return responses' field errors by the editor input they are about (the first error of each)."""
    out: dict[str, str] = {}
    for e in errors:
        if (at := input_of(str(e.get("field") or ""), second)) is not None:
            out.setdefault(at, str(e.get("message") or "not valid"))
    return out
