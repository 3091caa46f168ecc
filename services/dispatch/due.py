"""Whether a worker has anything to claim: one short statement instead of an empty claim.

The sender, the notifier and the crm worker poll twice a second. A claim that finds nothing costs a
session, a transaction and ORM statements (~3.5 ms of CPU a pass, bench/RESULTS.md); asking first
costs one statement of a fixed text, prepared once per connection, outside any transaction. Its
condition is ``due_or_abandoned``'s (scheduled and due, or claimed before ``stale``) without the
claims' other conditions, so it may say yes when the claim then finds nothing, never no when there is
something to claim. A probe that fails says yes: the claim runs, and fails or not as it would have.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.dispatch.unnest import table_of
from shared.db import Database

log = logging.getLogger(__name__)

_DUE = (
    "EXISTS (SELECT 1 FROM {table} WHERE (status = 'scheduled' AND next_attempt_at <= $1)"
    " OR (status = 'sending' AND claimed_at < $2))"
)


def due_sql(*models: Any) -> str:
    """Return one ``SELECT`` that is true when a table of ``models`` has a row ``due_or_abandoned``."""
    return "SELECT " + " OR ".join(_DUE.format(table=table_of(m).fullname) for m in models)


async def any_due(db: Database, sql: str, *, now: datetime, stale: datetime) -> bool:
    """Return whether ``sql`` (from ``due_sql``) finds a row to claim; True when it cannot tell."""
    try:
        async with db.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            if driver is None:  # only a connection already given back has none
                return True
            # The driver's own connection: no BEGIN/COMMIT around one read of committed rows.
            return bool(await driver.fetchval(sql, now, stale))
    except Exception as exc:  # nothing is lost: the claim runs and meets the same trouble, or not
        log.debug("due probe failed (%s); claiming anyway", exc)
        return True
