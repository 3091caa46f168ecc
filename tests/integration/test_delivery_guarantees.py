"""The consumer loop of ``shared.inbox`` against the real broker and database: redelivery after
a crash between database commit and offset commit, poison messages, retries, dead letters."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition
from sqlalchemy import MetaData, func, select

from shared.db import Database
from shared.events import CUSTOMER_EVENTS, CloudEvent, CustomerEventReceived, dead_letter_topic
from shared.inbox import EventConsumer, inbox_table
from shared.kafka import create_consumer
from shared.outbox import Outbox, OutboxRelay, outbox_table
from shared.settings import ServiceSettings
from tests.support.plumbing import GROUP_TIMEOUTS, consuming, customer_event, marked_effects, scratch_tables
from tests.support.stack import TopicReader, wait_until

pytestmark = pytest.mark.integration

metadata = MetaData(schema="delivery_test")
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
effects = marked_effects(metadata)


class Crash(Exception):
    """Stands for the process dying: raised where the offset commit would happen."""


class CrashBeforeOffsetCommit(EventConsumer):
    """Dies right before committing the offset of the record under test."""

    target: TopicPartition
    offset: int
    """The record under test: the partition may hold other tests' records before it."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if offsets.get(self.target, -1) > self.offset:
            raise Crash
        await super().commit(offsets)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with scratch_tables(database_url, metadata) as database:
        yield database


def _event(marker: str, n: int) -> CustomerEventReceived:
    return customer_event("ws-delivery", f"{marker}-{n}", contact_id=marker)


async def _publish(producer, event: CustomerEventReceived):
    """Return the record metadata (partition, offset) of the published event."""
    envelope = CloudEvent.wrap(event, source="test")
    return await producer.send_and_wait(
        CUSTOMER_EVENTS, envelope.model_dump_json().encode(), key=event.partition_key().encode()
    )


def _settings(database_url: str, broker) -> ServiceSettings:
    return ServiceSettings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        **GROUP_TIMEOUTS,
    )


async def _record_effect(session, event: CustomerEventReceived) -> None:
    if event.event_id.endswith("-fails"):
        raise RuntimeError("this event always fails")
    await session.execute(
        effects.insert().values(id=secrets.token_hex(8), event_id=event.event_id, marker=event.contact_id)
    )


async def _effects(db: Database, marker: str) -> list[str]:
    async with db.unit_of_work() as session:
        return list(
            await session.scalars(
                select(effects.c.event_id).where(effects.c.marker == marker).order_by(effects.c.event_id)
            )
        )


def _consumer(cls, db, settings, producer, group: str) -> EventConsumer:
    kafka = create_consumer(settings, group_id=group, topics=[CUSTOMER_EVENTS])
    return cls(
        name="delivery-test",
        consumer=kafka,
        producer=producer,
        db=db,
        inbox=inbox,
        callbacks={CustomerEventReceived: _record_effect},
        max_attempts=3,
        backoff_s=0.01,
    )


async def test_crash_after_db_commit_before_offset_commit_does_not_duplicate(
    db, producer, broker, database_url
):
    marker = "crash-" + secrets.token_hex(4)
    group = "delivery-" + marker
    settings = _settings(database_url, broker)
    published = await _publish(producer, _event(marker, 1))
    target = TopicPartition(CUSTOMER_EVENTS, published.partition)

    crashing = _consumer(CrashBeforeOffsetCommit, db, settings, producer, group)
    crashing.target = target
    crashing.offset = published.offset
    await crashing.consumer.start()
    with pytest.raises(Crash):
        await asyncio.wait_for(crashing.run(), timeout=60)
    await crashing.consumer.stop()  # leaves the group without committing anything
    assert await _effects(db, marker) == [f"{marker}-1"]

    survivor = _consumer(EventConsumer, db, settings, producer, group)
    async with consuming(survivor):

        async def committed_past_event() -> bool:
            return (await survivor.consumer.committed(target) or 0) > published.offset

        # The survivor received the redelivered record and committed it...
        await wait_until(
            committed_past_event, timeout_s=60, message="survivor commits the redelivered offset"
        )
    # ...and the inbox made the redelivery a no-op.
    assert await _effects(db, marker) == [f"{marker}-1"]


async def test_poison_and_failing_messages_are_dead_lettered_and_the_partition_moves_on(
    db, producer, broker, database_url
):
    marker = "poison-" + secrets.token_hex(4)
    settings = _settings(database_url, broker)
    key = f"ws-delivery:{marker}".encode()
    await _publish(producer, _event(marker, 1))
    poison = b"{this is not json " + marker.encode()
    await producer.send_and_wait(CUSTOMER_EVENTS, poison, key=key)
    await _publish(
        producer, CustomerEventReceived(**{**_event(marker, 2).model_dump(), "event_id": f"{marker}-fails"})
    )
    await _publish(producer, _event(marker, 3))

    consumer = _consumer(EventConsumer, db, settings, producer, "delivery-" + marker)
    async with consuming(consumer):
        async with TopicReader(broker.bootstrap_servers, dead_letter_topic(CUSTOMER_EVENTS)) as dlq:
            await wait_until(
                lambda: _has_effects(db, marker, 2), timeout_s=60, message="events behind the poison"
            )
            parked = await dlq.wait_for(
                lambda v: v == poison or (isinstance(v, dict) and v["data"]["event_id"] == f"{marker}-fails"),
                count=2,
                timeout_s=30,
                raw=True,
            )
            # Only what this consumer parked: other consumer groups may read the same topic.
            errors = {
                _header(r, "dlq_error").split(":")[0]
                for r in dlq.records
                if marker.encode() in r.value and _header(r, "dlq_consumer") == "delivery-test"
            }
    assert await _effects(db, marker) == [f"{marker}-1", f"{marker}-3"]
    assert len(parked) == 2
    assert {"ValidationError", "RuntimeError"} <= errors


async def _has_effects(db: Database, marker: str, count: int) -> bool:
    return len(await _effects(db, marker)) >= count


def _header(record, name: str) -> str:
    return next(v.decode() for k, v in record.headers if k == name)


async def test_a_handler_that_fails_once_is_retried_and_succeeds(db, producer, broker, database_url):
    marker = "retry-" + secrets.token_hex(4)
    settings = _settings(database_url, broker)
    attempts: list[str] = []

    async def flaky(session, event: CustomerEventReceived) -> None:
        attempts.append(event.event_id)
        if len(attempts) == 1:
            raise ConnectionError("database hiccup")
        await _record_effect(session, event)

    await _publish(producer, _event(marker, 1))
    kafka = create_consumer(settings, group_id="delivery-" + marker, topics=[CUSTOMER_EVENTS])
    consumer = EventConsumer(
        name="delivery-test",
        consumer=kafka,
        producer=producer,
        db=db,
        inbox=inbox,
        callbacks={CustomerEventReceived: lambda s, e: flaky(s, e) if e.contact_id == marker else _noop()},
        max_attempts=3,
        backoff_s=0.01,
    )
    async with consuming(consumer):
        await wait_until(lambda: _has_effects(db, marker, 1), timeout_s=60, message="retried event handled")
    assert attempts == [f"{marker}-1", f"{marker}-1"]
    assert await _effects(db, marker) == [f"{marker}-1"]


async def _noop() -> None:
    return None


async def test_the_relay_publishes_in_order_with_headers_and_only_one_relay_runs_at_a_time(
    db, producer, broker
):
    marker = "relay-" + secrets.token_hex(4)
    writer = Outbox(outbox, source="test")
    async with db.unit_of_work() as session:
        stored = [await writer.add(session, _event(marker, n)) for n in range(3)]
    relay = OutboxRelay(db, outbox, producer)
    rival = OutboxRelay(db, outbox, producer)

    # Another replica's relay holds the lock: this one publishes nothing and marks nothing.
    async with db.unit_of_work() as other_replica:
        await other_replica.execute(select(func.pg_advisory_xact_lock(rival._lock_key)))
        assert await relay.publish_pending() == 0
    assert await relay.publish_pending() >= 3
    assert await relay.publish_pending() == 0  # everything is marked published

    async with TopicReader(broker.bootstrap_servers, CUSTOMER_EVENTS) as reader:
        records = await reader.wait_for(lambda v: v["data"].get("contact_id") == marker, count=3)
        raw = [r for r in reader.records if marker.encode() in r.value]
    assert [r["id"] for r in records] == [e.id for e in stored]
    assert [CloudEvent.model_validate(r) for r in records] == stored
    assert all(dict(r.headers)["ce_type"] == b"closeloop.CustomerEventReceived.v1" for r in raw)
    assert [dict(r.headers)["ce_id"].decode() for r in raw] == [e.id for e in stored]
    assert {r.key for r in raw} == {f"ws-delivery:{marker}".encode()}


async def test_events_of_types_without_a_handler_are_skipped_by_their_header(
    db, producer, broker, database_url
):
    marker = "skip-" + secrets.token_hex(4)
    key = f"ws-delivery:{marker}".encode()
    # Another service's event type, with a body this consumer could not even parse: not its business.
    await producer.send_and_wait(
        CUSTOMER_EVENTS,
        b"{not json " + marker.encode(),
        key=key,
        headers=[("ce_type", b"closeloop.ContactErased.v1")],
    )
    last = await _publish(producer, _event(marker, 1))
    consumer = _consumer(EventConsumer, db, _settings(database_url, broker), producer, "delivery-" + marker)
    async with consuming(consumer):
        await wait_until(lambda: _has_effects(db, marker, 1), timeout_s=60, message="the handled event")
        target = TopicPartition(CUSTOMER_EVENTS, last.partition)
        await wait_until(
            lambda: _committed_past(consumer, target, last.offset), timeout_s=30, message="offset committed"
        )
    async with TopicReader(broker.bootstrap_servers, dead_letter_topic(CUSTOMER_EVENTS)) as dlq:
        await dlq.read_to_end()
    assert not [r for r in dlq.records if marker.encode() in r.value]


async def _committed_past(consumer: EventConsumer, tp: TopicPartition, offset: int) -> bool:
    return (await consumer.consumer.committed(tp) or 0) > offset
