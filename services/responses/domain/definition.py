"""The survey definition: questions, their conditions and outcomes, and what makes a survey valid."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal, get_args

from shared.vocabulary import METRICS, QuestionType

QUESTION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ATTRIBUTE_PREFIX = "attr."
"""Contact attributes ride in the link's context as ``attr.<name>`` keys (see docs/responses.md)."""

SurveyQuestionType = Literal[QuestionType, "hidden"]
"""What a question of a definition is: one the respondent answers (a ``QuestionType``, which its
answer carries in ``ResponseCompleted``) or a hidden field that the invitation fills."""
SURVEY_QUESTION_TYPES: tuple[SurveyQuestionType, ...] = get_args(SurveyQuestionType)

CsatStyle = Literal["labels", "emoji", "numbers"]
CSAT_STYLES: tuple[CsatStyle, ...] = get_args(CsatStyle)
EMOJI_FACES = ("😠", "🙁", "😐", "🙂", "😄")

AnswerValue = int | bool | str | list[str]
LocalText = str | Mapping[str, str]


@dataclass(frozen=True)
class Option:
    """One option of a choice question."""

    id: str
    text: LocalText


@dataclass(frozen=True)
class Condition:
    """Holds when an earlier answer (or hidden field) is in [min, max] or one of ``one_of``,
    or when a contact attribute is one of ``one_of``."""

    question: str | None = None
    attribute: str | None = None
    min: int | None = None
    max: int | None = None
    one_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class Question:
    """One question of a survey, as its definition stores it."""

    id: str
    type: str
    text: LocalText = ""
    required: bool = False
    options: tuple[Option, ...] = ()
    style: str | None = None
    """csat: labels (default), emoji or numbers."""
    points: int | None = None
    """csat: 5 (default) or 10; rating: 3 to 10 stars (default 5)."""
    show_if: tuple[Condition, ...] = ()
    """Asked only when all of these hold."""
    end_if: tuple[Condition, ...] = ()
    """Once this question is passed, the survey skips to the end when all of these hold."""
    withheld: bool = False
    """Not asked of this respondent: the consent question where nobody can contact them."""

    @property
    def scale(self) -> tuple[int, int] | None:
        if self.type in ("nps", "nls"):
            return (0, 10)
        if self.type == "ces":
            return (1, 7)
        if self.type in ("csat", "rating"):
            return (1, self.points or 5)
        return None

    @property
    def asked(self) -> bool:
        """Hidden fields are never shown (the invitation fills them), nor a withheld question."""
        return self.type != "hidden" and not self.withheld


def for_respondent(questions: Sequence[Question], *, reachable: bool) -> list[Question]:
    """Return the questions as this respondent is asked them: without the consent question ("may we
    contact you?") when there is no way to reach them (a kiosk, a link without an address)."""
    if reachable:
        return list(questions)
    return [replace(q, withheld=True) if q.type == "consent" else q for q in questions]


@dataclass(frozen=True)
class Outcome:
    """A thank-you page for the respondents for whom ``when`` holds."""

    when: tuple[Condition, ...]
    text: LocalText
    link_url: str | None = None
    link_text: LocalText | None = None


@dataclass(frozen=True)
class Answer:
    """One answer a completed response keeps: the question, its type and the typed value."""

    question_id: str
    type: str
    value: AnswerValue


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field of a definition or a branding (a dotted path)."""

    field: str
    message: str


def _conditions(raw: Any) -> tuple[Condition, ...]:
    if not raw:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    return tuple(
        Condition(
            question=c.get("question"),
            attribute=c.get("attribute"),
            min=c.get("min"),
            max=c.get("max"),
            one_of=tuple(c.get("one_of") or ()),
        )
        for c in items
    )


def question_from_dict(q: Mapping[str, Any]) -> Question:
    """Return the question stored as JSON (the API's shape)."""
    return Question(
        id=q["id"],
        type=q["type"],
        text=q.get("text") or "",
        required=bool(q.get("required", False)),
        options=tuple(Option(o["id"], o["text"]) for o in q.get("options") or ()),
        style=q.get("style"),
        points=q.get("points"),
        show_if=_conditions(q.get("show_if")),
        end_if=_conditions(q.get("end_if")),
    )


def outcome_from_dict(o: Mapping[str, Any]) -> Outcome:
    """Return the outcome stored as JSON (the API's shape)."""
    return Outcome(_conditions(o.get("when")), o["text"], o.get("link_url"), o.get("link_text"))


def check_survey(
    questions: Sequence[Question], *, default_locale: str = "en", outcomes: Sequence[Outcome] = ()
) -> list[FieldError]:
    """Return what is wrong with a survey definition as a whole (empty when it is valid)."""
    errors: list[FieldError] = []
    seen: dict[str, Question] = {}
    consent_seen = False
    for i, q in enumerate(questions):
        at = f"questions.{i}"
        if not QUESTION_ID.match(q.id):
            errors.append(
                FieldError(
                    f"{at}.id",
                    f"{q.id!r} is not a slug: use 1-63 lowercase letters, "
                    "digits, '-' or '_', starting with a letter or digit",
                )
            )
        elif q.id in seen:
            errors.append(FieldError(f"{at}.id", f"question id {q.id!r} is used twice"))
        if q.type not in SURVEY_QUESTION_TYPES:
            errors.append(
                FieldError(
                    f"{at}.type",
                    f"unknown question type {q.type!r}; expected one of " + ", ".join(SURVEY_QUESTION_TYPES),
                )
            )
        else:
            errors.extend(_check_question(q, at, default_locale=default_locale))
            if q.type == "consent":
                if consent_seen:
                    errors.append(FieldError(f"{at}.type", "a survey has at most one consent question"))
                consent_seen = True
        for key, conditions in (("show_if", q.show_if), ("end_if", q.end_if)):
            # end_if may look at the question itself: "skip to the end when the answer is no".
            earlier = {**seen, q.id: q} if key == "end_if" else seen
            for j, c in enumerate(conditions):
                errors.extend(_check_condition(c, f"{at}.{key}.{j}", earlier))
        seen.setdefault(q.id, q)
    if not any(q.type in METRICS for q in questions):
        errors.append(
            FieldError(
                "questions", "a survey needs at least one scored question (" + ", ".join(METRICS) + ")"
            )
        )
    for i, o in enumerate(outcomes):
        for j, c in enumerate(o.when):
            errors.extend(_check_condition(c, f"outcomes.{i}.when.{j}", seen))
        if not _has_default(o.text, default_locale):
            errors.append(FieldError(f"outcomes.{i}.text", f"give the text in {default_locale!r}"))
    return errors


def _has_default(text: LocalText, default_locale: str) -> bool:
    if isinstance(text, str):
        return bool(text.strip())
    return bool(str(text.get(default_locale, "")).strip())


def _check_question(q: Question, at: str, *, default_locale: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if q.asked and not _has_default(q.text, default_locale):
        errors.append(FieldError(f"{at}.text", f"give the question's text in {default_locale!r}"))
    choice = q.type in ("single_choice", "multiple_choice")
    if choice and len(q.options) < 2:
        errors.append(FieldError(f"{at}.options", "a choice question needs at least two options"))
    if not choice and q.options:
        errors.append(FieldError(f"{at}.options", f"a {q.type} question has no options"))
    option_ids: set[str] = set()
    for k, o in enumerate(q.options):
        if not QUESTION_ID.match(o.id) or o.id in option_ids:
            errors.append(FieldError(f"{at}.options.{k}.id", f"{o.id!r}: use a unique slug per option"))
        option_ids.add(o.id)
        if not _has_default(o.text, default_locale):
            errors.append(
                FieldError(f"{at}.options.{k}.text", f"give the option's text in {default_locale!r}")
            )
    if q.style is not None and (q.type != "csat" or q.style not in CSAT_STYLES):
        errors.append(
            FieldError(f"{at}.style", "only csat questions have a style: " + ", ".join(CSAT_STYLES))
        )
    if q.points is not None:
        if q.type == "csat" and q.points not in (5, 10):
            errors.append(FieldError(f"{at}.points", "a csat scale has 5 or 10 points"))
        elif q.type == "rating" and not 3 <= q.points <= 10:
            errors.append(FieldError(f"{at}.points", "a star rating has 3 to 10 stars"))
        elif q.type not in ("csat", "rating"):
            errors.append(FieldError(f"{at}.points", "only csat and rating questions have points"))
    if q.type == "csat" and q.points == 10 and q.style in ("labels", "emoji"):
        errors.append(FieldError(f"{at}.style", "labels and emoji faces need the 5-point scale"))
    if q.type == "hidden" and (q.required or q.show_if or q.end_if):
        errors.append(FieldError(f"{at}.type", "a hidden field is filled from the invitation: no logic"))
    return errors


def _check_condition(c: Condition, at: str, earlier: Mapping[str, Question]) -> list[FieldError]:
    if (c.question is None) == (c.attribute is None):
        return [FieldError(at, "name either an earlier 'question' or a contact 'attribute'")]
    if c.attribute is not None:
        if not QUESTION_ID.match(c.attribute):
            return [FieldError(f"{at}.attribute", f"{c.attribute!r} is not an attribute name (a slug)")]
        if not c.one_of:
            return [FieldError(f"{at}.one_of", "list the attribute values that show the question")]
        return []
    target = earlier.get(c.question or "")
    if target is None:
        return [FieldError(f"{at}.question", f"{c.question!r} is not an earlier question of this survey")]
    ranged = c.min is not None or c.max is not None
    if ranged and c.one_of:
        return [FieldError(at, "use either min/max or one_of, not both")]
    if not ranged and not c.one_of:
        return [FieldError(at, "give min/max (a range of scores) or one_of (values)")]
    if ranged and target.scale is None:
        return [FieldError(f"{at}.min", f"{target.id!r} has no numeric scale; use one_of")]
    if ranged and c.min is not None and c.max is not None and c.min > c.max:
        return [FieldError(f"{at}.min", "min is larger than max")]
    return []


@dataclass(frozen=True)
class Definition:
    """One version of a survey, parsed."""

    version: int
    raw: dict[str, Any]
    questions: list[Question]
    outcomes: list[Outcome]
    default_locale: str

    @classmethod
    def of(cls, version: int, raw: dict[str, Any]) -> Definition:
        """Return version ``version`` parsed from its stored JSON."""
        return cls(
            version,
            raw,
            [question_from_dict(q) for q in raw.get("questions", [])],
            [outcome_from_dict(o) for o in raw.get("outcomes") or ()],
            raw.get("default_locale") or "en",
        )

    @cached_property
    def fills_fields(self) -> bool:
        """Whether any of its texts has a ``{field}`` the link's hidden fields fill (its pages differ per
        respondent then, beyond their answers)."""
        from services.responses.domain.languages import has_placeholder  # it imports this module

        return has_placeholder(self.raw)
