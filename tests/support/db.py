"""The middle tier of the tests: handlers against a real PostgreSQL session whose transaction is rolled
back at the end, with no broker (what would be published is read from the outbox rows).

Fast (no commit, no consumer group, no process), isolated (nothing a test writes survives it), and real
(the migrated schema, real SQL, real constraints). Polar's database fixture pattern.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from shared.events import CloudEvent, EventData


@asynccontextmanager
async def rolled_back(database_url: str) -> AsyncIterator[AsyncSession]:
    """Yield a session inside a transaction that is rolled back afterwards, whatever the test did.

    Handlers that ``commit`` or open ``begin_nested`` work on savepoints of the outer transaction.
    """
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            outer = await connection.begin()
            session = AsyncSession(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
            try:
                yield session
            finally:
                await session.close()
                await outer.rollback()
    finally:
        await engine.dispose()


async def outbox_events(session: AsyncSession, outbox: Table) -> list[EventData]:
    """Return the events written to ``outbox`` in this session's transaction, in order, parsed."""
    await session.flush()
    rows = (await session.execute(select(outbox.c.payload).order_by(outbox.c.seq))).scalars().all()
    return [CloudEvent.model_validate(row).parse_data() for row in rows]
