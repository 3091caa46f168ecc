"""``make bench``: webhook ingest throughput and webhook → email latency on the real stack.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded), Tansu broker, SMTP catcher and
the five services as processes, seeds a workspace through the APIs, then:

1. ingest: signed webhooks as fast as ``--concurrency`` clients can send them for ``--ingest-s``
   seconds: events/s and acknowledgement latency p50/p99;
2. drain: how long until every invitation for those events has been emailed (emails/s);
3. end to end: webhooks at a fixed offered rate, latency from POST to the email arriving
   at the SMTP server, p50/p99;
4. memory: resident set size of each service process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from closeloop.demo import DemoWorkspace, seed_workspace
from closeloop.infra import free_port, scratch_broker, scratch_database
from closeloop.mailcatcher import MailCatcher, recipient
from closeloop.stack import SERVICE_PORTS, ServiceStack
from shared import standard_webhooks


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def signed_request(demo: DemoWorkspace, email: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "type": "ticket.solved",
            "data": {"contact": {"external_id": email, "email": email, "name": "Bench"}, "ticket_id": "T-1"},
        }
    ).encode()
    msg_id, ts = "msg_" + uuid.uuid4().hex, int(time.time())
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": standard_webhooks.sign(demo.webhook_secret, msg_id, ts, body),
    }


async def ingest(
    demo: DemoWorkspace, *, seconds: float, concurrency: int, prefix: str
) -> tuple[int, list[float], float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    counter = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal counter
        while time.monotonic() < deadline:
            counter += 1
            body, headers = signed_request(demo, f"{prefix}-{counter}@bench.example")
            started = time.perf_counter()
            response = await client.post(demo.webhook_url, content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                raise RuntimeError(f"webhook refused: {response.status_code} {response.text}")

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return len(latencies), latencies, elapsed


async def end_to_end(
    demo: DemoWorkspace, catcher: MailCatcher, *, rate: float, seconds: float
) -> list[float]:
    sent: dict[str, float] = {}
    prefix = "e2e-" + secrets.token_hex(3)
    async with httpx.AsyncClient(timeout=30) as client:
        total = int(rate * seconds)
        start = time.monotonic()
        for i in range(total):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            address = f"{prefix}-{i}@bench.example"
            body, headers = signed_request(demo, address)
            sent[address] = time.monotonic()
            response = await client.post(demo.webhook_url, content=body, headers=headers)
            response.raise_for_status()
    await catcher.wait_for_count(lambda m: recipient(m).startswith(prefix), len(sent), timeout_s=120)
    latencies = []
    for message, arrived in zip(list(catcher.messages), list(catcher.arrived_at), strict=False):
        to = recipient(message)
        if to in sent:
            latencies.append(arrived - sent[to])
    return latencies


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


async def main(args: argparse.Namespace) -> int:
    print("closeloop bench — starting PostgreSQL, broker, SMTP catcher and five services …", flush=True)
    infra = contextlib.AsyncExitStack()
    url = await infra.enter_async_context(scratch_database("bench"))
    broker = await infra.enter_async_context(scratch_broker())
    catcher = MailCatcher().start()
    secret = secrets.token_urlsafe(16)
    stack = ServiceStack(
        env={
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "CLOSELOOP_SECRET_KEY": secret,
            "CLOSELOOP_DISPATCH_SMTP_HOST": "127.0.0.1",
            "CLOSELOOP_DISPATCH_SMTP_PORT": str(catcher.port),
            "LOG_LEVEL": "WARNING",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "KAFKA_REBALANCE_TIMEOUT_MS": "3000",
        },
        log_dir=Path(tempfile.mkdtemp(prefix="closeloop-bench-")),
        ports={s: free_port() for s in SERVICE_PORTS},
    )
    try:
        stack.start_all()
        await asyncio.to_thread(stack.wait_ready)
        demo = await asyncio.to_thread(
            seed_workspace, {s: stack.url(s) for s in SERVICE_PORTS}, secret_key=secret, workspace_id="bench"
        )
        print(f"stack ready; logs in {stack.log_dir}", flush=True)

        print(f"[1/3] ingest: {args.concurrency} concurrent senders for {args.ingest_s:.0f}s …", flush=True)
        count, ack, elapsed = await ingest(
            demo, seconds=args.ingest_s, concurrency=args.concurrency, prefix="ingest"
        )
        print(f"[2/3] waiting for the {count} invitation emails to drain …", flush=True)
        drain_start = time.monotonic()
        await catcher.wait_for_count(
            lambda m: recipient(m).startswith("ingest-"), count, timeout_s=args.drain_timeout_s
        )
        drain = time.monotonic() - drain_start + elapsed
        print(f"[3/3] end to end at {args.rate:.0f} events/s for {args.e2e_s:.0f}s …", flush=True)
        e2e = await end_to_end(demo, catcher, rate=args.rate, seconds=args.e2e_s)
        memory = {s: rss_mb(p.pid) for s, p in stack.processes.items()}
    finally:
        stack.stop_all()
        catcher.stop()
        await infra.aclose()

    print()
    print("closeloop benchmark (2 cores shared by client, broker, database and five services)")
    print(
        table(
            [
                (
                    "webhook ingest",
                    f"{count / elapsed:8.0f} events/s   ({count} signed webhooks in {elapsed:.1f}s, "
                    f"{args.concurrency} concurrent senders)",
                ),
                (
                    "  ack latency",
                    f"p50 {percentile(ack, 50) * 1000:6.1f} ms   p99 {percentile(ack, 99) * 1000:6.1f} ms",
                ),
                (
                    "invitations emailed",
                    f"{count / drain:8.0f} emails/s   (all {count} delivered {drain:.1f}s after the first webhook)",
                ),
                (
                    "webhook → email",
                    f"p50 {percentile(e2e, 50) * 1000:6.0f} ms   p99 {percentile(e2e, 99) * 1000:6.0f} ms   "
                    f"(n={len(e2e)} at {args.rate:.0f} events/s offered)",
                ),
                ("memory (RSS)", "  ".join(f"{s} {mb:.0f} MB" for s, mb in memory.items())),
            ]
        )
    )
    if len(e2e) != int(args.rate * args.e2e_s):
        print(f"error: {len(e2e)} of {int(args.rate * args.e2e_s)} emails arrived", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ingest-s", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=20, help="offered events/s for the end-to-end latency")
    parser.add_argument("--e2e-s", type=float, default=10)
    parser.add_argument("--drain-timeout-s", type=float, default=240)
    sys.exit(asyncio.run(main(parser.parse_args())))
