"""The retention policy (``AnonymisationDue``, from trigger): what dispatch keeps from before the cutoff
stops naming anyone.

- invitations created before the cutoff (sent or failed; one still waiting to go out keeps what it
  needs to be sent) lose their recipient (email, name, phone, company, time zone), context (hidden
  fields), survey link and contact id; their short links answer "no longer available"; reminders still
  waiting are cancelled;
- staff notifications and webhook deliveries from before the cutoff that quoted a contact lose their
  body (and the contact id); deliveries of public events lose their ``data`` (``{"anonymised": true}``).

The funnel (statuses and times), templates, opt-outs and the suppression list of bounced addresses
stay: the last two keep honouring what people asked for. Each row is anonymised once (the second run,
or the same event again, finds nothing left to change).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.handlers import outbound
from services.dispatch.handlers.invitations import NAMELESS, cancel_reminders
from services.dispatch.models import Invitation, Notification, WebhookDelivery
from shared.erasure import ANONYMISED_BODY
from shared.events import AnonymisationDue

_WAITING = ("scheduled", "sending")
"""Not sent yet: such an invitation keeps its recipient until it is sent or fails."""


async def anonymise(session: AsyncSession, *, event: AnonymisationDue) -> int:
    """Anonymise the workspace's invitations, notifications and deliveries from before the cutoff;
    return how many invitations."""
    ws, cutoff = event.workspace_id, event.cutoff
    ids = list(
        await session.scalars(
            select(Invitation.id)
            .where(
                Invitation.workspace_id == ws,
                Invitation.created_at < cutoff,
                Invitation.anonymised_at.is_(None),
                Invitation.status.not_in(_WAITING),
            )
            .with_for_update()
        )
    )
    if ids:
        await cancel_reminders(session, ids, reason="anonymised by the workspace's retention policy")
        await session.execute(
            update(Invitation)
            .where(Invitation.id.in_(ids))
            .values(contact_id="", **NAMELESS, anonymised_at=event.due_at)
            .execution_options(synchronize_session=False)
        )

    def quoting(model: type[Notification] | type[WebhookDelivery]) -> tuple[ColumnElement[bool], ...]:
        """The rows of ``model`` from before the cutoff that still name a contact."""
        return model.workspace_id == ws, model.created_at < cutoff, model.contact_id.is_not(None)

    for statement in (
        update(Notification).where(*quoting(Notification)).values(body=ANONYMISED_BODY, contact_id=None),
        update(WebhookDelivery)
        .where(*quoting(WebhookDelivery), outbound.PUBLIC)
        .values(**outbound.forgotten("anonymised")),
        update(WebhookDelivery).where(*quoting(WebhookDelivery)).values(**outbound.unquoted(ANONYMISED_BODY)),
    ):
        await session.execute(statement.execution_options(synchronize_session=False))
    return len(ids)
