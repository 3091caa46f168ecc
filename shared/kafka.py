"""Kafka clients: producer, consumer and topic administration.

The dev and test broker (Tansu) has no idempotent producer and no transactions, so the
producer is configured without them; exactly-once effects come from the outbox and inbox.
Every client is configured by ``client_options`` (``KAFKA_*`` variables: TLS, mutual TLS, SASL).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import AbstractTokenProvider
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from shared.events import ALL_TOPICS
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


class KafkaConfigError(ValueError):
    """The ``KAFKA_*`` settings do not describe a usable client configuration."""


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Return the connection and security keyword arguments every aiokafka client takes.

    The one place that reads ``KAFKA_SECURITY_PROTOCOL`` and its companions: producers, consumers,
    the admin client and the CLI all connect the same way.
    """
    protocol = kafka.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.kafka_bootstrap_servers,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(kafka)
    elif kafka.kafka_ssl_ca_file or kafka.kafka_ssl_cert_file or kafka.kafka_ssl_key_file:
        raise KafkaConfigError(
            f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL is {protocol}: use SSL or SASL_SSL"
        )
    if protocol.startswith("SASL_"):
        options.update(_sasl_options(kafka))
    return options


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """Return the TLS context: the CA file (else the system's), the client certificate for mutual TLS."""
    if bool(kafka.kafka_ssl_cert_file) != bool(kafka.kafka_ssl_key_file):
        raise KafkaConfigError("mutual TLS needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=kafka.kafka_ssl_ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = kafka.kafka_ssl_check_hostname
    context.verify_mode = ssl.CERT_REQUIRED  # hostname checks may be off; the chain is always verified
    if kafka.kafka_ssl_cert_file and kafka.kafka_ssl_key_file:
        context.load_cert_chain(
            kafka.kafka_ssl_cert_file, kafka.kafka_ssl_key_file, password=kafka.kafka_ssl_key_password
        )
    return context


def _sasl_options(kafka: KafkaSettings) -> dict[str, Any]:
    mechanism = kafka.kafka_sasl_mechanism
    if mechanism == "OAUTHBEARER":
        if not kafka.kafka_sasl_oauth_token_provider:
            raise KafkaConfigError("KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_SASL_OAUTH_TOKEN_PROVIDER")
        return {"sasl_mechanism": mechanism, "sasl_oauth_token_provider": load_token_provider(kafka)}
    if not kafka.kafka_sasl_username or kafka.kafka_sasl_password is None:
        raise KafkaConfigError(f"SASL {mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": kafka.kafka_sasl_username,
        "sasl_plain_password": kafka.kafka_sasl_password,
    }


def load_token_provider(kafka: KafkaSettings) -> AbstractTokenProvider:
    """Import ``module:factory`` from ``KAFKA_SASL_OAUTH_TOKEN_PROVIDER`` and return what it builds."""
    path = kafka.kafka_sasl_oauth_token_provider or ""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise KafkaConfigError(f"KAFKA_SASL_OAUTH_TOKEN_PROVIDER is 'module:factory', not {path!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise KafkaConfigError(f"KAFKA_SASL_OAUTH_TOKEN_PROVIDER {path!r} cannot be imported: {exc}") from exc
    provider = factory() if not isinstance(factory, AbstractTokenProvider) else factory
    if not isinstance(provider, AbstractTokenProvider):
        raise KafkaConfigError(
            f"KAFKA_SASL_OAUTH_TOKEN_PROVIDER {path!r} gave {type(provider).__name__}, not an "
            "aiokafka.abc.AbstractTokenProvider"
        )
    return provider


def create_producer(settings: KafkaSettings, *, client_id: str = "closeloop") -> AIOKafkaProducer:
    """Return an (unstarted) producer that waits for all in-sync replicas."""
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        request_timeout_ms=15_000,
    )


def create_consumer(
    settings: KafkaSettings,
    *,
    group_id: str | None,
    topics: list[str],
    static: bool = True,
    fetch_max_wait_ms: int | None = None,
) -> AIOKafkaConsumer:
    """Return an (unstarted) consumer that never commits on its own.

    With ``KAFKA_GROUP_INSTANCE_ID`` set (and ``static``) it joins as a static member: a restart
    within the session timeout gets its partitions back without rebalancing the group.
    ``fetch_max_wait_ms`` (else ``KAFKA_FETCH_MAX_WAIT_MS``) is longer for groups that can wait.
    """
    instance = settings.kafka_group_instance_id if static and group_id else None
    return AIOKafkaConsumer(
        *topics,
        **client_options(settings),
        group_id=group_id,
        client_id=group_id or "closeloop",
        group_instance_id=instance,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
        max_poll_records=200,
        fetch_max_wait_ms=fetch_max_wait_ms or settings.kafka_fetch_max_wait_ms,
    )


def create_admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), client_id="closeloop-admin")


def event_headers(
    *, event_id: str, event_type: str, source: str, traceparent: str | None = None
) -> list[tuple[str, bytes]]:
    """CloudEvents attributes as ``ce_`` headers, so consumers can skip types without parsing (and
    tracing tools see the trace: the distributed-tracing extension's ``ce_traceparent``)."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_type", event_type.encode()),
        ("ce_source", source.encode()),
        ("content-type", b"application/cloudevents+json"),
    ]
    if traceparent:
        headers.append(("ce_traceparent", traceparent.encode()))
    return headers


async def ensure_topics(
    kafka: KafkaSettings | str,
    *,
    partitions: int = 3,
    replication: int = 1,
    timeout_s: float = 30,
    topics: list[str] | None = None,
) -> list[str]:
    """Create every closeloop topic that does not exist yet; return the ones created.

    Existing topics are left as they are, whatever their partition count or replication (change
    those with your Kafka tooling); one with fewer partitions than asked for is logged.
    """
    settings = KafkaSettings(kafka_bootstrap_servers=kafka) if isinstance(kafka, str) else kafka
    wanted = topics if topics is not None else list(ALL_TOPICS)
    admin = await started_admin(settings, timeout_s=timeout_s)
    try:
        existing = await topic_partitions(admin, wanted)
        for topic, count in sorted(existing.items()):
            if count < partitions:
                log.warning(
                    "topic %s exists with %d partitions (fewer than %d asked for); left as it is",
                    topic,
                    count,
                    partitions,
                )
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        await admin.close()


async def started_admin(settings: KafkaSettings, *, timeout_s: float = 30) -> AIOKafkaAdminClient:
    """Return a started admin client, retrying (with a fresh client) while the brokers are not up."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = create_admin(settings)
        try:
            await admin.start()
            return admin
        except KafkaConnectionError:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def topic_partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Return the partition count of each of ``topics`` that exists."""
    present = set(await admin.list_topics())
    wanted = [t for t in topics if t in present]
    if not wanted:
        return {}
    described = await admin.describe_topics(wanted)
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


class TooFewPartitions(RuntimeError):
    """A consumer group would have more replicas than its topics have partitions."""


def check_partitions(group: str, partitions: dict[str, int], topics: list[str], replicas: int) -> None:
    """Refuse a consumer group whose replicas would outnumber a topic's partitions (idle replicas:
    Kafka gives each partition to one member, so autoscaling past the count adds nothing)."""
    short = {t: partitions.get(t, 0) for t in topics if partitions.get(t, 0) < replicas}
    if short:
        listed = ", ".join(f"{t} has {n}" for t, n in sorted(short.items()))
        raise TooFewPartitions(
            f"consumer group {group} is configured for up to {replicas} replicas "
            f"(CLOSELOOP_CONSUMER_REPLICAS) but {listed} partitions: each partition feeds one replica, so "
            f"add partitions to the topic (at least {replicas}) or lower CLOSELOOP_CONSUMER_REPLICAS "
            "and the autoscaler's maximum"
        )
