"""How a service process serves HTTP: uvicorn with httptools, and a cap on each request's head.

uvicorn's httptools protocol (the fast one, installed with ``uvicorn[standard]``) takes request
headers of any size: 8 MB went through. ``BoundedHeadProtocol`` counts the bytes of a request's
head (request line and headers) as they arrive and answers ``431 Request Header Fields Too Large``
and closes the connection once they pass ``CLOSELOOP_MAX_HEADER_BYTES`` (64 KiB by default, well
above what browsers and webhook senders send: ~8 KiB is common). The h11 protocol gets the same cap
through its own ``h11_max_incomplete_event_size``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEADER_BYTES = 64 * 1024


def max_header_bytes() -> int:
    """The cap on a request's head, from ``CLOSELOOP_MAX_HEADER_BYTES``."""
    return int(os.environ.get("CLOSELOOP_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES))


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head larger than ``max_head_bytes``."""

    max_head_bytes = DEFAULT_MAX_HEADER_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_bytes = 0
        self._in_head = True
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
                return
        super().data_received(data)

    def _refuse_head(self) -> None:
        message = f"The request's headers are larger than {self.max_head_bytes} bytes."
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            + f"content-length: {len(message)}\r\n".encode()
            + b"connection: close\r\n\r\n"
            + message.encode()
        )
        self.transport.close()


def serve(app: Any, *, host: str, port: int, factory: bool = False, graceful_s: int = 20) -> None:
    """Run ``app`` (or the app ``app()`` returns, with ``factory``) until SIGTERM/SIGINT."""
    limit = max_header_bytes()
    protocol = type("BoundedHead", (BoundedHeadProtocol,), {"max_head_bytes": limit})
    uvicorn.run(
        app,
        factory=factory,
        host=host,
        port=port,
        http=protocol,
        h11_max_incomplete_event_size=limit,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=graceful_s,
    )
