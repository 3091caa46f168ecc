"""Pure rules of the responses service: what a valid survey is, which questions a respondent
sees (logic), what a valid answer is, localised texts, branding and the question checklist.

No I/O here: everything is a function over plain values, so it is unit-tested directly.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.responses.i18n import t

QUESTION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
ATTRIBUTE_PREFIX = "attr."
"""Contact attributes ride in the link's context as ``attr.<name>`` keys (see docs/responses.md)."""

SCORED = ("nps", "nls", "csat", "ces")
QUESTION_TYPES = (
    *SCORED,
    "rating",
    "single_choice",
    "multiple_choice",
    "open",
    "consent",
    "hidden",
)
CSAT_STYLES = ("labels", "emoji", "numbers")
EMOJI_FACES = ("😠", "🙁", "😐", "🙂", "😄")

AnswerValue = int | bool | str | list[str]
LocalText = str | Mapping[str, str]
State = Literal["shown", "hidden", "undecided"]


# --- the survey definition ---------------------------------------------------------------


@dataclass(frozen=True)
class Option:
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
        """Hidden fields are never shown: the invitation fills them."""
        return self.type != "hidden"


@dataclass(frozen=True)
class Outcome:
    """A thank-you page for the respondents for whom ``when`` holds."""

    when: tuple[Condition, ...]
    text: LocalText
    link_url: str | None = None
    link_text: LocalText | None = None


@dataclass(frozen=True)
class Answer:
    question_id: str
    type: str
    value: AnswerValue


@dataclass(frozen=True)
class FieldError:
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
        if q.type not in QUESTION_TYPES:
            errors.append(
                FieldError(
                    f"{at}.type",
                    f"unknown question type {q.type!r}; expected one of " + ", ".join(QUESTION_TYPES),
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
    if not any(q.type in SCORED for q in questions):
        errors.append(
            FieldError("questions", "a survey needs at least one scored question (" + ", ".join(SCORED) + ")")
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


# --- languages and text ------------------------------------------------------------------


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


def fill(text: str, fields: Mapping[str, str]) -> str:
    """Return ``text`` with ``{field}`` (or ``{field|fallback}``) replaced by hidden-field values.

    The result is plain text; the page escapes it like any other text.
    """

    def sub(m: re.Match[str]) -> str:
        value = fields.get(m.group(1), "")
        return value if value.strip() else (m.group(2) or "")

    return _PLACEHOLDER.sub(sub, text)


# --- logic: which questions a respondent sees ----------------------------------------------


def _as_strings(value: object) -> set[str]:
    if isinstance(value, bool):
        return {"yes" if value else "no"}
    if isinstance(value, list):
        return {str(v) for v in value}
    return {str(value)}


def holds(
    c: Condition, answers: Mapping[str, object], fields: Mapping[str, str], passed: set[str]
) -> bool | None:
    """Return whether ``c`` holds; None while the question it looks at is still to be answered."""
    if c.attribute is not None:
        value: object = fields.get(ATTRIBUTE_PREFIX + c.attribute)
        return value is not None and str(value) in c.one_of
    qid = c.question or ""
    if qid in answers:
        value = answers[qid]
    elif qid in fields:
        value = fields[qid]
    else:
        # A question left blank (passed, or skipped by logic) never satisfies a condition.
        return None if qid not in passed else False
    if c.one_of:
        return bool(_as_strings(value) & set(c.one_of))
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return (c.min is None or value >= c.min) and (c.max is None or value <= c.max)


def _all(
    conditions: Iterable[Condition],
    answers: Mapping[str, object],
    fields: Mapping[str, str],
    passed: set[str],
) -> bool | None:
    result: bool | None = True
    for c in conditions:
        r = holds(c, answers, fields, passed)
        if r is False:
            return False
        if r is None:
            result = None
    return result


def plan(
    questions: Sequence[Question],
    answers: Mapping[str, object],
    fields: Mapping[str, str],
    passed: Iterable[str] = (),
) -> list[State]:
    """Return, per question, whether the respondent sees it, does not, or it is not decided yet."""
    passed_set = set(passed)
    states: list[State] = []
    ended: bool | None = False
    # A question that logic hides counts as passed for the conditions after it.
    hidden: set[str] = set()
    for q in questions:
        if not q.asked or ended is True:
            state: State = "hidden"
        else:
            shown = _all(q.show_if, answers, fields, passed_set | hidden)
            if shown is False:
                state = "hidden"
            elif shown is None or ended is None:
                state = "undecided"
            else:
                state = "shown"
        if state == "hidden":
            hidden.add(q.id)
        elif q.end_if:
            end = _all(q.end_if, answers, fields, passed_set | hidden)
            if end is True and state == "shown":
                ended = True
            elif end is not False:
                ended = None
        states.append(state)
    return states


def shown_questions(
    questions: Sequence[Question],
    answers: Mapping[str, object],
    fields: Mapping[str, str],
    passed: Iterable[str],
) -> list[Question]:
    """Return the questions the respondent sees, given what is known now."""
    return [
        q for q, s in zip(questions, plan(questions, answers, fields, passed), strict=True) if s == "shown"
    ]


def _depends_on(q: Question) -> set[str]:
    return {c.question for c in q.show_if if c.question}


def next_step(
    questions: Sequence[Question],
    answers: Mapping[str, object],
    fields: Mapping[str, str],
    passed: Iterable[str],
) -> list[Question]:
    """Return the next page of questions: from the first shown question not passed yet, up to the
    first question whose showing depends on an answer on this page (or that ends the survey)."""
    passed_set = set(passed)
    states = plan(questions, answers, fields, passed_set)
    step: list[Question] = []
    on_page: set[str] = set()
    for q, state in zip(questions, states, strict=True):
        if not step:
            if state == "shown" and q.id not in passed_set:
                step.append(q)
                on_page.add(q.id)
                if q.end_if:
                    break
            elif state == "undecided":
                break
            continue
        if state == "hidden" or q.id in passed_set:
            continue
        if state == "undecided" or _depends_on(q) & on_page:
            break
        step.append(q)
        on_page.add(q.id)
        if q.end_if:
            break
    return step


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


def progress(
    questions: Sequence[Question],
    answers: Mapping[str, object],
    fields: Mapping[str, str],
    passed: Iterable[str],
) -> Progress:
    """Return how many of the questions this respondent will see are behind them.

    Questions not decided yet count as shown, so the total can only shrink as answers come in:
    the bar never jumps backwards.
    """
    passed_set = set(passed)
    states = plan(questions, answers, fields, passed_set)
    total = sum(1 for s in states if s != "hidden")
    done = sum(1 for q, s in zip(questions, states, strict=True) if s == "shown" and (q.id in passed_set))
    return Progress(done, total)


# --- answers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Why an answer is not accepted: a message key of ``i18n`` and its parameters."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        return t(lang, self.key, self.params)


def check_value(q: Question, value: object, *, max_chars: int) -> tuple[AnswerValue | None, Problem | None]:
    """Return the answer to ``q`` typed and trimmed, or the problem with it."""
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


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


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
        if _blank(value):
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


def preselected_score(questions: Sequence[Question], raw: str | None) -> tuple[str, int] | None:
    """Return (question id, score) for ``?score=N`` on the first scored question, or None when N is no valid answer."""
    scored = next((q for q in questions if q.type in SCORED and q.asked), None)
    if scored is None or raw is None:
        return None
    value = _whole_number(raw)
    if isinstance(value, str) or check_value(scored, value, max_chars=0)[1]:
        return None
    return scored.id, value


def answer_scale(q: Question) -> tuple[int, int] | None:
    """Return the scale published with an answer when it is not the type's default (csat 1–10, stars)."""
    if q.type == "rating" or (q.type == "csat" and (q.points or 5) != 5):
        return q.scale
    return None


def thank_you_for(
    outcomes: Sequence[Outcome], answers: Mapping[str, object], fields: Mapping[str, str]
) -> Outcome | None:
    """Return the first outcome whose conditions hold for this response."""
    for o in outcomes:
        if _all(o.when, answers, fields, set(answers) | set(fields)) is True:
            return o
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


# --- branding ------------------------------------------------------------------------------

FONTS = {
    "system": 'system-ui,-apple-system,"Segoe UI",Roboto,sans-serif',
    "serif": 'Georgia,"Times New Roman",serif',
    "rounded": 'ui-rounded,"SF Pro Rounded","Nunito",system-ui,sans-serif',
    "mono": 'ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace',
}
TONES = ("friendly", "formal", "playful")
DEFAULT_BRANDING: dict[str, str | None] = {
    "logo": None,
    "primary_color": "#1f4fd1",
    "background_color": "#f4f5f7",
    "text_color": "#1d2330",
    "font": "system",
    "tone": "friendly",
}
LOGO = re.compile(r"^data:image/(png|jpeg|webp|gif|svg\+xml);base64,([A-Za-z0-9+/=]+)$")


def merge_branding(*layers: Mapping[str, object] | None) -> dict[str, str | None]:
    """Return the branding in force: defaults, then the workspace's, then the survey's own."""
    merged = dict(DEFAULT_BRANDING)
    for layer in layers:
        for k, v in (layer or {}).items():
            if k in merged and v is not None:
                merged[k] = str(v)
    return merged


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """Return the WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def on_colour(background: str) -> str:
    """Return white or near-black, whichever reads better on ``background``."""
    return "#ffffff" if contrast(background, "#ffffff") >= contrast(background, "#111111") else "#111111"


def check_branding(branding: Mapping[str, object], *, max_logo_bytes: int, at: str = "") -> list[FieldError]:
    """Return what is wrong with a branding: unreadable colours, a logo that is no small inline image."""
    errors: list[FieldError] = []
    merged = merge_branding(branding)
    text, background = str(merged["text_color"]), str(merged["background_color"])
    ratio = contrast(text, background)
    if ratio < 4.5:
        errors.append(
            FieldError(
                f"{at}text_color",
                f"text on the background has a contrast of {ratio:.1f}:1; at least 4.5:1 is needed (WCAG AA)",
            )
        )
    primary = str(merged["primary_color"])
    if contrast(primary, background) < 3:
        errors.append(
            FieldError(
                f"{at}primary_color",
                f"the primary colour on the background has a contrast of {contrast(primary, background):.1f}:1;"
                " buttons and selected answers need at least 3:1",
            )
        )
    logo = branding.get("logo")
    if isinstance(logo, str):
        m = LOGO.match(logo)
        try:
            data = base64.b64decode(m.group(2), validate=True) if m else None
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            errors.append(
                FieldError(
                    f"{at}logo", "give the logo inline as data:image/(png|jpeg|webp|gif|svg+xml);base64,…"
                )
            )
        elif len(data) > max_logo_bytes:
            errors.append(
                FieldError(
                    f"{at}logo", f"the logo is {len(data)} bytes; at most {max_logo_bytes} keep pages fast"
                )
            )
    return errors


# --- the question checklist ----------------------------------------------------------------

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
    code: str
    field: str
    question_id: str | None
    locale: str | None
    message: str


@dataclass(frozen=True)
class GlossaryTerm:
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
                    hint = f" {g.hint}" if g.hint else ""
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


# --- kiosk rate limit ----------------------------------------------------------------------
