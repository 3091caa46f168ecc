"""``python -m bench.scoring_funnel``: scoring's CPU per webhook for the events a webhook makes when no
survey is answered — what the whole-stack bench's sustained phase costs scoring.

Starts its own PostgreSQL database (``DATABASE_URL``'s server, or an embedded one) and Tansu broker
(``--partitions``), migrates the scoring schema and runs scoring as ``closeloop serve scoring --role
consumer,relay`` (one process, as the whole-stack bench runs it). Then publishes, open loop at
``--rate`` webhooks a second for ``--seconds`` seconds in ticks of 10 ms, what one webhook puts on the
topics scoring consumes in that loop (with the ``ce_`` headers the relays send):
``CustomerEventReceived`` (trigger; scoring skips it by its header), ``InvitationCreated`` and
``InvitationSent`` (dispatch; the funnel records both). ``SurveyRequested`` is on a topic scoring does
not consume, and no survey is answered.

Prints the scoring process's CPU time (user + system, every thread) per webhook from the first
published webhook until every invitation's row says it was sent, and the broker's alongside; and
scoring's CPU time a second over 5 s idle before (what it costs whether or not webhooks come).
Nothing here is a timed test: the numbers are printed (and recorded in bench/RESULTS.md by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from bench.cli import arguments, run, service_env, stop
from bench.scoring import _cpu_seconds, _spawn
from closeloop.infra import scratch_broker, scratch_database
from shared.db import Database
from shared.events import (
    CloudEvent,
    CustomerEventReceived,
    EventData,
    InvitationCreated,
    InvitationSent,
    new_id,
)
from shared.kafka import event_headers

WORKSPACE = "bench-funnel"
TICK_S = 0.01
IDLE_S = 5.0


def webhook_events(i: int, *, customer_event: bool = True) -> list[EventData]:
    """Return what webhook ``i`` puts on scoring's topics, in the order it is published (without its
    ``CustomerEventReceived`` unless ``customer_event``)."""
    now = datetime.now(UTC)
    contact = f"contact-{i}"
    invitation = {
        "workspace_id": WORKSPACE,
        "invitation_id": new_id(),
        "request_id": new_id(),
        "contact_id": contact,
        "survey_id": f"survey-{i % 5}",
        "kind": "transactional",
        "channel": "email",
        "occurred_at": now,
        "locale": "en",
    }
    received = CustomerEventReceived(
        workspace_id=WORKSPACE,
        event_id=new_id(),
        source="webhook",
        source_event_id=f"evt-{i}",
        event_type="ticket.solved",
        occurred_at=now,
        contact_id=contact,
        properties={"ticket_id": f"T-{i}", "agent": f"agent-{i % 40}", "team": "support", "plan": "pro"},
    )
    return [
        *([received] if customer_event else []),
        InvitationCreated(**invitation, send_at=now),
        InvitationSent(**invitation, message_id=f"<{new_id()}@bench>"),
    ]


async def publish(producer: AIOKafkaProducer, events: list[EventData]) -> list[asyncio.Future[object]]:
    sends = []
    for event in events:
        envelope = CloudEvent.wrap(event, source="bench")
        headers = event_headers(event_id=envelope.id, event_type=envelope.type, source="bench")
        value = envelope.model_dump_json().encode()
        sends.append(
            await producer.send(event.topic, value, key=event.partition_key().encode(), headers=headers)
        )
    return sends


async def sent_so_far(db: Database) -> int:
    async with db.engine.connect() as conn:
        found = await conn.scalar(text("SELECT count(*) FROM scoring.invitations WHERE sent_at IS NOT NULL"))
    return int(found or 0)


async def wait_for(db: Database, count: int, child: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while await sent_so_far(db) < count:
        if child.poll() is not None:
            raise RuntimeError("the scoring process ended (its log is above)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"scoring did not record {count} sent invitations in {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


async def main(args: argparse.Namespace) -> int:
    print("closeloop scoring funnel bench — starting PostgreSQL and the broker …", flush=True)
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(scratch_database("bench-funnel", services=["scoring"]))
        broker = await stack.enter_async_context(scratch_broker(partitions=args.partitions))
        db = Database(url, pool_size=2)
        stack.push_async_callback(db.dispose)
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, enable_idempotence=False, acks="all", linger_ms=5
        )
        await producer.start()
        stack.push_async_callback(producer.stop)
        env = {
            **os.environ,
            **service_env(
                url,
                broker.bootstrap_servers,
                secrets.token_hex(32),
                LOG_FORMAT="text",
                CLOSELOOP_WORKER_NICE="0",
            ),
        }
        child = _spawn(env)
        stack.callback(stop, child)
        print("warming up (the consumer joins its group, one webhook goes through) …", flush=True)
        await asyncio.gather(*await publish(producer, webhook_events(-1)))
        await wait_for(db, 1, child, timeout_s=120)
        await asyncio.sleep(2)  # the first batch's aftermath (lexicons, relay) settles
        if args.pid_file:
            await asyncio.to_thread(Path(args.pid_file).write_text, str(child.pid))
        total = int(args.rate * args.seconds)
        pids = [child.pid]
        assert broker.process is not None
        print(f"idle for {IDLE_S:g} s, then publishing {total:,} webhooks at {args.rate:g}/s …", flush=True)
        idle_started = _cpu_seconds(pids)
        await asyncio.sleep(IDLE_S)
        idle = (_cpu_seconds(pids) - idle_started) / IDLE_S
        cpu_started, broker_started = _cpu_seconds(pids), _cpu_seconds([broker.process.pid])
        started = time.monotonic()
        sends: list[asyncio.Future[object]] = []
        published = 0
        while published < total:
            due = min(total, int((time.monotonic() - started) * args.rate) + 1)
            events = [
                e
                for i in range(published, due)
                for e in webhook_events(i, customer_event=args.customer_events)
            ]
            sends += await publish(producer, events)
            published = due
            await asyncio.sleep(TICK_S)
        await asyncio.gather(*sends)
        await wait_for(db, total + 1, child, timeout_s=600)
        elapsed = time.monotonic() - started
        cpu = _cpu_seconds(pids) - cpu_started
        broker_cpu = _cpu_seconds([broker.process.pid]) - broker_started
    print()
    without = "" if args.customer_events else ", no CustomerEventReceived"
    print(f"closeloop scoring funnel benchmark ({args.partitions} partitions{without}, 2 cores shared)")
    print(
        f"  webhooks                    {total:,} at {args.rate:g}/s, all recorded {elapsed:.1f} s after the first"
    )
    print(f"  scoring CPU per webhook     {cpu / total * 1e6:7.0f} µs   ({cpu:.2f} s in all)")
    print(f"  broker CPU per webhook      {broker_cpu / total * 1e6:7.0f} µs")
    print(
        f"  scoring CPU idle            {idle * 1e3:7.1f} ms a second "
        f"({idle / args.rate * 1e6:.0f} µs per webhook at {args.rate:g}/s: polling, heartbeats, the relay)"
    )
    return 0


if __name__ == "__main__":
    parser = arguments("bench.scoring_funnel", __doc__)
    parser.add_argument("--rate", type=float, default=300, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=20, help="how long to publish")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of each topic")
    parser.add_argument(
        "--no-customer-events",
        dest="customer_events",
        action="store_false",
        help="publish only the invitation events (what fetching and skipping CustomerEventReceived costs)",
    )
    parser.add_argument(
        "--pid-file", default="", help="write the scoring process's id here once warm (to attach a profiler)"
    )
    run(main, parser)
