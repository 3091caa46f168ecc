"""What the console's browser pages share: their router, the form fields every page names the same way,
the prologue of a form that changes something, and how a page reads what the services answered."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response

from services.console.apis import Caller, ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from services.console.handlers.accounts import SignedIn
from services.console.views import need, page
from services.console.web import check_session_csrf
from shared.access import Permission
from shared.guard import GuardedRoute, public

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


def acting(
    runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: str, permission: Permission
) -> tuple[SignedIn, Caller]:
    """Return the signed-in person and a caller speaking for them, once their role has ``permission``
    and the form's CSRF token is theirs (the prologue of every form that changes something)."""
    person = need(signed_in, permission)
    check_session_csrf(person.session.csrf_token, csrf_token)
    return person, runtime.deps.services.as_person(person)


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
