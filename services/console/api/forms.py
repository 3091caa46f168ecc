"""What the console's browser pages share: their router, the form fields every page names the same way,
the prologue of a page that shows what the services answer and of a form that changes something, the way
back to a page with a message, and how a page reads what the services answered."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response

from services.console.apis import Caller, ServiceError
from services.console.deps import ConsoleRuntime, RuntimeDep, SignedInDep
from services.console.handlers import accounts
from services.console.handlers.accounts import SignedIn
from services.console.models import User
from services.console.views import flash, need, page, query
from services.console.web import check_session_csrf, home_signed_in, redirect
from shared.access import Permission
from shared.guard import GuardedRoute, public
from shared.service import SessionDep

Csrf = Annotated[str, Form(max_length=200)]
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


def page_router(access: str) -> APIRouter:
    """Return a router of browser pages (tagged ``pages``) that the guard leaves public, ``access`` saying
    what protects them instead."""
    return APIRouter(tags=["pages"], route_class=GuardedRoute, dependencies=[public(access)])


def form_router(checker: str) -> APIRouter:
    """Return a router of pages whose forms act as the signed-in person, ``checker`` checking the role."""
    return page_router(
        f"a browser page: the session cookie and the form's CSRF token; {checker} checks the role"
    )


def reading(runtime: RuntimeDep, signed_in: SignedInDep, permission: Permission) -> tuple[SignedIn, Caller]:
    """Return the signed-in person and a caller speaking for them, once their role has ``permission`` (the
    prologue of every page that shows what the services answer)."""
    person = need(signed_in, permission)
    return person, runtime.deps.services.as_person(person)


def checked(signed_in: SignedInDep, csrf_token: str, permission: Permission) -> SignedIn:
    """Return the signed-in person once their role has ``permission`` and the form's CSRF token is theirs."""
    person = need(signed_in, permission)
    check_session_csrf(person.session.csrf_token, csrf_token)
    return person


def acting(
    runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: str, permission: Permission
) -> tuple[SignedIn, Caller]:
    """Return the signed-in person and a caller speaking for them, once their role has ``permission``
    and the form's CSRF token is theirs (the prologue of every form that changes something)."""
    person = checked(signed_in, csrf_token, permission)
    return person, runtime.deps.services.as_person(person)


def back_to(
    runtime: ConsoleRuntime, place: str, *, keep: dict[str, Any] | None = None, **messages: str
) -> Response:
    """Return the redirect to ``place`` (a path, maybe with a ``#fragment``) carrying ``messages`` signed
    (``flash``) in its query, after the parameters ``keep``."""
    path, hash_, fragment = place.partition("#")
    return redirect(path + query(**(keep or {}), **flash(runtime.settings, **messages)) + hash_ + fragment)


async def settled(
    runtime: ConsoleRuntime, place: str, change: Awaitable[Any], *, done: str, service: str
) -> Response:
    """Back to ``place`` saying ``done`` once ``change`` went through, or what ``service`` said when it
    refused."""
    try:
        await change
    except ServiceError as exc:
        return back_to(runtime, place, done=f"{service} refused: {exc.detail}")
    return back_to(runtime, place, done=done)


async def signed_in_home(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: User,
    *,
    workspace_id: str | None,
    method: str,
    now: datetime,
) -> Response:
    """Open a session for ``user`` (in ``workspace_id``, else their first workspace) and return the redirect
    home that sets its cookie (the end of every way in: password, emailed link, invitation, single sign-on)."""
    token = await accounts.start_session(
        session, runtime.settings, user=user, workspace_id=workspace_id, method=method, now=now
    )
    return home_signed_in(request, runtime.settings, token)


def comma_separated(value: str) -> list[str]:
    """Return the items of a form field typed as a comma-separated list, trimmed, the empty ones left out."""
    return [item.strip() for item in value.split(",") if item.strip()]


def errors_of(data: dict[str, Any]) -> dict[str, ServiceError]:
    """Return the calls of ``data`` that a service refused, by name."""
    return {k: v for k, v in data.items() if isinstance(v, ServiceError)}


def items_of(value: Any) -> list[Any]:
    """Return the rows of an answer that is a list or a page ``{"items": [...]}``; none for a refusal."""
    if isinstance(value, dict):
        return list(value.get("items", []))
    return list(value) if isinstance(value, list) else []


def refused_page(
    request: Request, person: SignedIn, title: str, refusal: ServiceError, *, status: int | None = None
) -> Response:
    """Return the page saying ``title`` and why a service refused what the page shows, with the service's
    status (502 when it gave none) unless ``status`` is given."""
    return page(
        "message_app.html",
        request,
        person,
        status=status or refusal.status or 502,
        title=title,
        detail=refusal.detail,
    )
