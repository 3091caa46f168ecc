"""Settings that act: outgoing webhook subscriptions made in the page (the signing secret shown on that
answer only), and message templates edited with dispatch's preview beside them (``POST
/v1/templates/preview`` renders the typed template for a sample customer before anything is saved)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from services.console.api.forms import (
    Csrf,
    Id,
    acting,
    back_to,
    comma_separated,
    form_router,
    reading,
    refused_page,
)
from services.console.apis import Caller, ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.views import can, flashed, need, page
from shared.access import Permission
from shared.vocabulary import SEND_CHANNELS

router = form_router("dispatch")
SAMPLE = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+31612345678"}
SAMPLE_CONTEXT = {"agent": "Grace Hopper", "product": "Acme Cloud"}


@router.post(
    "/settings/webhooks", summary="Subscribe an endpoint to outgoing webhooks", response_class=HTMLResponse
)
async def create_webhook(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    url: Annotated[str, Form(max_length=2000)] = "",
    event_types: Annotated[str, Form(max_length=2000)] = "",
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    person, caller = acting(runtime, signed_in, csrf_token, Permission.INTEGRATION_SECRETS_WRITE)
    body: dict[str, Any] = {
        "url": url.strip(),
        "event_types": comma_separated(event_types),
    } | ({"description": description.strip()} if description.strip() else {})
    try:
        made = await caller.post("dispatch", "/v1/webhooks", body)
    except ServiceError as exc:
        return back_to(runtime, "/settings#webhooks", done=f"dispatch refused the subscription: {exc.detail}")
    # Shown on this answer only: the console keeps no copy, dispatch keeps it encrypted.
    return page("webhook_secret.html", request, person, subscription=made)


def template_body(
    *, name: str, channel: str, locale: str, subject: str, text: str, html: str, survey_id: str
) -> dict[str, Any]:
    """The template as dispatch takes it (empty optional fields left out)."""
    body: dict[str, Any] = {"name": name.strip(), "channel": channel, "text": text}
    optional = {"locale": locale.strip(), "survey_id": survey_id.strip(), "html": html.strip()}
    optional["subject"] = subject.strip() if channel == "email" else ""
    return body | {k: v for k, v in optional.items() if v}


async def preview(caller: Caller, template: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Dispatch's rendering of ``template`` for the sample customer, or its refusal."""
    sample = {
        "template": template,
        "channel": template["channel"],
        "survey_id": template.get("survey_id") or "preview",
        "locale": template.get("locale"),
        "recipient": SAMPLE,
        "context": SAMPLE_CONTEXT,
    }
    try:
        return await caller.post("dispatch", "/v1/templates/preview", sample), None
    except ServiceError as exc:
        return None, exc.detail


def editor(request: Request, person: Any, template: dict[str, Any], **context: Any) -> Response:
    return page(
        "template.html",
        request,
        person,
        tpl=template,
        channels=SEND_CHANNELS,
        may_write=can(person, Permission.CHANNELS_WRITE),
        **context,
    )


@router.get("/settings/templates/new", summary="A new message template", response_class=HTMLResponse)
async def new_template(request: Request, signed_in: SignedInDep) -> Response:
    person = need(signed_in, Permission.CHANNELS_WRITE)
    blank = {"id": None, "name": "", "channel": "email", "text": "{{ greeting }}\n\n{{ survey_url }}\n"}
    return editor(request, person, blank, preview=None, error=None, done=None)


@router.get(
    "/settings/templates/{template_id}",
    summary="A message template and its preview",
    response_class=HTMLResponse,
)
async def show_template(
    request: Request, template_id: Id, runtime: RuntimeDep, signed_in: SignedInDep
) -> Response:
    person, caller = reading(runtime, signed_in, Permission.CHANNELS_READ)
    try:
        template = await caller.get("dispatch", f"/v1/templates/{template_id}")
    except ServiceError as exc:
        return refused_page(request, person, "Template not shown", exc)
    shown, error = await preview(caller, template_body(**{k: template.get(k) or "" for k in TEMPLATE_FIELDS}))
    done = flashed(request, runtime.settings, "done")
    return editor(request, person, template, preview=shown, error=error, done=done)


TEMPLATE_FIELDS = ("name", "channel", "locale", "subject", "text", "html", "survey_id")


@router.post("/settings/templates", summary="Preview or save a message template", response_class=HTMLResponse)
async def save_template(
    request: Request,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    template_id: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    channel: Annotated[str, Form(max_length=20)] = "email",
    locale: Annotated[str, Form(max_length=20)] = "",
    survey_id: Annotated[str, Form(max_length=64)] = "",
    subject: Annotated[str, Form(max_length=500)] = "",
    text: Annotated[str, Form(max_length=20_000)] = "",
    html: Annotated[str, Form(max_length=100_000)] = "",
    action: Annotated[str, Form(max_length=10)] = "preview",
) -> Response:
    permission = Permission.CHANNELS_WRITE if action == "save" else Permission.CHANNELS_READ
    person, caller = acting(runtime, signed_in, csrf_token, permission)
    body = template_body(
        name=name, channel=channel, locale=locale, subject=subject, text=text, html=html, survey_id=survey_id
    )
    typed = body | {"id": template_id or None}
    if action != "save":
        shown, error = await preview(caller, body)
        status = 200 if shown is not None else 422
        return editor(request, person, typed, preview=shown, error=error, done=None, status=status)
    try:
        if template_id:
            saved = await caller.put("dispatch", f"/v1/templates/{template_id}", body)
        else:
            saved = await caller.post("dispatch", "/v1/templates", body)
    except ServiceError as exc:
        return editor(
            request, person, typed, preview=None, error=exc.detail, done=None, status=exc.status or 502
        )
    return back_to(runtime, f"/settings/templates/{saved['id']}", done=f"Template “{saved['name']}” saved.")
