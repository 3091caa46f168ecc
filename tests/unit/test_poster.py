"""The lean webhook POSTer against small HTTP/1.1 servers on 127.0.0.1 that answer in the ways real
endpoints do: kept alive, closing idle connections, chunked replies, never answering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from services.dispatch.poster import IDLE_S, PostError, WebhookPoster
from shared.netguard import OutboundGuard, parse_networks

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


async def serve(handler: Handler) -> tuple[asyncio.Server, int, list[int]]:
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


def poster(timeout_s: float = 2) -> WebhookPoster:
    return WebhookPoster(OutboundGuard(parse_networks("127.0.0.0/8")), timeout_s=timeout_s, user_agent="t")


async def test_posts_reuse_a_kept_alive_connection_and_send_the_headers_and_body() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    server, port, connections = await serve(keep_alive)
    client = poster()
    for n in range(3):
        assert (
            await client.post(f"http://127.0.0.1:{port}/hook?x={n}", {"webhook-id": f"m{n}"}, b'{"a":1}')
            == 204
        )
    await client.close()
    server.close()
    assert len(connections) == 1
    head, body = seen[2]
    assert head.startswith(b"POST /hook?x=2 HTTP/1.1\r\n") and b"webhook-id: m2" in head
    assert f"host: 127.0.0.1:{port}".encode() in head.lower() and body == b'{"a":1}'


async def test_an_idle_connection_the_endpoint_closed_is_replaced_and_chunked_replies_are_read() -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        await writer.drain()
        # then closes without saying so (no "Connection: close"): the kept connection goes stale

    server, port, connections = await serve(one_per_connection)
    client = poster()
    assert await client.post(f"http://127.0.0.1:{port}/", {}, b"1") == 200
    await asyncio.sleep(0.05)
    assert await client.post(f"http://127.0.0.1:{port}/", {}, b"2") == 200
    await client.close()
    server.close()
    assert len(connections) == 2


async def test_no_answer_within_the_timeout_and_refused_destinations_are_errors_in_our_words() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    server, port, _ = await serve(silent)
    with pytest.raises(PostError, match="no answer within the timeout"):
        await poster(timeout_s=0.2).post(f"http://127.0.0.1:{port}/", {}, b"x")
    server.close()
    strict = WebhookPoster(OutboundGuard(()), timeout_s=1, user_agent="t")
    with pytest.raises(
        PostError, match=r"^destination refused: 127\.0\.0\.1 points at 127\.0\.0\.1"
    ) as refused:
        await strict.post(f"http://127.0.0.1:{port}/", {}, b"x")
    assert refused.value.permanent
    with pytest.raises(PostError, match="could not connect"):
        await poster().post(f"http://127.0.0.1:{port}/", {}, b"x")


async def test_connections_idle_too_long_are_closed_and_not_reused() -> None:
    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    server, port, connections = await serve(keep_alive)
    client = poster()
    assert await client.post(f"http://127.0.0.1:{port}/", {}, b"1") == 200
    [[idle]] = client._idle.values()
    idle.idle_since -= IDLE_S + 1  # as if unused for longer than IDLE_S
    client._swept -= IDLE_S + 1
    assert await client.post(f"http://127.0.0.1:{port}/", {}, b"2") == 200
    assert len(connections) == 2 and idle.writer.is_closing()
    await client.close()
    server.close()


async def test_a_request_lost_on_a_kept_alive_connection_is_resent_only_when_asked() -> None:
    """A provider request (an SMS) that may have been acted on is not made again; a webhook is."""
    requests: list[bytes] = []

    async def drops_the_second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append((await read_request(reader))[1])
        writer.write(b'HTTP/1.1 201 Created\r\nContent-Length: 13\r\n\r\n{"sid":"SM1"}')
        await writer.drain()
        requests.append((await read_request(reader))[1])  # read, then closed without an answer

    server, port, connections = await serve(drops_the_second)
    client = poster()
    url = f"http://127.0.0.1:{port}/"
    assert await client.request(url, {}, b"sms-1", resend=False) == (201, b'{"sid":"SM1"}')
    with pytest.raises(PostError, match="closed the connection without an answer") as lost:
        await client.request(url, {}, b"sms-2", resend=False)
    assert not lost.value.permanent and requests == [b"sms-1", b"sms-2"]
    assert await client.post(url, {}, b"hook-1") == 201
    assert await client.post(url, {}, b"hook-2") == 201  # its kept connection drops it: made again
    assert requests[2:] == [b"hook-1", b"hook-2", b"hook-2"] and len(connections) == 3
    await client.close()
    server.close()


async def test_without_a_guard_the_operators_own_address_is_connected_to() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    server, port, _ = await serve(answer)
    operator = WebhookPoster(None, timeout_s=2, user_agent="t")
    assert await operator.request(f"http://localhost:{port}/", {}, b"x", resend=False) == (200, b"ok")
    await operator.close()
    server.close()
