"""The ``sender`` worker: one pass claims due messages, sends them concurrently and records every outcome."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from services.dispatch import redaction, templates
from services.dispatch.channels import HttpChannels, SendError, SmtpPool
from services.dispatch.due import any_due, due_sql
from services.dispatch.models import Invitation, Reminder
from services.dispatch.sending.claims import Claimer
from services.dispatch.sending.delivery import Deliverer
from services.dispatch.sending.jobs import Job, Outcome
from services.dispatch.sending.records import Recorder, retrying
from services.dispatch.settings import DispatchSettings
from shared.clock import Clock
from shared.db import Database
from shared.observability import CHANNEL_SENDS
from shared.outbox import Outbox
from shared.worker import Worker

log = logging.getLogger(__name__)

_DUE_SQL = due_sql(Invitation, Reminder)


class InvitationSender(Worker):
    """The ``sender`` worker, one per process; any number of processes may run one against the same
    database. A pass claims up to ``send_concurrency`` due messages: a full pass goes again at once;
    woken right after a pass that sent something, it waits until ``send_linger_ms`` after that pass,
    so that a burst of new invitations gathers into one batch (one claim and one record transaction
    for many messages instead of one each). Stopped, it finishes the pass in hand: the sends in
    flight are recorded."""

    name = "sender"

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        settings: DispatchSettings,
        *,
        clock: Clock,
        smtp: SmtpPool,
        http: HttpChannels,
    ) -> None:
        super().__init__(
            poll_interval_s=settings.sender_poll_interval_ms / 1000,
            batch=settings.send_concurrency,
            linger_s=settings.send_linger_ms / 1000,
        )
        self.db = db
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.smtp = smtp
        self.http = http
        self._claimer = Claimer(db, outbox, settings)
        self._deliverer = Deliverer(settings, clock=clock, smtp=smtp, http=http)
        self._recorder = Recorder(db, outbox, settings)

    async def work_once(self) -> int:
        return await self.send_due()

    async def send_due(self) -> int:
        """Return how many messages this pass claimed; each is sent and its outcome recorded."""
        now = self.clock.now()
        stale = now - timedelta(seconds=self.settings.send_claim_timeout_s)
        if not await any_due(self.db, _DUE_SQL, now=now, stale=stale):
            return 0
        jobs = await self.claim(now=now)
        if jobs:
            await self._send_all(jobs)
        return len(jobs)

    async def _send_all(self, jobs: list[Job]) -> None:
        await asyncio.gather(*(self.send_one(job) for job in jobs))
        try:
            await retrying(lambda: self.record(jobs))
        except Exception:
            # Left in ``sending``: the claims go stale and the messages are attempted again.
            log.exception("could not record the outcome of %d sends", len(jobs))

    async def send_one(self, job: Job) -> None:
        """Hand one claimed message to its channel; the outcome is kept on the job."""
        try:
            job.outcome = Outcome(provider_message_id=await self.deliver(job))
            CHANNEL_SENDS.labels(job.channel, "sent").inc()
        except SendError as exc:
            log.warning("invitation %s not sent (attempt %d): %s", job.invitation.id, job.attempts, exc)
            job.outcome = Outcome(error=exc)
            CHANNEL_SENDS.labels(job.channel, "failed").inc()
        except Exception as exc:
            log.exception("invitation %s not sent (attempt %d)", job.invitation.id, job.attempts)
            job.outcome = Outcome(
                error=SendError(f"{type(exc).__name__}: {redaction.redact_addresses(str(exc))}")
            )
            CHANNEL_SENDS.labels(job.channel, "failed").inc()

    async def claim(self, *, now: datetime) -> list[Job]:
        """Return due messages, now marked ``sending`` by this sender and committed."""
        return await self._claimer.claim(now=now)

    def render(self, job: Job) -> templates.Rendered:
        """Return the claimed message rendered for its channel."""
        return self._deliverer.render(job)

    async def deliver(self, job: Job) -> str | None:
        """Send the message; return the provider's id for it (None for SMTP and chat)."""
        return await self._deliverer.deliver(job)

    async def record(self, jobs: list[Job]) -> None:
        """Record every outcome of a pass in one transaction."""
        await self._recorder.record(jobs, now=self.clock.now())
