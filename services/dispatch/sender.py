"""The sender: claims due invitations, sends them over SMTP, records the outcome.

Sending is kept out of the consumer on purpose: a crash between the SMTP conversation and
the commit would otherwise redeliver the event and mail the customer twice. Instead each
invitation is claimed (``sending``) in one transaction, sent, and marked ``sent`` in the
next. A claim left behind by a sender that died is taken over after ``send_claim_timeout_s``
and counts as an attempt, so a message that kills the sender cannot loop forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, emails
from services.dispatch.handlers import event_fields
from services.dispatch.models import Invitation
from services.dispatch.settings import DispatchSettings
from shared.db import Database
from shared.events import InvitationFailed, InvitationSent, utcnow
from shared.outbox import Outbox

log = logging.getLogger(__name__)


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class InvitationSender:
    """One per process; any number of processes may run one against the same database."""

    def __init__(self, db: Database, outbox: Outbox, settings: DispatchSettings) -> None:
        self.db = db
        self.outbox = outbox
        self.settings = settings
        self.wake = asyncio.Event()
        self._batch: asyncio.Future[None] | None = None

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Send promptly once ``session`` commits a due invitation, instead of at the next poll."""
        event.listen(session.sync_session, "after_commit", lambda _s: self.wake.set(), once=True)

    async def run(self) -> None:
        """Send until cancelled; on cancellation the sends in flight are finished and recorded first."""
        try:
            while True:
                self.wake.clear()
                try:
                    if await self.send_due() == self.settings.send_concurrency:
                        continue
                except Exception:
                    log.exception("sender pass failed; retrying")
                await self._wait(self.settings.sender_poll_interval_ms / 1000)
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
        """Return how many invitations this pass claimed; each is sent and its outcome recorded."""
        claimed = await self.claim(now=utcnow())
        if claimed:
            self._batch = asyncio.ensure_future(self._send_all(claimed))
            await asyncio.shield(self._batch)
        return len(claimed)

    async def _send_all(self, claimed: list[Invitation]) -> None:
        outcomes = await asyncio.gather(*(self.send_one(inv) for inv in claimed), return_exceptions=True)
        for invitation, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, Exception):
                # Left in ``sending``: the claim goes stale and the invitation is attempted again.
                log.error("invitation %s: could not record the outcome: %s", invitation.id, outcome)

    async def claim(self, *, now: datetime) -> list[Invitation]:
        """Return due invitations, now marked ``sending`` by this sender and committed."""
        s = self.settings
        async with self.db.unit_of_work() as session:
            due = (
                await session.scalars(
                    select(Invitation)
                    .where(
                        or_(
                            and_(Invitation.status == "scheduled", Invitation.next_attempt_at <= now),
                            and_(
                                Invitation.status == "sending",
                                Invitation.claimed_at < now - timedelta(seconds=s.send_claim_timeout_s),
                            ),
                        )
                    )
                    .order_by(Invitation.next_attempt_at)
                    .limit(s.send_concurrency)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            claimed = []
            for invitation in due:
                if invitation.status == "sending" and invitation.attempts >= s.send_max_attempts:
                    await self._fail(
                        session,
                        invitation,
                        now,
                        f"gave up after {invitation.attempts} attempts: "
                        "the last one never finished (the sender stopped mid-send)",
                    )
                elif not invitation.recipient_email:
                    await self._fail(session, invitation, now, "no email address: the contact was erased")
                else:
                    invitation.status, invitation.claimed_at = "sending", now
                    invitation.attempts += 1
                    claimed.append(invitation)
        return claimed

    async def send_one(self, invitation: Invitation) -> None:
        """Send one claimed invitation and record whether it went out."""
        try:
            message = self.compose(invitation)
            await self.deliver(message, invitation.recipient_email or "")
        except SendError as exc:
            log.warning("invitation %s not sent (attempt %d): %s", invitation.id, invitation.attempts, exc)
            error, permanent = str(exc), exc.permanent
        except Exception as exc:
            log.exception("invitation %s not sent (attempt %d)", invitation.id, invitation.attempts)
            error, permanent = f"{type(exc).__name__}: {exc}", False
        else:
            await _retrying(lambda: self.record_sent(invitation))
            return
        await _retrying(lambda: self.record_failure(invitation, error, permanent=permanent))

    def compose(self, invitation: Invitation) -> EmailMessage:
        try:
            return emails.compose_invitation(
                to_email=invitation.recipient_email or "",
                to_name=invitation.recipient_name,
                kind=invitation.kind,
                survey_url=invitation.survey_url,
                message_id=invitation.message_id or "",
                mail_from=self.settings.mail_from,
                ttl_days=self.settings.link_ttl_days,
            )
        except ValueError as exc:  # an address no header can carry: retrying will not fix it
            raise SendError(f"cannot build the email: {exc}", permanent=True) from exc

    async def deliver(self, message: EmailMessage, to: str) -> None:
        """Hand ``message`` to the SMTP server or raise ``SendError``."""
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                recipients=[to],
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [e.code for e in exc.recipients]
            raise SendError(
                f"SMTP refused the recipient: {exc}",
                permanent=all(domain.is_permanent_smtp_code(c) for c in codes),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(
                f"SMTP {exc.code}: {exc.message}", permanent=domain.is_permanent_smtp_code(exc.code)
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from exc

    async def record_sent(self, invitation: Invitation) -> None:
        now = utcnow()
        async with self.db.unit_of_work() as session:
            row = await self._update_claimed(session, invitation, status="sent", sent_at=now, last_error=None)
            if row is not None:
                await self.outbox.add(
                    session, InvitationSent(**event_fields(row, now), message_id=row.message_id)
                )

    async def record_failure(self, invitation: Invitation, error: str, *, permanent: bool = False) -> None:
        now, s = utcnow(), self.settings
        async with self.db.unit_of_work() as session:
            if domain.gives_up(invitation.attempts, max_attempts=s.send_max_attempts, permanent=permanent):
                row = await self._update_claimed(session, invitation, status="failed", last_error=error)
                if row is not None:
                    await self.outbox.add(
                        session,
                        InvitationFailed(
                            **event_fields(row, now),
                            error=f"not sent after {row.attempts} attempt(s): {error}",
                        ),
                    )
            else:
                delay = domain.retry_delay_s(invitation.attempts, base_s=s.send_backoff_s)
                await self._update_claimed(
                    session,
                    invitation,
                    status="scheduled",
                    last_error=error,
                    next_attempt_at=now + timedelta(seconds=delay),
                )

    async def _update_claimed(
        self, session: AsyncSession, invitation: Invitation, **values: object
    ) -> Invitation | None:
        """Return the row after the update, or None when another sender has taken the claim over."""
        row = (
            await session.execute(
                update(Invitation)
                .where(
                    Invitation.id == invitation.id,
                    Invitation.status == "sending",
                    Invitation.attempts == invitation.attempts,
                )
                .values(**values)
                .returning(Invitation)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if row is None:
            log.warning(
                "invitation %s: the claim was taken over by another sender; leaving it", invitation.id
            )
        return row

    async def _fail(self, session: AsyncSession, invitation: Invitation, now: datetime, error: str) -> None:
        invitation.status, invitation.last_error = "failed", error
        await self.outbox.add(session, InvitationFailed(**event_fields(invitation, now), error=error))


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
            log.warning("recording a send outcome failed; retry %d", attempt, exc_info=True)
            await asyncio.sleep(first_delay_s * 2 ** (attempt - 1))
