"""The HTTP server's limits, on a real socket: request heads are capped (431), an oversized chunked
body is 413 (not 400), and a 500 says ``Connection: close`` before the server drops the connection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI

from shared.errors import install_problem_handlers
from shared.server import BoundedHeadProtocol
from shared.service import BodySizeLimit
from tests.support.stack import wait_until


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("nobody foresaw this")

    @app.post("/echo")
    async def echo(items: list[int]) -> dict[str, int]:
        return {"length": len(items)}

    app.add_middleware(BodySizeLimit, max_bytes=1024)
    return app


@pytest.fixture
async def server() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    protocol = type("Bounded", (BoundedHeadProtocol,), {"max_head_bytes": 16 * 1024})
    config = uvicorn.Config(_app(), http=protocol, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_until(lambda: server.started, message="the server is listening")
    yield port
    server.should_exit = True
    await task


async def _exchange(port: int, *requests: bytes) -> list[bytes]:
    """Send each request on one connection and return each raw response (b"" once it is closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    for request in requests:
        try:
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            answers.append(head + await reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError):
            answers.append(b"")
    writer.close()
    return answers


def _get(path: str, extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nhost: test\r\n" + extra + b"\r\n"


async def test_a_request_head_over_the_cap_is_refused_with_431_and_normal_ones_pass(server):
    big = b"x-big: " + b"a" * 40_000 + b"\r\n"
    [refused] = await _exchange(server, _get("/ok", big))
    assert refused.startswith(b"HTTP/1.1 431")
    [fine] = await _exchange(server, _get("/ok", b"x-small: " + b"a" * 4_000 + b"\r\n"))
    assert fine.startswith(b"HTTP/1.1 200")


async def test_keep_alive_requests_each_get_a_fresh_head_allowance(server):
    header = b"x-some: " + b"a" * 10_000 + b"\r\n"  # two of these on one connection pass the 16 KiB cap
    answers = await _exchange(server, _get("/ok", header), _get("/ok", header))
    assert [a[:12] for a in answers] == [b"HTTP/1.1 200"] * 2


async def test_a_500_says_connection_close_so_keep_alive_clients_open_a_new_connection(server):
    [boom] = await _exchange(server, _get("/boom"))
    assert boom.startswith(b"HTTP/1.1 500")
    assert b"connection: close" in boom.lower()
    assert b"application/problem+json" in boom


async def test_an_oversized_chunked_body_is_413_not_400(server):
    chunk = b"[" + b"1," * 1000 + b"1]"
    body = hex(len(chunk))[2:].encode() + b"\r\n" + chunk + b"\r\n0\r\n\r\n"
    request = (
        b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + body
    )
    [answer] = await _exchange(server, request)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"field":"body"' in answer
