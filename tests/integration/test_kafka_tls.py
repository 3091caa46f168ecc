"""Kafka over TLS for real: the outbox relay publishes and the inbox consumer handles events through
a TLS listener (with a CA the test makes, mutual TLS, hostname checks), and bad certificates are
refused. See ``tests/support/tls.py`` for why a TLS terminator stands in front of Tansu."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import Column, MetaData, String, Table, select

from shared.db import Database
from shared.events import CUSTOMER_EVENTS, CustomerEventReceived
from shared.inbox import EventConsumer, inbox_table
from shared.kafka import create_consumer, create_producer, ensure_topics
from shared.outbox import Outbox, OutboxRelay, outbox_table
from shared.settings import KafkaSettings, ServiceSettings
from tests.support.plumbing import GROUP_TIMEOUTS, consuming, customer_event, scratch_tables
from tests.support.stack import wait_until
from tests.support.tls import Authority, tls_broker

pytestmark = pytest.mark.integration

metadata = MetaData(schema="kafka_tls_test")
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
effects = Table("effects", metadata, Column("event_id", String(64), primary_key=True))


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with scratch_tables(database_url, metadata) as database:
        yield database


def tls_settings(servers: str, ca_file: Path, **extra: object) -> KafkaSettings:
    return KafkaSettings(
        kafka_bootstrap_servers=servers,
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=str(ca_file),
        **GROUP_TIMEOUTS,
        **extra,
    )


async def _record(session, event: CustomerEventReceived) -> None:
    await session.execute(effects.insert().values(event_id=event.event_id))


async def test_outbox_to_inbox_over_mutual_tls(ca: Authority, db: Database, database_url: str):
    """Topics are created, events published by the relay and consumed by a group, all over mutual TLS."""
    server = ca.issue("broker")
    client = ca.issue("closeloop-client", client=True)
    async with tls_broker(server, client_ca=ca.file) as broker:
        kafka = tls_settings(
            broker.bootstrap_servers,
            ca.file,
            kafka_ssl_cert_file=str(client.cert),
            kafka_ssl_key_file=str(client.key),
        )
        created = await ensure_topics(kafka, partitions=2, topics=[CUSTOMER_EVENTS])
        assert created == [CUSTOMER_EVENTS]
        # Run again, the topic is left as it is.
        assert await ensure_topics(kafka, partitions=6, topics=[CUSTOMER_EVENTS]) == []

        settings = ServiceSettings(database_url=database_url, **kafka.model_dump())
        producer = create_producer(settings)
        await producer.start()
        marker = secrets.token_hex(4)
        try:
            writer = Outbox(outbox, source="tls-test")
            async with db.unit_of_work() as session:
                for n in range(5):
                    await writer.add(session, customer_event("ws-tls", f"{marker}-{n}", contact_id=f"c{n}"))
            assert await OutboxRelay(db, outbox, producer).publish_pending() == 5

            consumer = EventConsumer(
                name="tls-test",
                consumer=create_consumer(settings, group_id="tls-" + marker, topics=[CUSTOMER_EVENTS]),
                producer=producer,
                db=db,
                inbox=inbox,
                callbacks={CustomerEventReceived: _record},
            )

            async def handled() -> bool:
                async with db.unit_of_work() as session:
                    rows = await session.scalars(
                        select(effects.c.event_id).where(effects.c.event_id.like(f"{marker}-%"))
                    )
                    return len(list(rows)) == 5

            async with consuming(consumer):
                await wait_until(handled, timeout_s=30, message="five events consumed over TLS")
        finally:
            await producer.stop()
        assert broker.accepted > 0


async def refused(kafka: KafkaSettings) -> None:
    producer = create_producer(kafka)
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()


async def accepted(kafka: KafkaSettings) -> None:
    producer = create_producer(kafka)
    try:
        await producer.start()
        await producer.send_and_wait("tls-probe", b"hello")
    finally:
        await producer.stop()


async def test_a_broker_certificate_of_another_ca_is_refused(ca: Authority, tmp_path: Path):
    other = Authority(tmp_path, name="some other CA")
    async with tls_broker(other.issue("impostor")) as broker:
        await refused(tls_settings(broker.bootstrap_servers, ca.file))
        await accepted(tls_settings(broker.bootstrap_servers, other.file))  # the same broker, its own CA


async def test_an_expired_broker_certificate_is_refused(ca: Authority):
    async with tls_broker(ca.issue("expired-broker", expired=True)) as broker:
        await refused(tls_settings(broker.bootstrap_servers, ca.file))


async def test_the_hostname_is_verified_unless_turned_off(ca: Authority):
    async with tls_broker(ca.issue("elsewhere", hosts=("kafka.elsewhere.example",))) as broker:
        await refused(tls_settings(broker.bootstrap_servers, ca.file))
        await accepted(tls_settings(broker.bootstrap_servers, ca.file, kafka_ssl_check_hostname=False))


async def test_mutual_tls_refuses_a_client_without_a_certificate(ca: Authority):
    stranger = Authority(ca.directory, name="untrusted client CA").issue("stranger", client=True)
    async with tls_broker(ca.issue("mtls-broker"), client_ca=ca.file) as broker:
        await refused(tls_settings(broker.bootstrap_servers, ca.file))
        await refused(
            tls_settings(
                broker.bootstrap_servers,
                ca.file,
                kafka_ssl_cert_file=str(stranger.cert),
                kafka_ssl_key_file=str(stranger.key),
            )
        )
