"""The consumer's batch mode (``EventConsumer(batch=True, flush=…)``, which scoring runs with) against
the real broker and database: a batch commits together, a redelivered or repeated event counts once,
and a failing record sends the batch back to one-by-one handling with retries and dead letters."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition
from sqlalchemy import MetaData, select

from shared.db import Database
from shared.events import CUSTOMER_EVENTS, CloudEvent, CustomerEventReceived, dead_letter_topic
from shared.inbox import EventConsumer, inbox_table
from shared.kafka import create_consumer
from shared.settings import ServiceSettings
from tests.support.plumbing import GROUP_TIMEOUTS, consuming, customer_event, marked_effects, scratch_tables
from tests.support.stack import TopicReader, wait_until

pytestmark = pytest.mark.integration

metadata = MetaData(schema="scoring_batch_test")
inbox = inbox_table(metadata)
effects = marked_effects(metadata)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with scratch_tables(database_url, metadata) as database:
        yield database


def _event(marker: str, n: int | str) -> CustomerEventReceived:
    return customer_event("ws-batch", f"{marker}-{n}", contact_id=marker)


async def test_a_batch_counts_each_event_once_and_a_failing_record_is_parked_alone(
    db, producer, broker, database_url
):
    marker = "batch-" + secrets.token_hex(4)
    flushed: list[int] = []
    seen: list[str] = []

    async def record(session, event: CustomerEventReceived) -> None:
        if event.event_id.endswith("-fails"):
            raise RuntimeError("this event always fails")
        seen.append(event.event_id)
        session.info.setdefault("pending", []).append(event)

    async def flush(session) -> None:
        # The group reads every test's events on the topic: only this test's are counted here.
        pending = session.info.pop("pending", [])
        flushed.append(sum(1 for e in pending if e.contact_id == marker))
        if pending:
            await session.execute(
                effects.insert(),
                [
                    {"id": secrets.token_hex(8), "event_id": e.event_id, "marker": e.contact_id}
                    for e in pending
                ],
            )

    envelopes = []
    for n in (1, 2, "fails", 3):
        envelopes.append(CloudEvent.wrap(_event(marker, n), source="test"))
    envelopes.append(envelopes[0])  # redelivered in the same batch
    sent = None
    for envelope in envelopes:
        sent = await producer.send_and_wait(
            CUSTOMER_EVENTS, envelope.model_dump_json().encode(), key=f"ws-batch:{marker}".encode()
        )
    assert sent is not None
    settings = ServiceSettings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        **GROUP_TIMEOUTS,
    )
    consumer = EventConsumer(
        name="batch-test-" + marker,
        consumer=create_consumer(settings, group_id="batch-" + marker, topics=[CUSTOMER_EVENTS]),
        producer=producer,
        db=db,
        inbox=inbox,
        callbacks={CustomerEventReceived: record},
        max_attempts=2,
        backoff_s=0.01,
        batch=True,
        flush=flush,
    )
    async with (
        TopicReader(broker.bootstrap_servers, dead_letter_topic(CUSTOMER_EVENTS)) as dlq,
        consuming(consumer),
    ):
        tp = TopicPartition(CUSTOMER_EVENTS, sent.partition)

        async def committed() -> bool:
            return (await consumer.consumer.committed(tp) or 0) > sent.offset

        await wait_until(committed, message="the batch is committed")
        [parked] = await dlq.wait_for(lambda v: v["data"].get("event_id") == f"{marker}-fails")

    async with db.unit_of_work() as session:
        stored = sorted(await session.scalars(select(effects.c.event_id).where(effects.c.marker == marker)))
    assert stored == [f"{marker}-1", f"{marker}-2", f"{marker}-3"]
    assert parked["workspaceid"] == "ws-batch"
    assert all(n >= 0 for n in flushed) and sum(flushed) == 3
