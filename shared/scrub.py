"""Taking what an erasure removes out of the events still waiting in a service's outbox.

An erasure changes a service's tables in one transaction; the events that service wrote before it and
has not yet relayed would otherwise publish what was erased afterwards. ``scrub_pending`` rewrites
their payloads in the same transaction, under a row lock, so the relay publishes them scrubbed or has
already published them before the erasure began.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

Payload = dict[str, Any]


async def scrub_pending(
    session: AsyncSession, table: Table, *where: ColumnElement[bool], scrubbed: Callable[[Payload], Payload]
) -> int:
    """Replace the payload of each event in the outbox ``table`` that matches ``where`` by what
    ``scrubbed`` makes of it; return how many were changed."""
    rows = (await session.execute(select(table.c.seq, table.c.payload).where(*where).with_for_update())).all()
    for seq, payload in rows:
        await session.execute(update(table).where(table.c.seq == seq).values(payload=scrubbed(payload)))
    return len(rows)
