"""``python -m bench.plumbing``: what the shared plumbing costs per event — the outbox, its relay, the
broker, the consumer loop and the inbox — without any service's own work.

Starts its own PostgreSQL database (``DATABASE_URL`` or embedded) and Tansu broker and, in this one
process (as one service would): a writer that adds ``--rate`` ``CustomerEventReceived`` a second to the
outbox (a transaction every 20 ms, as a busy handler does), the outbox relay, a consumer group that
handles each one by writing a ``SurveyRequested`` to the outbox (one hop, in batch mode, gathered
into one statement per batch as the busy services do), a group that consumes those (the last hop), and ``--skippers`` groups on the same topics
that handle none of them (as most groups skip most records). Prints the events' latency from the first
outbox write to the last hop, and CPU per event (user + system over the run, drain included) of this
process, of the PostgreSQL backends of its database and of the broker.

``--idle``: ``--idle-groups`` consumer groups with nothing to read instead (a broker, no database):
the CPU their polling costs the broker and their process a second, and how soon the first group gets a
record produced at a random moment, at ``KAFKA_FETCH_MAX_WAIT_MS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer
from aiokafka.conn import AIOKafkaConnection
from sqlalchemy.ext.asyncio import AsyncSession

from bench.cli import arguments
from bench.loadgen import percentile
from closeloop.infra import scratch_broker, scratch_database
from shared.db import Database, driver_dsn, service_metadata
from shared.events import (
    ALL_TOPICS,
    CUSTOMER_EVENTS,
    SURVEY_REQUESTS,
    WORKSPACES,
    CustomerEventReceived,
    KeyRevoked,
    SurveyRequested,
)
from shared.inbox import EventConsumer, inbox_table
from shared.kafka import create_consumer, create_producer
from shared.outbox import Outbox, OutboxRelay, outbox_table
from shared.settings import KafkaSettings

TICK_S = 0.02


def customer_event(n: int) -> CustomerEventReceived:
    return CustomerEventReceived(
        workspace_id="ws_bench",
        event_id=f"ev_{uuid.uuid4().hex}",
        source="bench",
        source_event_id=str(n),
        event_type="ticket.solved",
        occurred_at=datetime.now(UTC),
        contact_id=f"ct_{n % 5000}",
        properties={"agent": "ann", "ticket_id": str(n)},
    )


class Pipeline:
    """The writer, the relay and the consumers of one run, with what the last hop saw."""

    def __init__(self, url: str, bootstrap: str, *, skippers: int) -> None:
        self.db = Database(url)
        self.kafka = KafkaSettings(kafka_bootstrap_servers=bootstrap)
        metadata = service_metadata("plumbing")
        self.outbox_t = outbox_table(metadata)
        self.inbox_t = inbox_table(metadata)
        self.metadata = metadata
        self.outbox = Outbox(self.outbox_t, source="bench")
        self.skippers = skippers
        self.latencies: list[float] = []
        self.first_hop: list[float] = []
        self.done = 0
        self.expected = 1
        self.all_arrived = asyncio.Event()

    async def start(self) -> None:
        async with self.db.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS plumbing")
            await conn.run_sync(self.metadata.create_all)
        self.producer = create_producer(self.kafka)
        await self.producer.start()
        self.relay = OutboxRelay(self.db, self.outbox_t, self.producer)
        self.consumers = [
            await self._consumer("hop", [CUSTOMER_EVENTS], {CustomerEventReceived: self.hop}),
            await self._consumer("last", [SURVEY_REQUESTS], {SurveyRequested: self.last}),
            *[
                await self._consumer(
                    f"skip{n}", [CUSTOMER_EVENTS, SURVEY_REQUESTS, WORKSPACES], {KeyRevoked: self.last}
                )
                for n in range(self.skippers)
            ],
        ]
        self.tasks = [asyncio.create_task(self.relay.run())] + [
            asyncio.create_task(c.run()) for c in self.consumers
        ]
        for consumer in self.consumers:
            await consumer.assigned.wait()

    async def _consumer(self, name: str, topics: list[str], callbacks: dict[type, Any]) -> EventConsumer:
        kafka_consumer = create_consumer(self.kafka, group_id=f"bench-{name}", topics=topics)
        await kafka_consumer.start()
        return EventConsumer(
            name=name,
            consumer=kafka_consumer,
            producer=self.producer,
            db=self.db,
            inbox=self.inbox_t,
            callbacks=callbacks,
            batch=True,
            flush=self.flush,
        )

    async def hop(self, session: AsyncSession, data: CustomerEventReceived) -> None:
        self.first_hop.append((datetime.now(UTC) - data.occurred_at).total_seconds())
        session.info.setdefault("requested", []).append(
            SurveyRequested(
                workspace_id=data.workspace_id,
                request_id=data.event_id,
                contact_id=data.contact_id,
                survey_id="sv_bench",
                context={"first": data.occurred_at.isoformat()},
            )
        )

    async def flush(self, session: AsyncSession) -> None:
        """Write what the batch's callbacks gathered with one statement (as the busy services do)."""
        await self.outbox.add_all(session, session.info.pop("requested", []))

    async def last(self, session: AsyncSession, data: Any) -> None:
        if isinstance(data, SurveyRequested):
            first = datetime.fromisoformat(data.context["first"])
            self.latencies.append((datetime.now(UTC) - first).total_seconds())
            self.done += 1
            if self.done >= self.expected:
                self.all_arrived.set()

    async def write(self, rate: float, seconds: float) -> int:
        """Add ``rate`` events a second for ``seconds``; return how many."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        written = 0
        while (elapsed := loop.time() - start) < seconds:
            due = int(rate * elapsed) + 1
            if due > written:
                async with self.db.unit_of_work() as session:
                    await self.outbox.add_all(session, [customer_event(n) for n in range(written, due)])
                written = due
            await asyncio.sleep(TICK_S)
        return written

    async def stop(self) -> None:
        for consumer in self.consumers:
            consumer.stop()
        self.relay.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for consumer in self.consumers:
            await consumer.consumer.stop()
        await self.producer.stop()
        await self.db.dispose()


REQUESTS: Counter[str] = Counter()


def count_requests() -> None:
    """Count the requests every Kafka client of this process sends, by kind (a bench may patch)."""
    send = AIOKafkaConnection.send

    def counted(self: AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
        REQUESTS[type(request).__name__.split("_")[0]] += 1
        return send(self, request, *args, **kwargs)

    AIOKafkaConnection.send = counted  # type: ignore[method-assign]


async def transactions(url: str) -> int:
    """Return the transactions committed and rolled back in ``url``'s database so far."""
    conn = await asyncpg.connect(driver_dsn(url))
    try:
        # The statistics of this transaction are a snapshot: a fresh one per call.
        return int(
            await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await conn.close()


def cpu_of(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def backends(database: str) -> list[psutil.Process]:
    """The PostgreSQL backends connected to ``database`` (their title names it)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if "postgres" in (process.info["name"] or "") and database in " ".join(
                process.info["cmdline"] or ()
            ):
                found.append(process)
    return found


async def run(args: argparse.Namespace) -> None:
    async with scratch_database("plumbing", services=["console"]) as url, scratch_broker() as broker:
        assert broker.process is not None
        pipeline = Pipeline(url, broker.bootstrap_servers, skippers=args.skippers)
        await pipeline.start()
        # Warm up (connections, metadata, the first batches), then measure.
        await pipeline.write(args.rate, 2)
        await pipeline.all_arrived.wait()
        database = url.rsplit("/", 1)[1]
        me, broker_p = psutil.Process(), psutil.Process(broker.process.pid)
        pg = backends(database)
        before = {"service": cpu_of([me]), "postgres": cpu_of(pg), "broker": cpu_of([broker_p])}
        xacts_before = await transactions(url)
        requests_before = dict(REQUESTS)
        pipeline.latencies.clear()
        pipeline.first_hop.clear()
        pipeline.done, pipeline.expected = 0, 10**12
        pipeline.all_arrived.clear()
        written = await pipeline.write(args.rate, args.seconds)
        pipeline.expected = written
        if pipeline.done >= written:
            pipeline.all_arrived.set()
        await pipeline.all_arrived.wait()
        after = {"service": cpu_of([me]), "postgres": cpu_of(pg), "broker": cpu_of([broker_p])}
        xacts = await transactions(url)
        spent = {k: (after[k] - before[k]) / written * 1e6 for k in after}
        lat = sorted(pipeline.latencies)
        hop = sorted(pipeline.first_hop)
        print(
            f"plumbing: {written:,} events at {args.rate:g}/s for {args.seconds:g} s, two hops, "
            f"{args.skippers} skipping group(s)"
        )
        print(
            f"  latency first write → last hop   p50 {percentile(lat, 50) * 1000:,.0f} ms, "
            f"p99 {percentile(lat, 99) * 1000:,.0f} ms (first hop p50 {percentile(hop, 50) * 1000:,.0f} ms, "
            f"p99 {percentile(hop, 99) * 1000:,.0f} ms)"
        )
        print(
            f"  per event                        {(xacts - xacts_before) / written:.2f} PostgreSQL transactions, "
            "broker requests: "
            + ", ".join(
                f"{kind.removesuffix('Request')} {(n - requests_before.get(kind, 0)) / written:.2f}"
                for kind, n in sorted(REQUESTS.items(), key=lambda kv: -kv[1])
                if n > requests_before.get(kind, 0)
            )
        )
        print(
            f"  CPU per event                    {sum(spent.values()):,.0f} µs in all: "
            + ", ".join(f"{k} {v:,.0f}" for k, v in spent.items())
            + " µs"
        )
        await pipeline.stop()


async def idle(args: argparse.Namespace) -> None:
    """What idle consumer groups cost the broker and their own process, and how soon one of them gets a
    record produced at a random moment, at ``KAFKA_FETCH_MAX_WAIT_MS``."""
    async with scratch_broker() as broker:
        assert broker.process is not None
        kafka = KafkaSettings(kafka_bootstrap_servers=broker.bootstrap_servers)
        topics = list(dict.fromkeys([CUSTOMER_EVENTS, SURVEY_REQUESTS, WORKSPACES, *ALL_TOPICS]))[
            : args.idle_topics
        ]
        consumers = [
            create_consumer(kafka, group_id=f"idle{n}", topics=topics) for n in range(args.idle_groups)
        ]
        for consumer in consumers:
            await consumer.start()
        producer = create_producer(kafka)
        await producer.start()
        sent: dict[bytes, float] = {}
        delays: list[float] = []
        loop = asyncio.get_running_loop()

        async def poll(consumer: AIOKafkaConsumer, first: bool) -> None:
            while True:
                for records in (await consumer.getmany(timeout_ms=200, max_records=200)).values():
                    delays.extend(loop.time() - sent[r.value] for r in records if first and r.value in sent)

        polling = [asyncio.create_task(poll(c, n == 0)) for n, c in enumerate(consumers)]
        await asyncio.sleep(5)  # joined and assigned
        me, broker_p = psutil.Process(), psutil.Process(broker.process.pid)
        before = cpu_of([broker_p]), cpu_of([me])
        await asyncio.sleep(args.seconds)
        after = cpu_of([broker_p]), cpu_of([me])
        for n in range(30):
            await asyncio.sleep(random.uniform(0.05, 0.3))
            value = str(n).encode()
            sent[value] = loop.time()
            await producer.send_and_wait(topics[0], value, key=value)
        await asyncio.sleep(1)
        for task in polling:
            task.cancel()
        await asyncio.gather(*polling, return_exceptions=True)
        await producer.stop()
        for consumer in consumers:
            await consumer.stop()
        print(
            f"idle: {args.idle_groups} group(s) on {len(topics)} topic(s) of 3 partitions, fetch wait "
            f"{kafka.kafka_fetch_max_wait_ms} ms: broker {(after[0] - before[0]) / args.seconds * 1000:,.0f} ms "
            f"of CPU a second, the consumers' process {(after[1] - before[1]) / args.seconds * 1000:,.0f} ms; "
            f"a record produced is consumed after p50 {percentile(delays, 50) * 1000:,.0f} ms, "
            f"max {max(delays, default=float('nan')) * 1000:,.0f} ms ({len(delays)} records)"
        )


def main() -> None:
    parser = arguments("bench.plumbing", __doc__)
    parser.add_argument("--rate", type=float, default=300, help="events a second written (default 300)")
    parser.add_argument("--seconds", type=float, default=20, help="how long to write (default 20)")
    parser.add_argument("--skippers", type=int, default=2, help="groups that skip every record (default 2)")
    parser.add_argument(
        "--idle", action="store_true", help="measure idle consumer groups instead (broker only, no database)"
    )
    parser.add_argument("--idle-groups", type=int, default=6, help="idle groups (default 6)")
    parser.add_argument("--idle-topics", type=int, default=6, help="topics each idle group reads (default 6)")
    args = parser.parse_args()
    count_requests()
    asyncio.run(idle(args) if args.idle else run(args))


if __name__ == "__main__":
    main()
