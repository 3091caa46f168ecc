"""The inbox and the consumer loop: at-least-once delivery made idempotent.

For each message the handler's effects and an inbox row keyed by (consumer, event id) commit
in one transaction; offsets are committed only after that. A redelivered event finds its
inbox row and is skipped. Failures are retried with exponential backoff; a message that still
fails, or can never be parsed, is parked on ``<topic>.dlq`` with the error and the partition
moves on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import tracing
from shared.db import Database, unnest_insert, unnest_params
from shared.errors import PoisonMessage
from shared.events import UPCASTERS, EventData, EventHead, UnknownEventType, dead_letter_topic, read_event
from shared.observability import CONSUMER_LAG, EVENT_DELAY, EVENT_PROCESSING, EVENTS_CONSUMED

log = logging.getLogger(__name__)

EventCallback = Callable[[AsyncSession, Any], Awaitable[None]]
"""What a service does with one consumed event, in the inbox's transaction (it calls a handler)."""

CURRENT_EVENT: ContextVar[EventHead | None] = ContextVar("current_event", default=None)
"""The envelope of the event a callback is handling (its ``id`` and ``time``), for the few callbacks
that pass them on, e.g. as an outgoing webhook's ``webhook-id``."""


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


INBOX_COLUMNS = ("consumer", "event_id", "event_type", "topic", "partition", "offset")


class EventConsumer:
    """One consumer group of one service: routes each event type to its callback."""

    def __init__(
        self,
        *,
        name: str,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        db: Database,
        inbox: Table,
        callbacks: dict[type[EventData], EventCallback],
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        batch: bool = False,
        flush: Callable[[AsyncSession], Awaitable[None]] | None = None,
        max_records: int = 200,
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.producer = producer
        self.db = db
        self.inbox = inbox
        self.callbacks = callbacks
        # Older versions of a handled event are handled too, once upcast.
        self._handled_types = {
            name
            for model in callbacks
            for name in (model.type_name(), *UPCASTERS.older_names(model.type_name()))
        }
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.batch = batch
        self.flush = flush
        self.max_records = max_records
        """The most records fetched at once; in batch mode also the most handled in one transaction."""
        self._stopping = asyncio.Event()
        self.assigned = asyncio.Event()
        self._positions: dict[TopicPartition, int] = {}
        self._lag_due = 0.0
        self._processing = EVENT_PROCESSING.labels(name)
        self._delay = EVENT_DELAY.labels(name)
        self._consumed: dict[tuple[str, str], Any] = {}
        self._insert_many = (
            unnest_insert(inbox, INBOX_COLUMNS).on_conflict_do_nothing().returning(inbox.c.event_id)
        )

    async def run(self) -> None:
        """Consume until ``stop()``; the batch in hand is finished and committed first."""
        while not self._stopping.is_set():
            batch = await self.consumer.getmany(timeout_ms=200, max_records=self.max_records)
            if self.consumer.assignment():
                self.assigned.set()
            for tp, records in batch.items():
                started = time.perf_counter()
                if not (self.batch and len(records) > 1 and await self.process_together(records)):
                    for record in records:
                        await self.process(record)
                self._observe(tp, records, time.perf_counter() - started)
            if batch:
                # One request for every partition of the fetch, each handled and committed to the
                # database by now (a commit per partition was most of a consumer's broker requests).
                await self.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
            self._report_lag()

    def stop(self) -> None:
        self._stopping.set()

    def _observe(self, tp: TopicPartition, records: list[ConsumerRecord], seconds: float) -> None:
        per_event = seconds / len(records)
        for _ in records:
            self._processing.observe(per_event)
        self._delay.observe(max(0.0, time.time() - records[-1].timestamp / 1000))
        self._positions[tp] = records[-1].offset + 1

    def _report_lag(self) -> None:
        """Set the lag gauge per topic: the broker's end of each assigned partition minus what this
        consumer handled (partitions it has not handled anything of yet are left out)."""
        now = time.monotonic()
        if now < self._lag_due:
            return
        self._lag_due = now + 2.0
        assigned = self.consumer.assignment()
        lag: dict[str, int] = {tp.topic: 0 for tp in assigned}
        for tp in assigned:
            end, position = self.consumer.highwater(tp), self._positions.get(tp)
            if end is not None and position is not None:
                lag[tp.topic] += max(0, end - position)
        for topic, value in lag.items():
            CONSUMER_LAG.labels(self.name, topic).set(value)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            # A rebalance took the partition away; its new owner gets the records again and
            # the inbox turns them into no-ops.
            log.warning("offset commit failed after a rebalance; records will be redelivered")

    async def process(self, record: ConsumerRecord) -> None:
        """Handle one record exactly once in effect, or park it on the dead-letter topic."""
        declared_type = _header(record, "ce_type")
        if declared_type is not None and declared_type not in self._handled_types:
            return  # another consumer's event: skipped without parsing it
        try:
            envelope, data = read_event(record.value, declared_type=declared_type)
        except (ValidationError, UnknownEventType, ValueError) as exc:
            await self.dead_letter(record, exc, attempts=0)
            return
        callback = self.callbacks.get(type(data))
        if callback is None:
            return
        extra = {"event_id": envelope.id, "event_type": envelope.type, "workspace_id": envelope.workspaceid}
        # The event's trace goes on: what its handler writes to the outbox carries the same trace id.
        with tracing.span(f"{self.name} {envelope.type}", parent=envelope.traceparent, kind="consumer"):
            await self._attempt(record, envelope, data, callback, extra)

    async def _attempt(
        self,
        record: ConsumerRecord,
        envelope: EventHead,
        data: EventData,
        callback: EventCallback,
        extra: dict[str, Any],
    ) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                outcome = await self._handle_once(record, envelope, data, callback)
                self._count(envelope.type, outcome)
                return
            except PoisonMessage as exc:
                await self.dead_letter(record, exc, attempts=attempt)
                return
            except Exception as exc:
                if attempt == self.max_attempts:
                    log.exception("giving up on event after %d attempts", attempt, extra=extra)
                    await self.dead_letter(record, exc, attempts=attempt)
                    return
                delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
                log.warning("handler failed (%s); retry %d in %.2fs", exc, attempt, delay, extra=extra)
                await asyncio.sleep(delay)

    async def process_together(self, records: list[ConsumerRecord]) -> bool:
        """Handle a partition's batch in one transaction (inbox rows and effects commit together);
        return False, having changed nothing, when any record fails, so that the caller handles them
        one by one with retries and dead letters. One commit for many events is what makes a busy
        consumer fast; the inbox still makes each event count once."""
        outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        try:
            async with self.db.unit_of_work() as session:
                parsed = []
                for record in records:
                    declared_type = _header(record, "ce_type")
                    if declared_type is not None and declared_type not in self._handled_types:
                        continue
                    envelope, data = read_event(record.value, declared_type=declared_type)
                    callback = self.callbacks.get(type(data))
                    if callback is not None:
                        parsed.append((record, envelope, data, callback))
                if parsed:
                    # One statement records the whole batch in the inbox; events seen before are skipped.
                    rows = unnest_params(
                        INBOX_COLUMNS,
                        (
                            (
                                self.name,
                                envelope.id,
                                envelope.type,
                                record.topic,
                                record.partition,
                                record.offset,
                            )
                            for record, envelope, _, _ in parsed
                        ),
                    )
                    first_time = set((await session.execute(self._insert_many, rows)).scalars())
                    for _record, envelope, data, callback in parsed:
                        if envelope.id not in first_time:
                            outcomes[envelope.type, "duplicate"] += 1
                            continue
                        first_time.discard(envelope.id)  # the same id twice in one batch counts once
                        token = CURRENT_EVENT.set(envelope)
                        try:
                            with tracing.span(
                                f"{self.name} {envelope.type}", parent=envelope.traceparent, kind="consumer"
                            ):
                                await callback(session, data)
                        finally:
                            CURRENT_EVENT.reset(token)
                        outcomes[envelope.type, "handled"] += 1
                if self.flush is not None:
                    await self.flush(session)
        except Exception as exc:
            log.info("batch of %d records failed (%s); handling them one by one", len(records), exc)
            return False
        for (event_type, outcome), n in outcomes.items():
            self._count(event_type, outcome, n)
        return True

    def _count(self, event_type: str, outcome: str, n: int = 1) -> None:
        """Add ``n`` to ``closeloop_events_consumed_total`` (its children kept: a label lookup per event
        costs more than the increment)."""
        child = self._consumed.get((event_type, outcome))
        if child is None:
            child = self._consumed[event_type, outcome] = EVENTS_CONSUMED.labels(
                self.name, event_type, outcome
            )
        child.inc(n)

    async def _handle_once(
        self, record: ConsumerRecord, envelope: EventHead, data: EventData, callback: EventCallback
    ) -> str:
        async with self.db.unit_of_work() as session:
            outcome = await self._handle_in(session, record, envelope, data, callback)
            if self.flush is not None:
                await self.flush(session)
            return outcome

    async def _handle_in(
        self,
        session: AsyncSession,
        record: ConsumerRecord,
        envelope: EventHead,
        data: EventData,
        callback: EventCallback,
    ) -> str:
        """Record the event in the inbox and run its callback in ``session``; return the outcome."""
        first_time = (
            await session.execute(
                insert(self.inbox)
                .values(
                    consumer=self.name,
                    event_id=envelope.id,
                    event_type=envelope.type,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
                .on_conflict_do_nothing()
                .returning(self.inbox.c.event_id)
            )
        ).scalar_one_or_none()
        if first_time is None:
            return "duplicate"
        token = CURRENT_EVENT.set(envelope)
        try:
            await callback(session, data)
        finally:
            CURRENT_EVENT.reset(token)
        return "handled"

    async def dead_letter(self, record: ConsumerRecord, error: BaseException, *, attempts: int) -> None:
        """Publish the record unchanged to ``<topic>.dlq`` with the error in its headers."""
        headers = list(record.headers or ()) + [
            ("dlq_error", f"{error.__class__.__name__}: {error}"[:2000].encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        while True:
            try:
                await self.producer.send_and_wait(
                    dead_letter_topic(record.topic), value=record.value, key=record.key, headers=headers
                )
                break
            except KafkaError:
                # Without the dead letter stored we must not move past the record.
                log.exception("could not publish to the dead-letter topic; retrying")
                await asyncio.sleep(1)
        self._count(_header(record, "ce_type") or "unknown", "dead-lettered")
        log.error("parked message on %s: %s", dead_letter_topic(record.topic), error)


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode(errors="replace")
    return None
