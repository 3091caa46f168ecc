"""``python -m bench.page_cpu``: the responses API's own CPU per survey page, answer and form post, in process.

``bench.responses`` measures the service over HTTP, where the serving process's CPU per request
swings with everything else on the machine. This bench compares two ways of answering the same
requests steadily enough to see the difference between them, as ``bench.webhook_cpu`` does for
trigger: it starts the responses app (role ``api``: no relay, no consumer) in this process against
its own PostgreSQL and broker and calls its ASGI entry directly (no HTTP, no sockets), with
``--concurrency`` requests at a time, each on a fresh link (a new respondent), in blocks that
alternate

* **front door**: the app as deployed (``services/responses/fastpath.py``);
* **FastAPI**: the front door removed, the same routes through FastAPI's middlewares, routing and
  dependencies.

Each block's CPU time (``time.process_time``: this process only, not PostgreSQL's) is divided by its
requests. Prints each way's median per kind of request and the median of the paired differences
(block i of one way minus block i of the other, seconds apart, so the host's drift mostly cancels).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from bench.cli import arguments, run
from bench.responses import SURVEY, token
from bench.webhook_cpu import Request, api_env, call
from closeloop.infra import scratch_broker, scratch_database
from shared.access import Role, issue_api_key

FORM = b"nps=3&why=Too+slow&consent=yes"
KINDS: dict[str, tuple[str, Callable[[str], str], list[tuple[bytes, bytes]], bytes, int]] = {
    # kind: method, path of a token, headers, body, status expected
    "page GET": ("GET", lambda t: f"/s/{t}", [], b"", 200),
    "answer PUT": (
        "PUT",
        lambda t: f"/v1/public/surveys/{t}/answers/nps",
        [(b"content-type", b"application/json")],
        b'{"value":9}',
        200,
    ),
    "form POST": (
        "POST",
        lambda t: f"/s/{t}",
        [(b"content-type", b"application/x-www-form-urlencoded")],
        FORM,
        303,
    ),
}


async def main(args: argparse.Namespace) -> None:
    print(
        "page CPU bench — starting PostgreSQL, the broker and the responses app in this process …", flush=True
    )
    async with scratch_database("bench-page-cpu", services=["responses"]) as url, scratch_broker() as broker:
        secret_key = secrets.token_urlsafe(32)
        os.environ.update(api_env(url, broker.bootstrap_servers, secret_key))
        from services.responses.app import create_app

        app = create_app()
        async with app.router.lifespan_context(app):
            auth = {"Authorization": f"Bearer {issue_api_key(secret_key, 'bench', role=Role.ADMIN)}"}
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=auth
            ) as http:
                survey_id = (await http.post("/v1/surveys", json=SURVEY)).raise_for_status().json()["id"]
            front = app.front
            limit = asyncio.Semaphore(args.concurrency)

            async def block(kind: str) -> float:
                method, path, headers, body, expect = KINDS[kind]
                request_headers = [(b"host", b"bench"), *headers]
                if body:
                    request_headers.append((b"content-length", str(len(body)).encode()))
                request: Request = (request_headers, body)
                paths = [path(token(secret_key, "bench", survey_id)) for _ in range(args.block)]

                async def one(target: str) -> None:
                    async with limit:
                        await call(app, target, request, method=method, expect=expect)

                started = time.process_time()
                await asyncio.gather(*(one(p) for p in paths))
                return (time.process_time() - started) / len(paths) * 1e6

            if args.profile:
                await _profile(block, args.profile)
                return
            ways = {"front door": front, "FastAPI": None}
            cpu = {(kind, way): [] for kind in KINDS for way in ways}
            for kind in KINDS:
                for door in ways.values():  # warm both
                    app.front = door
                    await block(kind)
                for i in range(args.blocks):
                    for way, door in ways.items():
                        app.front = door
                        cpu[kind, way].append(await block(kind))
                    print(
                        f"  {kind} block {i + 1}/{args.blocks}: "
                        + ", ".join(f"{w} {cpu[kind, w][-1]:.0f} µs" for w in ways),
                        flush=True,
                    )
            app.front = front
    print()
    print(
        f"responses API CPU per request, in process ({args.blocks} blocks of {args.block} per way, "
        f"{args.concurrency} at a time; PostgreSQL's work not included)"
    )
    for kind in KINDS:
        fast, slow = cpu[kind, "front door"], cpu[kind, "FastAPI"]
        q1, q2, q3 = statistics.quantiles([b - a for a, b in zip(fast, slow, strict=True)], n=4)
        print(
            f"  {kind:<11} front door median {statistics.median(fast):6.0f} µs   FastAPI median "
            f"{statistics.median(slow):6.0f} µs   FastAPI minus front door, paired: median {q2:.0f} µs "
            f"(quartiles {q1:.0f} … {q3:.0f})"
        )


async def _profile(block: Callable[[str], Awaitable[float]], top: int) -> None:
    """Print where the front door's CPU goes per kind (cProfile of one warm block, ``top`` rows)."""
    for kind in KINDS:
        await block(kind)  # warm
        profile = cProfile.Profile()
        profile.enable()
        await block(kind)
        profile.disable()
        print(f"\n=== {kind}: the front door, one block, by own time", flush=True)
        pstats.Stats(profile).sort_stats("tottime").print_stats(top)
        print(f"=== {kind}: by cumulative time", flush=True)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    parser = arguments("bench.page_cpu", __doc__)
    parser.add_argument("--blocks", type=int, default=8, help="blocks of each way per kind, alternating")
    parser.add_argument("--block", type=int, default=300, help="requests per block")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at a time")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="ROWS", help="print cProfile's top ROWS per kind instead"
    )
    run(main, parser)
