"""Settings shared by every service.

Infrastructure variables (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``CLOSELOOP_SECRET_KEY`` …)
are read without a prefix so that one set of variables configures the whole stack; each
service adds its own fields under ``CLOSELOOP_<NAME>_``.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "closeloop-dev-secret-change-me"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class ServiceSettings(BaseSettings):
    """Fields every service has; subclasses set ``env_prefix`` for their own fields."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field(
        validation_alias=_env("DATABASE_URL"),
        description="PostgreSQL URL, e.g. postgresql://user:pass@host:5432/closeloop",
    )
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"))
    kafka_session_timeout_ms: int = Field(10_000, validation_alias=_env("KAFKA_SESSION_TIMEOUT_MS"))
    kafka_heartbeat_interval_ms: int = Field(3_000, validation_alias=_env("KAFKA_HEARTBEAT_INTERVAL_MS"))
    kafka_rebalance_timeout_ms: int = Field(30_000, validation_alias=_env("KAFKA_REBALANCE_TIMEOUT_MS"))
    secret_key: str = Field(
        DEV_SECRET_KEY,
        validation_alias=_env("CLOSELOOP_SECRET_KEY"),
        description="Signs API keys and survey links; the same value in every service.",
    )
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    log_format: str = Field("json", validation_alias=_env("LOG_FORMAT"))
    max_body_bytes: int = Field(256 * 1024, validation_alias=_env("CLOSELOOP_MAX_BODY_BYTES"))
    consumer_max_attempts: int = Field(5, validation_alias=_env("CLOSELOOP_CONSUMER_MAX_ATTEMPTS"))
    consumer_backoff_ms: int = Field(200, validation_alias=_env("CLOSELOOP_CONSUMER_BACKOFF_MS"))
    outbox_poll_interval_ms: int = Field(500, validation_alias=_env("CLOSELOOP_OUTBOX_POLL_INTERVAL_MS"))
    run_consumers: bool = Field(True, validation_alias=_env("CLOSELOOP_RUN_CONSUMERS"))
    role: Literal["all", "api", "worker"] = Field(
        "all",
        validation_alias=_env("CLOSELOOP_ROLE"),
        description="all: the HTTP API and the background work (outbox relay, consumers, loops) in one "
        "process; api: the HTTP API only (workers publish what it writes to the outbox); worker: the "
        "background work only (its port serves health checks).",
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

    @property
    def runs_background(self) -> bool:
        return self.role != "api"

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        return value

    def warn_if_insecure(self, logger: logging.Logger) -> None:
        if self.secret_key == DEV_SECRET_KEY:
            logger.warning("CLOSELOOP_SECRET_KEY is not set: using the development key; set it in production")
