"""Who may call each route: the declaration every route makes, checked once, before the body is read.

Every route of every service declares its access with one dependency, so that nothing is public by
accident and a reader sees at the route what it needs:

- ``requires(Permission.RULES_WRITE)``: a credential of the workspace (an API key or a console user
  token) whose role has the permission (``shared.access.PERMISSIONS``);
- ``authenticated()``: any valid credential (the console's ``GET /v1/me``);
- ``public("why")``: no closeloop credential — survey pages, short links, signed inbound webhooks and
  provider callbacks (they check their own signature), health checks; the reason is documented.

Routers are made with ``APIRouter(route_class=GuardedRoute)``. ``GuardedRoute`` finds the declaration
among the route's dependencies and checks it before FastAPI reads and validates the body: an anonymous
or bad credential gets 401 and a role without the permission 403 naming it, never a 422 about a body
the caller had no right to send. The dependency then hands the route the caller the guard found.

A route that declares nothing fails closed: owner and admin credentials only (what every key could do
before roles). ``undeclared(app)`` lists such routes; a test walks every service's app with it.

Each operation's OpenAPI carries ``x-permission`` (a permission, ``authenticated`` or ``public``),
``x-roles`` (the roles that have it), its ``security`` and a sentence in its description.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from shared.access import (
    PERMISSIONS,
    CredentialError,
    Permission,
    Principal,
    Role,
    credential_from_headers,
    require,
)
from shared.errors import Forbidden, Unauthorized

FULL_ACCESS = frozenset({Role.OWNER, Role.ADMIN})
"""What a route that declares nothing takes: the roles that may do everything but manage people."""

NO_CREDENTIAL = (
    "Send a workspace API key as 'Authorization: Bearer <key>'. An owner or admin makes one on the "
    "console's home page (API keys) or with POST /v1/keys there; an operator gets an admin key with "
    "'closeloop workspace create <workspace> --owner <email>' (it signs with the running stack's secret)."
)


@dataclass(frozen=True, slots=True)
class Access:
    """What a route declares: a permission, any credential, or public (with the reason)."""

    kind: Literal["permission", "authenticated", "public", "undeclared"]
    permission: Permission | None = None
    public: str | None = None
    """Why the route needs no closeloop credential (its own signature, a signed link, …)."""

    @property
    def label(self) -> str:
        """``<permission>``, ``authenticated``, ``public`` or ``undeclared``: the route's ``x-permission``."""
        return str(self.permission) if self.permission is not None else self.kind

    def roles(self) -> list[Role]:
        """Return the roles that may call the route."""
        if self.permission is not None:
            return [role for role in Role if self.permission in PERMISSIONS[role]]
        return [role for role in Role if self.kind != "undeclared" or role in FULL_ACCESS]


UNDECLARED = Access("undeclared")
PRINCIPAL = "closeloop.principal"
"""Where a request's scope keeps its caller once verified (a dict lookup; ``request.state`` costs more)."""
CHECKED = "closeloop.access"
"""Where a request's scope keeps the declaration it was checked against."""


# --- who calls -----------------------------------------------------------------------------------


def authenticate(request: Request) -> Principal:
    """Return the caller of ``request`` (verified once per request); raise ``Unauthorized`` (401)."""
    principal: Principal | None = request.scope.get(PRINCIPAL)
    if principal is not None:
        return principal
    credential = credential_from_headers(request.headers)
    if not credential:
        raise Unauthorized(NO_CREDENTIAL, field="Authorization", headers={"WWW-Authenticate": "Bearer"})
    try:
        principal = request.app.state.runtime.authenticator.authenticate(credential)
    except CredentialError as exc:
        raise Unauthorized(
            str(exc), field="Authorization", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from exc
    assert principal is not None
    request.scope[PRINCIPAL] = principal
    return principal


def check(request: Request, access: Access) -> Principal | None:
    """Return the caller when ``access`` lets them in (None for public routes); raise 401 or 403."""
    if access.kind == "public":
        return None
    principal = authenticate(request)
    request.scope[CHECKED] = access
    if access.permission is not None:
        return require(principal, access.permission)
    if access.kind == "undeclared" and principal.role not in FULL_ACCESS:
        raise Forbidden(
            f"This route declares no permission, so it takes owner and admin credentials only; the role "
            f"'{principal.role}' may not use it.",
            field="Authorization",
        )
    return principal


# --- the declarations ----------------------------------------------------------------------------


class Declaration:
    """The route dependency that declares a route's access: FastAPI calls it (its value is the caller,
    None on public routes); the guard and the route walk read ``access``."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self.permission = access.permission

    async def __call__(self, request: Request) -> Principal | None:
        return check(request, self.access)


def requires(permission: Permission) -> Any:
    """Declare that a route needs ``permission``; the dependency's value is the caller (``Principal``).

    ``@router.post(..., dependencies=[requires(Permission.RULES_WRITE)])``, or as a parameter
    ``principal: Principal = requires(Permission.CASES_WRITE)``.
    """
    return Depends(Declaration(Access("permission", permission=Permission(permission))))


def authenticated() -> Any:
    """Declare that a route takes any valid credential of any role; the value is the caller."""
    return Depends(Declaration(Access("authenticated")))


def public(reason: str) -> Any:
    """Declare that a route needs no closeloop credential, and why (shown in OpenAPI)."""
    return Depends(Declaration(Access("public", public=reason)))


def declared(dependant: Dependant) -> Access | None:
    """Return what the dependencies of ``dependant`` declare; None when nothing (two are an error)."""
    found = {access for access in _declarations(dependant)}
    if len(found) > 1:
        raise ValueError(f"{dependant.path or dependant.call}: declares {sorted(a.label for a in found)}")
    return next(iter(found), None)


def _declarations(dependant: Dependant) -> Iterator[Access]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Declaration):
            yield dependency.call.access
        yield from _declarations(dependency)


# --- the route class -----------------------------------------------------------------------------


class GuardedRoute(APIRoute):
    """A route that checks its declared access before FastAPI reads the body, and documents it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        access = declared(self.dependant)
        if access is not None:
            self.openapi_extra = {**(self.openapi_extra or {}), **_openapi(access)}
            self.description = f"{self.description}\n\n{_sentence(access)}".strip()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        access = declared(self.dependant) or UNDECLARED
        if access.kind == "public":
            return handler

        async def guarded(request: Request) -> Response:
            check(request, access)
            return await handler(request)

        return guarded


def _openapi(access: Access) -> dict[str, Any]:
    extra: dict[str, Any] = {"x-permission": access.label, "x-roles": [str(r) for r in access.roles()]}
    extra["security"] = [] if access.kind == "public" else [{"bearer": []}]
    return extra


def _sentence(access: Access) -> str:
    if access.kind == "public":
        return f"**Access:** public — {access.public}."
    roles = ", ".join(str(r) for r in access.roles())
    if access.kind == "authenticated":
        return f"**Access:** any valid credential ({roles})."
    return f"**Access:** permission `{access.permission}` (roles: {roles})."


BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A workspace API key (`clk_…`, made in the console) or a console user token (`clu_…`).",
}


def with_security(document: dict[str, Any]) -> dict[str, Any]:
    """Return an OpenAPI ``document`` with the bearer scheme its operations' ``security`` names."""
    document.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER_SCHEME
    return document


def route_access(app: FastAPI) -> Iterator[tuple[str, str, Access | None, bool]]:
    """Yield (method, path, declared access, guarded) for every API route of ``app``."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        access = declared(context.dependant) if context.dependant is not None else None
        for method in sorted(route.methods or ()):
            yield method, context.path or route.path, access, isinstance(route, GuardedRoute)


def undeclared(app: FastAPI) -> list[str]:
    """Return ``"<METHOD> <path>"`` of every API route of ``app`` that declares no access or is not guarded."""
    return [
        f"{method} {path}"
        for method, path, access, guarded in route_access(app)
        if access is None or not guarded
    ]
