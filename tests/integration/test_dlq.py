"""``closeloop dlq`` against the real broker: what a consumer parked is listed, shown, replayed to
its topic with its original key and headers (the inbox still deduplicates) and purged; dry runs
change nothing."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select

from closeloop.infra import Broker
from shared.db import Database
from shared.deadletters import DeadLetters
from shared.events import CloudEvent, CustomerEventReceived
from shared.inbox import EventConsumer, inbox_table
from shared.kafka import create_consumer, create_producer, ensure_topics
from shared.observability import EVENTS_CONSUMED
from shared.settings import KafkaSettings
from tests.support.plumbing import GROUP_TIMEOUTS, consuming, customer_event, scratch_tables
from tests.support.stack import TopicReader, wait_until

pytestmark = pytest.mark.integration

metadata = MetaData(schema="dlq_test")
inbox = inbox_table(metadata)
effects = Table("effects", metadata, Column("event_id", String(64), primary_key=True))
EVENT_TYPE = CustomerEventReceived.type_name()


class Handler:
    def __init__(self) -> None:
        self.broken = True

    async def __call__(self, session, event: CustomerEventReceived) -> None:
        if self.broken:
            raise RuntimeError(f"the CRM is down for {event.event_id}")
        await session.execute(effects.insert().values(event_id=event.event_id))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with scratch_tables(database_url, metadata) as database:
        yield database


async def cli(broker: Broker, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closeloop.cli",
        "dlq",
        *args,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


def pending(listing: str, topic: str) -> int:
    for line in listing.splitlines():
        if line.split()[:1] == [topic]:
            return int(line.split()[1])
    raise AssertionError(f"{topic} not listed:\n{listing}")


async def count(db: Database, marker: str) -> int:
    async with db.unit_of_work() as session:
        return await session.scalar(
            select(func.count()).select_from(effects).where(effects.c.event_id.like(f"{marker}-%"))
        )


async def test_dead_letters_are_listed_shown_replayed_and_purged(broker: Broker, db: Database):
    marker = secrets.token_hex(4)
    topic, dlq = f"dlqtest-{marker}", f"dlqtest-{marker}.dlq"
    kafka = KafkaSettings(
        kafka_bootstrap_servers=broker.bootstrap_servers,
        **GROUP_TIMEOUTS,
    )
    await ensure_topics(kafka, partitions=2, topics=[topic, dlq])
    producer = create_producer(kafka)
    await producer.start()
    handler = Handler()
    consumer = EventConsumer(
        name="dlq-test-" + marker,
        consumer=create_consumer(kafka, group_id="dlq-test-" + marker, topics=[topic]),
        producer=producer,
        db=db,
        inbox=inbox,
        callbacks={CustomerEventReceived: handler},
        max_attempts=2,
        backoff_s=0.01,
    )
    try:
        async with consuming(consumer):
            sent = {}
            for n in range(3):
                event = customer_event("ws-dlq", f"{marker}-{n}", contact_id=f"contact-{n}")
                envelope = CloudEvent.wrap(event, source="test")
                headers = [
                    ("ce_id", envelope.id.encode()),
                    ("ce_type", EVENT_TYPE.encode()),
                    ("trace", b"t-%d" % n),
                ]
                await producer.send_and_wait(
                    topic,
                    envelope.model_dump_json().encode(),
                    key=event.partition_key().encode(),
                    headers=headers,
                )
                sent[envelope.id] = (event.partition_key().encode(), headers)

            async def parked() -> bool:
                return pending(await cli(broker, "list"), dlq) == 3

            await wait_until(parked, timeout_s=60, interval_s=0.5, message="three records parked")

            shown = [json.loads(line) for line in (await cli(broker, "show", topic)).splitlines()]
            assert {r["event_id"] for r in shown} == set(sent)
            assert all("the CRM is down" in r["error"] and r["original_topic"] == topic for r in shown)
            assert all(r["consumer"] == consumer.name and r["attempts"] == "2" for r in shown)

            dry = await cli(broker, "replay", topic, "--dry-run")
            assert "would replay 3 of 3 pending" in dry
            assert pending(await cli(broker, "list"), dlq) == 3

            async with TopicReader(broker.bootstrap_servers, topic) as reader:
                handler.broken = False  # the CRM is back
                assert "replayed 3 of 3 pending" in await cli(broker, "replay", dlq)
                assert pending(await cli(broker, "list"), dlq) == 0
                await wait_until(
                    lambda: _count_is(db, marker, 3),
                    timeout_s=30,
                    message="all three replayed events handled",
                )
                # Each replayed record carries its original key and headers, none of the dlq_ ones.
                await reader.wait_for(lambda v: True, count=6, raw=True)
                replayed = reader.records[3:6]
                for record in replayed:
                    headers = list(record.headers)
                    ce_id = dict(headers)["ce_id"].decode()
                    assert (record.key, headers) == sent[ce_id]

            # Replaying the same records again (another mark, as if two operators replayed): the inbox skips them.
            duplicates = EVENTS_CONSUMED.labels(consumer.name, EVENT_TYPE, "duplicate")
            before = duplicates._value.get()
            async with DeadLetters(kafka, group="another-operator-" + marker) as other:
                assert await other.replay(await other.read(await other.backlog(topic))) == 3
            await wait_until(
                lambda: duplicates._value.get() - before == 3, timeout_s=30, message="three duplicates"
            )
            assert await count(db, marker) == 3

            # Purge: a dry run changes nothing, then the record is marked dealt with without a replay.
            handler.broken = True
            await producer.send_and_wait(topic, b"not even JSON", key=b"poison")
            await wait_until(parked_one(broker, dlq), timeout_s=30, interval_s=0.5, message="poison parked")
            assert "would purge 1 pending" in await cli(broker, "purge", topic, "--dry-run")
            assert pending(await cli(broker, "list"), dlq) == 1
            assert "purged 1 pending" in await cli(broker, "purge", topic)
            assert pending(await cli(broker, "list"), dlq) == 0
            assert await count(db, marker) == 3
    finally:
        await producer.stop()


async def _count_is(db: Database, marker: str, n: int) -> bool:
    return await count(db, marker) == n


def parked_one(broker: Broker, dlq: str):
    async def check() -> bool:
        return pending(await cli(broker, "list"), dlq) == 1

    return check
