"""Single sign-on with a workspace's OpenID Connect provider: authorization code flow with PKCE.

``begin`` stores the sign-in's state (hashed), nonce and PKCE verifier for ten minutes and returns the
provider's authorization URL; the state also goes into a cookie, so that only the browser that
started a sign-in can finish it. ``finish`` takes the state once, exchanges the code, verifies the
``id_token`` (``domain.oidc``) and finds the person: by their identity at this issuer, else by the
verified email address; a person who is not yet a member joins with the workspace's default role
when their email domain is allowed (just-in-time membership).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.domain.oidc import Identity, IdTokenRefused, email_domain, pkce_pair, verify_id_token
from services.console.domain.sessions import token_hash
from services.console.handlers.people import find_or_create_user, link
from services.console.models import Membership, SsoIdentity, SsoProvider, SsoState, User, Workspace
from services.console.oidc import OidcClient, ProviderError
from services.console.settings import ConsoleSettings
from shared.access import PERSON_ROLES, Role
from shared.errors import CloseloopError, InvalidInput, NotFound
from shared.netguard import BlockedDestination

log = logging.getLogger(__name__)
STATE_TTL = timedelta(minutes=10)


class SsoRefused(CloseloopError):
    """403: single sign-on did not prove who this is, or this person may not join; says why."""

    status, code, title = 403, "sso-refused", "Single sign-on refused"


async def configure(
    session: AsyncSession,
    client: OidcClient,
    *,
    workspace_id: str,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    allowed_domains: list[str],
    default_role: Role,
    now: datetime,
) -> SsoProvider:
    """Save the workspace's provider after checking that its discovery document can be read."""
    if default_role not in PERSON_ROLES or default_role == Role.OWNER:
        raise InvalidInput("The default role is admin, analyst, agent or viewer.", field="default_role")
    try:
        await client.guard.check_url(issuer)
        await client.discover(issuer)
    except BlockedDestination as exc:
        raise InvalidInput(f"The issuer URL is not allowed: {exc}.", field="issuer") from exc
    except ProviderError as exc:
        raise InvalidInput(
            f"The provider's discovery document could not be used: {exc}.", field="issuer"
        ) from exc
    if await session.get(Workspace, workspace_id) is None:
        raise NotFound("The console does not know this workspace.", field="workspace_id")
    row = await session.get(SsoProvider, workspace_id)
    if row is None:
        row = SsoProvider(workspace_id=workspace_id)
        session.add(row)
    row.issuer, row.client_id = issuer, client_id
    if client_secret is not None:
        row.client_secret = client_secret or None
    row.allowed_domains = sorted({d.strip().lower().lstrip("@") for d in allowed_domains if d.strip()})
    row.default_role, row.updated_at = default_role.value, now
    return row


def redirect_uri(settings: ConsoleSettings) -> str:
    return link(settings, "/sso/callback")


async def begin(
    session: AsyncSession, client: OidcClient, settings: ConsoleSettings, *, workspace_id: str, now: datetime
) -> tuple[str, str]:
    """Return the provider's authorization URL and the state (for the browser's cookie)."""
    provider = await session.get(SsoProvider, workspace_id)
    if provider is None:
        raise NotFound(f"The workspace '{workspace_id}' has no single sign-on; sign in with your password.")
    try:
        document = await client.discover(provider.issuer)
    except ProviderError as exc:
        log.warning("single sign-on of %s: %s", workspace_id, exc, extra={"workspace_id": workspace_id})
        raise SsoRefused("The identity provider cannot be reached right now; try again later.") from exc
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    session.add(
        SsoState(
            state_hash=token_hash(state),
            workspace_id=workspace_id,
            nonce=nonce,
            code_verifier=verifier,
            created_at=now,
            expires_at=now + STATE_TTL,
        )
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri(settings),
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    endpoint = document["authorization_endpoint"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state


async def finish(
    session: AsyncSession,
    client: OidcClient,
    settings: ConsoleSettings,
    *,
    state: str,
    code: str,
    browser_state: str | None,
    now: datetime,
) -> tuple[User, str]:
    """Return the person who signed in and the workspace; raise ``SsoRefused`` saying why not."""
    row = await session.get(SsoState, token_hash(state), with_for_update=True)
    if row is None or row.expires_at <= now or not secrets.compare_digest(state, browser_state or ""):
        raise SsoRefused("This sign-in has expired or was started in another browser; start again.")
    await session.delete(row)
    provider = await session.get(SsoProvider, row.workspace_id)
    if provider is None:
        raise SsoRefused("This workspace no longer uses single sign-on.")
    try:
        document = await client.discover(provider.issuer)
        id_token = await client.exchange(
            document,
            code=code,
            redirect_uri=redirect_uri(settings),
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            code_verifier=row.code_verifier,
        )
        identity = await _verified(
            client, document, id_token, provider=provider, nonce=row.nonce, now=now.timestamp()
        )
    except ProviderError as exc:
        log.warning("single sign-on of %s: %s", provider.workspace_id, exc)
        raise SsoRefused("The identity provider did not complete the sign-in; try again.") from exc
    except IdTokenRefused as exc:
        log.warning("single sign-on of %s refused: %s", provider.workspace_id, exc)
        raise SsoRefused(f"Single sign-on refused: {exc}.") from exc
    user = await _person(session, provider, identity)
    return user, provider.workspace_id


async def _verified(
    client: OidcClient, document: dict, id_token: str, *, provider: SsoProvider, nonce: str, now: float
) -> Identity:
    for fresh in (False, True):  # an unknown key id: the provider rotated its keys, read them again
        try:
            return verify_id_token(
                id_token,
                jwks=await client.jwks(document, fresh=fresh),
                issuer=provider.issuer,
                client_id=provider.client_id,
                nonce=nonce,
                now=now,
            )
        except IdTokenRefused as exc:
            if exc.reason != "unknown-key" or fresh:
                raise
    raise AssertionError("unreachable")


async def _person(session: AsyncSession, provider: SsoProvider, identity: Identity) -> User:
    """Return the person for ``identity``, joining the workspace just in time when their domain is allowed."""
    known = await session.get(SsoIdentity, (identity.issuer, identity.subject))
    user = await session.get(User, known.user_id) if known else None
    if user is None:
        user = await session.scalar(select(User).where(User.email == identity.email))
    member = await session.get(Membership, (provider.workspace_id, user.id)) if user else None
    if member is None and email_domain(identity.email) not in provider.allowed_domains:
        raise SsoRefused(
            f"{identity.email} may not join this workspace through single sign-on; ask an owner to invite you."
        )
    if user is None:
        user, _ = await find_or_create_user(session, email=identity.email, name=identity.name)
    if member is None:
        session.add(
            Membership(workspace_id=provider.workspace_id, user_id=user.id, role=provider.default_role)
        )
    if known is None:
        await session.execute(
            delete(SsoIdentity).where(SsoIdentity.issuer == identity.issuer, SsoIdentity.user_id == user.id)
        )
        session.add(SsoIdentity(issuer=identity.issuer, subject=identity.subject, user_id=user.id))
    return user
