"""The shared outbox, inbox and consumer machinery under test on its own: tables in a scratch schema of
the test database, consumer-group timeouts short enough to (re)join in about a second, and a customer
event to push through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Column, MetaData, String, Table

from shared.db import Database
from shared.events import CustomerEventReceived, utcnow
from shared.inbox import EventConsumer

GROUP_TIMEOUTS = {
    "kafka_session_timeout_ms": 2000,
    "kafka_heartbeat_interval_ms": 300,
    "kafka_rebalance_timeout_ms": 1000,
}
"""Keyword arguments of ``KafkaSettings`` (and ``ServiceSettings``): the conftest's ``KAFKA_TIMEOUTS``."""


@asynccontextmanager
async def scratch_tables(database_url: str, metadata: MetaData) -> AsyncIterator[Database]:
    """Yield a ``Database`` on ``database_url`` once ``metadata``'s schema and tables exist."""
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {metadata.schema}")
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


@asynccontextmanager
async def consuming(consumer: EventConsumer) -> AsyncIterator[EventConsumer]:
    """Start ``consumer`` and run it while the block runs; then stop it, wait for it to finish and close
    its Kafka consumer (which leaves the group)."""
    await consumer.consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        consumer.stop()
        await task
        await consumer.consumer.stop()


def marked_effects(metadata: MetaData) -> Table:
    """The table a test's handler writes its effects to: one row per handled event, marked with the test's
    ``marker`` (the partition may hold other tests' events)."""
    return Table(
        "effects",
        metadata,
        Column("id", String(36), primary_key=True, autoincrement=False),
        Column("event_id", String(64), nullable=False),
        Column("marker", String(64), nullable=False),
    )


def customer_event(workspace: str, event_id: str, *, contact_id: str) -> CustomerEventReceived:
    """A solved ticket of ``workspace`` with ``event_id`` (the source's id too), happening now."""
    return CustomerEventReceived(
        workspace_id=workspace,
        event_id=event_id,
        source="test",
        source_event_id=event_id,
        event_type="ticket.solved",
        occurred_at=utcnow(),
        contact_id=contact_id,
    )
