"""Erasure (``ContactErased``): every copy of the contact's personal data in dispatch goes.

- invitations: the recipient (email, name, phone, company, time zone), the context (hidden fields
  such as an address in free text) and the survey link are blanked, and the invitation is marked
  erased — its short link then answers "no longer available" instead of redirecting;
- what was still to be sent: scheduled invitations fail, their reminders are cancelled;
- the contact's hard-bounced addresses are forgotten (``invalid_addresses``);
- staff notifications and webhook deliveries that quote them (``NotificationRequested.contact_id``: a
  new case's comment, a low score's respondent) lose their body; deliveries of public events about
  them lose their ``data`` (``{"erased": true}``), and those not sent yet are cancelled; so do CRM
  calls about them (their request is emptied);
- free text that names them — staff notifications, webhook deliveries and their delivery log,
  reminders' and invitations' errors, outbox rows not yet relayed — has their email addresses, full
  name and phone numbers replaced by ``[erased]``;
- the contact is remembered as erased (``erased_contacts``, a hash of the id), so a survey request
  or a notification about them that was already on its way stores nothing that names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, Text, case, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, redaction
from services.dispatch.handlers import outbound
from services.dispatch.handlers.invitations import NAMELESS, fail_pending
from services.dispatch.models import (
    CrmCall,
    InvalidAddress,
    Invitation,
    Notification,
    Reminder,
    WebhookAttempt,
    WebhookDelivery,
    erased_contacts,
    outbox,
)
from shared.erasure import ERASED_BODY, remember_erased
from shared.events import ContactErased
from shared.outbox import Outbox


async def erase_contact(
    session: AsyncSession, outbox_: Outbox, *, event: ContactErased, now: datetime
) -> int:
    """Remove the contact's personal data from every table of dispatch; return how many unsent
    invitations were failed."""
    ws, contact = event.workspace_id, event.contact_id
    await remember_erased(
        session, erased_contacts, workspace_id=ws, contact_id=contact, erased_at=event.erased_at
    )
    known = (
        await session.execute(
            select(Invitation.recipient_email, Invitation.recipient_name, Invitation.recipient_phone).where(
                Invitation.workspace_id == ws, Invitation.contact_id == contact
            )
        )
    ).all()
    emails, names, phones = (
        [r[0] for r in known],
        [r[1] for r in known],
        [r[2] for r in known],
    )
    failed = await fail_pending(
        session,
        outbox_,
        workspace_id=ws,
        contact_id=contact,
        error="the contact was erased before the invitation was sent",
        now=now,
    )
    await session.execute(
        update(Invitation)
        .where(Invitation.workspace_id == ws, Invitation.contact_id == contact)
        .values(**NAMELESS, erased_at=func.coalesce(Invitation.erased_at, now))
        .execution_options(synchronize_session=False)
    )
    addresses = {a for a in (*map(domain.normalise_email, emails), *map(domain.normalise_phone, phones)) if a}
    if addresses:
        await session.execute(
            delete(InvalidAddress).where(
                InvalidAddress.workspace_id == ws, InvalidAddress.address.in_(addresses)
            )
        )
    await forget_quotes(session, workspace_id=ws, contact_id=contact)
    identifying = redaction.identifiers(emails=emails, names=names, phones=phones)
    await redact_workspace(session, workspace_id=ws, identifying=identifying)
    return failed


async def forget_quotes(session: AsyncSession, *, workspace_id: str, contact_id: str) -> None:
    """Replace the body of every staff notification and webhook delivery that quotes the contact (their
    comment, who to call): its words cannot be told apart from the rest, so the whole body goes."""

    def theirs(
        model: type[Notification] | type[CrmCall] | type[WebhookDelivery],
    ) -> tuple[ColumnElement[bool], ...]:
        """The rows of ``model`` about the contact."""
        return model.workspace_id == workspace_id, model.contact_id == contact_id

    # CRM updates and catalogue events about them keep nothing, and those not sent yet are not sent.
    waiting = CrmCall.status == "scheduled"
    for statement in (
        update(Notification).where(*theirs(Notification)).values(body=ERASED_BODY, contact_id=None),
        update(CrmCall)
        .where(*theirs(CrmCall))
        .values(
            request={},
            contact_id=None,
            status=case((waiting, "cancelled"), else_=CrmCall.status),
            last_error=case((waiting, "the contact was erased"), else_=CrmCall.last_error),
        ),
        update(WebhookDelivery)
        .where(*theirs(WebhookDelivery), outbound.PUBLIC)
        .values(**outbound.forgotten("erased", cancel="the contact was erased")),
        update(WebhookDelivery).where(*theirs(WebhookDelivery)).values(**outbound.unquoted(ERASED_BODY)),
    ):
        await session.execute(statement.execution_options(synchronize_session=False))


async def redact_workspace(session: AsyncSession, *, workspace_id: str, identifying: list[str]) -> int:
    """Replace ``identifying`` strings in the workspace's free text; return how many rows changed."""
    pattern = redaction.redaction(identifying)
    if pattern is None:
        return 0
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.workspace_id == workspace_id)
    invitations = select(Invitation.id).where(Invitation.workspace_id == workspace_id)
    targets: list[tuple[Table, tuple[str, ...], ColumnElement[bool]]] = [
        (_table(Notification), ("subject", "body"), Notification.workspace_id == workspace_id),
        (_table(WebhookDelivery), ("payload", "last_error"), WebhookDelivery.workspace_id == workspace_id),
        (_table(WebhookAttempt), ("error",), WebhookAttempt.delivery_id.in_(deliveries)),
        (_table(Invitation), ("last_error",), Invitation.workspace_id == workspace_id),
        (_table(Reminder), ("last_error",), Reminder.invitation_id.in_(invitations)),
        (outbox, ("payload",), outbox.c.key.startswith(f"{workspace_id}:", autoescape=True)),
    ]
    changed = 0
    for table, columns, scope in targets:
        changed += await _redact(session, table, columns, scope, identifying, pattern)
    return changed


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def _redact(
    session: AsyncSession,
    table: Table,
    columns: Iterable[str],
    scope: ColumnElement[bool],
    identifying: list[str],
    pattern: re.Pattern[str],
) -> int:
    """Rewrite the rows of ``table`` in ``scope`` whose ``columns`` mention any identifying string."""
    columns = tuple(columns)
    mentions = or_(
        *(
            cast(table.c[column], Text).ilike(f"%{_like_escape(value)}%", escape="\\")
            for column in columns
            for value in identifying
        )
    )
    key = list(table.primary_key.columns)
    rows = (await session.execute(select(*key, *(table.c[c] for c in columns)).where(scope, mentions))).all()
    for row in rows:
        values = {c: redaction.redact(row._mapping[c], pattern) for c in columns}
        await session.execute(table.update().where(*(k == row._mapping[k] for k in key)).values(**values))
    return len(rows)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
