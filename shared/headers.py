"""Security headers on every response of every service, whatever route made it.

Pages with a policy of their own keep it (the survey pages allow one script by its hash; dispatch's
link pages and the console's pages allow their styles). Everything else — the API docs pages
(``/docs``, ``/redoc``), QR codes (an SVG can hold script), JSON, problem documents — gets what is
missing here: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (a token in a URL
never leaves in a Referer) and a Content-Security-Policy that forbids framing (no clickjacking:
``frame-ancestors 'none'``) and, outside HTML, any active content.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML_POLICY = "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
"""For HTML without a policy of its own (the API docs, which load their viewer)."""
LOCKED_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""For everything that is not HTML: images, JSON, problem documents."""


class SecurityHeaders:
    """Adds ``X-Content-Type-Options``, ``Referrer-Policy`` and ``Content-Security-Policy`` to each
    response that does not set them itself (``app.add_middleware(SecurityHeaders)`` in a service's
    ``create_app``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_missing(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_missing(headers: MutableHeaders) -> None:
    """Add what ``SecurityHeaders`` adds to a response's ``headers`` that do not set it themselves (a
    front door that answers before the middleware calls it too)."""
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if "content-security-policy" not in headers:
        html = headers.get("content-type", "").startswith("text/html")
        headers["Content-Security-Policy"] = HTML_POLICY if html else LOCKED_POLICY
