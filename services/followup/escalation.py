"""The escalation scheduler: a ``Worker`` that applies the ladder's due steps, pass after pass.

It survives restarts (all its state is in the database: each case's row in ``escalation_schedule``
and the ``escalations`` it has had) and replicas (cases are claimed with ``FOR UPDATE SKIP LOCKED``; the
(case, step) primary key is the final guarantee). Time comes from an injectable ``Clock``.
"""

from __future__ import annotations

from services.followup.handlers.escalate import escalate_due
from shared.clock import Clock
from shared.db import Database
from shared.outbox import Outbox
from shared.worker import Worker


class EscalationScheduler(Worker):
    name = "escalator"

    def __init__(
        self, db: Database, outbox: Outbox, clock: Clock, *, poll_interval_s: float = 5.0, batch: int = 2000
    ) -> None:
        super().__init__(poll_interval_s=poll_interval_s, batch=batch)
        self.db = db
        self.outbox = outbox
        self.clock = clock

    async def work_once(self) -> int:
        """Claim up to ``batch`` due cases in one transaction and escalate them; return how many."""
        async with self.db.unit_of_work() as session:
            return await escalate_due(session, self.outbox, now=self.clock.now(), limit=self.batch)
