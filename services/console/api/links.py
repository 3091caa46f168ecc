"""The pages emailed links open: "forgot password" (asks for the address, says the same whether or not
it has an account), a link that sets a password (reset, or a new owner's first sign-in), and an
invitation (a new person picks a name and password; an existing one confirms with theirs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Request, Response
from fastapi.responses import HTMLResponse

from services.console.api.forms import Csrf, page_router, signed_in_home
from services.console.deps import RuntimeDep
from services.console.handlers import accounts, people
from services.console.web import (
    anonymous_form,
    check_anonymous_csrf,
    render,
)
from shared.errors import InvalidInput
from shared.service import SessionDep

router = page_router(
    "a browser page opened from an emailed single-use link (the token in the path), with a CSRF token on its form"
)
Token = Annotated[str, Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
Password = Annotated[str, Form(max_length=1024)]


def _hint(runtime: RuntimeDep) -> str:
    return (
        f"At least {runtime.settings.min_password_length} characters; any characters, spaces too. "
        "Not a common password, not your name or email address."
    )


@router.get(
    "/forgot-password", summary="Ask for a link that resets the password", response_class=HTMLResponse
)
async def forgot_page(request: Request, runtime: RuntimeDep) -> Response:
    return anonymous_form("forgot_password.html", request, runtime.settings)


@router.post(
    "/forgot-password",
    summary="Email a single-use reset link (when the address has an account)",
    response_class=HTMLResponse,
)
async def forgot(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    csrf_token: Csrf = "",
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    check_anonymous_csrf(request, csrf_token)
    if "@" not in email:
        return anonymous_form(
            "forgot_password.html", request, runtime.settings, error="Enter an email address.", status=422
        )
    await people.request_password_reset(
        session, runtime.outbox, runtime.settings, email=email, now=runtime.deps.clock.now()
    )
    return render(
        "forgot_password.html", sent=True, email=email.strip(), minutes=runtime.settings.reset_token_minutes
    )


def _password_form(
    request: Request, runtime: RuntimeDep, token: str, *, purpose: str, **context: object
) -> Response:
    first = purpose == "setup"
    return anonymous_form(
        "set_password.html",
        request,
        runtime.settings,
        action=f"/password/{token}",
        heading="Choose your password" if first else "Choose a new password",
        intro="Welcome to closeloop. Choose the password you will sign in with."
        if first
        else "Choose a new password. Every session of your account ends: sign in again afterwards.",
        hint=_hint(runtime),
        button="Save and sign in" if first else "Save the new password",
        **context,
    )


@router.get(
    "/password/{token}", summary="The page of a link that sets a password", response_class=HTMLResponse
)
async def password_page(token: Token, request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    row, _ = await accounts.password_link_user(session, token=token, now=runtime.deps.clock.now())
    return _password_form(request, runtime, token, purpose=row.purpose)


@router.post(
    "/password/{token}", summary="Set the password with a single-use link", response_class=HTMLResponse
)
async def set_password(
    token: Token,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    csrf_token: Csrf = "",
    password: Password = "",
) -> Response:
    check_anonymous_csrf(request, csrf_token)
    now = runtime.deps.clock.now()
    row, _ = await accounts.password_link_user(session, token=token, now=now)
    purpose = row.purpose
    try:
        async with session.begin_nested():
            user = await accounts.set_password_with_link(
                session, runtime.deps.passwords, runtime.settings, token=token, password=password, now=now
            )
    except InvalidInput as exc:
        return _password_form(request, runtime, token, purpose=purpose, error=exc.detail, status=422)
    return await signed_in_home(
        request, session, runtime, user, workspace_id=None, method="password", now=now
    )


async def _invitation_form(
    request: Request, session: SessionDep, runtime: RuntimeDep, token: str, **context: object
) -> Response:
    invitation, workspace, user = await people.open_invitation(
        session, token=token, now=runtime.deps.clock.now()
    )
    new = user is None or user.password_hash is None
    return anonymous_form(
        "set_password.html",
        request,
        runtime.settings,
        action=f"/invitations/{token}",
        heading=f"Join {workspace.name}",
        intro=f"You are invited to {workspace.name} as {invitation.role} ({invitation.email}). "
        + ("Choose your name and a password." if new else "Enter your closeloop password to accept."),
        ask_name=new,
        password_label="Password" if new else "Your password",
        autocomplete="new-password" if new else "current-password",
        hint=_hint(runtime) if new else "The password you sign in to closeloop with.",
        button="Accept the invitation",
        **context,
    )


@router.get("/invitations/{token}", summary="The page of an invitation", response_class=HTMLResponse)
async def invitation_page(
    token: Token, request: Request, session: SessionDep, runtime: RuntimeDep
) -> Response:
    return await _invitation_form(request, session, runtime, token)


@router.post("/invitations/{token}", summary="Accept an invitation", response_class=HTMLResponse)
async def accept_invitation(
    token: Token,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    csrf_token: Csrf = "",
    name: Annotated[str, Form(max_length=200)] = "",
    password: Password = "",
) -> Response:
    check_anonymous_csrf(request, csrf_token)
    now = runtime.deps.clock.now()
    try:
        async with session.begin_nested():
            user, workspace_id = await people.accept_invitation(
                session,
                runtime.deps.passwords,
                runtime.settings,
                token=token,
                name=name,
                password=password,
                now=now,
            )
    except InvalidInput as exc:
        return await _invitation_form(
            request, session, runtime, token, error=exc.detail, name=name, status=422
        )
    return await signed_in_home(
        request, session, runtime, user, workspace_id=workspace_id, method="password", now=now
    )
