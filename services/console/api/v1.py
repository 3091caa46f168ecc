"""The console's JSON API: keys, people, single sign-on settings, user tokens, and workspaces for
operators. Calls authenticate with a workspace API key or a user token (``Authorization: Bearer``) and
need the permission each route names; ``POST /v1/token`` is for a signed-in browser (its session
cookie and ``X-CSRF-Token``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from services.console.deps import RuntimeDep, SignedInDep
from services.console.handlers import keys, people, sso
from services.console.handlers.accounts import token_for
from services.console.models import SsoProvider
from services.console.queries import members
from services.console.schemas import (
    CreatedKeyOut,
    InvitationIn,
    InvitationOut,
    KeyIn,
    KeyOut,
    MemberOut,
    MeOut,
    SsoIn,
    SsoOut,
    UserTokenOut,
    WorkspaceIn,
    WorkspaceOut,
)
from services.console.web import check_session_csrf
from shared.access import (
    PERMISSIONS,
    CredentialError,
    Permission,
    Principal,
    Role,
    credential_from_headers,
    verify_operator_token,
)
from shared.errors import NotFound, Unauthorized
from shared.guard import GuardedRoute, authenticated, public, requires
from shared.rows import from_row
from shared.service import SessionDep

router = APIRouter(prefix="/v1", route_class=GuardedRoute)
KeyId = Annotated[str, Path(min_length=8, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


def created_key_out(created: keys.CreatedKey) -> CreatedKeyOut:
    """The key as the API shows it, with its secret (this once)."""
    return CreatedKeyOut(**KeyOut.model_validate(created.row).model_dump(), secret=created.secret)


# --- keys ----------------------------------------------------------------------------------------


@router.get("/keys", tags=["keys"], summary="The workspace's API keys (never their secrets)")
async def list_keys(
    session: SessionDep, principal: Principal = requires(Permission.KEYS_READ), include_revoked: bool = False
) -> list[KeyOut]:
    rows = await keys.list_keys(session, workspace_id=principal.workspace_id, include_revoked=include_revoked)
    return [KeyOut.model_validate(row) for row in rows]


@router.post("/keys", tags=["keys"], status_code=201, summary="Create an API key; its secret is shown once")
async def create_key(
    body: KeyIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.KEYS_WRITE),
) -> CreatedKeyOut:
    keys.check_grant(principal.role, body.role)
    created = await keys.create_key(
        session,
        runtime.settings.keyring,
        workspace_id=principal.workspace_id,
        **body.model_dump(),
        created_by=principal.actor,
        now=runtime.deps.clock.now(),
    )
    return created_key_out(created)


@router.post(
    "/keys/{key_id}/revoke",
    tags=["keys"],
    summary="Revoke an API key: every service refuses it within seconds (KeyRevoked)",
)
async def revoke_key(
    key_id: KeyId,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.KEYS_WRITE),
) -> KeyOut:
    row = await keys.revoke_key(
        session,
        runtime.outbox,
        workspace_id=principal.workspace_id,
        key_id=key_id,
        by=principal,
        now=runtime.deps.clock.now(),
    )
    return KeyOut.model_validate(row)


# --- people ----------------------------------------------------------------------------------------


@router.get("/members", tags=["people"], summary="The workspace's people and their roles")
async def list_members(
    session: SessionDep, principal: Principal = requires(Permission.USERS_READ)
) -> list[MemberOut]:
    return await members(session, workspace_id=principal.workspace_id)


@router.post("/invitations", tags=["people"], status_code=201, summary="Invite someone by email with a role")
async def invite(
    body: InvitationIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.USERS_WRITE),
) -> InvitationOut:
    row = await people.invite(
        session,
        runtime.outbox,
        runtime.settings,
        by=principal,
        email=str(body.email),
        role=body.role,
        now=runtime.deps.clock.now(),
    )
    return InvitationOut.model_validate(row)


@router.get("/me", tags=["people"], summary="Who the credential speaks for, and what it may do")
async def me(principal: Principal = authenticated()) -> MeOut:
    return from_row(MeOut, principal, permissions=sorted(PERMISSIONS[principal.role]))


@router.post(
    "/token",
    tags=["people"],
    summary="A short-lived user token for the signed-in person (session cookie and X-CSRF-Token)",
    dependencies=[public("the signed-in browser's session cookie and its X-CSRF-Token; no API key")],
)
async def user_token(
    signed_in: SignedInDep,
    runtime: RuntimeDep,
    x_csrf_token: Annotated[str | None, Header(max_length=200)] = None,
) -> UserTokenOut:
    if signed_in is None:
        raise Unauthorized("Sign in to the console first; this call uses the session cookie.", field="cookie")
    check_session_csrf(signed_in.session.csrf_token, x_csrf_token)
    now = runtime.deps.clock.now().timestamp()
    return UserTokenOut(
        token=token_for(runtime.settings, signed_in, now=now),
        expires_at=datetime.fromtimestamp(int(now) + runtime.settings.user_token_ttl_s, UTC),
        workspace_id=signed_in.workspace_id,
        role=signed_in.role,
    )


# --- single sign-on settings ---------------------------------------------------------------------


def sso_out(row: SsoProvider, runtime: RuntimeDep) -> SsoOut:
    return SsoOut(
        issuer=row.issuer,
        client_id=row.client_id,
        has_client_secret=bool(row.client_secret),
        allowed_domains=list(row.allowed_domains),
        default_role=Role(row.default_role),
        redirect_uri=sso.redirect_uri(runtime.settings),
        sign_in_url=people.link(runtime.settings, f"/sso/start/{row.workspace_id}"),
    )


@router.get("/sso", tags=["people"], summary="The workspace's single sign-on (OpenID Connect) settings")
async def get_sso(
    session: SessionDep, runtime: RuntimeDep, principal: Principal = requires(Permission.USERS_READ)
) -> SsoOut:
    row = await session.get(SsoProvider, principal.workspace_id)
    if row is None:
        raise NotFound("This workspace has no single sign-on; PUT /v1/sso sets it up.")
    return sso_out(row, runtime)


@router.put("/sso", tags=["people"], summary="Set up single sign-on with an OpenID Connect provider")
async def put_sso(
    body: SsoIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.USERS_WRITE),
) -> SsoOut:
    row = await sso.configure(
        session,
        runtime.deps.oidc,
        workspace_id=principal.workspace_id,
        **body.model_dump(),
        now=runtime.deps.clock.now(),
    )
    return sso_out(row, runtime)


# --- operators -------------------------------------------------------------------------------------


@router.post(
    "/workspaces",
    tags=["operators"],
    summary="Create a workspace with its owner and an admin key (an operator token: closeloop workspace create)",
    dependencies=[
        public(
            "an operator token signed with CLOSELOOP_SECRET_KEY (closeloop workspace create), checked here"
        )
    ],
)
async def create_workspace(
    body: WorkspaceIn, request: Request, response: Response, session: SessionDep, runtime: RuntimeDep
) -> WorkspaceOut:
    credential = credential_from_headers(request.headers)
    try:
        verify_operator_token(runtime.settings.keyring, credential, now=runtime.deps.clock.now().timestamp())
    except CredentialError as exc:
        raise Unauthorized(str(exc), field="Authorization", headers={"WWW-Authenticate": "Bearer"}) from exc
    made = await people.create_workspace(
        session,
        runtime.deps.passwords,
        runtime.settings,
        runtime.settings.keyring,
        workspace_id=body.id,
        name=body.name,
        owner_email=str(body.owner_email),
        owner_name=body.owner_name,
        sign_in=body.owner_sign_in,
        now=runtime.deps.clock.now(),
    )
    response.status_code = 201 if made.created else 200
    return WorkspaceOut(
        workspace_id=made.workspace.id,
        created=made.created,
        owner_email=made.owner.email,
        owner_created=made.owner_created,
        sign_in_url=made.sign_in_url,
        password=made.password,
        console_url=people.link(runtime.settings, "/"),
        api_key=created_key_out(made.key),
    )
