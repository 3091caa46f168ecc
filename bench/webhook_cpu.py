"""``python -m bench.webhook_cpu``: the trigger API's own CPU per signed webhook, measured in process.

The ratio ``bench.trigger`` reports depends on everything sharing the machine, and this host's
speed drifts by a quarter from one minute to the next. This bench measures one thing steadily
enough to compare two ways of answering a webhook: it starts the trigger app (role ``api``) in this
process against its own PostgreSQL and broker, and calls its ASGI entry directly (no HTTP client,
no sockets) with ``--concurrency`` pre-signed Standard Webhooks requests at a time, in blocks that
alternate

* **front door**: the app as deployed, webhooks answered in front of FastAPI (``ServiceApp.front``);
* **FastAPI** (``--against fastapi``): the front door removed, so the same route goes through
  FastAPI's middleware stack, routing and parameter resolution; or **middleware** (``--against
  middleware``, the default): the same fast path as the innermost-but-one of FastAPI's middlewares,
  as it was before it became the front door (it then still passed FastAPI's outer layers).

Each block's CPU time (``time.process_time``: this process only, so the stores' PostgreSQL work is
not in it) is divided by its requests. Prints each way's median over the blocks and the median and
quartiles of the paired differences (block i of one way minus block i of the other, measured
seconds apart, so the host's drift mostly cancels).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.cli import arguments, run, service_env
from bench.trigger import record_surveys, ticket_solved_body
from closeloop.infra import scratch_broker, scratch_database
from shared import standard_webhooks
from shared.access import Role, issue_api_key

Request = tuple[list[tuple[bytes, bytes]], bytes]


def signed_requests(secret: str, count: int, prefix: str) -> list[Request]:
    """``count`` webhooks as the trigger bench sends them: each a new event of a new contact."""
    now = int(time.time())
    out = []
    for i in range(count):
        body = ticket_solved_body(prefix, i)
        message_id = "msg_" + uuid.uuid4().hex
        headers = [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"webhook-id", message_id.encode()),
            (b"webhook-timestamp", str(now).encode()),
            (b"webhook-signature", standard_webhooks.sign(secret, message_id, now, body).encode()),
        ]
        out.append((headers, body))
    return out


async def call(app: Any, path: str, request: Request, *, method: str = "POST", expect: int = 202) -> None:
    """Call ``app``'s ASGI entry with one request; raise unless it answers ``expect``."""
    headers, body = request
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("bench", 80),
        "client": ("127.0.0.1", 1),
    }
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [expect]:
        raise RuntimeError(f"{method} {path} answered {status}")


def api_env(database_url: str, bootstrap_servers: str, secret_key: str) -> dict[str, str]:
    """The environment of a service app run in the bench's process: its API only (no relay, no
    consumer), quiet."""
    return service_env(database_url, bootstrap_servers, secret_key, CLOSELOOP_ROLE="api")


async def main(args: argparse.Namespace) -> None:
    print(
        "webhook CPU bench — starting PostgreSQL, the broker and the trigger app in this process …",
        flush=True,
    )
    async with scratch_database("bench-webhook-cpu", services=["trigger"]) as url, scratch_broker() as broker:
        secret_key = secrets.token_urlsafe(32)  # production rules: at least 32 bytes
        os.environ.update(
            {
                **api_env(url, broker.bootstrap_servers, secret_key),
                "CLOSELOOP_TRIGGER_RATE_LIMIT_PER_S": "1000000",
                "CLOSELOOP_TRIGGER_RATE_LIMIT_BURST": "1000000",
            }
        )
        from services.trigger.app import create_app

        app = create_app()
        if args.against == "middleware":
            from services.trigger.fastpath import WebhookFastPath
            from services.trigger.settings import TriggerSettings

            app.add_middleware(WebhookFastPath, max_bytes=TriggerSettings().max_body_bytes)  # type: ignore[call-arg]
        async with app.router.lifespan_context(app):
            auth = {"Authorization": f"Bearer {issue_api_key(secret_key, 'bench', role=Role.ADMIN)}"}
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=auth
            ) as http:
                integration = (
                    (await http.post("/v1/integrations", json={"name": "Helpdesk"})).raise_for_status().json()
                )
                await record_surveys(url, "bench", "csat")
                rule = {"name": "CSAT", "event_type": "ticket.solved", "survey_id": "csat", "channel": "link"}
                (await http.post("/v1/rules", json=rule)).raise_for_status()
            path = f"/v1/webhooks/standard/{integration['id']}"
            front = app.front
            limit = asyncio.Semaphore(args.concurrency)

            async def block(requests: list[Request]) -> float:
                async def one(request: Request) -> None:
                    async with limit:
                        await call(app, path, request)

                started = time.process_time()
                await asyncio.gather(*(one(r) for r in requests))
                return (time.process_time() - started) / len(requests) * 1e6

            app.front = front
            await block(signed_requests(integration["secret"], args.block, "warm-front"))
            app.front = None
            await block(signed_requests(integration["secret"], args.block, "warm-other"))
            other = "FastAPI" if args.against == "fastapi" else "middleware"
            cpu: dict[str, list[float]] = {"front door": [], other: []}
            for i in range(args.blocks):
                for way in cpu:
                    requests = signed_requests(integration["secret"], args.block, f"{way[0]}{i}")
                    app.front = front if way == "front door" else None
                    cpu[way].append(await block(requests))
                print(
                    f"  block {i + 1}/{args.blocks}: "
                    + ", ".join(f"{w} {v[-1]:.0f} µs" for w, v in cpu.items())
                )
            app.front = front
    print()
    print(
        f"trigger API CPU per webhook, in process ({args.blocks} blocks of {args.block}, {args.concurrency} at a time)"
    )
    for way, values in cpu.items():
        print(f"  {way:<12} median {statistics.median(values):6.1f} µs")
    (front_cpu, other_cpu), other = cpu.values(), list(cpu)[1]
    q1, q2, q3 = statistics.quantiles([b - a for a, b in zip(front_cpu, other_cpu, strict=True)], n=4)
    print(f"  {other} minus front door, paired by block: median {q2:.1f} µs (quartiles {q1:.1f} … {q3:.1f})")


if __name__ == "__main__":
    parser = arguments("bench.webhook_cpu", __doc__)
    parser.add_argument(
        "--against", choices=("middleware", "fastapi"), default="middleware", help="the other way (see above)"
    )
    parser.add_argument("--blocks", type=int, default=20, help="blocks of each way, alternating")
    parser.add_argument("--block", type=int, default=500, help="webhooks per block")
    parser.add_argument("--concurrency", type=int, default=32, help="webhooks in flight at a time")
    run(main, parser)
