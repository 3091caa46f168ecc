"""Routes of the responses service: parse, call a handler, return."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi import Response as HTTPResponse
from fastapi.responses import HTMLResponse, RedirectResponse

from services.responses import handlers, pages
from services.responses.domain.answers import (
    Problem,
    check_answers,
    form_answers,
    missing_required,
    preselected_score,
)
from services.responses.domain.branding import merge_branding
from services.responses.domain.definition import Question
from services.responses.domain.languages import LOCALE
from services.responses.domain.logic import next_step, shown_questions, thank_you_for
from services.responses.handlers import LinkExpired, SurveyClosed, Visit
from services.responses.models import Kiosk, Response, ResponseAnswer, Survey, SurveyVersion
from services.responses.schemas import (
    AnswerOut,
    AnswerSaved,
    AnswerSubmit,
    BrandingIn,
    DropOffOut,
    GlossaryIn,
    KioskCreate,
    KioskOut,
    LintOut,
    LintWarningOut,
    ProgressOut,
    PublicSurveyOut,
    QuestionOut,
    ResponseCreated,
    ResponseOut,
    ResponseSubmit,
    RewardCodesAdd,
    RewardPoolCreate,
    RewardPoolOut,
    SurveyCreate,
    SurveyOut,
    SurveyVersionOut,
)
from shared.errors import CloseloopError, Conflict, InvalidInput, NotFound
from shared.service import RuntimeDep, SessionDep, WorkspaceDep

router = APIRouter()
Lang = Annotated[Literal["en", "nl"], Query(description="Language of the explanations")]


# --- survey definitions ------------------------------------------------------------------


async def _survey_out(
    session: Any, runtime: Any, workspace: str, survey: Survey, version: SurveyVersion
) -> SurveyOut:
    _, warnings = await handlers.lint_definition(
        session, workspace_id=workspace, raw=version.definition, max_seconds=runtime.settings.lint_max_seconds
    )
    d = version.definition
    return SurveyOut(
        id=survey.id,
        name=survey.name,
        version=version.version,
        title=d.get("title"),
        default_locale=d.get("default_locale", "en"),
        questions=d["questions"],
        thank_you_text=d.get("thank_you_text"),
        outcomes=d.get("outcomes", []),
        branding=d.get("branding"),
        reward_pool_id=d.get("reward_pool_id"),
        closed=survey.closed_at is not None,
        created_at=survey.created_at,
        updated_at=survey.updated_at,
        warnings=[LintWarningOut(**w.__dict__) for w in warnings],
    )


@router.post(
    "/v1/surveys",
    status_code=status.HTTP_201_CREATED,
    tags=["surveys"],
    summary="Define a survey: questions, logic, languages, thank-you pages; returns checklist warnings",
)
async def create_survey(
    body: SurveyCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey, version = await handlers.create_survey(
        session, workspace_id=workspace, body=body, max_logo_bytes=runtime.settings.max_logo_bytes
    )
    return await _survey_out(session, runtime, workspace, survey, version)


@router.get("/v1/surveys", tags=["surveys"], summary="List the workspace's surveys (current versions)")
async def list_surveys(workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep) -> list[SurveyOut]:
    rows = await handlers.list_surveys(session, workspace_id=workspace)
    return [await _survey_out(session, runtime, workspace, s, v) for s, v in rows]


@router.get("/v1/surveys/{survey_id}", tags=["surveys"], summary="Read a survey's current version")
async def get_survey(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey = await handlers.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    return await _survey_out(
        session, runtime, workspace, survey, await handlers.get_version(session, survey=survey)
    )


@router.put(
    "/v1/surveys/{survey_id}",
    tags=["surveys"],
    summary="Edit a survey: stores a new version; responses keep the version they answered",
)
async def update_survey(
    survey_id: str, body: SurveyCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey, version = await handlers.update_survey(
        session,
        workspace_id=workspace,
        survey_id=survey_id,
        body=body,
        max_logo_bytes=runtime.settings.max_logo_bytes,
    )
    return await _survey_out(session, runtime, workspace, survey, version)


@router.get("/v1/surveys/{survey_id}/versions", tags=["surveys"], summary="Every version of a survey")
async def list_versions(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep
) -> list[SurveyVersionOut]:
    survey = await handlers.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    return [
        SurveyVersionOut(version=v.version, created_at=v.created_at, definition=v.definition)  # type: ignore[arg-type]
        for v in await handlers.list_versions(session, survey=survey)
    ]


@router.get("/v1/surveys/{survey_id}/versions/{version}", tags=["surveys"], summary="One version of a survey")
async def get_version(
    survey_id: str, version: Annotated[int, Path(ge=1)], workspace: WorkspaceDep, session: SessionDep
) -> SurveyVersionOut:
    survey = await handlers.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    v = await handlers.get_version(session, survey=survey, version=version)
    return SurveyVersionOut(version=v.version, created_at=v.created_at, definition=v.definition)  # type: ignore[arg-type]


@router.post(
    "/v1/surveys/{survey_id}/close",
    tags=["surveys"],
    summary="Close a survey: its links show a friendly 'closed' page; completed responses stay",
)
async def close_survey(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey = await handlers.set_closed(session, workspace_id=workspace, survey_id=survey_id, closed=True)
    return await _survey_out(
        session, runtime, workspace, survey, await handlers.get_version(session, survey=survey)
    )


@router.post("/v1/surveys/{survey_id}/reopen", tags=["surveys"], summary="Take responses again")
async def reopen_survey(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> SurveyOut:
    survey = await handlers.set_closed(session, workspace_id=workspace, survey_id=survey_id, closed=False)
    return await _survey_out(
        session, runtime, workspace, survey, await handlers.get_version(session, survey=survey)
    )


@router.post(
    "/v1/surveys/lint",
    tags=["checklist"],
    summary="Check a survey definition without saving it: double questions, leading wording, jargon, …",
)
async def lint_survey(
    body: SurveyCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, lang: Lang = "en"
) -> LintOut:
    limit = runtime.settings.lint_max_seconds
    seconds, warnings = await handlers.lint_definition(
        session,
        workspace_id=workspace,
        raw=body.model_dump(mode="json", exclude_none=True),
        max_seconds=limit,
        lang=lang,
    )
    return LintOut(
        estimated_seconds=seconds,
        max_seconds=limit,
        warnings=[LintWarningOut(**w.__dict__) for w in warnings],
    )


@router.get("/v1/surveys/{survey_id}/lint", tags=["checklist"], summary="The checklist for a saved survey")
async def lint_saved_survey(
    survey_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, lang: Lang = "en"
) -> LintOut:
    survey = await handlers.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    version = await handlers.get_version(session, survey=survey)
    limit = runtime.settings.lint_max_seconds
    seconds, warnings = await handlers.lint_definition(
        session, workspace_id=workspace, raw=version.definition, max_seconds=limit, lang=lang
    )
    return LintOut(
        estimated_seconds=seconds,
        max_seconds=limit,
        warnings=[LintWarningOut(**w.__dict__) for w in warnings],
    )


@router.get("/v1/glossary", tags=["checklist"], summary="The workspace's internal terms the checklist flags")
async def get_glossary(workspace: WorkspaceDep, session: SessionDep) -> GlossaryIn:
    return GlossaryIn(
        terms=[{"term": g.term, "hint": g.hint} for g in await handlers.glossary_of(session, workspace)]
    )  # type: ignore[misc]


@router.put("/v1/glossary", tags=["checklist"], summary="Replace the workspace's glossary of internal terms")
async def put_glossary(body: GlossaryIn, workspace: WorkspaceDep, session: SessionDep) -> GlossaryIn:
    return GlossaryIn(terms=await handlers.put_glossary(session, workspace_id=workspace, body=body))  # type: ignore[arg-type]


@router.get("/v1/branding", tags=["branding"], summary="The workspace's branding of its survey pages")
async def get_branding(workspace: WorkspaceDep, session: SessionDep) -> BrandingIn:
    return BrandingIn(**await handlers.branding_of(session, workspace))


@router.put(
    "/v1/branding",
    tags=["branding"],
    summary="Set logo (inline data: URI), colours (contrast-checked), font and tone for every survey",
)
async def put_branding(
    body: BrandingIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> BrandingIn:
    saved = await handlers.put_branding(
        session, workspace_id=workspace, body=body, max_logo_bytes=runtime.settings.max_logo_bytes
    )
    return BrandingIn(**saved)


# --- responses ---------------------------------------------------------------------------


@router.get(
    "/v1/surveys/{survey_id}/responses",
    tags=["responses"],
    summary="The survey's newest responses (completed and partial) with their answers",
)
async def list_responses(
    survey_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status_: Annotated[Literal["completed", "partial"] | None, Query(alias="status")] = None,
) -> list[ResponseOut]:
    survey = await handlers.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    rows = await handlers.list_responses(
        session, workspace_id=workspace, survey_id=survey.id, limit=limit, status=status_
    )
    return [_response_out(r, answers) for r, answers in rows]


@router.get(
    "/v1/surveys/{survey_id}/dropoff",
    tags=["responses"],
    summary="Drop-off per question: started, completed, and where partial responses stopped",
)
async def drop_off(survey_id: str, workspace: WorkspaceDep, session: SessionDep) -> DropOffOut:
    survey = await handlers.get_survey(session, workspace_id=workspace, survey_id=survey_id)
    return DropOffOut(**await handlers.drop_off(session, survey=survey))


def _response_out(r: Response, answers: list[ResponseAnswer]) -> ResponseOut:
    return ResponseOut(
        id=r.id,
        survey_id=r.survey_id,
        survey_version=r.survey_version,
        invitation_id=r.invitation_id,
        request_id=r.request_id,
        kiosk_id=r.kiosk_id,
        contact_id=r.contact_id,
        kind=r.kind,
        channel=r.channel,
        locale=r.locale,
        hidden_fields=r.hidden_fields,
        consent_to_contact=r.consent_to_contact,
        status="completed" if r.completed_at else "partial",
        started_at=r.started_at,
        completed_at=r.completed_at,
        erased=r.erased_at is not None,
        reward_code=r.reward_code,
        answers=[
            AnswerOut(question_id=a.question_id, type=a.type, value=a.value)  # type: ignore[arg-type]
            for a in answers
        ],
    )


# --- kiosks and QR codes ------------------------------------------------------------------


def _kiosk_url(runtime: Any, kiosk: Kiosk) -> str:
    return f"{runtime.settings.public_url}/k/{kiosk.key}"


def _kiosk_out(kiosk: Kiosk, request: Request, runtime: Any) -> KioskOut:
    return KioskOut(
        id=kiosk.id,
        survey_id=kiosk.survey_id,
        location_id=kiosk.location_id,
        name=kiosk.name,
        locale=kiosk.locale,
        active=kiosk.active,
        url=_kiosk_url(runtime, kiosk),
        qr_svg_url=str(request.url_for("kiosk_qr", kiosk_id=kiosk.id, fmt="svg")),
        qr_png_url=str(request.url_for("kiosk_qr", kiosk_id=kiosk.id, fmt="png")),
        created_at=kiosk.created_at,
    )


@router.post(
    "/v1/surveys/{survey_id}/kiosks",
    status_code=status.HTTP_201_CREATED,
    tags=["kiosks"],
    summary="A public per-location link (tablet or QR poster) for anonymous responses",
)
async def create_kiosk(
    survey_id: str,
    body: KioskCreate,
    request: Request,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> KioskOut:
    kiosk = await handlers.create_kiosk(session, workspace_id=workspace, survey_id=survey_id, body=body)
    return _kiosk_out(kiosk, request, runtime)


@router.get("/v1/kiosks", tags=["kiosks"], summary="The workspace's kiosk links")
async def list_kiosks(
    request: Request, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[KioskOut]:
    return [
        _kiosk_out(k, request, runtime) for k in await handlers.list_kiosks(session, workspace_id=workspace)
    ]


@router.delete(
    "/v1/kiosks/{kiosk_id}",
    tags=["kiosks"],
    summary="Switch a kiosk link off (its URL shows 'no longer available'); its responses stay",
)
async def deactivate_kiosk(
    kiosk_id: str, request: Request, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> KioskOut:
    kiosk = await handlers.get_kiosk(session, workspace_id=workspace, kiosk_id=kiosk_id)
    kiosk.active = False
    await session.flush()
    return _kiosk_out(kiosk, request, runtime)


QR_MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


@router.get(
    "/v1/kiosks/{kiosk_id}/qr.{fmt}",
    name="kiosk_qr",
    tags=["kiosks"],
    summary="The kiosk link as a QR code: qr.svg for print, qr.png for screens",
    response_class=HTTPResponse,
    responses={200: {"content": {media: {} for media in QR_MEDIA_TYPES.values()}}},
)
async def kiosk_qr(
    kiosk_id: str,
    fmt: Literal["svg", "png"],
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> HTTPResponse:
    kiosk = await handlers.get_kiosk(session, workspace_id=workspace, kiosk_id=kiosk_id)
    return HTTPResponse(pages.qr_code(_kiosk_url(runtime, kiosk), kind=fmt), media_type=QR_MEDIA_TYPES[fmt])


# --- reward codes --------------------------------------------------------------------------


@router.post(
    "/v1/reward-pools",
    status_code=status.HTTP_201_CREATED,
    tags=["rewards"],
    summary="Create a pool of reward codes",
)
async def create_pool(body: RewardPoolCreate, workspace: WorkspaceDep, session: SessionDep) -> RewardPoolOut:
    pool = await handlers.create_pool(session, workspace_id=workspace, name=body.name)
    return RewardPoolOut(id=pool.id, name=pool.name, total=0, remaining=0, created_at=pool.created_at)


@router.get("/v1/reward-pools/{pool_id}", tags=["rewards"], summary="A pool with its remaining codes")
async def get_pool(pool_id: str, workspace: WorkspaceDep, session: SessionDep) -> RewardPoolOut:
    pool, total, remaining = await handlers.get_pool(session, workspace_id=workspace, pool_id=pool_id)
    return RewardPoolOut(
        id=pool.id, name=pool.name, total=total, remaining=remaining, created_at=pool.created_at
    )


@router.post(
    "/v1/reward-pools/{pool_id}/codes",
    tags=["rewards"],
    summary="Add codes to a pool (codes already in it are skipped); each is given out once",
)
async def add_codes(
    pool_id: str, body: RewardCodesAdd, workspace: WorkspaceDep, session: SessionDep
) -> RewardPoolOut:
    await handlers.add_codes(session, workspace_id=workspace, pool_id=pool_id, codes=body.codes)
    pool, total, remaining = await handlers.get_pool(session, workspace_id=workspace, pool_id=pool_id)
    return RewardPoolOut(
        id=pool.id, name=pool.name, total=total, remaining=remaining, created_at=pool.created_at
    )


# --- the public survey page (HTML, no API key: the signed token is the credential) --------


def _accept_language(request: Request) -> str | None:
    first = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    return first if LOCALE.match(first) else None


def _error_page(exc: CloseloopError, request: Request, *, locale: str | None = None) -> HTMLResponse:
    key = (
        "expired"
        if isinstance(exc, LinkExpired)
        else "closed"
        if isinstance(exc, SurveyClosed)
        else "answered"
        if isinstance(exc, Conflict)
        else "invalid"
        if exc.detail == handlers.INVALID_LINK
        else "gone"
        if isinstance(exc, NotFound)
        else "error"
    )
    if key == "error":  # pragma: no cover - every error of a link is one of the above
        key = "invalid"
    return pages.message(status=exc.status, key=key, locale=locale or _accept_language(request))


async def _branding(session: Any, visit: Visit) -> dict[str, Any]:
    return merge_branding(
        await handlers.branding_of(session, visit.link.workspace_id), visit.definition.raw.get("branding")
    )


def _kiosk_urls(request: Request, visit: Visit, runtime: Any) -> tuple[str | None, int]:
    if visit.kiosk is None:
        return None, 0
    return str(request.url_for("kiosk_page", key=visit.kiosk.key)), runtime.settings.kiosk_idle_s


async def _step_page(
    request: Request,
    session: Any,
    runtime: Any,
    token: str,
    visit: Visit,
    step: list[Question],
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, Problem] | None = None,
    status: int = 200,
) -> HTMLResponse:
    shown = shown_questions(visit.questions, visit.answers, visit.fields, visit.passed)
    before = [q for q in shown if visit.questions.index(q) < visit.questions.index(step[0])]
    page = str(request.url_for("survey_page", token=token))
    idle_url, idle_s = _kiosk_urls(request, visit, runtime)
    return pages.render_step(
        visit,
        step,
        action=str(request.url_for("submit_form", token=token)),
        save_url=str(request.url_for("save_answer", token=token, question_id="x"))[:-1],
        back_url=f"{page}?q={before[-1].id}" if before else None,
        max_chars=runtime.settings.max_answer_chars,
        branding=await _branding(session, visit),
        values=values if values is not None else visit.answers,
        errors=errors or {},
        idle_url=idle_url,
        idle_s=idle_s,
        status=status,
    )


@router.get(
    "/s/{token}",
    response_class=HTMLResponse,
    tags=["survey pages"],
    name="survey_page",
    summary="The survey page for a link: where the respondent left off; `?score=N` records the first score",
)
async def survey_page(
    token: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    score: str | None = None,
    q: Annotated[
        str | None, Query(max_length=63, description="Show (and edit) this earlier question")
    ] = None,
) -> HTMLResponse:
    try:
        visit = await handlers.open_link(
            session, secret=runtime.settings.secret_key, token=token, lock=score is not None
        )
    except CloseloopError as exc:
        return _error_page(exc, request)
    if visit.completed:
        return pages.message(
            status=200,
            key="answered",
            locale=visit.locale,
            title=visit.survey.name,
            branding=await _branding(session, visit),
        )
    recorded = False
    preselected = preselected_score(visit.questions, score)
    if preselected and preselected[0] not in visit.answers:
        # The score clicked in the email is an answer: it is saved at once (and can still be changed).
        await handlers.save_answers(
            session, runtime.outbox, visit=visit, answers={preselected[0]: preselected[1]}, passed=[]
        )
        recorded = True
    shown = shown_questions(visit.questions, visit.answers, visit.fields, visit.passed)
    explicit = next((s for s in shown if s.id == q and (s.id in visit.passed or s.id in visit.answers)), None)
    step = [explicit] if explicit else visit.next_step()
    if recorded:
        # A page whose every question the link answered is behind the respondent.
        while step and all(s.id in visit.answers for s in step):
            following = next_step(
                visit.questions, visit.answers, visit.fields, visit.passed | {s.id for s in step}
            )
            if not following:
                break
            await handlers.save_answers(
                session, runtime.outbox, visit=visit, answers={}, passed=[s.id for s in step]
            )
            step = following
    if not step:
        # Everything was answered through the API but not sent: show the last question with Send.
        step = shown[-1:] or [q_ for q_ in visit.questions if q_.asked][:1]
    return await _step_page(request, session, runtime, token, visit, step)


@router.post(
    "/s/{token}",
    response_class=HTMLResponse,
    tags=["survey pages"],
    name="submit_form",
    summary="Answer one page of the survey with an HTML form (field names are question ids)",
    responses={303: {"description": "Stored; see the next page or the thank-you page"}},
)
async def submit_form(token: str, request: Request, session: SessionDep, runtime: RuntimeDep) -> HTTPResponse:
    try:
        visit = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token, lock=True)
    except CloseloopError as exc:
        return _error_page(exc, request)
    if visit.completed:
        return pages.message(
            status=409,
            key="answered",
            locale=visit.locale,
            title=visit.survey.name,
            branding=await _branding(session, visit),
        )
    form = await request.form()
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    shown_field = fields["_shown"][0] if fields.get("_shown") else None
    asked = [q for q in visit.questions if q.asked]
    # Without ``_shown`` (a plain form post of every answer at once) the whole survey is one page.
    whole = shown_field is None
    step = asked if whole else [q for q in asked if q.id in set((shown_field or "").split(","))]
    if not step:
        step = visit.next_step() or asked
    raw = form_answers(step, fields)
    accepted, problems = check_answers(step, raw, max_chars=runtime.settings.max_answer_chars)
    merged = {k: v for k, v in visit.answers.items() if k not in {q.id for q in step}} | accepted
    passed = visit.passed | {q.id for q in step}
    shown_now = shown_questions(visit.questions, merged, visit.fields, passed)
    missing = missing_required([q for q in step if q in shown_now], merged)
    problems = {**missing, **problems}
    if problems:
        on_page = [q for q in step if q in shown_now or q.id in problems]
        return await _step_page(
            request,
            session,
            runtime,
            token,
            visit,
            on_page,
            values={**merged, **raw},
            errors=problems,
            status=422,
        )
    await handlers.save_answers(
        session,
        runtime.outbox,
        visit=visit,
        answers={q.id: accepted.get(q.id) for q in step},
        passed=[q.id for q in step],
    )
    if whole or not visit.next_step():
        try:
            await handlers.complete(session, runtime.outbox, visit=visit)
        except InvalidInput as exc:
            first = exc.errors[0]["field"].removeprefix("answers.")
            return RedirectResponse(
                f"{request.url_for('survey_page', token=token)}?q={first}",
                status_code=status.HTTP_303_SEE_OTHER,
            )
        # Post/redirect/get: reloading the thank-you page never submits the form again.
        return RedirectResponse(
            str(request.url_for("thank_you_page", token=token)), status_code=status.HTTP_303_SEE_OTHER
        )
    return RedirectResponse(
        str(request.url_for("survey_page", token=token)), status_code=status.HTTP_303_SEE_OTHER
    )


@router.get(
    "/s/{token}/thanks",
    response_class=HTMLResponse,
    tags=["survey pages"],
    name="thank_you_page",
    summary="The thank-you page for the respondent's outcome, with a reward code when the survey gives one",
)
async def thank_you_page(
    token: str, request: Request, session: SessionDep, runtime: RuntimeDep
) -> HTTPResponse:
    try:
        visit = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token)
    except CloseloopError as exc:
        return _error_page(exc, request)
    if not visit.completed or visit.response is None:
        return RedirectResponse(
            str(request.url_for("survey_page", token=token)), status_code=status.HTTP_303_SEE_OTHER
        )
    branding = await _branding(session, visit)
    outcome = thank_you_for(visit.definition.outcomes, visit.answers, visit.fields)
    next_url = str(request.url_for("kiosk_page", key=visit.kiosk.key)) if visit.kiosk else None
    return pages.thank_you(
        title=visit.text(visit.definition.raw.get("title")) or visit.survey.name,
        text=visit.text(outcome.text if outcome else visit.definition.raw.get("thank_you_text")) or None,
        locale=visit.locale,
        tone=str(branding.get("tone")),
        branding=branding,
        link_url=outcome.link_url if outcome else None,
        link_text=visit.text(outcome.link_text) if outcome and outcome.link_text else None,
        reward_code=visit.response.reward_code,
        next_url=next_url,
        next_after_s=runtime.settings.kiosk_reset_s,
    )


@router.get(
    "/k/{key}",
    response_class=HTMLResponse,
    tags=["survey pages"],
    name="kiosk_page",
    summary="A kiosk or QR link: starts a fresh anonymous response for the next person",
    responses={
        303: {"description": "To this person's own survey page"},
        429: {"description": "Too many starts"},
    },
)
async def kiosk_page(key: str, request: Request, session: SessionDep, runtime: RuntimeDep) -> HTTPResponse:
    try:
        kiosk = await handlers.kiosk_by_key(session, key=key)
    except CloseloopError as exc:
        return _error_page(exc, request)
    client = request.client.host if request.client else "unknown"
    retry_after = runtime.extras["kiosk_bucket"].acquire(f"{kiosk.id}:{client}", time.monotonic())
    if retry_after:
        return pages.message(
            status=429,
            key="busy",
            locale=kiosk.locale or _accept_language(request),
            headers_={"Retry-After": str(max(1, round(retry_after)))},
        )
    token = handlers.kiosk_session_token(
        kiosk, secret=runtime.settings.secret_key, ttl_s=runtime.settings.kiosk_session_ttl_s
    )
    return RedirectResponse(
        str(request.url_for("survey_page", token=token)), status_code=status.HTTP_303_SEE_OTHER
    )


# --- the same survey as JSON, for custom front ends and apps ------------------------------


def _progress(visit: Visit) -> ProgressOut:
    p = visit.progress()
    return ProgressOut(done=p.done, total=p.total)


@router.get(
    "/v1/public/surveys/{token}",
    tags=["public"],
    summary="The survey behind a link in the respondent's language, the answers so far and what is next",
)
async def public_survey(
    token: str, request: Request, session: SessionDep, runtime: RuntimeDep
) -> PublicSurveyOut:
    visit = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token)
    questions = [
        QuestionOut(
            id=q.id,
            type=q.type,  # type: ignore[arg-type]
            text=visit.text(q.text),
            required=q.required,
            min=q.scale[0] if q.scale else None,
            max=q.scale[1] if q.scale else None,
            style=q.style,
            options=[{"id": o.id, "text": visit.text(o.text)} for o in q.options],
            show_if=[c.__dict__ for c in q.show_if],  # type: ignore[misc]
            end_if=[c.__dict__ for c in q.end_if],  # type: ignore[misc]
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
    tags=["public"],
    summary="Save one answer as it is given (the first one starts the response); null clears it",
    responses={
        409: {"description": "The response is already completed"},
        410: {"description": "Expired or closed"},
    },
)
async def save_answer(
    token: str, question_id: str, body: AnswerSubmit, session: SessionDep, runtime: RuntimeDep
) -> AnswerSaved:
    visit = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token, lock=True)
    await handlers.answer_one(
        session,
        runtime.outbox,
        visit=visit,
        question_id=question_id,
        value=body.value,
        max_chars=runtime.settings.max_answer_chars,
    )
    return AnswerSaved(
        question_id=question_id,
        value=visit.answers.get(question_id),
        progress=_progress(visit),
        next_questions=[q.id for q in visit.next_step()],
    )


@router.post(
    "/v1/public/surveys/{token}/responses",
    status_code=status.HTTP_201_CREATED,
    tags=["public"],
    summary="Complete the response behind a link with these answers (and those saved before)",
    responses={
        409: {"description": "This invitation already has a completed response"},
        410: {"description": "The link has expired or the survey is closed"},
    },
)
async def submit_public_response(
    token: str, body: ResponseSubmit, session: SessionDep, runtime: RuntimeDep
) -> ResponseCreated:
    visit = await handlers.open_link(session, secret=runtime.settings.secret_key, token=token, lock=True)
    response = await handlers.answer_all(
        session,
        runtime.outbox,
        visit=visit,
        answers=body.answers,
        max_chars=runtime.settings.max_answer_chars,
    )
    assert response.completed_at is not None
    return ResponseCreated(
        id=response.id,
        survey_id=response.survey_id,
        survey_version=response.survey_version,
        consent_to_contact=response.consent_to_contact,
        completed_at=response.completed_at,
        reward_code=response.reward_code,
    )
