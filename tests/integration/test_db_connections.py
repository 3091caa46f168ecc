"""The pool of ``shared.db.Database`` against the real server: connections the server closed are
replaced before anyone uses them, without a round trip on every checkout."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from shared import db as shared_db
from shared.db import Database, driver_dsn
from tests.support.stack import wait_until

pytestmark = pytest.mark.integration


async def backend_pid(database: Database) -> int:
    async with database.unit_of_work() as session:
        return int(await session.scalar(select(func.pg_backend_pid())))


async def pooled_driver_connection(database: Database) -> Any:
    """The asyncpg connection the pool holds (``pool_size=1``), as the pool's checks see it."""
    async with database.engine.connect() as conn:
        return (await conn.get_raw_connection()).driver_connection


async def test_a_connection_the_server_closed_is_replaced_without_an_error(database_url: str) -> None:
    database = Database(database_url, pool_size=1)
    admin = await asyncpg.connect(driver_dsn(database_url))
    try:
        pid = await backend_pid(database)
        pooled = await pooled_driver_connection(database)
        # What a PostgreSQL restart or failover does to every pooled connection.
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await wait_until(pooled.is_closed, message="the driver has seen the server close the connection")

        assert await backend_pid(database) != pid
    finally:
        await admin.close()
        await database.dispose()


async def test_a_live_connection_idle_past_the_ping_threshold_is_kept(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_db, "PING_IDLE_S", 0.0)  # every checkout pings
    database = Database(database_url, pool_size=1)
    try:
        first = await backend_pid(database)

        assert await backend_pid(database) == first
    finally:
        await database.dispose()
