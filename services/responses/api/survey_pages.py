"""The public survey pages in HTML: no API key, the signed token in the URL is the credential.

Errors of a link (forged, expired, closed, answered) are friendly pages in the respondent's
language, never problem documents.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi import Response as HTTPResponse
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses import pages
from services.responses.deps import ResponsesRuntime, RuntimeDep, open_visit, opened_link, read_visit
from services.responses.domain.answers import Problem
from services.responses.domain.definition import Question
from services.responses.domain.languages import LOCALE
from services.responses.domain.logic import shown_questions, thank_you_for
from services.responses.handlers import (
    answer_writes,
    kiosks,
    steps,
    workspace_settings,
)
from services.responses.handlers.errors import INVALID_LINK, LinkExpired, SurveyClosed
from services.responses.handlers.visits import Visit
from shared.errors import CloseloopError, Conflict, NotFound
from shared.guard import GuardedRoute, public
from shared.service import SessionDep

router = APIRouter(
    route_class=GuardedRoute,
    tags=["survey pages"],
    dependencies=[
        public("the respondent opens a signed, expiring survey link or a kiosk's unguessable link")
    ],
)


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
        if exc.detail == INVALID_LINK
        else "gone"
        if isinstance(exc, NotFound)
        else "error"
    )
    if key == "error":  # pragma: no cover - every error of a link is one of the above
        key = "invalid"
    return pages.message(status=exc.status, key=key, locale=locale or _accept_language(request))


def _page_url(request: Request, token: str) -> str:
    """Return the survey page's URL for ``token``, as ``url_for`` builds it without walking the router
    each time (a tenth of a page's CPU): the route's path is looked up once per app. Tokens are
    URL-safe as they are."""
    state = request.app.state
    prefix = getattr(state, "survey_page_prefix", None)
    if prefix is None:
        prefix = state.survey_page_prefix = str(request.app.url_path_for("survey_page", token="~"))[:-1]
    base = request.base_url
    return f"{base.scheme}://{base.netloc}{base.path.rstrip('/')}{prefix}{token}"


def _kiosk_urls(request: Request, visit: Visit, runtime: ResponsesRuntime) -> tuple[str | None, int]:
    if visit.kiosk is None:
        return None, 0
    return str(request.url_for("kiosk_page", key=visit.kiosk.key)), runtime.settings.kiosk_idle_s


async def _step_page(
    request: Request,
    session: AsyncSession | None,
    runtime: ResponsesRuntime,
    token: str,
    visit: Visit,
    step: list[Question],
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, Problem] | None = None,
    notice: Problem | None = None,
    status: int = 200,
) -> HTMLResponse:
    shown = shown_questions(visit.questions, visit.answers, visit.fields, visit.passed)
    before = [q for q in shown if visit.questions.index(q) < visit.questions.index(step[0])]
    # The form posts to the page's own URL, and the answers API sits beside it under the same root.
    page = _page_url(request, token)
    root = page.removesuffix(f"/s/{token}")
    idle_url, idle_s = _kiosk_urls(request, visit, runtime)
    return pages.render_step(
        visit,
        step,
        action=page,
        save_url=f"{root}/v1/public/surveys/{token}/answers/",
        back_url=f"{page}?q={before[-1].id}" if before else None,
        max_chars=runtime.settings.max_answer_chars,
        branding=await workspace_settings.page_branding(session, visit=visit),
        values=values if values is not None else visit.answers,
        errors=errors or {},
        notice=notice,
        idle_url=idle_url,
        idle_s=idle_s,
        status=status,
        token=token,
    )


async def _answered_page(session: AsyncSession | None, visit: Visit, *, status: int) -> HTMLResponse:
    """Return the friendly page of a link whose response is completed, in the survey's branding."""
    return pages.message(
        status=status,
        key="answered",
        locale=visit.locale,
        title=visit.survey.name,
        branding=await workspace_settings.page_branding(session, visit=visit),
    )


async def _show(
    request: Request,
    session: AsyncSession | None,
    runtime: ResponsesRuntime,
    token: str,
    visit: Visit,
    *,
    score: str | None,
    q: str | None,
) -> HTMLResponse:
    """Return the page of an opened visit; ``session`` is None on the read path (``score`` is None then)."""
    if visit.completed:
        return await _answered_page(session, visit, status=200)
    step = await steps.step_to_show(session, runtime.outbox, visit=visit, score=score, question_id=q)
    # A score that is no answer is refused (422), with the reason above the questions.
    status_ = 422 if step.link_problem else 200
    return await _step_page(
        request, session, runtime, token, visit, step.questions, notice=step.link_problem, status=status_
    )


@router.get(
    "/s/{token}",
    response_class=HTMLResponse,
    name="survey_page",
    summary="The survey page for a link: where the respondent left off; `?score=N` records the first score",
)
async def survey_page(
    token: str,
    request: Request,
    runtime: RuntimeDep,
    score: str | None = None,
    q: Annotated[
        str | None, Query(max_length=63, description="Show (and edit) this earlier question")
    ] = None,
) -> HTMLResponse:
    if score is None:
        # A page shown writes nothing: one statement on the read pool, no unit of work (kiosk links,
        # whose kiosk is checked too, take the unit of work below).
        try:
            visit = await read_visit(runtime, token)
        except CloseloopError as exc:
            return _error_page(exc, request)
        if visit is not None:
            return await _show(request, None, runtime, token, visit, score=None, q=q)
    async with runtime.db.unit_of_work() as session:
        try:
            visit = await open_visit(session, runtime, token, lock=score is not None)
        except CloseloopError as exc:
            return _error_page(exc, request)
        return await _show(request, session, runtime, token, visit, score=score, q=q)


@router.post(
    "/s/{token}",
    response_class=HTMLResponse,
    name="submit_form",
    summary="Answer one page of the survey with an HTML form (field names are question ids)",
    responses={303: {"description": "Stored; see the next page or the thank-you page"}},
)
async def submit_form(token: str, request: Request, runtime: RuntimeDep) -> HTTPResponse:
    settings = runtime.settings
    # The hot path: a link without a response yet (the whole survey on one page, or its first page) is
    # read in one statement and stored in one (``answer_writes.submit_first``). Kiosk links, surveys that
    # give reward codes, a response already started and a lost race take the locked unit of work.
    form = await _form_fields(request)
    async with runtime.deps.pool.acquire() as connection:  # one connection for the read and the write
        try:
            link = opened_link(runtime, token)
            visit, done = None, None
            if link is not None:
                # Read and written in one statement when the survey's version is known (see there).
                visit, done = await answer_writes.read_and_submit_first(
                    connection,
                    runtime.deps.definitions,
                    runtime.outbox,
                    link=link,
                    form=form,
                    max_chars=settings.max_answer_chars,
                )
        except CloseloopError as exc:
            return _error_page(exc, request)
        if done is not None:
            runtime.db.outbox_committed()
            return _after_form(request, token, done)
        if visit is not None and visit.response is None and not visit.definition.raw.get("reward_pool_id"):
            checked = steps.check_form(visit, form=form, max_chars=settings.max_answer_chars)
            if checked.refused:
                return await _refused(request, None, runtime, token, visit, checked.refused)
            result = await answer_writes.submit_first(
                connection, runtime.outbox, visit=visit, checked=checked
            )
            if result is not None:
                runtime.db.outbox_committed()
                return _after_form(request, token, result)
    async with runtime.db.unit_of_work() as session:
        try:
            visit = await open_visit(session, runtime, token, lock=True)
        except CloseloopError as exc:
            return _error_page(exc, request)
        if visit.completed:
            return await _answered_page(session, visit, status=409)
        result = await steps.submit_form(
            session, runtime.outbox, visit=visit, form=form, max_chars=settings.max_answer_chars
        )
        if result.problems:
            return await _refused(request, session, runtime, token, visit, result)
    return _after_form(request, token, result)


async def _form_fields(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return fields


async def _refused(
    request: Request,
    session: AsyncSession | None,
    runtime: ResponsesRuntime,
    token: str,
    visit: Visit,
    result: steps.FormResult,
) -> HTMLResponse:
    return await _step_page(
        request,
        session,
        runtime,
        token,
        visit,
        result.step,
        values=result.values,
        errors=result.problems,
        status=422,
    )


def _after_form(request: Request, token: str, result: steps.FormResult) -> HTTPResponse:
    page = _page_url(request, token)
    if result.unanswered is not None:
        return RedirectResponse(f"{page}?q={result.unanswered}", status_code=status.HTTP_303_SEE_OTHER)
    # Post/redirect/get: reloading the thank-you page never submits the form again.
    where = f"{page}/thanks" if result.completed else page
    return RedirectResponse(where, status_code=status.HTTP_303_SEE_OTHER)


@router.get(
    "/s/{token}/thanks",
    response_class=HTMLResponse,
    name="thank_you_page",
    summary="The thank-you page for the respondent's outcome, with a reward code when the survey gives one",
)
async def thank_you_page(
    token: str, request: Request, session: SessionDep, runtime: RuntimeDep
) -> HTTPResponse:
    try:
        visit = await open_visit(session, runtime, token)
    except CloseloopError as exc:
        return _error_page(exc, request)
    if not visit.completed or visit.response is None:
        return RedirectResponse(
            str(request.url_for("survey_page", token=token)), status_code=status.HTTP_303_SEE_OTHER
        )
    branding = await workspace_settings.page_branding(session, visit=visit)
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
    name="kiosk_page",
    summary="A kiosk or QR link: starts a fresh anonymous response for the next person",
    responses={
        303: {"description": "To this person's own survey page"},
        429: {"description": "Too many starts"},
    },
)
async def kiosk_page(key: str, request: Request, session: SessionDep, runtime: RuntimeDep) -> HTTPResponse:
    try:
        kiosk = await kiosks.kiosk_by_key(session, key=key)
    except CloseloopError as exc:
        return _error_page(exc, request)
    client = request.client.host if request.client else "unknown"
    retry_after = runtime.deps.kiosk_buckets.acquire(f"{kiosk.id}:{client}", time.monotonic())
    if retry_after:
        return pages.message(
            status=429,
            key="busy",
            locale=kiosk.locale or _accept_language(request),
            headers_={"Retry-After": str(max(1, round(retry_after)))},
        )
    token = kiosks.kiosk_session_token(
        kiosk, secret=runtime.settings.secret_key, ttl_s=runtime.settings.kiosk_session_ttl_s
    )
    return RedirectResponse(
        str(request.url_for("survey_page", token=token)), status_code=status.HTTP_303_SEE_OTHER
    )
