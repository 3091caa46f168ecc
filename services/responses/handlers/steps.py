"""The HTML survey page, one step at a time: which questions it shows now (a score clicked in the
invitation is an answer already), and what one page's form post stores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.domain.answers import (
    Problem,
    check_answers,
    form_answers,
    link_score,
    missing_required,
)
from services.responses.domain.definition import Question
from services.responses.domain.logic import shown_questions
from services.responses.handlers.responses import complete, save_answers
from services.responses.handlers.visits import Visit
from shared.errors import InvalidInput
from shared.outbox import Outbox


@dataclass(frozen=True)
class Step:
    """What the page shows now: its questions, and why the score in the link was not saved (if so)."""

    questions: list[Question]
    link_problem: Problem | None = None


async def step_to_show(
    session: AsyncSession | None, outbox: Outbox, *, visit: Visit, score: str | None, question_id: str | None
) -> Step:
    """Return what the page shows now: ``question_id`` when it is behind the respondent, else the next
    step. ``score`` (``?score=N``, the first question answered in the invitation) is saved first and the
    page moves past it; a score that is no answer to the first question is refused, not stored."""
    scored = link_score(visit.questions, score)
    if isinstance(scored, tuple) and scored[0] not in visit.answers:
        # The score clicked in the email is an answer, behind the respondent now (Back reopens it);
        # progress counts it done on the page and in the JSON alike.
        assert session is not None, "a score in the link is saved in a unit of work"
        await save_answers(session, outbox, visit=visit, answers={scored[0]: scored[1]}, passed=[scored[0]])
    shown = shown_questions(visit.questions, visit.answers, visit.fields, visit.passed)
    explicit = next(
        (s for s in shown if s.id == question_id and (s.id in visit.passed or s.id in visit.answers)), None
    )
    step = [explicit] if explicit else visit.next_step()
    if not step:
        # Everything was answered through the API but not sent: show the last question with Send.
        step = shown[-1:] or [q for q in visit.questions if q.asked][:1]
    return Step(step, scored if isinstance(scored, Problem) else None)


@dataclass(frozen=True)
class FormResult:
    """What a page's form post did: refused with ``problems`` (show ``step`` again with ``values``),
    or stored: ``completed``, or ``unanswered`` names a required question still open."""

    step: list[Question] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, Problem] = field(default_factory=dict)
    completed: bool = False
    unanswered: str | None = None


@dataclass(frozen=True)
class CheckedForm:
    """One page's form post, checked: the ``step`` it answers (``whole``: every question at once), and
    either the ``answers`` to store (None clears one) or why it is refused (``refused``)."""

    step: list[Question]
    whole: bool
    answers: dict[str, Any] = field(default_factory=dict)
    refused: FormResult | None = None


def check_form(visit: Visit, *, form: Mapping[str, list[str]], max_chars: int) -> CheckedForm:
    """Return one page's form fields (question ids) checked against the questions it showed."""
    shown_field = form["_shown"][0] if form.get("_shown") else None
    asked = [q for q in visit.questions if q.asked]
    # Without ``_shown`` (a plain form post of every answer at once) the whole survey is one page.
    whole = shown_field is None
    step = asked if whole else [q for q in asked if q.id in set((shown_field or "").split(","))]
    if not step:
        step = visit.next_step() or asked
    raw = form_answers(step, form)
    accepted, problems = check_answers(step, raw, max_chars=max_chars)
    merged = {k: v for k, v in visit.answers.items() if k not in {q.id for q in step}} | accepted
    passed = visit.passed | {q.id for q in step}
    shown_now = shown_questions(visit.questions, merged, visit.fields, passed)
    missing = missing_required([q for q in step if q in shown_now], merged)
    problems = {**missing, **problems}
    if problems:
        on_page = [q for q in step if q in shown_now or q.id in problems]
        refused = FormResult(step=on_page, values={**merged, **raw}, problems=problems)
        return CheckedForm(step, whole, refused=refused)
    return CheckedForm(step, whole, answers={q.id: accepted.get(q.id) for q in step})


async def submit_form(
    session: AsyncSession,
    outbox: Outbox,
    *,
    visit: Visit,
    form: Mapping[str, list[str]],
    max_chars: int,
) -> FormResult:
    """Return what storing one page's form fields (question ids) did; the last page completes the response."""
    checked = check_form(visit, form=form, max_chars=max_chars)
    if checked.refused:
        return checked.refused
    await save_answers(
        session, outbox, visit=visit, answers=checked.answers, passed=[q.id for q in checked.step]
    )
    if checked.whole or not visit.next_step():
        try:
            await complete(session, outbox, visit=visit)
        except InvalidInput as exc:
            return FormResult(unanswered=exc.errors[0]["field"].removeprefix("answers."))
        return FormResult(completed=True)
    return FormResult()
