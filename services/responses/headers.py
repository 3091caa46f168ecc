"""Security headers on every response of the service, whatever route made it.

The survey pages set their own strict Content-Security-Policy (``pages.headers``: one script by its
hash, nothing from elsewhere). Everything else — QR codes (an SVG can hold script), the API docs pages,
JSON, errors — gets what is missing here: ``nosniff``, no Referer (a token in the URL never leaves), and
a policy that forbids framing (no clickjacking) and, outside HTML, any active content.
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
    response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if "content-security-policy" not in headers:
                    html = headers.get("content-type", "").startswith("text/html")
                    headers["Content-Security-Policy"] = HTML_POLICY if html else LOCKED_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)
