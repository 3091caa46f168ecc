"""Recording what a pass of the sender did, in one transaction: sent messages (and their next
reminder), retries with backoff, hard bounces and fallbacks, and messages given up on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain
from services.dispatch.channels import SendError
from services.dispatch.handlers.invitations import event_fields, recipient_of
from services.dispatch.handlers.routing import fall_back, mark_invalid, undeliverable
from services.dispatch.handlers.workspace import channel_settings, configured_channels
from services.dispatch.models import Invitation, Reminder
from services.dispatch.schemas import WorkspaceConfig
from services.dispatch.sending.jobs import Job, Outcome
from services.dispatch.settings import DispatchSettings
from services.dispatch.unnest import arrays_of, table_of, unnest_from
from shared import tracing
from shared.db import Database
from shared.events import InvitationFailed, InvitationSent, new_id
from shared.outbox import Outbox

log = logging.getLogger(__name__)


# The pass's sent invitations, each only while its claim is still ours (``sending``, same attempt).
_MARK_SENT = (
    f"UPDATE {table_of(Invitation).fullname} AS i SET status = 'sent', sent_at = $1, last_error = NULL, "
    "provider_message_id = COALESCE(x.provider_message_id, i.provider_message_id), updated_at = now() "
    "FROM unnest($2::varchar[], $3::int[], $4::varchar[]) AS x(id, attempts, provider_message_id) "
    "WHERE i.id = x.id AND i.attempts = x.attempts AND i.status = 'sending' RETURNING "
    # the mapped columns by name: a column a newer (expanding) migration added is not this code's
    + ", ".join(f"i.{c.name}" for c in table_of(Invitation).columns)
)
_REMINDER_COLUMNS = (
    "id",
    "workspace_id",
    "invitation_id",
    "seq",
    "channel",
    "status",
    "message_id",
    "attempts",
    "next_attempt_at",
)
_NEW_REMINDERS = (
    f"INSERT INTO {table_of(Reminder).fullname} ({', '.join(_REMINDER_COLUMNS)}) "
    f"SELECT * FROM {unnest_from(table_of(Reminder), _REMINDER_COLUMNS)} ON CONFLICT DO NOTHING"
)


class Recorder:
    """Records the outcomes of a sender's passes; a claim another sender took over is left alone."""

    def __init__(self, db: Database, outbox: Outbox, settings: DispatchSettings) -> None:
        self.db = db
        self.outbox = outbox
        self.settings = settings

    async def record(self, jobs: list[Job], *, now: datetime) -> None:
        """Record every outcome of a pass in one transaction."""
        async with self.db.unit_of_work() as session:
            sent = [
                j for j in jobs if j.reminder is None and j.outcome is not None and j.outcome.error is None
            ]
            if sent:
                await self._record_sent(session, sent, now)
            for job in jobs:
                outcome = job.outcome or Outcome(error=SendError("not attempted"))
                # A reminder and a failed send stay in the trace of the survey request too.
                with tracing.using(job.invitation.traceparent):
                    if job.reminder is not None:
                        await self._record_reminder(session, job, outcome, now)
                    elif outcome.error is not None:
                        await self._record_failure(session, job, outcome.error, now)

    async def _record_sent(self, session: AsyncSession, jobs: list[Job], now: datetime) -> None:
        """Mark the invitations sent with one statement (only those whose claim is still ours), publish
        their ``InvitationSent`` with one more and schedule their next reminders with one more."""
        connection = await session.connection()
        result = await connection.exec_driver_sql(
            _MARK_SENT,
            (
                now,
                [j.invitation.id for j in jobs],
                [j.attempts for j in jobs],
                [j.outcome.provider_message_id if j.outcome is not None else None for j in jobs],
            ),
        )
        returned = {row.id: row for row in result.all()}
        if len(returned) < len(jobs):
            log.warning(
                "%d claims were taken over by another sender; leaving them", len(jobs) - len(returned)
            )
        # The rows as the statement left them, on the objects the claim loaded (as a reload would). Those
        # are detached with nothing changed on them (``claimed`` noted the claim as committed), so the
        # values go straight into their state (``set_committed_value`` per column: ~3% of an email's CPU).
        sent = []
        for job in jobs:
            row = returned.get(job.invitation.id)
            if row is not None:
                job.invitation.__dict__.update(row._mapping)
                sent.append(job)
        # One statement for every InvitationSent, each in the trace of its survey request.
        await self.outbox.add_all(
            session,
            [
                InvitationSent(**event_fields(j.invitation, now), message_id=j.invitation.message_id)
                for j in sent
            ],
            traceparents=[j.invitation.traceparent for j in sent],
        )
        await self._schedule_reminders(session, [(j.invitation, j.workspace) for j in sent], now)

    async def _record_failure(self, session: AsyncSession, job: Job, error: SendError, now: datetime) -> None:
        s = self.settings
        if error.hard_bounce:
            row = await self._update_claimed(session, Invitation, job, last_error=str(error))
            if row is not None:
                await undeliverable(
                    session, self.outbox, s, invitation=row, bounced=True, detail=str(error), now=now
                )
            return
        if domain.gives_up(job.attempts, max_attempts=s.send_max_attempts, permanent=error.permanent):
            row = await self._update_claimed(session, Invitation, job, last_error=str(error))
            if row is None:
                return
            if error.permanent and await fall_back(
                session, self.outbox, s, invitation=row, now=now, why=str(error)
            ):
                return
            row.status = "failed"
            await self.outbox.add(
                session,
                InvitationFailed(
                    **event_fields(row, now), error=f"not sent after {row.attempts} attempt(s): {error}"
                ),
            )
        else:
            await self._retry_later(session, Invitation, job, error, now)

    async def _record_reminder(
        self, session: AsyncSession, job: Job, outcome: Outcome, now: datetime
    ) -> None:
        s, error = self.settings, outcome.error
        if error is None:
            row = await self._update_claimed(
                session,
                Reminder,
                job,
                status="sent",
                sent_at=now,
                last_error=None,
                provider_message_id=outcome.provider_message_id,
            )
            if row is None:
                return
            invitation = await session.get(Invitation, job.invitation.id, with_for_update=True)
            if invitation is None:
                return
            invitation.reminders_sent = max(invitation.reminders_sent, job.seq)
            fields = {**event_fields(invitation, now), "channel": job.channel}
            await self.outbox.add(
                session, InvitationSent(**fields, message_id=row.message_id, reminder=job.seq)
            )
            await self._schedule_reminders(session, [(invitation, job.workspace)], now)
        elif error.hard_bounce or domain.gives_up(
            job.attempts, max_attempts=s.send_max_attempts, permanent=error.permanent
        ):
            await self._update_claimed(session, Reminder, job, status="failed", last_error=str(error))
            if error.hard_bounce:
                address = domain.address_for(job.channel, recipient_of(job.invitation))
                if address:
                    await mark_invalid(
                        session,
                        workspace_id=job.invitation.workspace_id,
                        address=address,
                        reason=str(error),
                        now=now,
                    )
        else:
            await self._retry_later(session, Reminder, job, error, now)

    async def _schedule_reminders(
        self, session: AsyncSession, sent: list[tuple[Invitation, WorkspaceConfig]], now: datetime
    ) -> None:
        """Schedule each sent invitation's next reminder, if its workspace sends reminders and one is
        left: one query for the channels of the workspaces concerned, one insert for all."""
        due = []
        for invitation, config in sent:
            policy = config.reminders
            if invitation.started_at or invitation.completed_at or invitation.sent_at is None:
                continue
            nxt = domain.next_reminder(
                sent_at=invitation.sent_at,
                reminders_sent=invitation.reminders_sent,
                max_reminders=policy.count,
                interval_days=policy.interval_days,
                expires_at=invitation.expires_at,
            )
            if nxt is not None:
                due.append((invitation, policy.channel, nxt))
        if not due:
            return
        channels = await channel_settings(
            session, self.settings, workspace_ids={invitation.workspace_id for invitation, _, _ in due}
        )
        rows = []
        for invitation, wanted, (seq, at) in due:
            channel = invitation.channel
            if wanted and wanted != channel:
                reason = domain.undeliverable_reason(
                    wanted,
                    recipient_of(invitation),
                    configured=configured_channels(channels, invitation.workspace_id),
                )
                channel = wanted if reason is None else channel
            mail_from = self.settings.mail_from
            if channel == "email":
                mail_from = channels[(invitation.workspace_id, "email")].mail_from or mail_from
            rows.append(
                {
                    "id": new_id(),
                    "workspace_id": invitation.workspace_id,
                    "invitation_id": invitation.id,
                    "seq": seq,
                    "channel": channel,
                    "status": "scheduled",
                    "message_id": domain.message_id(invitation.id, mail_from, reminder=seq)
                    if channel == "email"
                    else None,
                    "attempts": 0,
                    "next_attempt_at": max(at, now),
                }
            )
        connection = await session.connection()
        await connection.exec_driver_sql(
            _NEW_REMINDERS, arrays_of(table_of(Reminder), _REMINDER_COLUMNS, rows)
        )

    async def _retry_later(
        self,
        session: AsyncSession,
        model: type[Invitation | Reminder],
        job: Job,
        error: SendError,
        now: datetime,
    ) -> None:
        """Put the claimed row back as scheduled, to be tried again after its attempts' backoff."""
        delay = domain.retry_delay_s(job.attempts, base_s=self.settings.send_backoff_s)
        await self._update_claimed(
            session,
            model,
            job,
            status="scheduled",
            last_error=str(error),
            next_attempt_at=now + timedelta(seconds=delay),
        )

    async def _update_claimed(self, session: AsyncSession, model: Any, job: Job, **values: object) -> Any:
        """Return the row after the update, or None when another sender has taken the claim over."""
        row = (
            await session.execute(
                update(model)
                .where(model.id == job.row_id, model.status == "sending", model.attempts == job.attempts)
                .values(**values)
                .returning(model)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if row is None:
            log.warning("message %s: the claim was taken over by another sender; leaving it", job.row_id)
        return row


async def retrying(
    record: Callable[[], Awaitable[None]], *, attempts: int = 6, first_delay_s: float = 0.5
) -> None:
    """Run a recording transaction, retrying while the database is briefly away.

    After a successful send, losing the record would mean sending again once the claim goes
    stale; a few retries make that window small.
    """
    for attempt in range(1, attempts + 1):
        try:
            await record()
            return
        except Exception:
            if attempt == attempts:
                raise
            log.warning("recording send outcomes failed; retry %d", attempt, exc_info=True)
            await asyncio.sleep(first_delay_s * 2 ** (attempt - 1))
