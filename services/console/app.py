"""The console service: people, workspaces, sessions, single sign-on and API keys.

It owns no feedback data: it calls the five services' public APIs like any client, with a short-lived
user token for the signed-in person (``shared.access``). Revoking a key publishes ``KeyRevoked`` on
``workspaces``; invitations and password links are emailed through dispatch (``NotificationRequested``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.api import routers
from services.console.apis import Services
from services.console.deps import Console, ConsoleRuntime
from services.console.figures import FiguresCache
from services.console.handlers import keys
from services.console.handlers.housekeeping import Housekeeping
from services.console.hashing import Passwords
from services.console.models import inbox, outbox, revoked_keys
from services.console.oidc import OidcClient
from services.console.settings import ConsoleSettings
from services.console.views import NotSignedIn
from services.console.web import redirect, render
from shared.access import Authenticator
from shared.clock import Clock
from shared.errors import CloseloopError, problem_of
from shared.events import WORKSPACES, KeyRevoked, KeyUsed
from shared.headers import SecurityHeaders
from shared.inbox import EventCallback
from shared.revocation import KeyUsage, RevokedKeys
from shared.service import ServiceSpec, build_app
from shared.worker import Worker


def consumes(runtime: ConsoleRuntime) -> dict[type, EventCallback]:
    """Return the handler of each consumed event type, bound to this runtime."""

    async def on_key_used(session: AsyncSession, event: KeyUsed) -> None:
        await keys.record_usage(session, event=event)

    return {KeyRevoked: runtime.deps.revoked.record, KeyUsed: on_key_used}


def create_app(settings: ConsoleSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Return the console app; ``clock`` is the time sessions and links are measured by (tests move it)."""
    settings = settings or ConsoleSettings.from_env()
    clock = clock or Clock()

    async def setup(runtime: ConsoleRuntime) -> Console:
        revoked = RevokedKeys(runtime.db, revoked_keys, poll_interval_s=settings.revocation_poll_ms / 1000)
        await revoked.load()
        usage = KeyUsage(runtime.db, runtime.outbox, flush_interval_s=settings.key_usage_flush_s)
        runtime.authenticator = Authenticator(
            settings.keyring, revoked=revoked, usage=usage, clock=lambda: clock.now().timestamp()
        )
        return Console(
            clock=clock,
            passwords=Passwords(settings),
            revoked=revoked,
            usage=usage,
            oidc=OidcClient(settings.outbound_guard()),
            housekeeping=Housekeeping(runtime.db, settings, clock),
            services=Services(settings),
            figures=FiguresCache(settings.overview_cache_s),
        )

    async def teardown(runtime: ConsoleRuntime) -> None:
        await runtime.deps.oidc.close()
        await runtime.deps.services.close()

    def workers(runtime: ConsoleRuntime) -> list[Worker]:
        return [runtime.deps.revoked, runtime.deps.usage, runtime.deps.housekeeping]

    app = build_app(
        ServiceSpec(
            name="console",
            title="closeloop console",
            description="People, workspaces and roles: sign-in (password or single sign-on), sessions, "
            "invitations, API keys (created with a role, listed, revoked within seconds everywhere) and "
            "the short-lived user tokens the console calls the other services with.",
            routers=routers,
            outbox_table=outbox,
            inbox_table=inbox,
            topics=[WORKSPACES],
            setup=setup,
            teardown=teardown,
            consumes=consumes,
            workers=workers,
            openapi_tags=[
                {"name": "keys", "description": "API keys of the workspace"},
                {"name": "people", "description": "Members, invitations, single sign-on, the caller"},
                {"name": "operators", "description": "What whoever holds the secret does (the CLI)"},
                {"name": "pages", "description": "The console's HTML pages"},
            ],
        ),
        settings,
    )
    install_page_errors(app)
    # Pages set their own policy; the API docs, JSON and errors get the shared headers.
    app.add_middleware(SecurityHeaders)
    return app


def install_page_errors(app: FastAPI) -> None:
    """Refusals on the pages are pages (the JSON API under /v1 keeps problem+json)."""

    @app.exception_handler(NotSignedIn)
    async def _sign_in(request: Request, exc: NotSignedIn) -> Response:
        return redirect("/sign-in")

    @app.exception_handler(CloseloopError)
    async def _refused(request: Request, exc: CloseloopError) -> Response:
        if request.url.path.startswith("/v1/"):
            return problem_of(exc, instance=request.url.path)
        page = render("message.html", status=exc.status, title=exc.title, detail=exc.detail)
        page.headers.update(exc.headers or {})
        return page
