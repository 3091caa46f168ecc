"""A survey request becomes one invitation: the channel that reaches the contact, the template,
the survey link and the schedule; a redelivered request creates nothing. A request for a contact
erased before it arrived becomes a failed invitation that keeps nothing about them."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain
from services.dispatch.handlers.invitations import event_fields, recipient_of
from services.dispatch.handlers.links import issue_survey_url
from services.dispatch.handlers.routing import invalid_addresses, opt_outs_of, usable_channels
from services.dispatch.handlers.workspace import (
    CachedWorkspace,
    WorkspaceCache,
    configured_channels,
    pick_template,
)
from services.dispatch.models import Invitation, erased_contacts
from services.dispatch.settings import DispatchSettings
from services.dispatch.unnest import arrays_of, table_of, unnest_from
from shared import tracing
from shared.erasure import erased_among
from shared.events import (
    EventData,
    InvitationCreated,
    InvitationFailed,
    InvitationSent,
    Recipient,
    SurveyRequested,
    new_id,
)
from shared.outbox import Outbox

PENDING = "dispatch.survey_requests"
Requests = list[tuple[SurveyRequested, str | None]]
"""Survey requests, each with the trace it arrived in."""


@dataclass
class Pending:
    """The survey requests of a consumer's transaction not handled yet, and what handles them."""

    handle: Callable[[AsyncSession, Requests], Awaitable[None]]
    requests: Requests = field(default_factory=list)


def defer(
    session: AsyncSession, event: SurveyRequested, handle: Callable[[AsyncSession, Requests], Awaitable[None]]
) -> None:
    """Keep ``event`` (in the trace in hand) for ``flush_pending``: a batch's requests are handled
    together, with one query of each kind (``request_surveys``)."""
    pending = session.info.get(PENDING)
    if pending is None:
        pending = session.info[PENDING] = Pending(handle)
    pending.requests.append((event, tracing.current()))


async def flush_pending(session: AsyncSession) -> None:
    """Handle the requests ``defer`` kept in this transaction: before the commit, and before any other
    event of the batch (so that an erasure or opt-out after a request still comes after it)."""
    pending = session.info.pop(PENDING, None)
    if pending is not None and pending.requests:
        await pending.handle(session, pending.requests)


@dataclass
class _Built:
    """One request's invitation, before its insert, and what it publishes."""

    invitation: Invitation
    problem: str | None
    traceparent: str | None


async def request_survey(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    event: SurveyRequested,
    now: datetime,
    cache: WorkspaceCache | None = None,
) -> Invitation | None:
    """Return the request's new invitation, or None when the request already has one."""
    rows = await request_surveys(
        session, outbox, settings, requests=[(event, tracing.current())], now=now, cache=cache
    )
    return rows[0] if rows else None


async def request_surveys(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    requests: Requests,
    now: datetime,
    cache: WorkspaceCache | None = None,
) -> list[Invitation]:
    """Return the new invitations of ``requests`` (each with the trace it arrived in), in order; a
    request that already has one makes none. One query for erasures, one for opt-outs, one for
    invalid addresses, one insert and one outbox write for the whole batch."""
    cache = cache or WorkspaceCache(settings)
    erased = await erased_among(
        session, erased_contacts, [(e.workspace_id, e.contact_id) for e, _ in requests]
    )
    unknown = {
        (e.workspace_id, e.contact_id)
        for e, _ in requests
        if e.recipient is None and (e.workspace_id, e.contact_id) not in erased
    }
    last = await last_recipients(session, pairs=unknown) if unknown else {}
    recipients = [
        e.recipient
        if e.recipient is not None or (e.workspace_id, e.contact_id) in erased
        else domain.choose_recipient(None, last.get((e.workspace_id, e.contact_id)))
        for e, _ in requests
    ]
    addresses = {
        (e.workspace_id, a)
        for (e, _), r in zip(requests, recipients, strict=True)
        for a in (domain.address_for(ch, r) for ch in ("email", "sms"))
        if a
    }
    opt_outs = await opt_outs_of(session, pairs={(e.workspace_id, e.contact_id) for e, _ in requests})
    invalid = await invalid_addresses(session, pairs=addresses)
    built: list[_Built] = []
    seen: set[tuple[str, str]] = set()
    for (event, traceparent), recipient in zip(requests, recipients, strict=True):
        key = (event.workspace_id, event.request_id)
        if key in seen:
            continue  # the same request twice in one batch: the first makes the invitation
        seen.add(key)
        if (event.workspace_id, event.contact_id) in erased:
            built.append(_Built(_erased_invitation(event, now), ERASED, traceparent))
            continue
        cached = await cache.get(session, event.workspace_id)
        mine = {a for ws, a in invalid if ws == event.workspace_id}
        built.append(
            _build(
                settings,
                event,
                recipient,
                cached,
                opt_outs.get((event.workspace_id, event.contact_id), set()),
                mine,
                now=now,
                traceparent=traceparent,
            )
        )
    inserted = {(row.workspace_id, row.request_id): row for row in await _insert_all(session, built)}
    rows: list[Invitation] = []
    events: list[EventData] = []
    traces: list[str | None] = []
    for b in built:
        row = inserted.get((b.invitation.workspace_id, b.invitation.request_id))
        if row is None:
            continue
        rows.append(row)
        fields = event_fields(row, now)
        events.append(InvitationCreated(**fields, send_at=row.send_at))
        if b.problem:
            events.append(InvitationFailed(**fields, error=b.problem))
        elif row.status == "sent":
            events.append(InvitationSent(**fields, message_id=None))
        traces += [b.traceparent] * (len(events) - len(traces))
    await outbox.add_all(session, events, traceparents=traces)
    return rows


def _build(
    settings: DispatchSettings,
    event: SurveyRequested,
    recipient: Recipient | None,
    cached: CachedWorkspace,
    opted_out: set[str],
    invalid: set[str],
    *,
    now: datetime,
    traceparent: str | None,
) -> _Built:
    """Return the invitation a request becomes: its channel, template, link and schedule."""
    ws = event.workspace_id
    config, channels = cached.config, cached.channels
    configured = configured_channels(channels, ws)
    choice = domain.choose_channel(
        event.channel,
        event.fallback_channels,
        recipient,
        configured=usable_channels(configured, opted_out),
        invalid=invalid,
    )
    problem = choice.problem
    if problem and (opted_out & {"", event.channel}):
        problem = "the contact opted out of these surveys"
    channel = choice.channel
    send_at = domain.due_at(event.send_at, now)
    ttl_days = config.link_ttl_days or settings.link_ttl_days
    locale = event.locale or (recipient.locale if recipient else None)
    template = pick_template(
        [t for t in cached.templates if t.channel == channel],
        survey_id=event.survey_id,
        locale=locale,
        kind=event.kind,
    )
    status = "failed" if problem else "sent" if channel == "link" else "scheduled"
    invitation = _new_invitation(
        id=new_id(),
        workspace_id=ws,
        request_id=event.request_id,
        contact_id=event.contact_id,
        survey_id=event.survey_id,
        kind=event.kind,
        channel=channel,
        locale=locale,
        recipient_email=recipient.email if recipient else None,
        recipient_name=recipient.name if recipient else None,
        recipient_phone=recipient.phone if recipient else None,
        recipient_company=recipient.company if recipient else None,
        recipient_timezone=recipient.timezone if recipient else None,
        context=dict(event.context),
        fallback_channels=list(choice.fallbacks),
        template_id=template.id if template else None,
        status=status,
        attempts=0,
        last_error=problem,
        send_at=send_at,
        next_attempt_at=send_at,
        expires_at=send_at + timedelta(days=ttl_days),
        sent_at=now if status == "sent" else None,
        short_code=secrets.token_urlsafe(8)[:10],
        reminders_sent=0,
        traceparent=traceparent,
    )
    values = invitation.__dict__
    values["survey_url"] = issue_survey_url(
        settings, invitation, channel=channel, ttl_s=domain.link_ttl_s(ttl_days, send_at=send_at, now=now)
    )
    values["message_id"] = (
        domain.message_id(invitation.id, channels[(ws, "email")].mail_from or settings.mail_from)
        if channel == "email"
        else None
    )
    return _Built(invitation, problem, traceparent)


_NEW_INSTANCE = Invitation.__mapper__.class_manager.new_instance


def _new_invitation(**values: Any) -> Invitation:
    """Return a transient ``Invitation`` holding ``values``, as ``Invitation(**values)`` would but without
    the ORM's change tracking of every attribute set (a fifth of a request's consumer time): the
    session never flushes these objects, ``_insert_all`` inserts them with one statement."""
    invitation: Invitation = _NEW_INSTANCE()
    invitation.__dict__.update(values)
    return invitation


# What a new invitation sets (the rest is NULL or its server default); inserted with one statement of a
# fixed shape, in the order the requests came: ``created_at`` is the transaction's time a microsecond
# apart per row (invitations list newest first, and a batch's share one transaction).
_NEW_COLUMNS = tuple(
    c.key
    for c in table_of(Invitation).columns
    if c.key
    not in {
        "claimed_at",
        "provider_message_id",
        "delivered_at",
        "opened_at",
        "clicked_at",
        "bounced_at",
        "complained_at",
        "started_at",
        "completed_at",
        "anonymised_at",
        "created_at",
        "updated_at",
    }
)
_INSERT_SQL = (
    f"INSERT INTO {table_of(Invitation).fullname} ({', '.join(_NEW_COLUMNS)}, created_at) "
    f"SELECT {', '.join('x.' + c for c in _NEW_COLUMNS)}, now() + x.n * interval '1 microsecond' "
    f"FROM {unnest_from(table_of(Invitation), _NEW_COLUMNS, ordinality='n')} "
    "ON CONFLICT (workspace_id, request_id) DO NOTHING RETURNING id, created_at, updated_at"
)


async def _insert_all(session: AsyncSession, built: list[_Built]) -> list[Invitation]:
    """Insert the invitations (those whose request already has one are skipped) with one statement;
    return the new ones (the built objects, with the times the database gave them)."""
    connection = await session.connection()
    # Read from the objects' state (what they were built with; a column not given is None, as the
    # attribute would say), not through the ORM's attribute access: ~25 columns per request.
    arrays = arrays_of(table_of(Invitation), _NEW_COLUMNS, (b.invitation.__dict__ for b in built))
    result = await connection.exec_driver_sql(_INSERT_SQL, arrays)
    inserted = {row.id: (row.created_at, row.updated_at) for row in result.all()}
    rows: list[Invitation] = []
    for b in built:
        if b.invitation.id in inserted:
            b.invitation.created_at, b.invitation.updated_at = inserted[b.invitation.id]
            rows.append(b.invitation)
    return rows


ERASED = "the contact was erased before the survey was requested"


def _erased_invitation(event: SurveyRequested, now: datetime) -> Invitation:
    """A failed invitation that records the request and nothing about the erased contact: no
    recipient, no context, no survey link."""
    return Invitation(
        id=new_id(),
        workspace_id=event.workspace_id,
        request_id=event.request_id,
        contact_id=event.contact_id,
        survey_id=event.survey_id,
        kind=event.kind,
        channel=event.channel,
        locale=event.locale,
        context={},
        fallback_channels=[],
        status="failed",
        attempts=0,
        last_error=ERASED,
        survey_url="",
        send_at=now,
        next_attempt_at=now,
        reminders_sent=0,
        erased_at=now,
    )


async def last_recipients(
    session: AsyncSession, *, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], Recipient]:
    """Return, per (workspace, contact) of ``pairs`` that has one, the recipient of the contact's most
    recent invitation that had an address (one query for a batch's requests without a recipient)."""
    rows = await session.scalars(
        select(Invitation)
        .where(
            tuple_(Invitation.workspace_id, Invitation.contact_id).in_(sorted(pairs)),
            or_(Invitation.recipient_email.is_not(None), Invitation.recipient_phone.is_not(None)),
        )
        .order_by(
            Invitation.workspace_id, Invitation.contact_id, Invitation.created_at.desc(), Invitation.id.desc()
        )
        .ext(distinct_on(Invitation.workspace_id, Invitation.contact_id))
    )
    return {(row.workspace_id, row.contact_id): recipient_of(row) for row in rows}
