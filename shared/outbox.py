"""Transactional outbox: events are written in the same transaction as the change that caused
them, and a relay publishes them afterwards. Never ``producer.send`` in a request handler."""

from __future__ import annotations

import asyncio
import functools
import logging
import zlib

from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    any_,
    cast,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, Insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import tracing
from shared.db import Database, unnest_insert, unnest_params
from shared.events import CloudEvent, EventData
from shared.kafka import event_headers
from shared.observability import OUTBOX_OLDEST_AGE, OUTBOX_PENDING, OUTBOX_PUBLISHED
from shared.worker import Worker

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    """Rows wait here only until the relay has published them, so the primary key is their only
    index: it orders them, and the relay deletes by it (every index costs each event a write)."""
    return Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("key", String(300), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


OUTBOX_COLUMNS = ("event_id", "topic", "key", "payload")


class Outbox:
    """Writes events of one service into its outbox table."""

    def __init__(self, table: Table, *, source: str) -> None:
        self.table = table
        self.source = source

    async def add(self, session: AsyncSession, data: EventData, *, event_id: str | None = None) -> CloudEvent:
        """Return the envelope stored for ``data``; it is published once the transaction commits."""
        envelope = CloudEvent.wrap(data, source=self.source, event_id=event_id)
        await session.execute(
            self.table.insert().values(
                event_id=envelope.id,
                topic=data.topic,
                key=data.partition_key(),
                # Serialised once: the relay sends the stored text as it is.
                payload=cast(literal(envelope.model_dump_json(), Text()), JSONB),
            )
        )
        session.info["outbox_written"] = True
        return envelope

    async def add_all(
        self, session: AsyncSession, events: list[EventData], *, traceparents: list[str | None] | None = None
    ) -> None:
        """Store many events with one statement (in order), as ``add`` does one by one; each in the
        trace of its ``traceparents`` entry when given (events gathered from several consumed ones),
        else in the span in hand. Each envelope is serialised once, straight to JSON text."""
        if not events:
            return
        current = tracing.current()
        rows = []
        for n, data in enumerate(events):
            traceparent = current if traceparents is None else traceparents[n]
            event_id, payload = CloudEvent.wrap_text(data, source=self.source, traceparent=traceparent)
            rows.append((event_id, data.topic, data.partition_key(), payload))
        await session.execute(self._insert_many, unnest_params(OUTBOX_COLUMNS, rows))
        session.info["outbox_written"] = True

    @functools.cached_property
    def _insert_many(self) -> Insert:
        return unnest_insert(self.table, OUTBOX_COLUMNS, json_text=("payload",))


class OutboxRelay(Worker):
    """Publishes outbox rows in order and deletes them once the broker has them; wakes when a
    commit wrote outbox rows, and looks every ``poll_interval_s`` for rows other processes wrote.
    While commits keep waking it, passes are ``linger_s`` apart: each takes what gathered meanwhile
    (a transaction and a produce request per pass, not per commit)."""

    name = "relay"

    def __init__(
        self,
        db: Database,
        table: Table,
        producer: AIOKafkaProducer,
        *,
        poll_interval_s: float = 0.5,
        batch_size: int = 500,
        linger_s: float = 0.02,
    ) -> None:
        super().__init__(poll_interval_s=poll_interval_s, batch=batch_size, linger_s=linger_s)
        self.db = db
        self.table = table
        self.producer = producer
        self.batch_size = batch_size
        self._lock_key = zlib.crc32(f"closeloop-outbox:{table.fullname}".encode())
        db.on_outbox_commit(self.wake)
        self.stats_interval_s = 5.0
        self._stats_due = 0.0

    async def work_once(self) -> int:
        await self.report_backlog()
        return await self.publish_pending()

    async def report_backlog(self, *, force: bool = False) -> tuple[int, float]:
        """Set the outbox gauges (rows waiting, age of the oldest) at most every ``stats_interval_s``;
        before publishing, so that they keep growing while the broker is unreachable."""
        now = asyncio.get_running_loop().time()
        if not force and now < self._stats_due:
            return -1, -1.0
        self._stats_due = now + self.stats_interval_s
        t = self.table
        async with self.db.unit_of_work() as session:
            pending, age = (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(func.extract("epoch", func.now() - func.min(t.c.created_at)), 0),
                    ).select_from(t)
                )
            ).one()
        OUTBOX_PENDING.labels(t.fullname).set(pending)
        OUTBOX_OLDEST_AGE.labels(t.fullname).set(float(age))
        return int(pending), float(age)

    async def publish_pending(self) -> int:
        """Return how many rows this pass published."""
        t = self.table
        # One relay per service at a time, across replicas: two relays publishing overlapping batches
        # could reorder one customer's events. The uncorrelated subquery takes the transaction-scoped
        # lock once; without it the select finds nothing and another replica is relaying.
        locked = select(func.pg_try_advisory_xact_lock(self._lock_key)).scalar_subquery()
        async with self.db.unit_of_work() as session:
            rows = (
                await session.execute(
                    select(
                        t.c.seq,
                        t.c.topic,
                        t.c.key,
                        t.c.event_id,
                        t.c.payload["type"].astext.label("type"),
                        t.c.payload["source"].astext.label("source"),
                        t.c.payload["traceparent"].astext.label("traceparent"),
                        cast(t.c.payload, Text).label("value"),
                    )
                    .where(locked)
                    .order_by(t.c.seq)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return 0
            pending = [
                await self.producer.send(
                    row.topic,
                    value=row.value.encode(),
                    key=row.key.encode(),
                    headers=event_headers(
                        event_id=row.event_id,
                        event_type=row.type,
                        source=row.source,
                        traceparent=row.traceparent,
                    ),
                )
                for row in rows
            ]
            await asyncio.gather(*pending)
            # Published rows go: the broker has the events now, and the outbox neither grows nor keeps
            # customers' data after the fact.
            await session.execute(
                delete(t).where(t.c.seq == any_(literal([r.seq for r in rows], ARRAY(BigInteger))))
            )
        OUTBOX_PUBLISHED.inc(len(rows))
        return len(rows)
