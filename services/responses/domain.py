"""Pure rules of the responses service: what a valid survey is and what a valid answer is."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

QUESTION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "nls": (0, 10), "csat": (1, 5), "ces": (1, 7)}
"""The scored question types and their (lowest, highest) answer."""

QUESTION_TYPES = (*SCALES, "open", "consent")

AnswerValue = int | bool | str


@dataclass(frozen=True)
class Question:
    id: str
    type: str
    text: str
    required: bool = False

    @property
    def scale(self) -> tuple[int, int] | None:
        return SCALES.get(self.type)


@dataclass(frozen=True)
class Answer:
    question_id: str
    type: str
    value: AnswerValue


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


def check_survey(questions: Sequence[Question]) -> list[FieldError]:
    """Return what is wrong with a survey's questions as a whole (empty when it is valid)."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    consent_seen = False
    for i, q in enumerate(questions):
        if not QUESTION_ID.match(q.id):
            errors.append(
                FieldError(
                    f"questions.{i}.id",
                    f"{q.id!r} is not a slug: use 1-63 lowercase letters, "
                    "digits, '-' or '_', starting with a letter or digit",
                )
            )
        elif q.id in seen:
            errors.append(FieldError(f"questions.{i}.id", f"question id {q.id!r} is used twice"))
        seen.add(q.id)
        if q.type not in QUESTION_TYPES:
            errors.append(
                FieldError(
                    f"questions.{i}.type",
                    f"unknown question type {q.type!r}; expected one of " + ", ".join(QUESTION_TYPES),
                )
            )
        elif q.type == "consent":
            if consent_seen:
                errors.append(FieldError(f"questions.{i}.type", "a survey has at most one consent question"))
            consent_seen = True
    if not any(q.type in SCALES for q in questions):
        errors.append(
            FieldError("questions", "a survey needs at least one scored question (" + ", ".join(SCALES) + ")")
        )
    return errors


def validate_answers(
    questions: Sequence[Question], answers: Mapping[str, object], *, max_chars: int
) -> tuple[list[Answer], dict[str, str]]:
    """Return the typed answers in question order and the problems, keyed by question id."""
    by_id = {q.id: q for q in questions}
    errors = {qid: f"there is no question {qid!r} in this survey" for qid in answers if qid not in by_id}
    accepted: list[Answer] = []
    for q in questions:
        value = answers.get(q.id)
        if isinstance(value, str) and not value.strip():
            value = None
        if value is None:
            if q.required:
                errors[q.id] = "this question needs an answer"
            continue
        problem = _check_value(q, value, max_chars=max_chars)
        if problem:
            errors[q.id] = problem
        else:
            accepted.append(Answer(q.id, q.type, value.strip() if isinstance(value, str) else value))  # type: ignore[arg-type]
    return accepted, errors


def _check_value(q: Question, value: object, *, max_chars: int) -> str | None:
    if q.scale:
        low, high = q.scale
        # bool is an int in Python; true is not a score.
        if not isinstance(value, int) or isinstance(value, bool):
            return f"choose a whole number from {low} to {high}"
        if not low <= value <= high:
            return f"{value} is outside the scale; choose a number from {low} to {high}"
        return None
    if q.type == "consent":
        return None if isinstance(value, bool) else "answer yes (true) or no (false)"
    if not isinstance(value, str):
        return "the answer must be text"
    if len(value.strip()) > max_chars:
        return f"the answer is longer than {max_chars} characters; please shorten it"
    return None


def consent_given(answers: Sequence[Answer]) -> bool:
    """Return True only when the consent question was answered yes."""
    return any(a.type == "consent" and a.value is True for a in answers)


def form_answers(questions: Sequence[Question], form: Mapping[str, str]) -> dict[str, object]:
    """Return the answers in an HTML form, typed like JSON answers (fields that are not questions are ignored)."""
    answers: dict[str, object] = {}
    for q in questions:
        raw = form.get(q.id)
        if raw is None or not raw.strip():
            continue
        if q.scale:
            answers[q.id] = _whole_number(raw)
        elif q.type == "consent":
            answers[q.id] = {"yes": True, "no": False}.get(raw.strip().lower(), raw)
        else:
            # Browsers send line breaks as CRLF but count them as one character against maxlength.
            answers[q.id] = raw.replace("\r\n", "\n")
    return answers


def _whole_number(raw: str) -> int | str:
    text = raw.strip()
    return int(text) if re.fullmatch(r"[+-]?\d{1,6}", text) else raw


def preselected_score(questions: Sequence[Question], raw: str | None) -> tuple[str, int] | None:
    """Return (question id, score) for ``?score=N`` on the first scored question, or None when N is no valid answer."""
    scored = next((q for q in questions if q.scale), None)
    if scored is None or raw is None:
        return None
    value = _whole_number(raw)
    if isinstance(value, str) or _check_value(scored, value, max_chars=0):
        return None
    return scored.id, value
