"""The workers' "anything due?" probe (``services.dispatch.due``) against real PostgreSQL: an empty pass
asks it instead of claiming, so it must say yes for every row a claim would take (``due_or_abandoned``).

A database of its own (no dispatch app running), so that nothing but this test's rows is there and
nothing claims them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from closeloop.infra import scratch_database
from services.dispatch.due import any_due, due_sql
from services.dispatch.models import CrmCall, Notification
from shared.db import Database
from shared.events import new_id, utcnow

pytestmark = pytest.mark.integration

SQL = due_sql(Notification, CrmCall)


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Database]:
    async with scratch_database("due", services=["dispatch"]) as url:
        database = Database(url, pool_size=1)
        try:
            yield database
        finally:
            await database.dispose()


async def test_the_probe_says_yes_exactly_when_a_claim_would_find_a_row(db: Database) -> None:
    now = utcnow()
    stale = now - timedelta(minutes=5)
    assert not await any_due(db, SQL, now=now, stale=stale)  # nothing at all

    note_id = new_id()
    async with db.unit_of_work() as session:
        session.add(
            Notification(
                id=note_id,
                workspace_id="ws-due",
                notification_id=new_id(),
                channel="email",
                to="staff@example.test",
                subject="s",
                body="b",
                status="scheduled",
                attempts=0,
                next_attempt_at=now + timedelta(seconds=1),
            )
        )

    async def set_to(**values: object) -> None:
        async with db.unit_of_work() as session:
            await session.execute(update(Notification).where(Notification.id == note_id).values(**values))

    assert not await any_due(db, SQL, now=now, stale=stale)  # scheduled, not yet due
    assert await any_due(db, SQL, now=now + timedelta(seconds=1), stale=stale)  # due

    await set_to(status="sending", claimed_at=now)
    assert not await any_due(db, SQL, now=now + timedelta(days=1), stale=stale)  # claimed, in flight
    assert await any_due(db, SQL, now=now, stale=now + timedelta(seconds=1))  # claimed by one that stopped

    await set_to(status="sent", sent_at=now)
    assert not await any_due(db, SQL, now=now + timedelta(days=1), stale=now + timedelta(days=1))


async def test_a_probe_that_cannot_ask_says_yes_so_the_claim_runs() -> None:
    """No answer is not "nothing due": the pass claims as it did without a probe (and backs off if the
    database is down)."""
    unreachable = Database("postgresql+asyncpg://postgres@127.0.0.1:1/none", pool_size=1)
    try:
        assert await any_due(unreachable, SQL, now=utcnow(), stale=utcnow())
    finally:
        await unreachable.dispose()
