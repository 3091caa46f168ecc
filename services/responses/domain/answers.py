"""Answers: what a valid answer to a question is (from JSON or an HTML form), and which answers a
completed response keeps."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services.responses.domain.definition import Answer, AnswerValue, Question
from services.responses.domain.logic import shown_questions
from services.responses.i18n import t


@dataclass(frozen=True)
class Problem:
    """Why an answer is not accepted: a message key of ``i18n`` and its parameters."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        return t(lang, self.key, self.params)


def check_value(q: Question, value: object, *, max_chars: int) -> tuple[AnswerValue | None, Problem | None]:
    """Return the answer to ``q`` typed and trimmed, or the problem with it."""
    if q.withheld:
        return None, Problem("err.not_asked", {"id": q.id})
    if q.scale:
        low, high = q.scale
        # bool is an int in Python; true is not a score.
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return None, Problem("err.range", {"low": low, "high": high})
        return value, None
    if q.type == "consent":
        return (value, None) if isinstance(value, bool) else (None, Problem("err.yes_no"))
    if q.type == "hidden":
        return None, Problem("err.hidden", {"id": q.id})
    option_ids = [o.id for o in q.options]
    if q.type == "single_choice":
        return (
            (value, None) if isinstance(value, str) and value in option_ids else (None, Problem("err.option"))
        )
    if q.type == "multiple_choice":
        if (
            not isinstance(value, list)
            or not value
            or len(set(map(str, value))) != len(value)
            or not all(isinstance(v, str) and v in option_ids for v in value)
        ):
            return None, Problem("err.options")
        return sorted(value, key=option_ids.index), None
    if not isinstance(value, str):
        return None, Problem("err.text")
    if len(value.strip()) > max_chars:
        return None, Problem("err.too_long", {"max": max_chars})
    return value.strip(), None


def no_answer(q: Question, value: object) -> bool:
    """Return whether ``value`` leaves ``q`` unanswered: null, blank text for an open question, no
    choices for a multiple choice. Blank text is no score, no option, no yes or no: it is refused."""
    if value is None:
        return True
    if q.type == "open":
        return isinstance(value, str) and not value.strip()
    return q.type == "multiple_choice" and value == []


def check_answers(
    questions: Sequence[Question], answers: Mapping[str, object], *, max_chars: int
) -> tuple[dict[str, AnswerValue], dict[str, Problem]]:
    """Return the typed non-blank answers and the problems, keyed by question id (no required check)."""
    by_id = {q.id: q for q in questions}
    problems: dict[str, Problem] = {}
    accepted: dict[str, AnswerValue] = {}
    for qid, value in answers.items():
        q = by_id.get(qid)
        if q is None:
            problems[qid] = Problem("err.unknown", {"id": qid})
            continue
        if no_answer(q, value):
            continue
        typed, problem = check_value(q, value, max_chars=max_chars)
        if problem:
            problems[qid] = problem
        else:
            accepted[qid] = typed  # type: ignore[assignment]
    return accepted, problems


def missing_required(questions: Iterable[Question], answers: Mapping[str, object]) -> dict[str, Problem]:
    """Return the required questions among ``questions`` that have no answer."""
    return {q.id: Problem("err.required") for q in questions if q.required and q.id not in answers}


def validate_answers(
    questions: Sequence[Question], answers: Mapping[str, object], *, max_chars: int
) -> tuple[list[Answer], dict[str, str]]:
    """Return the answers a respondent would complete with, in question order, and the problems.

    Answers to questions logic does not show are dropped; required shown questions must be answered.
    """
    accepted, problems = check_answers(questions, answers, max_chars=max_chars)
    shown = shown_questions(questions, accepted, {}, passed=[q.id for q in questions])
    problems.update({k: v for k, v in missing_required(shown, accepted).items() if k not in problems})
    final = [Answer(q.id, q.type, accepted[q.id]) for q in shown if q.id in accepted]
    return final, {k: p.text() for k, p in problems.items()}


def completed_answers(
    questions: Sequence[Question], answers: Mapping[str, AnswerValue], fields: Mapping[str, str]
) -> tuple[list[Answer], dict[str, Problem]]:
    """Return the answers a completed response keeps (those of shown questions, in order) and the
    required shown questions that are still unanswered."""
    everything = [q.id for q in questions]
    shown = shown_questions(questions, answers, fields, everything)
    kept = [Answer(q.id, q.type, answers[q.id]) for q in shown if q.id in answers]
    return kept, missing_required(shown, answers)


def consent_given(answers: Sequence[Answer]) -> bool:
    """Return True only when the consent question was answered yes."""
    return any(a.type == "consent" and a.value is True for a in answers)


def form_answers(questions: Sequence[Question], form: Mapping[str, str | list[str]]) -> dict[str, object]:
    """Return the answers in an HTML form, typed like JSON answers (fields that are not questions are ignored)."""
    answers: dict[str, object] = {}
    for q in questions:
        raw_values = form.get(q.id)
        if raw_values is None:
            continue
        values = [raw_values] if isinstance(raw_values, str) else list(raw_values)
        values = [v for v in values if v.strip()]
        if not values:
            continue
        raw = values[0]
        if q.type == "multiple_choice":
            answers[q.id] = [v.strip() for v in values]
        elif q.scale:
            answers[q.id] = _whole_number(raw)
        elif q.type == "consent":
            answers[q.id] = {"yes": True, "no": False}.get(raw.strip().lower(), raw)
        elif q.type == "single_choice":
            answers[q.id] = raw.strip()
        else:
            # Browsers send line breaks as CRLF but count them as one character against maxlength.
            answers[q.id] = raw.replace("\r\n", "\n")
    return answers


def _whole_number(raw: str) -> int | str:
    text = raw.strip()
    return int(text) if re.fullmatch(r"[+-]?\d{1,6}", text) else raw


def link_score(questions: Sequence[Question], raw: str | None) -> tuple[str, int] | Problem | None:
    """Return (question id, score) for ``?score=N`` — an answer to the survey's first question, the one
    an invitation embeds — or the problem when N is no answer to it (not a point of its scale, or the
    question takes no score); None when the link has no score."""
    if raw is None or not raw.strip():
        return None
    first = next((q for q in questions if q.asked), None)
    if first is None or first.scale is None:
        return Problem("err.link_no_score")
    value = _whole_number(raw)
    if isinstance(value, str) or check_value(first, value, max_chars=0)[1]:
        return Problem("err.link_score")
    return first.id, value


def answer_scale(q: Question) -> tuple[int, int] | None:
    """Return the scale published with an answer when it is not the type's default (csat 1–10, stars)."""
    if q.type == "rating" or (q.type == "csat" and (q.points or 5) != 5):
        return q.scale
    return None


def clean_context(context: object, *, max_fields: int = 50, max_chars: int = 500) -> dict[str, str]:
    """Return the hidden fields of a link: string keys and values only, bounded in number and size."""
    if not isinstance(context, dict):
        return {}
    out: dict[str, str] = {}
    for k, v in context.items():
        if isinstance(k, str) and isinstance(v, (str, int, float, bool)) and 0 < len(k) <= 100:
            out[k] = str(v)[:max_chars]
        if len(out) >= max_fields:
            break
    return out
