"""Topic provisioning keeps what exists; consumer groups refuse more replicas than partitions; static
membership (``KAFKA_GROUP_INSTANCE_ID``) works against the broker."""

from __future__ import annotations

import secrets

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from closeloop.infra import Broker
from services.followup.app import create_app
from services.followup.settings import FollowUpSettings
from shared.kafka import TooFewPartitions, create_consumer, ensure_topics, started_admin, topic_partitions
from shared.settings import KafkaSettings
from tests.support.stack import running, settings_from, wait_until

pytestmark = pytest.mark.integration


async def test_provisioning_leaves_existing_topics_and_their_partitions(broker: Broker):
    kafka = KafkaSettings(kafka_bootstrap_servers=broker.bootstrap_servers)
    topic = "provisioning-" + secrets.token_hex(4)
    assert await ensure_topics(kafka, partitions=2, topics=[topic]) == [topic]
    assert await ensure_topics(kafka, partitions=8, topics=[topic, topic + ".dlq"]) == [topic + ".dlq"]
    admin = await started_admin(kafka)
    try:
        assert await topic_partitions(admin, [topic, topic + ".dlq", "absent-" + topic]) == {
            topic: 2,
            topic + ".dlq": 8,
        }
    finally:
        await admin.close()


async def test_a_consumer_group_with_more_replicas_than_partitions_refuses_to_start(stack_env):
    """The test broker's topics have 3 partitions: a service configured for 4 replicas refuses."""
    settings = settings_from(FollowUpSettings, {**stack_env, "CLOSELOOP_CONSUMER_REPLICAS": "4"})
    with pytest.raises(TooFewPartitions, match=r"closeloop-followup.*up to 4 replicas"):
        async with running(create_app(settings)):
            pass


async def test_static_members_consume_and_rejoin_under_their_instance_id(
    broker: Broker, producer: AIOKafkaProducer
):
    topic = "static-" + secrets.token_hex(4)
    kafka = KafkaSettings(
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_group_instance_id="pod-a",
        kafka_session_timeout_ms=6000,
        kafka_heartbeat_interval_ms=300,
        kafka_rebalance_timeout_ms=1000,
    )
    await ensure_topics(kafka, partitions=1, topics=[topic])
    await producer.send_and_wait(topic, b"one")
    await producer.send_and_wait(topic, b"two")
    seen: list[bytes] = []
    for _ in range(2):  # the same pod twice, as after a restart
        consumer = create_consumer(kafka, group_id="static-" + topic, topics=[topic])
        await consumer.start()
        try:

            async def got_one(consumer: AIOKafkaConsumer = consumer) -> bool:
                batch = await consumer.getmany(timeout_ms=200, max_records=1)
                for tp, records in batch.items():
                    seen.extend(r.value for r in records)
                    await consumer.commit({tp: records[-1].offset + 1})
                return bool(batch)

            await wait_until(got_one, timeout_s=30, message="a record for the static member")
        finally:
            await consumer.stop()
    assert seen == [b"one", b"two"]
