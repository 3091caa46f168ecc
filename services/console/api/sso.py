"""Single sign-on pages: choose the workspace, go to its identity provider, come back signed in.

``/sso`` asks for the workspace and links to ``/sso/start/<workspace>`` (a link, not a form: the
pages' CSP lets forms post only to the console), which redirects to the provider with the state in a
cookie; the provider sends the browser back to ``/sso/callback``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from services.console.api.forms import page_router, signed_in_home
from services.console.deps import RuntimeDep
from services.console.handlers import sso as flow
from services.console.models import SsoProvider
from services.console.web import SSO_COOKIE, clear_cookie, redirect, render, set_cookie
from shared.security import WORKSPACE_ID
from shared.service import SessionDep

router = page_router(
    "a browser page of single sign-on: the identity provider's answer is checked (state, PKCE, id_token)"
)
WorkspaceId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]


@router.get("/sso", summary="Single sign-on: which workspace", response_class=HTMLResponse)
async def choose(
    session: SessionDep, workspace: Annotated[str | None, Query(max_length=63)] = None
) -> Response:
    if not workspace:
        return render("sso.html")
    workspace = workspace.strip().lower()
    provider = await session.get(SsoProvider, workspace) if WORKSPACE_ID.match(workspace) else None
    if provider is None:
        return render(
            "sso.html",
            status=404,
            workspace_id=workspace,
            error=f"The workspace '{workspace}' does not use single sign-on; sign in with your password.",
        )
    return render(
        "sso.html",
        workspace_id=workspace,
        provider=urlsplit(provider.issuer).hostname or provider.issuer,
        continue_url=f"/sso/start/{workspace}",
    )


@router.get(
    "/sso/start/{workspace_id}",
    summary="Go to the workspace's identity provider",
    response_class=HTMLResponse,
)
async def start(
    workspace_id: WorkspaceId, request: Request, session: SessionDep, runtime: RuntimeDep
) -> Response:
    url, state = await flow.begin(
        session, runtime.deps.oidc, runtime.settings, workspace_id=workspace_id, now=runtime.deps.clock.now()
    )
    response = redirect(url)
    response.status_code = 302
    set_cookie(
        response, request, runtime.settings, SSO_COOKIE, state, max_age=int(flow.STATE_TTL.total_seconds())
    )
    return response


@router.get(
    "/sso/callback", summary="Where the identity provider sends the browser back", response_class=HTMLResponse
)
async def callback(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    state: Annotated[str, Query(min_length=20, max_length=200)],
    code: Annotated[str | None, Query(max_length=4000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    if code is None:
        return render(
            "message.html",
            status=403,
            title="Single sign-on refused",
            detail=f"The identity provider did not sign you in ({error or 'no code'}).",
            next_url="/sign-in",
            next_label="Back to sign in",
        )
    now = runtime.deps.clock.now()
    user, workspace_id = await flow.finish(
        session,
        runtime.deps.oidc,
        runtime.settings,
        state=state,
        code=code,
        browser_state=request.cookies.get(SSO_COOKIE),
        now=now,
    )
    response = await signed_in_home(
        request, session, runtime, user, workspace_id=workspace_id, method="sso", now=now
    )
    clear_cookie(response, request, runtime.settings, SSO_COOKIE)
    return response
