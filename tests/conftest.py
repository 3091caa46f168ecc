"""Real infrastructure for the tests: PostgreSQL (``DATABASE_URL`` or embedded), a Tansu broker,
an SMTP server. Each test session gets its own database and broker, so runs never collide."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession

from closeloop.infra import Broker, scratch_broker, scratch_database
from closeloop.mailcatcher import MailCatcher
from shared.security import issue_api_key
from tests.support.db import rolled_back
from tests.support.stack import settings_from

SECRET_KEY = "test-secret-" + secrets.token_hex(16)
"""At least 32 bytes: what production requires (the tests also run with CLOSELOOP_ENV=development)."""
# Small group timeouts so that consumers (re)join the group in about a second.
KAFKA_TIMEOUTS = {
    "KAFKA_SESSION_TIMEOUT_MS": "2000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "300",
    "KAFKA_REBALANCE_TIMEOUT_MS": "1000",
}


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A migrated database of this test run alone (``DATABASE_URL``'s server, or a private embedded one)."""
    async with scratch_database("test") as url:
        yield url


@pytest.fixture
async def uow(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on the migrated database whose transaction is rolled back after the test (no broker):
    the middle tier, for handlers (see ``tests.support.db``)."""
    async with rolled_back(database_url) as session:
        yield session


@pytest.fixture(scope="session")
async def broker() -> AsyncIterator[Broker]:
    async with scratch_broker() as b:
        yield b


@pytest.fixture(scope="session")
def smtp() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture(scope="session")
def stack_env(database_url: str, broker: Broker, smtp: MailCatcher) -> dict[str, str]:
    """Environment variables that point every service at the test infrastructure."""
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "CLOSELOOP_SECRET_KEY": SECRET_KEY,
        "CLOSELOOP_ENV": "development",
        "CLOSELOOP_OUTBOX_POLL_INTERVAL_MS": "200",
        "CLOSELOOP_CONSUMER_BACKOFF_MS": "20",
        "CLOSELOOP_CONSUMER_MAX_ATTEMPTS": "3",
        "CLOSELOOP_DISPATCH_SMTP_HOST": "127.0.0.1",
        "CLOSELOOP_DISPATCH_SMTP_PORT": str(smtp.port),
        # The local stand-ins for providers and integrators listen on loopback.
        "CLOSELOOP_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
        "LOG_FORMAT": "text",
        **KAFKA_TIMEOUTS,
    }


@pytest.fixture(scope="session")
async def producer(broker: Broker) -> AsyncIterator[AIOKafkaProducer]:
    """Publishes test input onto topics, as another service's outbox relay would (see ``publish``)."""
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=False, acks="all")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
def settings_for(stack_env: dict[str, str]) -> Any:
    """``settings_for(SettingsClass, **overrides)``: service settings pointing at the test stack."""
    return lambda cls, **overrides: settings_from(cls, stack_env, **overrides)


@pytest.fixture
def workspace() -> str:
    """A fresh workspace per test: tenancy keeps tests apart in the shared database."""
    return "ws-" + secrets.token_hex(5)


@pytest.fixture
def api_key(workspace: str) -> str:
    return issue_api_key(SECRET_KEY, workspace)


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}
