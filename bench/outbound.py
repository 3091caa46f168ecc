"""``python -m bench.outbound``: outgoing webhooks fed from the events, to a local receiver.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded), a Tansu broker and a local webhook
receiver, runs dispatch as its own process (``closeloop serve dispatch``), creates ``--subscriptions``
webhook subscriptions through the API, then publishes ``ResponseScored`` events straight to the
``scores`` topic (as scoring's outbox relay would):

1. throughput: ``--events`` events at once, each about its own contact, that every subscription wants:
   deliveries/s from the first publish to the last delivery the receiver accepted (every subscription
   gets every event: events × subscriptions deliveries);
2. latency: ``--rate`` events/s for ``--seconds`` seconds, each wanted by exactly one subscription (the
   others filter by survey): p50/p99 from the publish of the source event to the receiver's 2xx.

The receiver checks the Standard Webhooks signature of every ``--verify-every``-th message with the
``standardwebhooks`` package (all of them cost it CPU the service needs on two cores) and counts
duplicates by ``webhook-id``. Bounded: each phase gives up after ``--timeout-s``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import h11
import httpx
from aiokafka import AIOKafkaProducer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.__main__ import table
from bench.cli import arguments, run, service_env
from bench.dispatch import rss_mb, wait_for
from bench.loadgen import cpu_seconds, percentile
from closeloop.infra import free_port, scratch_broker, scratch_database
from closeloop.stack import ServiceStack
from shared.access import Role, issue_api_key
from shared.events import CloudEvent, ResponseScored, ScoredAnswer, utcnow


@dataclass
class Receiver:
    verify_every: int
    port: int = field(default_factory=free_port)
    secrets: dict[str, str] = field(default_factory=dict)
    arrived: dict[tuple[str, str], float] = field(default_factory=dict)
    """(subscription name, webhook-id) → when it was accepted."""
    duplicates: int = 0
    bad: int = 0
    seen: int = 0

    def accept(self, name: str, headers: dict[str, str], body: bytes) -> int:
        self.seen += 1
        if self.seen % self.verify_every == 0:
            try:
                Webhook(self.secrets[name]).verify(body, headers)
            except (WebhookVerificationError, KeyError):
                self.bad += 1
                return 401
        key = (name, headers["webhook-id"])
        if key in self.arrived:
            self.duplicates += 1
        else:
            self.arrived[key] = time.monotonic()
        return 204

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One kept-alive HTTP/1.1 connection (h11): a receiver lean enough not to be what is measured."""
        conn = h11.Connection(h11.SERVER)
        target, headers, chunks = b"", dict[str, str](), list[bytes]()
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    target, chunks = event.target, []
                    headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    chunks.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    status = self.accept(target.decode().lstrip("/"), headers, b"".join(chunks))
                    writer.write(
                        conn.send(h11.Response(status_code=status, headers=[("content-length", "0")]))
                        + conn.send(h11.EndOfMessage())
                    )
                    await writer.drain()
                    conn.start_next_cycle()
                else:  # ConnectionClosed, or the client broke the protocol
                    break
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            writer.close()

    async def serve(self) -> asyncio.Server:
        return await asyncio.start_server(self.connection, "127.0.0.1", self.port)


def event(workspace: str, n: int, *, survey: str) -> ResponseScored:
    return ResponseScored(
        workspace_id=workspace,
        response_id=f"r-{n}-{secrets.token_hex(3)}",
        request_id=None,
        contact_id=f"c-{n}-{secrets.token_hex(2)}",
        survey_id=survey,
        kind="transactional",
        channel="email",
        scores=(
            ScoredAnswer(
                question_id="q0", metric="nps", score=n % 11, classification="passive", negative=False
            ),
        ),
        negative=False,
        consent_to_contact=False,
        comment="bench",
        scored_at=utcnow(),
    )


async def publish(producer: AIOKafkaProducer, data: ResponseScored) -> tuple[str, float]:
    envelope = CloudEvent.wrap(data, source="bench")
    at = time.monotonic()
    await producer.send(
        data.topic, value=envelope.model_dump_json().encode(), key=data.partition_key().encode()
    )
    return envelope.id, at


async def main(args: argparse.Namespace) -> int:
    print("outbound bench — starting PostgreSQL, broker, a webhook receiver and dispatch …", flush=True)
    infra = contextlib.AsyncExitStack()
    url = await infra.enter_async_context(scratch_database("bench-outbound", services=["dispatch"]))
    broker = await infra.enter_async_context(scratch_broker())
    receiver = Receiver(verify_every=args.verify_every)
    server = await receiver.serve()
    secret_key = secrets.token_urlsafe(16)
    workspace = "bench-" + secrets.token_hex(3)
    auth = {"Authorization": f"Bearer {issue_api_key(secret_key, workspace, role=Role.ADMIN)}"}
    rows: list[tuple[str, str]] = []
    port = free_port()
    stack = ServiceStack(
        env=service_env(
            url,
            broker.bootstrap_servers,
            secret_key,
            CLOSELOOP_OUTBOUND_ALLOW_NETWORKS="127.0.0.0/8",
            CLOSELOOP_DISPATCH_WEBHOOK_CONCURRENCY=str(args.concurrency),
        ),
        log_dir=Path(tempfile.mkdtemp(prefix="closeloop-bench-outbound-")),
        ports={"trigger": free_port(), "dispatch": port, "responses": free_port()},
    )
    try:
        stack.start("dispatch")
        await asyncio.to_thread(stack.wait_ready, ["dispatch"])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            for i in range(args.subscriptions):
                created = await api.post(
                    "/v1/webhooks",
                    json={
                        "url": f"http://127.0.0.1:{receiver.port}/s{i}",
                        "event_types": ["response.scored"],
                        # Subscription 0 also takes the latency phase's survey; the others only the shared one.
                        "survey_ids": ["svy-all", "svy-one"] if i == 0 else ["svy-all"],
                    },
                    headers=auth,
                )
                created.raise_for_status()
                receiver.secrets[f"s{i}"] = created.json()["secret"]
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=5)
        await producer.start()
        try:
            # Warm up: the outbound group has joined once the first delivery arrives.
            await publish(producer, event(workspace, -1, survey="svy-one"))
            await wait_for(lambda: len(receiver.arrived) >= 1, timeout_s=90, what="the warm-up delivery")
            receiver.arrived.clear()

            total = args.events * args.subscriptions
            print(
                f"[1/2] throughput: {args.events} events × {args.subscriptions} subscriptions …", flush=True
            )
            pid = stack.processes["dispatch"].pid
            cpu_before, started = cpu_seconds(pid), time.monotonic()
            sent = [
                await publish(producer, event(workspace, n, survey="svy-all")) for n in range(args.events)
            ]
            await producer.flush()
            await wait_for(
                lambda: len(receiver.arrived) >= total, timeout_s=args.timeout_s, what="deliveries"
            )
            elapsed = max(receiver.arrived.values()) - started
            cpu = cpu_seconds(pid) - cpu_before
            first_ids = {event_id for event_id, _ in sent}
            assert {k[1] for k in receiver.arrived} == first_ids
            rows += [
                (
                    "webhook deliveries to the receiver",
                    f"{total / elapsed:8.0f} deliveries/s ({total} in {elapsed:.1f}s)",
                ),
                (
                    "  dispatch CPU per delivery",
                    f"{cpu / total * 1000:8.2f} ms  (= {total / cpu:.0f} deliveries per CPU-second of dispatch)",
                ),
            ]
            receiver.arrived.clear()

            count = int(args.rate * args.seconds)
            print(
                f"[2/2] latency: {args.rate:g} events/s for {args.seconds:g}s, one subscription each …",
                flush=True,
            )
            published: dict[str, float] = {}
            begin = time.monotonic()
            for n in range(count):
                delay = begin + n / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                event_id, at = await publish(producer, event(workspace, n, survey="svy-one"))
                published[event_id] = at
            await wait_for(
                lambda: len(receiver.arrived) >= count, timeout_s=args.timeout_s, what="deliveries"
            )
            offered = count / (max(published.values()) - begin)
            latency = [receiver.arrived[("s0", e)] - at for e, at in published.items()]
            rows += [
                ("source events offered", f"{offered:8.0f} events/s ({count} events)"),
                (
                    "  ResponseScored → receiver 2xx",
                    f"p50 {percentile(latency, 50) * 1000:7.0f} ms   p99 {percentile(latency, 99) * 1000:7.0f} ms",
                ),
            ]
            rows.append(("dispatch memory (RSS)", f"{rss_mb(stack.processes['dispatch'].pid):8.0f} MB"))
            rows.append(("duplicates / bad signatures seen", f"{receiver.duplicates} / {receiver.bad}"))
        finally:
            await producer.stop()
    finally:
        stack.stop_all()
        server.close()
        await infra.aclose()

    print()
    print(
        f"outbound benchmark (one dispatch process, {args.subscriptions} subscriptions, webhook_concurrency="
        f"{args.concurrency}; {os.cpu_count()} cores shared with the broker, database and receiver)"
    )
    print(table(rows))
    return 1 if receiver.bad else 0


if __name__ == "__main__":
    parser = arguments("bench.outbound", __doc__)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--events", type=int, default=50, help="throughput phase: events (× subscriptions)")
    parser.add_argument("--rate", type=float, default=100, help="latency phase: events per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=200, help="CLOSELOOP_DISPATCH_WEBHOOK_CONCURRENCY")
    parser.add_argument("--verify-every", type=int, default=20)
    parser.add_argument("--timeout-s", type=float, default=180)
    run(main, parser)
