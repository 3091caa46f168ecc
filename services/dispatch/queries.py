"""The read side of the dispatch service: invitations, their reminders, and the funnel report; and the
lookups every resource shares (a workspace's row by id or 404, its rows oldest first, rows with their attempts)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain
from services.dispatch.models import (
    CrmCall,
    CrmConnector,
    Invitation,
    Reminder,
    Template,
    WebhookDelivery,
    WebhookSubscription,
)
from shared.errors import NotFound
from shared.events import is_uuid
from shared.paging import after, decode_cursor, page

INVITATIONS = "dispatch.invitations"


Owned = TypeVar("Owned", Invitation, Template, WebhookSubscription, CrmConnector)
"""The tables whose rows belong to one workspace and are named in the API by their id."""

_NAMES: dict[type[Any], tuple[str, str]] = {
    Invitation: ("invitation", "invitation_id"),
    Template: ("template", "template_id"),
    WebhookSubscription: ("webhook subscription", "subscription_id"),
    CrmConnector: ("CRM connector", "connector_id"),
}
"""What a 404 calls a row of each ``Owned`` table, and the field it names."""


async def owned(session: AsyncSession, model: type[Owned], *, workspace_id: str, row_id: str) -> Owned:
    """Return the workspace's ``model`` row ``row_id`` or raise ``NotFound`` ("No template … in this
    workspace.", naming ``template_id``)."""
    row = (
        await session.scalar(select(model).where(model.workspace_id == workspace_id, model.id == row_id))
        if is_uuid(row_id)
        else None
    )
    if row is None:
        what, field = _NAMES[model]
        raise NotFound(f"No {what} {row_id!r} in this workspace.", field=field)
    return row


async def all_owned(session: AsyncSession, model: type[Owned], *, workspace_id: str) -> list[Owned]:
    """Return the workspace's ``model`` rows, oldest first."""
    query = select(model).where(model.workspace_id == workspace_id).order_by(model.created_at)
    return list(await session.scalars(query))


Parent = TypeVar("Parent", WebhookDelivery, CrmCall)
Child = TypeVar("Child")


def with_children(
    parents: Sequence[Parent], children: Iterable[Child], *, parent_id: Callable[[Child], str]
) -> list[tuple[Parent, list[Child]]]:
    """Return each parent row (a delivery, a CRM call) with its children (its attempts), in their order."""
    by_parent: dict[str, list[Child]] = {}
    for child in children:
        by_parent.setdefault(parent_id(child), []).append(child)
    return [(parent, by_parent.get(parent.id, [])) for parent in parents]


async def get_invitation(session: AsyncSession, *, workspace_id: str, invitation_id: str) -> Invitation:
    """Return the workspace's invitation or raise ``NotFound``."""
    return await owned(session, Invitation, workspace_id=workspace_id, row_id=invitation_id)


async def list_invitations(
    session: AsyncSession,
    *,
    workspace_id: str,
    contact_id: str | None,
    survey_id: str | None,
    status: str | None,
    limit: int,
    request_id: str | None = None,
    channel: str | None = None,
    cursor: str | None = None,
) -> tuple[list[Invitation], str | None]:
    """Return a page of the workspace's invitations that match the filters, newest first, and the
    next page's cursor."""
    query = select(Invitation).where(Invitation.workspace_id == workspace_id)
    for column, value in (
        (Invitation.contact_id, contact_id),
        (Invitation.survey_id, survey_id),
        (Invitation.status, status),
        (Invitation.request_id, request_id),
        (Invitation.channel, channel),
    ):
        if value is not None:
            query = query.where(column == value)
    order = (Invitation.created_at, Invitation.id)
    if cursor:
        query = query.where(
            after(order, decode_cursor(cursor, INVITATIONS, (datetime, str)), descending=True)
        )
    rows = await session.scalars(query.order_by(*(c.desc() for c in order)).limit(limit + 1))
    return page(list(rows), limit=limit, scope=INVITATIONS, key=lambda i: (i.created_at, i.id))


async def reminders_of(session: AsyncSession, *, invitation_id: str) -> list[Reminder]:
    """Return the invitation's reminders in order."""
    return list(
        await session.scalars(
            select(Reminder).where(Reminder.invitation_id == invitation_id).order_by(Reminder.seq)
        )
    )


async def funnel(
    session: AsyncSession,
    *,
    workspace_id: str,
    survey_id: str | None,
    channel: str | None,
    template_id: str | None,
    since: datetime | None,
    until: datetime | None,
    group_by: str | None,
) -> list[dict[str, Any]]:
    """Return the funnel counts (one row, or one per ``group_by`` value) of the matching invitations: how
    many reached each step (``invited`` …), and of those, how many were observed there (``observed_invited`` …)."""
    i = Invitation
    stage = _stage_expression()
    group = {"survey_id": i.survey_id, "channel": i.channel, "template_id": i.template_id}.get(group_by or "")
    columns = [
        func.count().filter(stage >= 1).label("invited"),
        func.count().filter(stage >= 2).label("delivered"),
        func.count().filter(stage >= 3).label("opened"),
        func.count().filter(stage >= 4).label("clicked"),
        func.count().filter(stage >= 5).label("started"),
        func.count().filter(stage >= 6).label("completed"),
        *(
            func.count().filter(getattr(i, column).is_not(None)).label(f"observed_{stage}")
            for stage, column in domain.STAGE_COLUMNS.items()
        ),
        func.count().filter(i.bounced_at.is_not(None)).label("bounced"),
        func.count().filter(i.complained_at.is_not(None)).label("complained"),
        func.count().filter(i.status == "failed").label("failed"),
        func.count().filter(i.status.in_(["scheduled", "sending"])).label("pending"),
    ]
    query = select(*([group.label("group")] if group is not None else []), *columns).where(
        i.workspace_id == workspace_id
    )
    for column, value in ((i.survey_id, survey_id), (i.channel, channel), (i.template_id, template_id)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(i.created_at >= since)
    if until is not None:
        query = query.where(i.created_at < until)
    if group is not None:
        query = query.group_by(group).order_by(group)
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


def _stage_expression() -> Any:
    """SQL for ``domain.funnel_stage``: how far each invitation got, later stages implying earlier ones."""
    i = Invitation
    return case(
        (i.completed_at.is_not(None), 6),
        (i.started_at.is_not(None), 5),
        (i.clicked_at.is_not(None), 4),
        (i.opened_at.is_not(None), 3),
        (i.delivered_at.is_not(None), 2),
        (i.sent_at.is_not(None), 1),
        else_=0,
    )
