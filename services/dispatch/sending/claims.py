"""Claiming due invitations and reminders: each is marked ``sending`` in one transaction, after
every rule that can hold a message back (quiet hours, rate limits) or stop it for good (opt-outs,
erasure, link expiry, invalid addresses) was applied."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.dispatch import domain
from services.dispatch.handlers.invitations import cancel_reminders, event_fields, recipient_of
from services.dispatch.handlers.routing import fall_back, invalid_addresses, opt_outs_of
from services.dispatch.handlers.surveys import latest_surveys
from services.dispatch.handlers.workspace import channel_settings, template_spec, workspace_configs
from services.dispatch.models import Invitation, Reminder, Template, due_or_abandoned
from services.dispatch.sending.jobs import ClaimContext, Job
from services.dispatch.settings import DispatchSettings
from services.dispatch.unnest import table_of
from shared import tracing
from shared.db import Database
from shared.events import InvitationFailed
from shared.outbox import Outbox
from shared.timezones import zone

RATE_WINDOW = timedelta(minutes=1)


class Claimer:
    """Claims due messages for one sender; any number of senders may claim against one database."""

    def __init__(self, db: Database, outbox: Outbox, settings: DispatchSettings) -> None:
        self.db = db
        self.outbox = outbox
        self.settings = settings

    async def claim(self, *, now: datetime) -> list[Job]:
        """Return due messages, now marked ``sending`` by this sender and committed."""
        s = self.settings
        stale = now - timedelta(seconds=s.send_claim_timeout_s)
        async with self.db.unit_of_work() as session:
            invitations = (
                await session.scalars(
                    select(Invitation)
                    .where(due_or_abandoned(Invitation, now=now, stale=stale))
                    .order_by(Invitation.next_attempt_at)
                    .limit(s.send_concurrency)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            reminders = (
                await session.scalars(
                    select(Reminder)
                    .where(due_or_abandoned(Reminder, now=now, stale=stale))
                    .order_by(Reminder.next_attempt_at)
                    .limit(max(s.send_concurrency - len(invitations), 0))
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not invitations and not reminders:
                return []
            parents = (
                {
                    inv.id: inv
                    for inv in (
                        await session.scalars(
                            select(Invitation).where(Invitation.id.in_({r.invitation_id for r in reminders}))
                        )
                    ).all()
                }
                if reminders
                else {}
            )
            every = list(invitations) + list(parents.values())
            ctx = await self._context(session, every, now=now)
            jobs: list[Job] = []
            for invitation in invitations:
                with tracing.using(invitation.traceparent):  # what it publishes: in the request's trace
                    job = await self._claim_invitation(session, invitation, ctx, now)
                if job is not None:
                    jobs.append(job)
            for reminder in reminders:
                job = self._claim_reminder(reminder, parents[reminder.invitation_id], ctx, now)
                if job is not None:
                    jobs.append(job)
            await mark_sending(session, jobs, now=now)
        return jobs

    async def _context(
        self, session: AsyncSession, invitations: list[Invitation], *, now: datetime
    ) -> ClaimContext:
        workspace_ids = {i.workspace_id for i in invitations}
        addresses = {
            (i.workspace_id, a)
            for i in invitations
            for a in (domain.normalise_email(i.recipient_email), domain.normalise_phone(i.recipient_phone))
            if a
        }
        template_ids = {i.template_id for i in invitations if i.template_id}
        ctx = ClaimContext(
            workspaces=await workspace_configs(session, workspace_ids=workspace_ids),
            channels=await channel_settings(session, self.settings, workspace_ids=workspace_ids),
            opt_outs=await opt_outs_of(session, pairs={(i.workspace_id, i.contact_id) for i in invitations}),
            invalid=await invalid_addresses(session, pairs=addresses),
            templates={
                t.id: t
                for t in (await session.scalars(select(Template).where(Template.id.in_(template_ids)))).all()
            }
            if template_ids
            else {},
            surveys=await latest_surveys(session, keys={(i.workspace_id, i.survey_id) for i in invitations}),
        )
        limited = {key: c.rate_per_minute for key, c in ctx.channels.items() if c.rate_per_minute}
        if limited:
            ctx.rate_left = await self._rate_left(session, limited, now=now)
        return ctx

    async def _rate_left(
        self, session: AsyncSession, limits: dict[tuple[str, str], int], *, now: datetime
    ) -> dict[tuple[str, str], int | None]:
        """Return the sends left in the current minute per (workspace, channel) that has a limit."""
        since = now - RATE_WINDOW
        used: dict[tuple[str, str], int] = defaultdict(int)
        workspaces = {ws for ws, _ in limits}
        for model in (Invitation, Reminder):
            rows = await session.execute(
                select(model.workspace_id, model.channel, func.count())
                .where(model.workspace_id.in_(workspaces), model.claimed_at >= since)
                .group_by(model.workspace_id, model.channel)
            )
            for ws, channel, count in rows.all():
                used[(ws, channel)] += count
        return {key: domain.rate_allowance(limit, used[key]) for key, limit in limits.items()}

    def _hold_back(
        self, invitation: Invitation, channel: str, ctx: ClaimContext, now: datetime
    ) -> datetime | None:
        """Return until when a message must wait (quiet hours, rate limit), or None to send now."""
        config = ctx.workspaces[invitation.workspace_id]
        quiet = config.quiet_hours
        if quiet is not None and channel in quiet.channels:
            until = domain.quiet_until(
                now,
                tz=zone(invitation.recipient_timezone, quiet.default_timezone),
                start=domain.parse_hhmm(quiet.start),
                end=domain.parse_hhmm(quiet.end),
            )
            if until is not None:
                return until
        key = (invitation.workspace_id, channel)
        left = ctx.rate_left.get(key)
        if left is not None:
            if left <= 0:
                limit = ctx.channels[key].rate_per_minute or 60
                return now + timedelta(seconds=max(60 / limit, 1))
            ctx.rate_left[key] = left - 1
        return None

    def _blocked(self, invitation: Invitation, channel: str, ctx: ClaimContext, now: datetime) -> str | None:
        """Return why this message must never go out, or None."""
        if invitation.erased_at is not None:
            return "the contact was erased"
        opted = ctx.opt_outs.get((invitation.workspace_id, invitation.contact_id), set())
        if domain.is_opted_out(opted, channel):
            return "the contact opted out of these surveys"
        if invitation.expires_at is not None and now >= invitation.expires_at:
            return "the survey link expired before the message could be sent"
        if channel in ("email", "sms", "whatsapp"):
            recipient = recipient_of(invitation)
            if domain.address_for(channel, recipient) is None:
                return domain.undeliverable_reason(channel, recipient) or "no address"
        if not ctx.channels[(invitation.workspace_id, channel)].configured:
            return f"channel {channel} is not configured for this workspace"
        return None

    def _invalid(self, invitation: Invitation, channel: str, ctx: ClaimContext) -> bool:
        address = domain.address_for(channel, recipient_of(invitation))
        return address is not None and (invitation.workspace_id, address) in ctx.invalid

    async def _claim_invitation(
        self, session: AsyncSession, invitation: Invitation, ctx: ClaimContext, now: datetime
    ) -> Job | None:
        s = self.settings
        channel = invitation.channel
        if invitation.status == "sending" and invitation.attempts >= s.send_max_attempts:
            await self._fail(
                session,
                invitation,
                now,
                f"gave up after {invitation.attempts} attempts: "
                "the last one never finished (the sender stopped mid-send)",
            )
            return None
        problem = self._blocked(invitation, channel, ctx, now)
        if problem is None and self._invalid(invitation, channel, ctx):
            if await fall_back(
                session, self.outbox, s, invitation=invitation, now=now, why="address invalid"
            ):
                return None
            problem = "the address bounced before and is marked invalid"
        if problem is not None:
            await self._fail(session, invitation, now, problem)
            return None
        until = self._hold_back(invitation, channel, ctx, now)
        if until is not None:
            invitation.status, invitation.next_attempt_at = "scheduled", until
            return None
        claimed(invitation, now)
        config = ctx.channels[(invitation.workspace_id, channel)]
        return Job(
            invitation=invitation,
            reminder=None,
            channel=channel,
            attempts=invitation.attempts,
            config=config,
            workspace=ctx.workspaces[invitation.workspace_id],
            template=template_spec(ctx.templates.get(invitation.template_id or "")),
            message_id=invitation.message_id,
            survey=ctx.surveys.get((invitation.workspace_id, invitation.survey_id)),
        )

    def _claim_reminder(
        self, reminder: Reminder, invitation: Invitation, ctx: ClaimContext, now: datetime
    ) -> Job | None:
        s = self.settings
        channel = reminder.channel
        problem = None
        if invitation.started_at or invitation.completed_at:
            problem = "the contact responded"
        elif invitation.status != "sent":
            problem = f"the invitation is {invitation.status}"
        elif reminder.status == "sending" and reminder.attempts >= s.send_max_attempts:
            problem = f"gave up after {reminder.attempts} attempts"
        else:
            problem = self._blocked(invitation, channel, ctx, now)
            if problem is None and self._invalid(invitation, channel, ctx):
                problem = "the address bounced and is marked invalid"
        if problem is not None:
            reminder.status, reminder.last_error = "cancelled", problem
            return None
        until = self._hold_back(invitation, channel, ctx, now)
        if until is not None:
            reminder.status, reminder.next_attempt_at = "scheduled", until
            return None
        claimed(reminder, now)
        template = None
        if channel == invitation.channel:
            template = ctx.templates.get(invitation.template_id or "")
        return Job(
            invitation=invitation,
            reminder=reminder,
            channel=channel,
            attempts=reminder.attempts,
            config=ctx.channels[(invitation.workspace_id, channel)],
            workspace=ctx.workspaces[invitation.workspace_id],
            template=template_spec(template),
            message_id=reminder.message_id,
            seq=reminder.seq,
            survey=ctx.surveys.get((invitation.workspace_id, invitation.survey_id)),
        )

    async def _fail(self, session: AsyncSession, invitation: Invitation, now: datetime, error: str) -> None:
        invitation.status, invitation.last_error = "failed", error
        await self.outbox.add(session, InvitationFailed(**event_fields(invitation, now), error=error))
        await cancel_reminders(session, [invitation.id], reason=error)


def claimed(row: Invitation | Reminder, now: datetime) -> None:
    """Note on the loaded row that it is claimed (``sending``, one attempt more) without making it dirty:
    ``mark_sending`` writes every claim of the pass with one statement per table."""
    set_committed_value(row, "status", "sending")
    set_committed_value(row, "claimed_at", now)
    set_committed_value(row, "attempts", row.attempts + 1)


_MARK_SENDING = (
    "UPDATE {table} SET status = 'sending', claimed_at = $1, attempts = attempts + 1{touch} "
    "WHERE id = ANY($2::varchar[])"
)


async def mark_sending(session: AsyncSession, jobs: list[Job], *, now: datetime) -> None:
    """Write the pass's claims: one statement of a fixed shape for its invitations, one for its reminders
    (their rows are locked by this transaction, so ``attempts + 1`` is what ``claimed`` noted)."""
    connection = await session.connection()
    for model, ids, touch in (
        (Invitation, [j.invitation.id for j in jobs if j.reminder is None], ", updated_at = now()"),
        (Reminder, [j.reminder.id for j in jobs if j.reminder is not None], ""),
    ):
        if ids:
            sql = _MARK_SENDING.format(table=table_of(model).fullname, touch=touch)
            await connection.exec_driver_sql(sql, (now, ids))
