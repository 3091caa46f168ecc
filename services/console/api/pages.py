"""The console's pages for a signed-in person and the way in: sign in, sign out (here or everywhere),
the home page with the workspace's API keys (create, revoke), switching workspace, the stylesheet."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse

from services.console.api.forms import Csrf, page_router, signed_in_home
from services.console.api.v1 import KeyId
from services.console.deps import AddressDep, RuntimeDep, SignedInDep
from services.console.errors import SIGN_IN_REFUSED, SignInRefused, TooManyAttempts
from services.console.handlers import accounts, keys
from services.console.handlers.accounts import SignedIn
from services.console.static_js import SCRIPT
from services.console.views import page
from services.console.web import (
    CSS,
    FAVICON,
    SESSION_COOKIE,
    anonymous_form,
    check_anonymous_csrf,
    check_session_csrf,
    clear_cookie,
    redirect,
    render,
)
from shared.access import KEY_ROLES, PERMISSIONS, Permission, Role, may_grant
from shared.errors import Forbidden, InvalidInput
from shared.service import SessionDep

router = page_router(
    "a browser page: signing in, or the session cookie of a signed-in person (the page checks their role and the form's CSRF token)"
)


def _signed_in_or_redirect(signed_in: SignedIn | None) -> SignedIn | Response:
    return signed_in if signed_in is not None else redirect("/sign-in")


def _form_person(signed_in: SignedIn | None, csrf_token: str) -> SignedIn | Response:
    """Return the signed-in person once the form's CSRF token is theirs; the way to the sign-in page when
    nobody is signed in."""
    person = _signed_in_or_redirect(signed_in)
    if not isinstance(person, Response):
        check_session_csrf(person.session.csrf_token, csrf_token)
    return person


def _signed_out(request: Request, runtime: RuntimeDep) -> Response:
    """Return the way to the sign-in page that forgets this browser's session cookie."""
    response = redirect("/sign-in")
    clear_cookie(response, request, runtime.settings, SESSION_COOKIE)
    return response


def _key_writer(
    signed_in: SignedIn | None, csrf_token: str, doing: str, *, field: str
) -> SignedIn | Response:
    """Return the signed-in person once the form's CSRF token is theirs and their role may ``doing`` API
    keys (refused naming ``field`` otherwise); the way to the sign-in page when nobody is signed in."""
    person = _form_person(signed_in, csrf_token)
    if isinstance(person, Response):
        return person
    if Permission.KEYS_WRITE not in PERMISSIONS[person.role]:
        raise Forbidden(f"Your role '{person.role}' may not {doing} API keys.", field=field)
    return person


@router.get("/console.css", summary="The console's stylesheet", response_class=Response)
async def stylesheet() -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/console.js", summary="The console's one script: live updates", response_class=Response)
async def script() -> Response:
    return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/favicon.svg", summary="The console's icon", response_class=Response)
async def favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/sign-in", summary="The sign-in page", response_class=HTMLResponse)
async def sign_in_page(request: Request, runtime: RuntimeDep, signed_in: SignedInDep) -> Response:
    if signed_in is not None:
        return redirect("/")
    return anonymous_form("sign_in.html", request, runtime.settings)


@router.post("/sign-in", summary="Sign in with email and password", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    address: AddressDep,
    csrf_token: Csrf = "",
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    check_anonymous_csrf(request, csrf_token)
    settings, now = runtime.settings, runtime.deps.clock.now()
    try:
        user = await accounts.authenticate(
            session,
            runtime.deps.passwords,
            settings,
            email=email,
            password=password,
            address=address,
            now=now,
        )
        if user is None:
            raise SignInRefused(SIGN_IN_REFUSED)
        return await signed_in_home(
            request, session, runtime, user, workspace_id=None, method="password", now=now
        )
    except (SignInRefused, TooManyAttempts) as exc:
        page = anonymous_form(
            "sign_in.html", request, settings, error=exc.detail, email=email[:320], status=exc.status
        )
        page.headers.update(exc.headers or {})
        return page


@router.post("/sign-out", summary="Sign out of this browser", response_class=HTMLResponse)
async def sign_out(
    request: Request, session: SessionDep, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = ""
) -> Response:
    if signed_in is not None:
        check_session_csrf(signed_in.session.csrf_token, csrf_token)
        await accounts.sign_out(session, token=request.cookies.get(SESSION_COOKIE))
    return _signed_out(request, runtime)


@router.post(
    "/sign-out/everywhere", summary="End every session of the signed-in person", response_class=HTMLResponse
)
async def sign_out_everywhere(
    request: Request, session: SessionDep, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = ""
) -> Response:
    person = _form_person(signed_in, csrf_token)
    if isinstance(person, Response):
        return person
    await accounts.sign_out_everywhere(session, user_id=person.user.id)
    return _signed_out(request, runtime)


@router.get(
    "/",
    summary="Home: the workspace, the person's role and the workspace's API keys",
    response_class=HTMLResponse,
)
async def home(request: Request, session: SessionDep, signed_in: SignedInDep) -> Response:
    person = _signed_in_or_redirect(signed_in)
    if isinstance(person, Response):
        return person
    can = PERMISSIONS[person.role]
    return page(
        "home.html",
        request,
        person,
        workspaces=await accounts.memberships(session, person.user.id),
        can_read_keys=Permission.KEYS_READ in can,
        can_write_keys=Permission.KEYS_WRITE in can,
        keys=await keys.list_keys(session, workspace_id=person.workspace_id)
        if Permission.KEYS_READ in can
        else [],
        key_roles=[r.value for r in KEY_ROLES if may_grant(person.role, r)],
    )


@router.post(
    "/workspace", summary="Switch to another of the person's workspaces", response_class=HTMLResponse
)
async def switch_workspace(
    session: SessionDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    workspace_id: Annotated[str, Form(max_length=63)] = "",
) -> Response:
    person = _form_person(signed_in, csrf_token)
    if isinstance(person, Response):
        return person
    await accounts.switch_workspace(session, person, workspace_id=workspace_id)
    return redirect("/")


@router.post(
    "/keys",
    summary="Create an API key from the home page (its secret is shown once)",
    response_class=HTMLResponse,
)
async def create_key(
    session: SessionDep,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    label: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "integration",
    expires_in_days: Annotated[int, Form(ge=0, le=3650)] = 90,
) -> Response:
    person = _key_writer(signed_in, csrf_token, "create", field="role")
    if isinstance(person, Response):
        return person
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"Choose a role: {', '.join(KEY_ROLES)}.", field="role")
    keys.check_grant(person.role, Role(role))
    now = runtime.deps.clock.now()
    created = await keys.create_key(
        session,
        runtime.settings.keyring,
        workspace_id=person.workspace_id,
        role=Role(role),
        label=label,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        created_by=f"user:{person.user.id}",
        now=now,
    )
    return render("key_created.html", status=201, signed_in=person, key=created.row, secret=created.secret)


@router.post(
    "/keys/{key_id}/revoke", summary="Revoke an API key from the home page", response_class=HTMLResponse
)
async def revoke_key(
    key_id: KeyId,
    session: SessionDep,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
) -> Response:
    person = _key_writer(signed_in, csrf_token, "revoke", field="key_id")
    if isinstance(person, Response):
        return person
    await keys.revoke_key(
        session,
        runtime.outbox,
        workspace_id=person.workspace_id,
        key_id=key_id,
        by=f"user:{person.user.id}",
        now=runtime.deps.clock.now(),
    )
    return redirect("/#keys")
