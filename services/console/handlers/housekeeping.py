"""The ``housekeeping`` worker: deletes what has ended — sessions past their end or idle, used or
expired password links, invitations and sign-on states, failed sign-ins older than the window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_

from services.console.models import Invitation, PasswordToken, Session, SignInFailure, SsoState
from services.console.settings import ConsoleSettings
from shared.clock import Clock
from shared.db import Database
from shared.worker import Worker

KEEP_USED = timedelta(days=30)
"""Used and expired links and invitations are kept this long (for questions such as "did she accept?")."""


class Housekeeping(Worker):
    name = "housekeeping"

    def __init__(self, db: Database, settings: ConsoleSettings, clock: Clock) -> None:
        super().__init__(poll_interval_s=settings.housekeeping_interval_s, batch=1_000_000)
        self.db = db
        self.settings = settings
        self.clock = clock

    async def work_once(self) -> int:
        """Delete what has ended; return how many rows."""
        now, s = self.clock.now(), self.settings
        idle = timedelta(minutes=s.session_idle_minutes)
        statements = [
            delete(Session).where(or_(Session.expires_at <= now, Session.last_seen_at <= now - idle)),
            delete(PasswordToken).where(PasswordToken.expires_at <= now - KEEP_USED),
            delete(Invitation).where(Invitation.expires_at <= now - KEEP_USED),
            delete(SsoState).where(SsoState.expires_at <= now),
            delete(SignInFailure).where(
                SignInFailure.failed_at <= now - timedelta(minutes=s.sign_in_window_minutes)
            ),
        ]
        deleted = 0
        async with self.db.unit_of_work() as session:
            for statement in statements:
                deleted += (await session.execute(statement)).rowcount  # type: ignore[attr-defined]
        return 0 if deleted < self.batch else deleted
