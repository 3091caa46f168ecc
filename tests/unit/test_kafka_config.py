"""``shared.kafka.client_options``: the one place every Kafka client's security settings come from.

TLS is exercised against a real listener in tests/integration/test_kafka_tls.py. SASL is checked
here as configuration only: the dev broker cannot complete a SASL login (docs/operations.md).
"""

from __future__ import annotations

import ssl

import pytest
from aiokafka.abc import AbstractTokenProvider

from shared.kafka import KafkaConfigError, TooFewPartitions, check_partitions, client_options, create_consumer
from shared.settings import KafkaSettings


class StaticToken(AbstractTokenProvider):
    async def token(self) -> str:
        return "token-for-tests"


def make_provider() -> StaticToken:
    return StaticToken()


def kafka(**env: str) -> KafkaSettings:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return KafkaSettings()


def test_plaintext_by_default():
    assert client_options(kafka(KAFKA_BOOTSTRAP_SERVERS="k1:9092,k2:9092")) == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_ssl_builds_a_verifying_context_with_the_system_cas():
    options = client_options(kafka(KAFKA_SECURITY_PROTOCOL="SSL"))
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert "sasl_mechanism" not in options


def test_hostname_verification_can_be_turned_off_but_the_chain_is_still_verified():
    context = client_options(kafka(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CHECK_HOSTNAME="false"))[
        "ssl_context"
    ]
    assert not context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_a_client_certificate_needs_its_key():
    with pytest.raises(KafkaConfigError, match="KAFKA_SSL_KEY_FILE"):
        client_options(kafka(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CERT_FILE="/secrets/client.pem"))


def test_certificate_files_without_tls_are_a_mistake_not_ignored():
    with pytest.raises(KafkaConfigError, match="SSL or SASL_SSL"):
        client_options(kafka(KAFKA_SSL_CA_FILE="/secrets/ca.pem"))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_with_a_username_and_password(protocol: str, mechanism: str):
    options = client_options(
        kafka(
            KAFKA_SECURITY_PROTOCOL=protocol,
            KAFKA_SASL_MECHANISM=mechanism,
            KAFKA_SASL_USERNAME="closeloop",
            KAFKA_SASL_PASSWORD="s3cret",
        )
    )
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("closeloop", "s3cret")
    assert ("ssl_context" in options) == (protocol == "SASL_SSL")


def test_sasl_without_credentials_is_refused():
    with pytest.raises(KafkaConfigError, match="KAFKA_SASL_USERNAME"):
        client_options(kafka(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="SCRAM-SHA-512"))


def test_oauthbearer_loads_the_token_provider_hook():
    options = client_options(
        kafka(
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SASL_MECHANISM="OAUTHBEARER",
            KAFKA_SASL_OAUTH_TOKEN_PROVIDER=f"{__name__}:make_provider",
        )
    )
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(options["sasl_oauth_token_provider"], StaticToken)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (None, "needs KAFKA_SASL_OAUTH_TOKEN_PROVIDER"),
        ("no_colon_here", "module:factory"),
        ("shared.nowhere:factory", "cannot be imported"),
        ("shared.kafka:client_options_missing", "cannot be imported"),
        (f"{__name__}:kafka", "not an aiokafka.abc.AbstractTokenProvider"),
    ],
)
def test_a_bad_token_provider_is_named(path: str | None, message: str):
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "OAUTHBEARER"}
    if path:
        env["KAFKA_SASL_OAUTH_TOKEN_PROVIDER"] = path
    with pytest.raises(KafkaConfigError, match=message):
        client_options(kafka(**env))


async def test_consumers_join_as_static_members_with_a_group_instance_id():
    settings = kafka(KAFKA_GROUP_INSTANCE_ID="closeloop-dispatch-7d9f-abcde")
    consumer = create_consumer(settings, group_id="closeloop-dispatch", topics=["t"])
    assert consumer._group_instance_id == "closeloop-dispatch-7d9f-abcde"
    assert create_consumer(kafka(), group_id="closeloop-dispatch", topics=["t"])._group_instance_id is None
    # A reader without a group (the CLI) never claims the instance id.
    assert create_consumer(settings, group_id=None, topics=["t"])._group_instance_id is None


def test_a_group_with_more_replicas_than_partitions_is_refused():
    check_partitions("closeloop-scoring", {"a": 12, "b": 12}, ["a", "b"], 12)
    with pytest.raises(TooFewPartitions) as refused:
        check_partitions("closeloop-scoring", {"a": 12, "b": 6}, ["a", "b", "c"], 8)
    message = str(refused.value)
    assert "closeloop-scoring" in message and "b has 6" in message and "c has 0" in message
    assert "CLOSELOOP_CONSUMER_REPLICAS" in message
