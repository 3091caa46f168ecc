"""Transactions and the outbox, as every handler uses them: a unit of work retried on a deadlock,
and outbox rows written in the caller's transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.events import CloudEvent, EventData
from shared.outbox import Outbox

log = logging.getLogger(__name__)
T = TypeVar("T")


def _retryable(exc: DBAPIError) -> bool:
    """Return whether ``exc`` is a conflict between writers that a second attempt can get past."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(
        getattr(exc.orig, "__cause__", None), "sqlstate", None
    )
    return code in ("40P01", "40001")  # deadlock detected, serialization failure


async def in_transaction(
    db: Database, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 3
) -> T:
    """Return ``work``'s result, committed; a deadlock between two writers is retried, not a 500."""
    for attempt in range(1, attempts + 1):
        try:
            async with db.unit_of_work() as session:
                return await work(session)
        except DBAPIError as exc:
            if attempt == attempts or not _retryable(exc):
                raise
            log.warning("transaction conflict (%s); retrying", exc.orig)
            await asyncio.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


def outbox_row(outbox: Outbox, data: EventData) -> dict[str, Any]:
    """Return the outbox row ``Outbox.add`` would write for ``data``, for one multi-row insert."""
    envelope = CloudEvent.wrap_json(data, source=outbox.source)
    return {"event_id": envelope["id"], "topic": data.topic, "key": data.partition_key(), "payload": envelope}


async def write_outbox(session: AsyncSession, outbox: Outbox, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (from ``outbox_row``) to the outbox in one statement, in the session's transaction."""
    if rows:
        await session.execute(outbox.table.insert(), rows)
        session.info["outbox_written"] = True
