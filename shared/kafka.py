"""Kafka clients: producer, consumer and topic administration.

The dev and test broker (Tansu) has no idempotent producer and no transactions, so the
producer is configured without them; exactly-once effects come from the outbox and inbox.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from shared.events import ALL_TOPICS
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


def create_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """Return an (unstarted) producer that waits for all in-sync replicas."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="closeloop",
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        request_timeout_ms=15_000,
    )


def create_consumer(settings: ServiceSettings, *, group_id: str, topics: list[str]) -> AIOKafkaConsumer:
    """Return an (unstarted) consumer that never commits on its own."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
        max_poll_records=200,
        fetch_max_wait_ms=100,
    )


def event_headers(*, event_id: str, event_type: str, source: str) -> list[tuple[str, bytes]]:
    """CloudEvents attributes as ``ce_`` headers, so consumers can skip types without parsing."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_type", event_type.encode()),
        ("ce_source", source.encode()),
        ("content-type", b"application/cloudevents+json"),
    ]


async def ensure_topics(
    bootstrap_servers: str, *, partitions: int = 3, replication: int = 1, timeout_s: float = 30
) -> list[str]:
    """Create every closeloop topic that does not exist yet; return the ones created."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="closeloop-admin")
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in ALL_TOPICS if t not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        await admin.close()
