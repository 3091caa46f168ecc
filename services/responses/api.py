"""Routes of the responses service: parse, call a handler, return."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi import Response as HTTPResponse
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from services.responses import domain, handlers, pages
from services.responses.models import Response, ResponseAnswer, Survey
from services.responses.schemas import (
    AnswerOut,
    PublicSurveyOut,
    QuestionIn,
    QuestionOut,
    ResponseCreated,
    ResponseOut,
    ResponseSubmit,
    SurveyCreate,
    SurveyOut,
)
from shared.errors import ClosedloopError, Conflict, InvalidInput
from shared.service import RuntimeDep, SessionDep, WorkspaceDep

router = APIRouter()


# --- survey definitions ------------------------------------------------------------------


@router.post(
    "/v1/surveys",
    status_code=status.HTTP_201_CREATED,
    tags=["surveys"],
    summary="Define a survey: its questions and thank-you text",
)
async def create_survey(body: SurveyCreate, workspace: WorkspaceDep, session: SessionDep) -> SurveyOut:
    return _survey_out(await handlers.create_survey(session, workspace_id=workspace, body=body))


@router.get("/v1/surveys", tags=["surveys"], summary="List the workspace's surveys")
async def list_surveys(workspace: WorkspaceDep, session: SessionDep) -> list[SurveyOut]:
    rows = await session.scalars(
        select(Survey).where(Survey.workspace_id == workspace).order_by(Survey.created_at, Survey.id)
    )
    return [_survey_out(s) for s in rows]


@router.get("/v1/surveys/{survey_id}", tags=["surveys"], summary="Read a survey")
async def get_survey(survey_id: str, workspace: WorkspaceDep, session: SessionDep) -> SurveyOut:
    return _survey_out(await handlers.get_survey(session, workspace_id=workspace, survey_id=survey_id))


@router.get(
    "/v1/surveys/{survey_id}/responses",
    tags=["surveys"],
    summary="The survey's newest responses with their answers",
)
async def list_responses(
    survey_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ResponseOut]:
    survey = await handlers.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    rows = await handlers.list_responses(session, workspace_id=workspace, survey_id=survey.id, limit=limit)
    return [_response_out(r, answers) for r, answers in rows]


def _survey_out(s: Survey) -> SurveyOut:
    return SurveyOut(
        id=s.id,
        name=s.name,
        version=s.version,
        thank_you_text=s.thank_you_text,
        created_at=s.created_at,
        questions=[QuestionIn.model_validate(q) for q in s.questions],
    )


def _response_out(r: Response, answers: list[ResponseAnswer]) -> ResponseOut:
    return ResponseOut(
        id=r.id,
        survey_id=r.survey_id,
        survey_version=r.survey_version,
        invitation_id=r.invitation_id,
        request_id=r.request_id,
        contact_id=r.contact_id,
        kind=r.kind,
        channel=r.channel,
        locale=r.locale,
        consent_to_contact=r.consent_to_contact,
        completed_at=r.completed_at,
        erased=r.erased_at is not None,
        answers=[
            AnswerOut(question_id=a.question_id, type=a.type, value=a.value)  # type: ignore[arg-type]
            for a in answers
        ],
    )


# --- the public survey page (HTML, no API key: the signed token is the credential) --------


@router.get(
    "/s/{token}",
    response_class=HTMLResponse,
    tags=["survey pages"],
    name="survey_page",
    summary="The survey form for a link; `?score=N` preselects the first scored question",
)
async def survey_page(
    token: str, request: Request, session: SessionDep, runtime: RuntimeDep, score: str | None = None
) -> HTMLResponse:
    try:
        link, survey = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token)
    except ClosedloopError as exc:
        return pages.error(status=exc.status, detail=exc.detail)
    lang = handlers.link_locale(link)
    if await handlers.find_response(session, link=link):
        return pages.already_answered(name=survey.name, lang=lang)
    questions = handlers.questions_of(survey)
    preselected = domain.preselected_score(questions, score)
    values = {preselected[0]: str(preselected[1])} if preselected else {}
    return pages.survey_form(
        name=survey.name,
        questions=questions,
        values=values,
        errors={},
        lang=lang,
        action=str(request.url_for("submit_form", token=token)),
        max_chars=runtime.settings.max_answer_chars,
    )


@router.post(
    "/s/{token}",
    response_class=HTMLResponse,
    tags=["survey pages"],
    name="submit_form",
    summary="Answer the survey with an HTML form (field names are question ids)",
    responses={303: {"description": "Stored; see the thank-you page"}},
)
async def submit_form(token: str, request: Request, session: SessionDep, runtime: RuntimeDep) -> HTTPResponse:
    try:
        link, survey = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token)
    except ClosedloopError as exc:
        return pages.error(status=exc.status, detail=exc.detail)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    questions = handlers.questions_of(survey)
    lang = handlers.link_locale(link)
    try:
        await handlers.submit_response(
            session,
            runtime.outbox,
            link=link,
            survey=survey,
            answers=domain.form_answers(questions, form),
            max_chars=runtime.settings.max_answer_chars,
        )
    except InvalidInput as exc:
        errors = {e["field"].removeprefix("answers."): e["message"] for e in exc.errors}
        return pages.survey_form(
            name=survey.name,
            questions=questions,
            values=form,
            errors=errors,
            lang=lang,
            action=str(request.url_for("submit_form", token=token)),
            max_chars=runtime.settings.max_answer_chars,
            status=422,
        )
    except Conflict:
        return pages.already_answered(name=survey.name, lang=lang, status=409)
    # Post/redirect/get: reloading the thank-you page never submits the form again.
    return RedirectResponse(
        str(request.url_for("thank_you_page", token=token)), status_code=status.HTTP_303_SEE_OTHER
    )


@router.get(
    "/s/{token}/thanks",
    response_class=HTMLResponse,
    tags=["survey pages"],
    name="thank_you_page",
    summary="The thank-you page after answering",
)
async def thank_you_page(
    token: str, request: Request, session: SessionDep, runtime: RuntimeDep
) -> HTTPResponse:
    try:
        link, survey = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token)
    except ClosedloopError as exc:
        return pages.error(status=exc.status, detail=exc.detail)
    if await handlers.find_response(session, link=link) is None:
        return RedirectResponse(
            str(request.url_for("survey_page", token=token)), status_code=status.HTTP_303_SEE_OTHER
        )
    return pages.thank_you(name=survey.name, text=survey.thank_you_text, lang=handlers.link_locale(link))


# --- the same survey as JSON, for custom front ends and apps ------------------------------


@router.get(
    "/v1/public/surveys/{token}",
    tags=["public"],
    summary="The survey behind a link, and whether it is answered",
)
async def public_survey(
    token: str, request: Request, session: SessionDep, runtime: RuntimeDep
) -> PublicSurveyOut:
    link, survey = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token)
    answered = await handlers.find_response(session, link=link) is not None
    questions = [
        QuestionOut(
            id=q.id,
            type=q.type,
            text=q.text,
            required=q.required,  # type: ignore[arg-type]
            min=q.scale[0] if q.scale else None,
            max=q.scale[1] if q.scale else None,
        )
        for q in handlers.questions_of(survey)
    ]
    return PublicSurveyOut(
        survey_id=survey.id,
        name=survey.name,
        version=survey.version,
        questions=questions,
        thank_you_text=survey.thank_you_text,
        locale=handlers.link_locale(link),
        answered=answered,
        form_url=f"{runtime.settings.public_url}/s/{token}",
    )


@router.post(
    "/v1/public/surveys/{token}/responses",
    status_code=status.HTTP_201_CREATED,
    tags=["public"],
    summary="Answer the survey behind a link (once per invitation)",
    responses={
        409: {"description": "This invitation already has a response"},
        410: {"description": "The link has expired"},
    },
)
async def submit_public_response(
    token: str, body: ResponseSubmit, session: SessionDep, runtime: RuntimeDep
) -> ResponseCreated:
    link, survey = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token)
    response = await handlers.submit_response(
        session,
        runtime.outbox,
        link=link,
        survey=survey,
        answers=body.answers,
        max_chars=runtime.settings.max_answer_chars,
    )
    return ResponseCreated(
        id=response.id,
        survey_id=response.survey_id,
        survey_version=response.survey_version,
        consent_to_contact=response.consent_to_contact,
        completed_at=response.completed_at,
    )
