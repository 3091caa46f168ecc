"""The sender: claims due invitations and reminders, hands them to a channel, records the outcome.

Sending is kept out of the consumer on purpose: a crash between the hand-off and the commit
would otherwise redeliver the event and message the customer twice. Instead each message is
claimed (``sending``) in one transaction, sent, and its outcome recorded in the next. A claim
left behind by a sender that died is taken over after ``send_claim_timeout_s`` and counts as
an attempt, so a message that kills the sender cannot loop forever; an email sent again keeps
its Message-ID.

One pass claims up to ``send_concurrency`` messages, sends them concurrently (emails over a
small pool of reused SMTP connections) and records every outcome in one transaction. Every
rule that can hold a message back is applied at claim time, so it also covers retries and
reminders: opt-outs, erased contacts, expired links, invalid addresses, quiet hours in the
contact's timezone, and per-channel rate limits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, event, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, emails, templates
from services.dispatch.channels import ChannelSettings, HttpChannels, SendError, SmtpPool
from services.dispatch.clock import Clock
from services.dispatch.handlers.invitations import cancel_reminders, event_fields, recipient_of
from services.dispatch.handlers.links import short_url, unsubscribe_url
from services.dispatch.handlers.routing import (
    fall_back,
    invalid_addresses,
    mark_invalid,
    opt_outs_of,
    undeliverable,
)
from services.dispatch.handlers.workspace import (
    channel_settings,
    configured_channels,
    template_spec,
    workspace_configs,
)
from services.dispatch.models import Invitation, Reminder, Template, due_or_abandoned
from services.dispatch.schemas import WorkspaceConfig
from services.dispatch.settings import DispatchSettings
from shared.db import Database
from shared.events import InvitationFailed, InvitationSent, new_id
from shared.outbox import Outbox
from shared.timezones import zone

log = logging.getLogger(__name__)
RATE_WINDOW = timedelta(minutes=1)


@dataclass
class Job:
    """One claimed message and everything needed to send it without the database."""

    invitation: Invitation
    reminder: Reminder | None
    channel: str
    attempts: int
    config: ChannelSettings
    workspace: WorkspaceConfig
    template: templates.TemplateSpec | None
    message_id: str | None
    seq: int = 0
    outcome: Outcome | None = None

    @property
    def row_id(self) -> str:
        return self.reminder.id if self.reminder is not None else self.invitation.id


@dataclass
class Outcome:
    provider_message_id: str | None = None
    error: SendError | None = None


@dataclass
class ClaimContext:
    workspaces: dict[str, WorkspaceConfig]
    channels: dict[tuple[str, str], ChannelSettings]
    opt_outs: dict[tuple[str, str], set[str]]
    invalid: set[tuple[str, str]]
    templates: dict[str, Template]
    rate_left: dict[tuple[str, str], int | None] = field(default_factory=dict)


class InvitationSender:
    """One per process; any number of processes may run one against the same database."""

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
        self.db = db
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.smtp = smtp
        self.http = http
        self.wake = asyncio.Event()
        self._batch: asyncio.Future[None] | None = None

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Send promptly once ``session`` commits a due message, instead of at the next poll."""
        event.listen(session.sync_session, "after_commit", lambda _s: self.wake.set(), once=True)

    async def run(self) -> None:
        """Send until cancelled; on cancellation the sends in flight are finished and recorded first."""
        try:
            while True:
                self.wake.clear()
                try:
                    if await self.send_due() >= self.settings.send_concurrency:
                        continue
                except Exception:
                    log.exception("sender pass failed; retrying")
                await self._wait(self.settings.sender_poll_interval_ms / 1000)
                if self.settings.send_linger_ms:
                    # Let a burst of new invitations gather into one batch: one claim and one
                    # record transaction for many messages instead of one each.
                    await asyncio.sleep(self.settings.send_linger_ms / 1000)
        except asyncio.CancelledError:
            if self._batch is not None and not self._batch.done():
                await asyncio.wait({self._batch}, timeout=self.settings.smtp_timeout_s + 5)
            raise

    async def _wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            pass

    async def send_due(self) -> int:
        """Return how many messages this pass claimed; each is sent and its outcome recorded."""
        jobs = await self.claim(now=self.clock.now())
        if jobs:
            self._batch = asyncio.ensure_future(self._send_all(jobs))
            await asyncio.shield(self._batch)
        return len(jobs)

    async def _send_all(self, jobs: list[Job]) -> None:
        await asyncio.gather(*(self.send_one(job) for job in jobs))
        try:
            await _retrying(lambda: self.record(jobs))
        except Exception:
            # Left in ``sending``: the claims go stale and the messages are attempted again.
            log.exception("could not record the outcome of %d sends", len(jobs))

    # --- claiming ------------------------------------------------------------------------

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
                job = await self._claim_invitation(session, invitation, ctx, now)
                if job is not None:
                    jobs.append(job)
            for reminder in reminders:
                job = self._claim_reminder(reminder, parents[reminder.invitation_id], ctx, now)
                if job is not None:
                    jobs.append(job)
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
        opted = ctx.opt_outs.get((invitation.workspace_id, invitation.contact_id), set())
        if domain.is_opted_out(opted, channel):
            return "the contact opted out of these surveys"
        if invitation.expires_at is not None and now >= invitation.expires_at:
            return "the survey link expired before the message could be sent"
        if channel in ("email", "sms", "whatsapp"):
            recipient = recipient_of(invitation)
            if domain.address_for(channel, recipient) is None:
                if not (
                    invitation.recipient_email or invitation.recipient_phone or invitation.recipient_name
                ):
                    return f"no {'email address' if channel == 'email' else 'phone number'}: the contact was erased"
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
        invitation.status, invitation.claimed_at = "sending", now
        invitation.attempts += 1
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
        reminder.status, reminder.claimed_at = "sending", now
        reminder.attempts += 1
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
        )

    # --- sending -----------------------------------------------------------------------------

    def render(self, job: Job) -> templates.Rendered:
        inv, ws = job.invitation, job.workspace
        brand = templates.Branding(
            name=ws.branding.name,
            colour=ws.branding.colour,
            logo_url=str(ws.branding.logo_url) if ws.branding.logo_url else None,
            footer=ws.branding.footer,
        )
        spec = job.template
        embed = templates.embed_for(inv.kind, brand, spec.embed if spec is not None else None)
        ttl_days = max(int(((inv.expires_at or inv.send_at) - self.clock.now()).total_seconds() // 86400), 1)
        fields = templates.fields_for(
            channel=job.channel,
            kind=inv.kind,
            name=inv.recipient_name,
            context=inv.context or {},
            brand=brand,
            survey_url=inv.survey_url,
            short_url=short_url(self.settings, inv),
            unsubscribe_url=unsubscribe_url(self.settings, inv),
            ttl_days=ttl_days,
            locale=inv.locale,
            embed=embed if job.channel == "email" else None,
            reminder=job.seq,
        )
        tracking = ws.open_tracking if ws.open_tracking is not None else self.settings.open_tracking
        pixel = (
            domain.public_link(self.settings.public_url, f"/o/{inv.short_code}.gif")
            if tracking and inv.short_code and job.channel == "email"
            else None
        )
        return templates.render(job.channel, fields, spec, open_pixel_url=pixel)

    async def send_one(self, job: Job) -> None:
        """Hand one claimed message to its channel; the outcome is kept on the job."""
        try:
            job.outcome = Outcome(provider_message_id=await self.deliver(job))
        except SendError as exc:
            log.warning("invitation %s not sent (attempt %d): %s", job.invitation.id, job.attempts, exc)
            job.outcome = Outcome(error=exc)
        except Exception as exc:
            log.exception("invitation %s not sent (attempt %d)", job.invitation.id, job.attempts)
            job.outcome = Outcome(error=SendError(f"{type(exc).__name__}: {exc}"))

    async def deliver(self, job: Job) -> str | None:
        """Send the message; return the provider's id for it (None for SMTP and chat)."""
        inv = job.invitation
        try:
            rendered = self.render(job)
        except templates.TemplateProblem as exc:
            raise SendError(str(exc), permanent=True) from exc
        if job.channel == "email":
            try:
                message = emails.compose_invitation(
                    to_email=inv.recipient_email or "",
                    to_name=inv.recipient_name,
                    rendered=rendered,
                    message_id=job.message_id or "",
                    mail_from=job.config.mail_from or self.settings.mail_from,
                    reply_to=job.config.reply_to,
                    unsubscribe_url=unsubscribe_url(self.settings, inv),
                )
            except ValueError as exc:  # an address no header can carry: retrying will not fix it
                raise SendError(f"cannot build the email: {exc}", permanent=True) from exc
            await self.smtp.send(message, inv.recipient_email or "")
            return None
        if job.channel in domain.PHONE_CHANNELS:
            return await self.http.send_message(
                job.config,
                to=domain.normalise_phone(inv.recipient_phone) or "",
                body=rendered.text,
                status_callback=domain.public_link(
                    self.settings.public_url, f"/v1/providers/twilio/{inv.workspace_id}/status"
                ),
            )
        if job.channel == "chat":
            await self.http.post_json(
                job.config.webhook_url or "",
                {
                    "text": rendered.text,
                    "invitation": {
                        "id": inv.id,
                        "contact_id": inv.contact_id,
                        "survey_id": inv.survey_id,
                        "kind": inv.kind,
                        "survey_url": inv.survey_url,
                        "reminder": job.seq,
                    },
                },
            )
            return None
        raise SendError(f"channel {job.channel} cannot be sent", permanent=True)

    # --- recording -------------------------------------------------------------------------

    async def record(self, jobs: list[Job]) -> None:
        """Record every outcome of a pass in one transaction."""
        now = self.clock.now()
        async with self.db.unit_of_work() as session:
            sent = [
                j for j in jobs if j.reminder is None and j.outcome is not None and j.outcome.error is None
            ]
            if sent:
                await self._record_sent(session, sent, now)
            for job in jobs:
                outcome = job.outcome or Outcome(error=SendError("not attempted"))
                if job.reminder is not None:
                    await self._record_reminder(session, job, outcome, now)
                elif outcome.error is not None:
                    await self._record_failure(session, job, outcome.error, now)

    async def _record_sent(self, session: AsyncSession, jobs: list[Job], now: datetime) -> None:
        """Mark the invitations sent with one statement (only those whose claim is still ours)."""
        provider_ids = {
            j.invitation.id: j.outcome.provider_message_id
            for j in jobs
            if j.outcome is not None and j.outcome.provider_message_id
        }
        values: dict[str, Any] = {"status": "sent", "sent_at": now, "last_error": None}
        if provider_ids:
            values["provider_message_id"] = case(provider_ids, value=Invitation.id, else_=None)
        rows = (
            await session.scalars(
                update(Invitation)
                .where(
                    tuple_(Invitation.id, Invitation.attempts).in_(
                        [(j.invitation.id, j.attempts) for j in jobs]
                    ),
                    Invitation.status == "sending",
                )
                .values(**values)
                .returning(Invitation)
                .execution_options(populate_existing=True, synchronize_session=False)
            )
        ).all()
        if len(rows) < len(jobs):
            log.warning("%d claims were taken over by another sender; leaving them", len(jobs) - len(rows))
        workspace = {j.invitation.id: j.workspace for j in jobs}
        for row in rows:
            await self.outbox.add(
                session, InvitationSent(**event_fields(row, now), message_id=row.message_id)
            )
            await self._schedule_reminder(session, row, workspace[row.id], now)

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
            delay = domain.retry_delay_s(job.attempts, base_s=s.send_backoff_s)
            await self._update_claimed(
                session,
                Invitation,
                job,
                status="scheduled",
                last_error=str(error),
                next_attempt_at=now + timedelta(seconds=delay),
            )

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
            await self._schedule_reminder(session, invitation, job.workspace, now)
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
            delay = domain.retry_delay_s(job.attempts, base_s=s.send_backoff_s)
            await self._update_claimed(
                session,
                Reminder,
                job,
                status="scheduled",
                last_error=str(error),
                next_attempt_at=now + timedelta(seconds=delay),
            )

    async def _schedule_reminder(
        self, session: AsyncSession, invitation: Invitation, config: WorkspaceConfig, now: datetime
    ) -> None:
        """Schedule the invitation's next reminder, if its workspace sends reminders and one is left."""
        policy = config.reminders
        if invitation.started_at or invitation.completed_at or invitation.sent_at is None:
            return
        nxt = domain.next_reminder(
            sent_at=invitation.sent_at,
            reminders_sent=invitation.reminders_sent,
            max_reminders=policy.count,
            interval_days=policy.interval_days,
            expires_at=invitation.expires_at,
        )
        if nxt is None:
            return
        seq, due = nxt
        channel = invitation.channel
        if policy.channel and policy.channel != channel:
            channels = await channel_settings(session, self.settings, workspace_ids=[invitation.workspace_id])
            reason = domain.undeliverable_reason(
                policy.channel,
                recipient_of(invitation),
                configured=configured_channels(channels, invitation.workspace_id),
            )
            channel = policy.channel if reason is None else channel
        mail_from = self.settings.mail_from
        if channel == "email":
            channels = await channel_settings(session, self.settings, workspace_ids=[invitation.workspace_id])
            mail_from = channels[(invitation.workspace_id, "email")].mail_from or mail_from
        await session.execute(
            insert(Reminder)
            .values(
                id=new_id(),
                workspace_id=invitation.workspace_id,
                invitation_id=invitation.id,
                seq=seq,
                channel=channel,
                status="scheduled",
                message_id=domain.message_id(invitation.id, mail_from, reminder=seq)
                if channel == "email"
                else None,
                attempts=0,
                next_attempt_at=max(due, now),
            )
            .on_conflict_do_nothing()
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

    async def _fail(self, session: AsyncSession, invitation: Invitation, now: datetime, error: str) -> None:
        invitation.status, invitation.last_error = "failed", error
        await self.outbox.add(session, InvitationFailed(**event_fields(invitation, now), error=error))
        await cancel_reminders(session, [invitation.id], reason=error)


async def _retrying(
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
