"""The anonymiser: once a day per workspace with a retention policy, ``AnonymisationDue``.

It is a ``shared.worker.Worker`` named ``anonymiser``: each pass publishes the day's run of every
workspace that has a policy and no run on the clock's UTC day yet (``handlers.retention.run``, one
transaction per workspace), and then looks again after ``poll_interval_s`` — so a day's runs go out
within that long after midnight UTC, and a new policy's first run at once (setting one wakes it). Any
number of replicas can run it: the day's row makes the second one publish nothing.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.handlers import retention
from services.trigger.handlers.tx import in_transaction
from shared.clock import Clock
from shared.db import Database
from shared.outbox import Outbox
from shared.worker import Worker


class Anonymiser(Worker):
    """Publishes each workspace's daily ``AnonymisationDue``."""

    name = "anonymiser"

    def __init__(
        self, db: Database, outbox: Outbox, *, clock: Clock, poll_interval_s: float = 300, batch: int = 100
    ) -> None:
        super().__init__(poll_interval_s=poll_interval_s, batch=batch)
        self.db = db
        self.outbox = outbox
        self.clock = clock

    async def work_once(self) -> int:
        """Return how many workspaces' runs this pass published."""
        now = self.clock.now()
        due = await in_transaction(self.db, functools.partial(_due, now=now, limit=self.batch))
        published = 0
        for workspace_id, days in due:
            run = functools.partial(_run, outbox=self.outbox, workspace_id=workspace_id, days=days, now=now)
            published += await in_transaction(self.db, run)
        return published


async def _due(session: AsyncSession, *, now: datetime, limit: int) -> list[tuple[str, int]]:
    """Return the workspaces whose run of ``now``'s day is due, with their policy's days."""
    return await retention.due(session, now=now, limit=limit)


async def _run(session: AsyncSession, *, outbox: Outbox, workspace_id: str, days: int, now: datetime) -> int:
    """Return 1 when this call published the workspace's run, 0 when another replica had."""
    return int(await retention.run(session, outbox, workspace_id=workspace_id, days=days, now=now))
