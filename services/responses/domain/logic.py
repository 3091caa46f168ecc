"""Logic: which questions a respondent sees, page by page, how far along they are, and which
thank-you page they get."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from services.responses.domain.definition import ATTRIBUTE_PREFIX, Condition, Outcome, Question

State = Literal["shown", "hidden", "undecided"]


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
    """How many of the questions a respondent will see are behind them."""

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


def thank_you_for(
    outcomes: Sequence[Outcome], answers: Mapping[str, object], fields: Mapping[str, str]
) -> Outcome | None:
    """Return the first outcome whose conditions hold for this response."""
    for o in outcomes:
        if _all(o.when, answers, fields, set(answers) | set(fields)) is True:
            return o
    return None
