"""Surveys: the list, one survey with the checklist's warnings beside each question and a preview of its
page, and an editor whose "Check" asks responses' checklist (``POST /v1/surveys/lint``) and shows each
warning beside its question before anything is saved. Logic, languages, branding and rewards are edited
through the API for now; the editor covers names, questions, their texts and whether they are required."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from services.console.apis import ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.views import can, need, page
from services.console.web import check_session_csrf, redirect
from shared.access import Permission
from shared.guard import GuardedRoute, public

router = APIRouter(
    tags=["pages"],
    route_class=GuardedRoute,
    dependencies=[
        public("a browser page: the session cookie and the form's CSRF token; responses checks the role")
    ],
)
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
SurveyId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Field = Annotated[list[str], Form(max_length=50)]


def by_question(warnings: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    out: dict[str | None, list[dict[str, Any]]] = {}
    for w in warnings:
        out.setdefault(w.get("question_id"), []).append(w)
    return out


def text_of(value: Any, locale: str = "en") -> str:
    if isinstance(value, dict):
        return str(value.get(locale) or next(iter(value.values()), ""))
    return "" if value is None else str(value)


@router.get("/surveys", summary="The workspace's surveys", response_class=HTMLResponse)
async def surveys(request: Request, runtime: RuntimeDep, signed_in: SignedInDep) -> Response:
    person = need(signed_in, Permission.SURVEYS_READ)
    caller = runtime.deps.services.as_person(person)
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
    draft: dict[str, Any],
    lint: dict[str, Any] | None,
    error: str | None,
    status: int = 200,
) -> Response:
    rows = list(draft["questions"]) + [{"id": "", "type": "open", "text": "", "required": False}] * max(
        0, ROWS - len(draft["questions"])
    )
    warnings = by_question(lint["warnings"]) if lint else {}
    return page(
        "survey_editor.html",
        request,
        person,
        status=status,
        draft=draft,
        rows=rows,
        types=TYPES,
        warnings=warnings,
        lint=lint,
        error=error,
        text_of=text_of,
    )


@router.get("/surveys/new", summary="The survey editor", response_class=HTMLResponse)
async def new_survey(request: Request, signed_in: SignedInDep) -> Response:
    person = need(signed_in, Permission.SURVEYS_WRITE)
    return editor(request, person, draft={"name": "", "questions": []}, lint=None, error=None)


@router.post("/surveys/new", summary="Check or save a survey from the editor", response_class=HTMLResponse)
async def save_survey(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    q_id: Field = [],  # noqa: B006
    q_type: Field = [],  # noqa: B006
    q_text: Field = [],  # noqa: B006
    q_required: Field = [],  # noqa: B006
    action: Annotated[str, Form(max_length=10)] = "check",
) -> Response:
    person = need(signed_in, Permission.SURVEYS_WRITE)
    check_session_csrf(person.session.csrf_token, csrf_token)
    questions = [
        {
            "id": qid.strip(),
            "type": qtype if qtype in TYPES else "open",
            "required": qid.strip() in q_required,
        }
        | ({"text": text.strip()} if text.strip() else {})
        for qid, qtype, text in zip(q_id, q_type, q_text, strict=False)
        if qid.strip()
    ]
    draft = {"name": name.strip(), "default_locale": "en", "questions": questions}
    caller = runtime.deps.services.as_person(person)
    if not questions:
        return editor(
            request,
            person,
            draft=draft,
            lint=None,
            error="Add at least one question (an id and a text).",
            status=422,
        )
    try:
        lint = await caller.post("responses", "/v1/surveys/lint", draft)
    except ServiceError as exc:
        return editor(request, person, draft=draft, lint=None, error=exc.detail, status=exc.status or 502)
    if action != "save":
        return editor(request, person, draft=draft, lint=lint, error=None)
    try:
        saved = await caller.post("responses", "/v1/surveys", draft)
    except ServiceError as exc:
        return editor(request, person, draft=draft, lint=lint, error=exc.detail, status=exc.status or 502)
    return redirect(f"/surveys/{saved['id']}")


@router.get(
    "/surveys/{survey_id}", summary="A survey with its checklist and a preview", response_class=HTMLResponse
)
async def survey_page(
    request: Request, survey_id: SurveyId, runtime: RuntimeDep, signed_in: SignedInDep
) -> Response:
    person = need(signed_in, Permission.SURVEYS_READ)
    caller = runtime.deps.services.as_person(person)
    calls: dict[str, Any] = {
        "survey": caller.get("responses", f"/v1/surveys/{survey_id}"),
        "lint": caller.get("responses", f"/v1/surveys/{survey_id}/lint"),
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
        return page(
            "message_app.html",
            request,
            person,
            status=data["survey"].status or 502,
            title="Survey not shown",
            detail=data["survey"].detail,
        )
    lint = data["lint"] if isinstance(data["lint"], dict) else None
    return page(
        "survey.html",
        request,
        person,
        survey=data["survey"],
        lint=lint,
        warnings=by_question(lint["warnings"]) if lint else {},
        text_of=text_of,
        scales=SCALES,
        types=TYPES,
        email=data.get("email") if isinstance(data.get("email"), dict) else None,
    )
