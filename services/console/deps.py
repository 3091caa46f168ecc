"""What the console's routes depend on, typed: its runtime and own dependencies (clock, password
hasher, revocation list, key usage, the OpenID Connect client), the signed-in person, the caller's
address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.console.apis import Services
from services.console.domain.sessions import browser_address
from services.console.figures import FiguresCache
from services.console.handlers.accounts import SignedIn, load_session
from services.console.handlers.housekeeping import Housekeeping
from services.console.hashing import Passwords
from services.console.oidc import OidcClient
from services.console.settings import ConsoleSettings
from services.console.web import SESSION_COOKIE
from shared.clock import Clock
from shared.netguard import parse_networks
from shared.revocation import KeyUsage, RevokedKeys
from shared.service import Runtime, SessionDep, get_runtime


@dataclass
class Console:
    clock: Clock
    passwords: Passwords
    revoked: RevokedKeys
    usage: KeyUsage
    oidc: OidcClient
    housekeeping: Housekeeping
    services: Services
    """The client the pages call the five services' REST APIs with, as the signed-in person."""
    figures: FiguresCache
    """The overview's figures, kept a few seconds per workspace, role and filters."""


ConsoleRuntime = Runtime[ConsoleSettings, Console]
RuntimeDep = Annotated[ConsoleRuntime, Depends(get_runtime)]


async def get_signed_in(request: Request, runtime: RuntimeDep, session: SessionDep) -> SignedIn | None:
    """Return the person signed in with this browser's session cookie, or None."""
    return await load_session(
        session, runtime.settings, token=request.cookies.get(SESSION_COOKIE), now=runtime.deps.clock.now()
    )


SignedInDep = Annotated[SignedIn | None, Depends(get_signed_in)]


def client_address(request: Request, runtime: RuntimeDep) -> str:
    """Return the browser's address: the connection's, or behind a trusted proxy the last address in
    ``X-Forwarded-For`` that is not a trusted proxy (what a client cannot forge)."""
    peer = request.client.host if request.client else "unknown"
    return browser_address(
        peer, request.headers.get("x-forwarded-for", ""), parse_networks(runtime.settings.trusted_proxies)
    )


AddressDep = Annotated[str, Depends(client_address)]
