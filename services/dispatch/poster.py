"""Outgoing POSTs (webhooks, SMS/WhatsApp provider requests, chat posts) over kept-alive HTTP/1.1
connections, lean enough for hundreds a second.

A general HTTP client costs about a millisecond of CPU per request (most of it scanning its pool), more
than everything else a delivery needs together; each of these is one small POST whose reply matters
for its status and, for a provider, a short JSON body. So: ``h11`` for the protocol, ``asyncio``
streams, an idle list per origin. Every new connection goes through the outbound guard (the host is
resolved, every address checked and the checked address connected to, with the name kept for TLS and
``Host``) unless the poster has none (the operator's own destinations); redirects are not followed; a
reply body is read up to ``MAX_REPLY`` (beyond it the connection is dropped and the body cut there).

A kept-alive connection the endpoint closed in the meantime is noticed when the request finds no
reply. With ``resend`` (webhooks: receivers deduplicate on ``webhook-id``) the request is made once
more on a fresh connection; without it (an SMS, a chat post: the endpoint may have acted on it) it is
a ``PostError`` like any other lost reply, and the caller's retry policy decides.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from typing import NamedTuple
from urllib.parse import urlsplit

import h11

from shared.netguard import BlockedDestination, OutboundGuard

MAX_REPLY = 64 * 1024
MAX_IDLE_PER_ORIGIN = 256
IDLE_S = 30.0
"""A connection unused this long is closed (swept at most once per ``IDLE_S``)."""


class PostError(Exception):
    """No HTTP answer: ``reason`` in our words (never what the endpoint sent)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Reply(NamedTuple):
    status: int
    body: bytes
    """Up to ``MAX_REPLY`` bytes of the reply's body."""


class _Stale(Exception):
    """A reused connection had been closed by the endpoint before any reply."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


Origin = tuple[str, str, int]


class WebhookPoster:
    def __init__(self, guard: OutboundGuard | None, *, timeout_s: float, user_agent: str) -> None:
        """``guard``: None for the operator's own destinations (connected to as resolved)."""
        self.guard = guard
        self.timeout_s = timeout_s
        self.user_agent = user_agent
        self._idle: dict[Origin, list[_Connection]] = defaultdict(list)
        self._tls = ssl.create_default_context()
        self._swept = 0.0

    def _sweep(self) -> None:
        """Close connections idle for longer than ``IDLE_S`` (endpoints posted to no more keep none)."""
        now = asyncio.get_running_loop().time()
        if now - self._swept < IDLE_S:
            return
        self._swept = now
        for origin, connections in list(self._idle.items()):
            keep = [c for c in connections if now - c.idle_since < IDLE_S]
            for connection in connections:
                if connection not in keep:
                    connection.close()
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """Return the endpoint's status code; raise ``PostError`` when there is none (a request that
        found a kept-alive connection closed is made again on a fresh one)."""
        return (await self.request(url, headers, body, resend=True)).status

    async def request(self, url: str, headers: dict[str, str], body: bytes, *, resend: bool) -> Reply:
        """Return the endpoint's status code and reply body; raise ``PostError`` when there is none.
        ``resend``: make the request again when a kept-alive connection turns out closed."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PostError("destination refused: the URL must be http(s) with a host", permanent=True)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise PostError("destination refused: the URL's port is not a number", permanent=True) from exc
        origin: Origin = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        request = [
            ("Host", host_header),
            ("User-Agent", self.user_agent),
            ("Content-Length", str(len(body))),
            *headers.items(),
        ]
        self._sweep()
        try:
            async with asyncio.timeout(self.timeout_s):
                while self._idle[origin]:
                    connection = self._idle[origin].pop()
                    if connection.reader.at_eof():
                        connection.close()
                        continue
                    try:
                        return await self._exchange(origin, connection, target, request, body, reused=True)
                    except _Stale as exc:
                        if not resend:
                            raise PostError(
                                "RemoteProtocolError: the endpoint closed the connection without an answer"
                            ) from exc
                        continue
                connection = await self._connect(origin)
                return await self._exchange(origin, connection, target, request, body, reused=False)
        except TimeoutError as exc:
            raise PostError("TimeoutError: no answer within the timeout") from exc

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        try:
            address = host if self.guard is None else str(await self.guard.resolve(host, port))
        except BlockedDestination as exc:
            raise PostError(f"destination refused: {exc}", permanent=True) from exc
        except Exception as exc:  # the resolver's own error (unknown name)
            raise PostError("ConnectError: could not connect to the endpoint") from exc
        try:
            reader, writer = await asyncio.open_connection(
                address,
                port,
                ssl=self._tls if scheme == "https" else None,
                server_hostname=host if scheme == "https" else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise PostError("ConnectError: could not connect to the endpoint") from exc
        return _Connection(reader, writer)

    async def _exchange(
        self,
        origin: Origin,
        connection: _Connection,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        reused: bool,
    ) -> Reply:
        conn = connection.h11
        status: int | None = None
        received: list[bytes] = []
        size = 0
        try:
            connection.writer.write(
                conn.send(h11.Request(method="POST", target=target, headers=headers))
                + conn.send(h11.Data(data=body))
                + conn.send(h11.EndOfMessage())
            )
            await connection.writer.drain()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await connection.reader.read(65536)
                    if not data and reused and status is None:
                        raise _Stale
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    received.append(event.data)
                    if size > MAX_REPLY:
                        connection.close()
                        assert status is not None
                        return Reply(status, b"".join(received)[:MAX_REPLY])
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("closed before the reply ended")
        except _Stale:
            connection.close()
            raise
        except (OSError, h11.ProtocolError) as exc:
            connection.close()
            if reused and status is None:
                raise _Stale from exc
            if status is not None:
                return Reply(status, b"".join(received))
            raise PostError(
                "RemoteProtocolError: the endpoint did not answer with a valid HTTP response"
            ) from exc
        except BaseException:
            connection.close()
            raise
        assert status is not None
        reply = Reply(status, b"".join(received))
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            if len(self._idle[origin]) < MAX_IDLE_PER_ORIGIN:
                connection.idle_since = asyncio.get_running_loop().time()
                self._idle[origin].append(connection)
                return reply
        connection.close()
        return reply

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
