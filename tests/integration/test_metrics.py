"""The operator's metrics, against the real database and broker: outbox size and oldest age, consumer
lag and processing time, dead letters pending per topic, and a service's /metrics serving them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import Column, MetaData, String, Table, text

from closeloop.infra import Broker
from services.followup.app import create_app
from services.followup.settings import FollowUpSettings
from shared.db import Database
from shared.deadletters import DeadLetterMonitor
from shared.events import CloudEvent, CustomerEventReceived
from shared.inbox import EventConsumer, inbox_table
from shared.kafka import create_consumer, ensure_topics
from shared.outbox import Outbox, OutboxRelay, outbox_table
from shared.settings import KafkaSettings
from tests.support.plumbing import GROUP_TIMEOUTS, customer_event, scratch_tables
from tests.support.stack import running, settings_from, wait_until

pytestmark = pytest.mark.integration

metadata = MetaData(schema="metrics_test")
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
effects = Table("effects", metadata, Column("event_id", String(64), primary_key=True))


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with scratch_tables(database_url, metadata) as database:
        yield database


def _event(marker: str, n: int) -> CustomerEventReceived:
    return customer_event("ws-metrics", f"{marker}-{n}", contact_id=f"c{n}")


async def test_outbox_size_and_oldest_age(db: Database, producer: AIOKafkaProducer):
    relay = OutboxRelay(db, outbox, producer)
    async with db.unit_of_work() as session:
        await session.execute(text("DELETE FROM metrics_test.outbox"))
        await Outbox(outbox, source="metrics-test").add(session, _event(secrets.token_hex(3), 1))
        await session.execute(
            text("UPDATE metrics_test.outbox SET created_at = now() - interval '90 seconds'")
        )
        await Outbox(outbox, source="metrics-test").add(session, _event(secrets.token_hex(3), 2))
    pending, age = await relay.report_backlog(force=True)
    assert pending == 2 and 89 <= age < 120
    assert sample("closeloop_outbox_pending", outbox="metrics_test.outbox") == 2
    assert 89 <= (sample("closeloop_outbox_oldest_age_seconds", outbox="metrics_test.outbox") or 0) < 120

    assert await relay.publish_pending() == 2
    assert await relay.report_backlog(force=True) == (0, 0.0)
    assert sample("closeloop_outbox_oldest_age_seconds", outbox="metrics_test.outbox") == 0


async def test_consumer_lag_and_processing_time(db: Database, broker: Broker, producer: AIOKafkaProducer):
    marker = secrets.token_hex(4)
    topic = "metrics-" + marker
    kafka = KafkaSettings(
        kafka_bootstrap_servers=broker.bootstrap_servers,
        **GROUP_TIMEOUTS,
    )
    await ensure_topics(kafka, partitions=1, topics=[topic])

    async def record(session, event: CustomerEventReceived) -> None:
        await session.execute(effects.insert().values(event_id=event.event_id))

    name = "metrics-" + marker
    consumer = EventConsumer(
        name=name,
        consumer=create_consumer(kafka, group_id=name, topics=[topic]),
        producer=producer,
        db=db,
        inbox=inbox,
        callbacks={CustomerEventReceived: record},
    )

    async def publish(n: int) -> None:
        for i in range(n):
            envelope = CloudEvent.wrap(_event(marker, secrets.randbelow(10**9) * 10 + i), source="test")
            await producer.send_and_wait(topic, envelope.model_dump_json().encode(), key=b"k")

    await publish(4)
    await consumer.consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(
            lambda: sample("closeloop_event_processing_seconds_count", consumer=name) == 4,
            timeout_s=30,
            message="four events timed",
        )
        assert (sample("closeloop_event_delay_seconds_count", consumer=name) or 0) >= 1
        await wait_until(
            lambda: sample("closeloop_consumer_lag", consumer=name, topic=topic) == 0, timeout_s=10
        )
    finally:
        consumer.stop()
        await task
    # Stopped, it falls behind: the broker's end moves on, what it handled does not.
    await publish(3)
    tp = next(iter(consumer.consumer.assignment()))

    async def end_seen() -> bool:
        await consumer.consumer.getmany(timeout_ms=100)  # fetched, not handled
        return consumer.consumer.highwater(tp) == 7

    await wait_until(end_seen, timeout_s=10, message="the broker's new end seen")
    consumer._lag_due = 0.0
    consumer._report_lag()
    assert sample("closeloop_consumer_lag", consumer=name, topic=topic) == 3
    await consumer.consumer.stop()


async def test_dead_letters_pending_per_topic(broker: Broker, producer: AIOKafkaProducer):
    topic = "metrics-dlq-" + secrets.token_hex(4)
    kafka = KafkaSettings(kafka_bootstrap_servers=broker.bootstrap_servers)
    await ensure_topics(kafka, partitions=2, topics=[topic, topic + ".dlq"])
    for n in range(3):
        await producer.send_and_wait(topic + ".dlq", b"parked %d" % n, key=b"k%d" % n)
    monitor = DeadLetterMonitor(kafka, [topic])
    try:
        await monitor.before_pass()
        await monitor.work_once()
    finally:
        await monitor.after_run()
    assert sample("closeloop_dead_letters_pending", topic=topic + ".dlq") == 3


async def test_a_service_serves_the_operators_metrics(stack_env: dict[str, str]):
    settings = settings_from(FollowUpSettings, stack_env)
    async with running(create_app(settings)) as client:

        async def exposed() -> str | None:
            body = (await client.get("/metrics")).text
            wanted = (
                'closeloop_outbox_pending{outbox="followup.outbox"}',
                'closeloop_outbox_oldest_age_seconds{outbox="followup.outbox"}',
                'closeloop_dead_letters_pending{topic="customer-events.dlq"}',
                'closeloop_http_request_duration_seconds_bucket{le="0.005",route="/metrics",service="followup"}',
            )
            return body if all(w in body for w in wanted) else None

        await client.get("/metrics")  # a first request, so that its latency is recorded
        await wait_until(exposed, timeout_s=30, interval_s=0.2, message="the operator's metrics on /metrics")
