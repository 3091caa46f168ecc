"""The links in messages, public: the short personal link, the open pixel and the unsubscribe page.

Every HTML answer carries a strict Content-Security-Policy (nothing loads, no script, no framing:
``frame-ancestors 'none'``, forms post only here), ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer`` — the headers of the survey pages."""

from __future__ import annotations

import base64
import html
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.dispatch import embeds
from services.dispatch.deps import DispatchRuntime, RuntimeDep
from services.dispatch.handlers import funnel, optouts
from services.dispatch.handlers.links import UNSUBSCRIBE_PURPOSE
from shared.errors import NotFound
from shared.guard import GuardedRoute, public
from shared.security import InvalidToken, verify_token
from shared.service import SessionDep

router = APIRouter(route_class=GuardedRoute)
SHORT_LINK = public("the link is in a message to one customer: an unguessable code, no personal data in it")
OPEN_PIXEL = public("an image in an email (only when the workspace enables open tracking)")
UNSUBSCRIBE = public("the link is signed (CLOSELOOP_SECRET_KEY) for one contact and invitation")
CodePath = Annotated[str, Path(max_length=16)]
"""The short code of an invitation's link and pixel."""
TokenPath = Annotated[str, Path(max_length=1000)]
"""The signed token of an unsubscribe link."""


PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""The headers of every HTML page dispatch serves."""


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{html.escape(title)}</title><body style='font:16px system-ui;max-width:32rem;margin:3rem auto;"
        f"padding:0 1rem;color:#1f2933'><h1 style='font-size:1.4rem'>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
        headers=PAGE_HEADERS,
    )


@router.get(
    "/l/{code}",
    tags=["public"],
    summary="Short personal link: counts the click and redirects to the survey",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "to the survey"},
        404: {"description": "unknown link"},
        410: {"description": "expired, or no longer available (the contact was erased)"},
    },
    dependencies=[SHORT_LINK],
)
async def short_link(
    code: CodePath,
    session: SessionDep,
    runtime: RuntimeDep,
    score: Annotated[int | None, Query(ge=0, le=10)] = None,
) -> Response:
    now = runtime.deps.clock.now()
    invitation = await funnel.invitation_by_code(session, code=code)
    if invitation is None:
        return _page("This link is not known", "<p>Check that you copied the whole link.</p>", status=404)
    if invitation.erased_at is not None or not invitation.survey_url:
        return _page(
            "This survey is no longer available",
            "<p>The personal data behind this link was deleted, so it no longer leads anywhere.</p>",
            status=410,
        )
    if invitation.expires_at is not None and now >= invitation.expires_at:
        return _page("This survey link has expired", "<p>Thank you for your interest.</p>", status=410)
    await funnel.record_click(session, runtime.outbox, invitation=invitation, now=now)
    target = invitation.survey_url if score is None else embeds.score_url(invitation.survey_url, score)
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


@router.get(
    "/o/{code}.gif",
    tags=["public"],
    summary="Open-tracking pixel (only in emails of workspaces that enable open tracking)",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}}},
    dependencies=[OPEN_PIXEL],
)
async def open_pixel(code: CodePath, session: SessionDep, runtime: RuntimeDep) -> Response:
    invitation = await funnel.invitation_by_code(session, code=code)
    if invitation is not None and invitation.channel == "email" and invitation.erased_at is None:
        await funnel.record_open(session, runtime.outbox, invitation=invitation, now=runtime.deps.clock.now())
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})


def _unsubscribe_claims(runtime: DispatchRuntime, token: str) -> dict[str, Any]:
    settings = runtime.settings
    try:
        claims = verify_token(settings.secret_key, UNSUBSCRIBE_PURPOSE, token)
    except InvalidToken:
        try:  # signed before a rotation of the secret (CLOSELOOP_SECRET_KEY_PREVIOUS)
            if not settings.secret_key_previous:
                raise
            claims = verify_token(settings.secret_key_previous, UNSUBSCRIBE_PURPOSE, token)
        except InvalidToken:
            raise NotFound("This unsubscribe link is not valid.", field="token") from None
    if not all(isinstance(claims.get(k), str) for k in ("ws", "con", "inv")):
        raise NotFound("This unsubscribe link is not valid.", field="token")
    return claims


@router.get(
    "/u/{token}",
    tags=["public"],
    summary="Unsubscribe page: asks to confirm (link scanners never unsubscribe anyone)",
    response_class=HTMLResponse,
    dependencies=[UNSUBSCRIBE],
)
async def unsubscribe_page(token: TokenPath, runtime: RuntimeDep) -> HTMLResponse:
    _unsubscribe_claims(runtime, token)
    return _page(
        "Unsubscribe from feedback surveys",
        "<p>We will not ask you for feedback again.</p>"
        f"<form method=post action='/u/{html.escape(token)}'>"
        "<button style='font:inherit;padding:.6rem 1.2rem'>Unsubscribe</button></form>",
    )


@router.post(
    "/u/{token}",
    tags=["public"],
    summary="Unsubscribe (one-click, RFC 8058): records the opt-out and publishes ContactOptedOut",
    response_class=HTMLResponse,
    dependencies=[UNSUBSCRIBE],
)
async def unsubscribe(token: TokenPath, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    claims = _unsubscribe_claims(runtime, token)
    await optouts.unsubscribe(
        session,
        runtime.outbox,
        workspace_id=claims["ws"],
        contact_id=claims["con"],
        invitation_id=claims["inv"],
        now=runtime.deps.clock.now(),
    )
    return _page("You are unsubscribed", "<p>We will not ask you for feedback again.</p>")
