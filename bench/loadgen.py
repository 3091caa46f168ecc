"""A minimal HTTP/1.1 load generator: pre-built requests over keep-alive connections.

httpx costs more CPU per request than the services under test do, and on two cores the client's
CPU is taken from the server; raw requests on asyncio streams keep the generator's share small, so
the figures are the server's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable


def http_request(
    host: str, port: int, path: str, headers: dict[str, str], body: bytes = b"", *, method: str = "POST"
) -> bytes:
    """Return the bytes of one HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Return the status and the body of the next response (Content-Length framing)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length) if length else b""


async def drive(
    host: str,
    port: int,
    requests: Iterable[bytes],
    *,
    connections: int,
    seconds: float,
    expect: int = 202,
) -> tuple[int, list[float], float]:
    """Send ``requests`` over ``connections`` keep-alive connections for at most ``seconds``.

    Return (done, latencies, elapsed); raise when a response's status is not ``expect``.
    """
    latencies: list[float] = []
    queue = iter(requests)
    deadline = time.monotonic() + seconds
    failures: list[str] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for raw in queue:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                writer.write(raw)
                status, body = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status != expect:
                    failures.append(f"{status} {body[:200]!r}")
                    return
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.monotonic() - started
    if failures:
        raise RuntimeError(f"requests refused: {failures[:3]}")
    return len(latencies), latencies, elapsed


async def drive_paced(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    rate: float,
    seconds: float,
    connections: int = 16,
    expect: int = 202,
) -> list[float]:
    """Send ``rate`` requests per second for ``seconds`` (an integrator's steady traffic); return latencies."""
    latencies: list[float] = []
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))

    async def one(raw: bytes) -> None:
        reader, writer = await pool.get()
        started = time.perf_counter()
        writer.write(raw)
        status, _ = await read_response(reader)
        latencies.append(time.perf_counter() - started)
        pool.put_nowait((reader, writer))
        if status != expect:
            raise RuntimeError(f"request refused with status {status}")

    tasks = []
    start = time.monotonic()
    for i, raw in enumerate(requests[: int(rate * seconds)]):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(raw)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return latencies


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds the process ``pid`` has used so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
