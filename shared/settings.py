"""Settings shared by every service.

Infrastructure variables (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``CLOSELOOP_SECRET_KEY`` …)
are read without a prefix so that one set of variables configures the whole stack; each
service adds its own fields under ``CLOSELOOP_<NAME>_``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal, Self

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.netguard import IPNetwork, OutboundGuard, parse_networks

if TYPE_CHECKING:
    from shared.access import Keyring

DEV_SECRET_KEY = "closeloop-dev-secret-change-me"
MIN_SECRET_BYTES = 32


class InsecureSecretKey(RuntimeError):
    """Outside development a service refuses to start without a proper ``CLOSELOOP_SECRET_KEY``."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class KafkaSettings(BaseSettings):
    """How every Kafka client (producer, consumers, admin, the CLI) reaches the brokers.

    Certificates and keys are file paths (a mounted Secret); ``shared.kafka.client_options`` turns
    these fields into the keyword arguments of every aiokafka client.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"))
    kafka_session_timeout_ms: int = Field(10_000, validation_alias=_env("KAFKA_SESSION_TIMEOUT_MS"))
    kafka_heartbeat_interval_ms: int = Field(3_000, validation_alias=_env("KAFKA_HEARTBEAT_INTERVAL_MS"))
    kafka_rebalance_timeout_ms: int = Field(30_000, validation_alias=_env("KAFKA_REBALANCE_TIMEOUT_MS"))
    kafka_fetch_max_wait_ms: int = Field(
        250,
        ge=1,
        validation_alias=_env("KAFKA_FETCH_MAX_WAIT_MS"),
        description="How long the broker may hold a consumer's fetch for records to arrive: each consumer "
        "group sends about one fetch per this interval, busy or idle (an idle group's polling is most of "
        "what it costs the broker). Tansu answers within about half of it once records are there.",
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        "PLAINTEXT",
        validation_alias=_env("KAFKA_SECURITY_PROTOCOL"),
        description="PLAINTEXT, SSL (TLS, optionally with a client certificate), SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_ssl_ca_file: str | None = Field(
        None,
        validation_alias=_env("KAFKA_SSL_CA_FILE"),
        description="PEM file of the CA(s) that signed the brokers' certificates; unset: the system's CAs.",
    )
    kafka_ssl_cert_file: str | None = Field(
        None,
        validation_alias=_env("KAFKA_SSL_CERT_FILE"),
        description="PEM client certificate (chain) for mutual TLS; needs KAFKA_SSL_KEY_FILE.",
    )
    kafka_ssl_key_file: str | None = Field(
        None,
        validation_alias=_env("KAFKA_SSL_KEY_FILE"),
        description="PEM private key of the client certificate.",
    )
    kafka_ssl_key_password: str | None = Field(
        None,
        validation_alias=_env("KAFKA_SSL_KEY_PASSWORD"),
        description="Password of an encrypted key file.",
    )
    kafka_ssl_check_hostname: bool = Field(
        True,
        validation_alias=_env("KAFKA_SSL_CHECK_HOSTNAME"),
        description="Verify that a broker's certificate names the host connected to (keep it on).",
    )
    kafka_sasl_mechanism: KafkaSaslMechanism = Field(
        "PLAIN",
        validation_alias=_env("KAFKA_SASL_MECHANISM"),
        description="With SASL_*: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.",
    )
    kafka_sasl_username: str | None = Field(None, validation_alias=_env("KAFKA_SASL_USERNAME"))
    kafka_sasl_password: str | None = Field(None, validation_alias=_env("KAFKA_SASL_PASSWORD"))
    kafka_sasl_oauth_token_provider: str | None = Field(
        None,
        validation_alias=_env("KAFKA_SASL_OAUTH_TOKEN_PROVIDER"),
        description="With OAUTHBEARER: 'module:factory', a callable returning an "
        "aiokafka.abc.AbstractTokenProvider (e.g. one that signs MSK IAM tokens).",
    )
    kafka_group_instance_id: str | None = Field(
        None,
        validation_alias=_env("KAFKA_GROUP_INSTANCE_ID"),
        description="A name stable across restarts of this process (the pod's name): consumers join as "
        "static members (group.instance.id), so a restart within the session timeout keeps its "
        "partitions without a rebalance. Unique per process; unset: dynamic membership.",
    )
    consumer_replicas: int = Field(
        1,
        ge=1,
        validation_alias=_env("CLOSELOOP_CONSUMER_REPLICAS"),
        description="The most consuming replicas a service will run (e.g. the KEDA maxReplicaCount): a "
        "consumer refuses to start when one of its topics has fewer partitions.",
    )


class ServiceSettings(KafkaSettings):
    """Fields every service has; subclasses set ``env_prefix`` for their own fields."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field(
        validation_alias=_env("DATABASE_URL"),
        description="PostgreSQL URL, e.g. postgresql://user:pass@host:5432/closeloop",
    )
    secret_key: str = Field(
        DEV_SECRET_KEY,
        validation_alias=_env("CLOSELOOP_SECRET_KEY"),
        description="Signs API keys, user tokens and survey links; the same value in every service, at "
        "least 32 bytes (e.g. `openssl rand -hex 32`).",
    )
    secret_key_previous: str | None = Field(
        None,
        validation_alias=_env("CLOSELOOP_SECRET_KEY_PREVIOUS"),
        description="During a rotation of CLOSELOOP_SECRET_KEY, the old value: what it signed (API keys, "
        "user tokens, survey links) is still accepted; nothing new is signed with it.",
    )
    env: Literal["development", "production"] = Field(
        "production",
        validation_alias=_env("CLOSELOOP_ENV"),
        description="production (the default) refuses to start without a proper CLOSELOOP_SECRET_KEY; "
        "development (make run, the tests) only warns.",
    )
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    log_format: str = Field("json", validation_alias=_env("LOG_FORMAT"))
    max_body_bytes: int = Field(256 * 1024, validation_alias=_env("CLOSELOOP_MAX_BODY_BYTES"))
    consumer_max_attempts: int = Field(5, validation_alias=_env("CLOSELOOP_CONSUMER_MAX_ATTEMPTS"))
    consumer_backoff_ms: int = Field(200, validation_alias=_env("CLOSELOOP_CONSUMER_BACKOFF_MS"))
    consumer_max_records: int = Field(
        500, ge=1, le=5000, validation_alias=_env("CLOSELOOP_CONSUMER_MAX_RECORDS")
    )
    """Records fetched at once; a batched consumer (scoring's, dispatch's outbound) handles that many of
    a partition in one transaction."""
    outbox_poll_interval_ms: int = Field(500, validation_alias=_env("CLOSELOOP_OUTBOX_POLL_INTERVAL_MS"))
    outbox_linger_ms: int = Field(
        20,
        ge=0,
        validation_alias=_env("CLOSELOOP_OUTBOX_LINGER_MS"),
        description="While events stream in, the relay waits this long after a pass before the next, "
        "so that each pass publishes more at once (fewer transactions and produce requests).",
    )
    revocation_poll_interval_ms: int = Field(
        1000,
        ge=50,
        validation_alias=_env("CLOSELOOP_REVOCATION_POLL_INTERVAL_MS"),
        description="How often each process that serves the API reads keys revoked since (from its "
        "service's revoked_keys table): a revoked key is refused within about twice this.",
    )
    key_usage_flush_interval_s: float = Field(
        30,
        gt=0,
        validation_alias=_env("CLOSELOOP_KEY_USAGE_FLUSH_INTERVAL_S"),
        description="How often each process that serves the API publishes when keys were last used (KeyUsed).",
    )
    role: str = Field(
        "all",
        validation_alias=_env("CLOSELOOP_ROLE"),
        description="What this process runs, comma-separated: all (the default) = the HTTP API and every "
        "background worker; api = the HTTP API only (background processes publish what it writes to "
        "the outbox); worker = every background worker and no API (its port serves health checks); or "
        "the names of single workers: relay (the outbox relay), consumer (the Kafka consumer), dlq_metrics (the dead-letter gauge) and the "
        "service's own loops (trigger: evaluator, scheduler; dispatch: sender, notifier; scoring: targets), e.g. "
        "'api,relay,consumer'.",
    )

    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        validation_alias=_env("CLOSELOOP_WORKER_NICE"),
        description="How much a worker process lowers its CPU priority, so that on a machine it "
        "shares with API processes answering requests comes first (a worker leading its own session "
        "lowers its Linux autogroup too); 0: the same priority.",
    )

    outbound_allow_networks: str = Field(
        "",
        validation_alias=_env("CLOSELOOP_OUTBOUND_ALLOW_NETWORKS"),
        description="Networks (comma-separated CIDRs) that URLs a tenant sets — chat, webhooks, SMS "
        "providers, CRMs — may reach although they are not public, e.g. 127.0.0.0/8,::1/128 for the dev "
        "stack and the tests or a partner's VPN range; empty: public addresses only.",
    )

    @classmethod
    def from_env(cls) -> Self:
        """Return the settings read from the environment (``DATABASE_URL`` is required there)."""
        return cls()  # the required fields come from the environment

    @field_validator("role")
    @classmethod
    def _role_parts(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",")]
        if not all(p.isidentifier() for p in parts):
            raise ValueError(
                "CLOSELOOP_ROLE is a comma-separated list of names such as 'all', 'api', 'worker'"
            )
        return ",".join(parts)

    @property
    def role_parts(self) -> frozenset[str]:
        return frozenset(self.role.split(","))

    @property
    def serves_api(self) -> bool:
        return bool(self.role_parts & {"all", "api"})

    def runs(self, worker: str) -> bool:
        """Whether this process runs the background worker named ``worker``."""
        return bool(self.role_parts & {"all", "worker", worker})

    def check_role(self, workers: set[str]) -> None:
        """Refuse a role that names a worker this service does not have."""
        unknown = self.role_parts - {"all", "api", "worker"} - workers
        if unknown:
            raise ValueError(
                f"CLOSELOOP_ROLE names {', '.join(sorted(unknown))}, which this service does not run; "
                f"choose from all, api, worker, {', '.join(sorted(workers))}"
            )

    @field_validator("outbound_allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            networks = parse_networks(value)
        except ValueError as exc:
            raise ValueError(
                f"CLOSELOOP_OUTBOUND_ALLOW_NETWORKS is a comma-separated list of CIDRs such as 127.0.0.0/8: {exc}"
            ) from exc
        return ",".join(str(n) for n in networks)

    @property
    def outbound_networks(self) -> tuple[IPNetwork, ...]:
        """The networks tenants' outbound URLs may reach besides public addresses."""
        return parse_networks(self.outbound_allow_networks)

    def outbound_guard(self) -> OutboundGuard:
        """Return the guard for tenant-set outbound URLs, with the operator's allowed networks."""
        return OutboundGuard(self.outbound_networks)

    @property
    def keyring(self) -> Keyring:
        """The secret that signs, and during a rotation the previous one that still verifies."""
        from shared.access import Keyring

        return Keyring(self.secret_key, self.secret_key_previous)

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        return value

    def secret_key_problem(self) -> str | None:
        """Return what is wrong with ``CLOSELOOP_SECRET_KEY`` (unset, the development value, too short)."""
        if not self.secret_key or self.secret_key == DEV_SECRET_KEY:
            return "CLOSELOOP_SECRET_KEY is not set (the built-in development value is in use)"
        if len(self.secret_key.encode()) < MIN_SECRET_BYTES:
            return f"CLOSELOOP_SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes"
        return None

    def check_secret_key(self, logger: logging.Logger) -> None:
        """Refuse to start outside development without a proper secret; in development, warn."""
        problem = self.secret_key_problem()
        if problem is None:
            return
        if self.env == "development":
            logger.warning(
                "%s; fine for development (CLOSELOOP_ENV=development), never in production", problem
            )
            return
        raise InsecureSecretKey(
            f"{problem}: refusing to start. Set CLOSELOOP_SECRET_KEY to a long random value, the same "
            "for every service (e.g. `openssl rand -hex 32`), or CLOSELOOP_ENV=development on a "
            "developer's machine."
        )
