"""The survey behind a link as JSON, for custom front ends and apps: read it, save answers one by
one, complete the response. The signed token in the URL is the credential."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from services.responses.deps import RuntimeDep, open_visit, opened_link
from services.responses.handlers import answer_writes, responses
from services.responses.handlers.visits import Visit
from services.responses.schemas import (
    AnswerSaved,
    AnswerSubmit,
    ProgressOut,
    PublicSurveyOut,
    QuestionOut,
    ResponseCreated,
    ResponseSubmit,
)
from shared.guard import GuardedRoute, public
from shared.service import SessionDep

router = APIRouter(
    route_class=GuardedRoute,
    tags=["public"],
    dependencies=[
        public("the token is a signed, expiring survey link: it names the one response it may write")
    ],
)


def _progress(visit: Visit) -> ProgressOut:
    p = visit.progress()
    return ProgressOut(done=p.done, total=p.total)


@router.get(
    "/v1/public/surveys/{token}",
    summary="The survey behind a link in the respondent's language, the answers so far and what is next",
)
async def public_survey(
    token: str, request: Request, session: SessionDep, runtime: RuntimeDep
) -> PublicSurveyOut:
    visit = await open_visit(session, runtime, token)
    questions = [
        QuestionOut(
            id=q.id,
            type=q.type,
            text=visit.text(q.text),
            required=q.required,
            min=q.scale[0] if q.scale else None,
            max=q.scale[1] if q.scale else None,
            style=q.style,
            options=[{"id": o.id, "text": visit.text(o.text)} for o in q.options],
            show_if=[c.__dict__ for c in q.show_if],
            end_if=[c.__dict__ for c in q.end_if],
        )
        for q in visit.questions
        if q.asked
    ]
    return PublicSurveyOut(
        survey_id=visit.survey.id,
        name=visit.survey.name,
        version=visit.definition.version,
        questions=questions,
        thank_you_text=visit.text(visit.definition.raw.get("thank_you_text")) or None,
        locale=visit.locale,
        answered=visit.completed,
        started=visit.response is not None,
        answers=visit.answers,
        next_questions=[q.id for q in visit.next_step()] if not visit.completed else [],
        progress=_progress(visit),
        form_url=f"{runtime.settings.public_url}/s/{token}",
    )


@router.put(
    "/v1/public/surveys/{token}/answers/{question_id}",
    name="save_answer",
    summary="Save one answer as it is given (the first one starts the response); null clears it",
    responses={
        409: {"description": "The response is already completed"},
        410: {"description": "Expired or closed"},
    },
)
async def save_answer(token: str, question_id: str, body: AnswerSubmit, runtime: RuntimeDep) -> AnswerSaved:
    settings = runtime.settings
    # The hot path: the visit read in one statement, the answer written in one (``answer_writes``);
    # kiosk links, and a write that did not apply (a race, see there), take the locked path.
    async with runtime.deps.pool.acquire() as connection:  # one connection for the read and the write
        link = opened_link(runtime, token)
        visit = None
        if link is not None:
            # A first answer is read and written in one statement when the survey's version is known.
            visit, saved = await answer_writes.read_and_save_first(
                connection,
                runtime.deps.definitions,
                runtime.outbox,
                link=link,
                question_id=question_id,
                value=body.value,
                max_chars=settings.max_answer_chars,
            )
            if saved:
                runtime.db.outbox_committed()  # ResponseStarted was committed with it
                return _saved(visit, question_id)
        if visit is not None:
            typed = responses.checked_answer(
                visit, question_id=question_id, value=body.value, max_chars=settings.max_answer_chars
            )
            starts = visit.response is None
            saved = typed is None and starts  # clearing an answer never given stores nothing
            if not saved and await answer_writes.save_one(
                connection, runtime.outbox, visit=visit, question_id=question_id, value=typed
            ):
                saved = True
                if starts:  # ResponseStarted was committed with it
                    runtime.db.outbox_committed()
            if saved:
                return _saved(visit, question_id)
    async with runtime.db.unit_of_work() as session:
        visit = await open_visit(session, runtime, token, lock=True)
        await responses.answer_one(
            session,
            runtime.outbox,
            visit=visit,
            question_id=question_id,
            value=body.value,
            max_chars=settings.max_answer_chars,
        )
    return _saved(visit, question_id)


def _saved(visit: Visit, question_id: str) -> AnswerSaved:
    return AnswerSaved(
        question_id=question_id,
        value=visit.answers.get(question_id),
        progress=_progress(visit),
        next_questions=[q.id for q in visit.next_step()],
    )


@router.post(
    "/v1/public/surveys/{token}/responses",
    status_code=status.HTTP_201_CREATED,
    summary="Complete the response behind a link with these answers (and those saved before)",
    responses={
        409: {"description": "This invitation already has a completed response"},
        410: {"description": "The link has expired or the survey is closed"},
    },
)
async def submit_public_response(
    token: str, body: ResponseSubmit, session: SessionDep, runtime: RuntimeDep
) -> ResponseCreated:
    visit = await open_visit(session, runtime, token, lock=True)
    response = await responses.answer_all(
        session,
        runtime.outbox,
        visit=visit,
        answers=body.answers,
        max_chars=runtime.settings.max_answer_chars,
    )
    assert response.completed_at is not None
    return ResponseCreated.model_validate(response)
