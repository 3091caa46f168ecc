"""Surveys: the list, one survey with the checklist's warnings beside each question and a preview of its
page, and an editor whose "Check" asks responses' checklist (``POST /v1/surveys/lint``) and shows each
warning beside its question before anything is saved. The editor covers names, questions, their texts in
the default language and one more, a show-if condition and a "skip to the end" per question, the survey's
own colours, font and logo, and its reward pool; kiosks are on ``api/kiosks.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from services.console.api.forms import Csrf, Id, acting, back_to, form_router, reading, refused_page
from services.console.apis import Caller, ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.domain.survey_edit import draft_of_survey, field_errors
from services.console.domain.survey_form import (
    FONTS,
    QUESTION_FIELDS,
    Branding,
    Draft,
    QuestionRow,
    definition,
    logo_data_url,
    rows_of,
    show_condition,
)
from services.console.views import can, flashed, page
from services.console.web import redirect
from shared.access import Permission

router = form_router("responses")
TYPES = {
    "nps": "NPS (0–10: recommend)",
    "nls": "NLS (0–10: come back)",
    "csat": "CSAT (1–5)",
    "ces": "CES (1–7: easy)",
    "rating": "Stars (1–5)",
    "open": "Open text",
    "consent": "Consent to contact (yes/no)",
}
SCALES = {"nps": range(11), "nls": range(11), "csat": range(1, 6), "ces": range(1, 8), "rating": range(1, 6)}
ROWS = 5
SurveyId = Id
SINGLE_FIELDS: tuple[str, ...] = (
    "name",
    "default_locale",
    "second_locale",
    "b_own",
    "b_primary",
    "b_background",
    "b_text",
)
SINGLE_FIELDS += ("b_font", "b_logo_kept", "reward_pool_id", "kept")
MAX_LOGO_BYTES = 40_000
EDIT_BLANK_ROWS = 2
Action = Annotated[str, Form(max_length=10)]
Logo = Annotated[UploadFile | None, File()]


def by_question(warnings: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    out: dict[str | None, list[dict[str, Any]]] = {}
    for w in warnings:
        out.setdefault(w.get("question_id"), []).append(w)
    return out


def as_list(found: Any) -> list[dict[str, Any]]:
    return [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []


def survey_locales(survey: dict[str, Any]) -> list[str]:
    """The languages the survey's texts are in, its default first."""
    default = survey.get("default_locale") or "en"
    found = {default}
    for q in survey.get("questions") or []:
        if isinstance(q.get("text"), dict):
            found |= set(q["text"])
    return [default] + sorted(found - {default})


def text_of(value: Any, locale: str = "en") -> str:
    if isinstance(value, dict):
        return str(value.get(locale) or next(iter(value.values()), ""))
    return "" if value is None else str(value)


@router.get("/surveys", summary="The workspace's surveys", response_class=HTMLResponse)
async def surveys(request: Request, runtime: RuntimeDep, signed_in: SignedInDep) -> Response:
    person, caller = reading(runtime, signed_in, Permission.SURVEYS_READ)
    try:
        found, error = await caller.get("responses", "/v1/surveys"), None
    except ServiceError as exc:
        found, error = [], exc
    return page(
        "surveys.html",
        request,
        person,
        surveys=found,
        error=error,
        may_write=can(person, Permission.SURVEYS_WRITE),
    )


def editor(
    request: Request,
    person: Any,
    *,
    draft: Draft,
    pools: list[dict[str, Any]],
    survey: dict[str, Any] | None = None,
    lint: dict[str, Any] | None = None,
    refused: ServiceError | str | None = None,
    status: int = 200,
) -> Response:
    """The editor: a new survey, or a new version of ``survey``; ``refused`` what stopped the last try."""
    warnings = by_question(lint["warnings"]) if lint else {}
    if isinstance(refused, ServiceError):
        error: str | None = refused.detail
        fields = field_errors(refused.errors, draft.second_locale)
        status = refused.status or 502
    else:
        error, fields = refused, {}
    return page(
        "survey_editor.html",
        request,
        person,
        status=status,
        draft=draft,
        rows=draft.rows,
        types=TYPES,
        fonts=FONTS,
        pools=pools,
        warnings=warnings,
        lint=lint,
        error=error,
        fields=fields,
        survey=survey,
        action=f"/surveys/{survey['id']}/edit" if survey else "/surveys/new",
    )


async def reward_pools(caller: Caller) -> list[dict[str, Any]]:
    """The workspace's reward pools (none when responses does not answer: the editor works without)."""
    try:
        found = await caller.get("responses", "/v1/reward-pools")
    except ServiceError:
        return []
    return list(found or [])


@router.get("/surveys/new", summary="The survey editor", response_class=HTMLResponse)
async def new_survey(request: Request, runtime: RuntimeDep, signed_in: SignedInDep) -> Response:
    person, caller = reading(runtime, signed_in, Permission.SURVEYS_WRITE)
    pools = await reward_pools(caller)
    draft = Draft(rows=[QuestionRow() for _ in range(ROWS)])
    return editor(request, person, draft=draft, pools=pools)


async def draft_of(request: Request, b_logo: UploadFile | None) -> Draft:
    """The editor's posted form as a draft (the logo: a new upload, else the one carried along)."""
    logo = None
    if b_logo is not None and b_logo.filename:
        logo = logo_data_url(b_logo.content_type or "", await b_logo.read(MAX_LOGO_BYTES + 1))
    form = await request.form()
    lists = {n: [str(v) for v in form.getlist("q_" + n)] for n in QUESTION_FIELDS}
    one = {k: str(form.get(k) or "") for k in SINGLE_FIELDS}
    return Draft(
        name=one["name"],
        default_locale=one["default_locale"] or "en",
        second_locale=one["second_locale"],
        rows=rows_of(lists, [str(v) for v in form.getlist("q_required")], minimum=ROWS),
        branding=Branding(
            own=one["b_own"] == "yes",
            primary_color=one["b_primary"] or "#1f4fd1",
            background_color=one["b_background"] or "#f4f5f7",
            text_color=one["b_text"] or "#1d2330",
            font=one["b_font"] or "system",
            logo=logo or one["b_logo_kept"] or None,
        ),
        reward_pool_id=one["reward_pool_id"],
        kept=one["kept"],
    )


async def check_or_save(
    request: Request,
    runtime: RuntimeDep,
    person: Any,
    caller: Caller,
    *,
    draft: Draft,
    action: str,
    survey: dict[str, Any] | None = None,
) -> Response:
    """Ask responses' checklist about the draft and show its warnings; on "save" store it (a new survey,
    or the next version of ``survey``) and go to its page. Responses stores all of it or nothing."""
    body = definition(draft)
    pools = await reward_pools(caller)
    if not body["questions"]:
        refused = "Add at least one question (an id and a text)."
        return editor(request, person, draft=draft, pools=pools, survey=survey, refused=refused, status=422)
    try:
        lint = await caller.post("responses", "/v1/surveys/lint", body)
        if action != "save":
            return editor(request, person, draft=draft, pools=pools, survey=survey, lint=lint)
    except ServiceError as exc:
        return editor(request, person, draft=draft, pools=pools, survey=survey, refused=exc)
    try:
        if survey:
            saved = await caller.put("responses", f"/v1/surveys/{survey['id']}", body)
        else:
            saved = await caller.post("responses", "/v1/surveys", body)
    except ServiceError as exc:
        return editor(request, person, draft=draft, pools=pools, survey=survey, lint=lint, refused=exc)
    if not survey:
        return redirect(f"/surveys/{saved['id']}")
    done = f"Saved as version {saved['version']} (was {survey['version']})."
    return back_to(runtime, f"/surveys/{saved['id']}", done=done)


@router.post("/surveys/new", summary="Check or save a survey from the editor", response_class=HTMLResponse)
async def save_survey(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    action: Action = "check",
    b_logo: Logo = None,
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.SURVEYS_WRITE)
    draft = await draft_of(request, b_logo)
    return await check_or_save(request, runtime, person, caller, draft=draft, action=action)


@router.get(
    "/surveys/{survey_id}/edit",
    summary="The editor, filled with a survey's current version",
    response_class=HTMLResponse,
)
async def edit_survey(
    request: Request, survey_id: SurveyId, runtime: RuntimeDep, signed_in: SignedInDep
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.SURVEYS_WRITE)
    data = await caller.gather(
        survey=caller.get("responses", f"/v1/surveys/{survey_id}"),
        lint=caller.get("responses", f"/v1/surveys/{survey_id}/lint"),
    )
    if isinstance(data["survey"], ServiceError):
        return refused_page(request, person, "Survey not shown", data["survey"])
    draft = draft_of_survey(data["survey"], blank_rows=EDIT_BLANK_ROWS)
    lint = data["lint"] if isinstance(data["lint"], dict) else None
    pools = await reward_pools(caller)
    return editor(request, person, draft=draft, pools=pools, survey=data["survey"], lint=lint)


@router.post(
    "/surveys/{survey_id}/edit",
    summary="Check an edit of a survey or save it as its next version",
    response_class=HTMLResponse,
)
async def save_edit(
    request: Request,
    survey_id: SurveyId,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    action: Action = "check",
    version: Annotated[int, Form(ge=1)] = 1,
    b_logo: Logo = None,
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.SURVEYS_WRITE)
    draft = await draft_of(request, b_logo)
    survey = {"id": survey_id, "version": version}
    return await check_or_save(request, runtime, person, caller, draft=draft, action=action, survey=survey)


@router.get(
    "/surveys/{survey_id}", summary="A survey with its checklist and a preview", response_class=HTMLResponse
)
async def survey_page(
    request: Request,
    survey_id: SurveyId,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    locale: Annotated[str, Query(max_length=35, pattern=r"^[A-Za-z0-9-]*$")] = "",
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.SURVEYS_READ)
    calls: dict[str, Any] = {
        "survey": caller.get("responses", f"/v1/surveys/{survey_id}"),
        "lint": caller.get("responses", f"/v1/surveys/{survey_id}/lint"),
        "kiosks": caller.get("responses", "/v1/kiosks"),
        "pools": caller.get("responses", "/v1/reward-pools"),
    }
    if can(person, Permission.CHANNELS_READ):
        sample = {
            "channel": "email",
            "survey_id": survey_id,
            "recipient": {"name": "Ada Lovelace", "email": "ada@example.com"},
        }
        calls["email"] = caller.post("dispatch", "/v1/templates/preview", sample)
    data = await caller.gather(**calls)
    if isinstance(data["survey"], ServiceError):
        return refused_page(request, person, "Survey not shown", data["survey"])
    lint = data["lint"] if isinstance(data["lint"], dict) else None
    survey = data["survey"]
    locales = survey_locales(survey)
    shown = locale if locale in locales else survey.get("default_locale") or "en"
    kiosks = [k for k in as_list(data["kiosks"]) if k.get("survey_id") == survey_id]
    pool = next((p for p in as_list(data["pools"]) if p.get("id") == survey.get("reward_pool_id")), None)
    return page(
        "survey.html",
        request,
        person,
        survey=survey,
        locales=locales,
        shown=shown,
        kiosks=kiosks,
        kiosks_error=data["kiosks"] if isinstance(data["kiosks"], ServiceError) else None,
        pool=pool,
        condition=show_condition,
        may_write=can(person, Permission.SURVEYS_WRITE),
        done=flashed(request, runtime.settings, "done"),
        error=flashed(request, runtime.settings, "error"),
        lint=lint,
        warnings=by_question(lint["warnings"]) if lint else {},
        text_of=text_of,
        scales=SCALES,
        types=TYPES,
        email=data.get("email") if isinstance(data.get("email"), dict) else None,
    )
