"""What the console's routes depend on, typed: its runtime and own dependencies (clock, password
hasher, revocation list, key usage, the OpenID Connect client), the signed-in person, the caller's
address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.console.handlers.accounts import SignedIn, load_session
from services.console.handlers.housekeeping import Housekeeping
from services.console.hashing import Passwords
from services.console.oidc import OidcClient
from services.console.settings import ConsoleSettings
from services.console.web import SESSION_COOKIE
from shared.clock import Clock
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


ConsoleRuntime = Runtime[ConsoleSettings, Console]
RuntimeDep = Annotated[ConsoleRuntime, Depends(get_runtime)]


async def get_signed_in(request: Request, runtime: RuntimeDep, session: SessionDep) -> SignedIn | None:
    """Return the person signed in with this browser's session cookie, or None."""
    return await load_session(
        session, runtime.settings, token=request.cookies.get(SESSION_COOKIE), now=runtime.deps.clock.now()
    )


SignedInDep = Annotated[SignedIn | None, Depends(get_signed_in)]


def client_address(request: Request) -> str:
    """Return the caller's address (behind a proxy: uvicorn's ``FORWARDED_ALLOW_IPS`` decides whom to
    believe about ``X-Forwarded-For``)."""
    return request.client.host if request.client else "unknown"


AddressDep = Annotated[str, Depends(client_address)]
