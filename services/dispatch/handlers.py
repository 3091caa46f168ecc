"""What happens when a survey is requested, a provider reports, a customer responds or opts out."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, or_, select, tuple_, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, templates
from services.dispatch.channels import ChannelSettings, resolve_channel
from services.dispatch.models import (
    ChannelConfig,
    InvalidAddress,
    Invitation,
    OptOut,
    ProviderEvent,
    Reminder,
    Template,
    WorkspaceSettings,
)
from services.dispatch.providers import DeliveryEvent
from services.dispatch.schemas import WorkspaceConfig
from services.dispatch.settings import DispatchSettings
from shared.cache import TTLCache
from shared.errors import NotFound
from shared.events import (
    ContactErased,
    ContactOptedOut,
    InvitationBounced,
    InvitationClicked,
    InvitationComplained,
    InvitationCreated,
    InvitationDelivered,
    InvitationFailed,
    InvitationOpened,
    InvitationSent,
    Recipient,
    ResponseCompleted,
    ResponseStarted,
    SurveyRequested,
    new_id,
)
from shared.outbox import Outbox
from shared.security import sign_token
from shared.survey_links import SurveyLink, issue_link_token

UNSUBSCRIBE_PURPOSE = "unsubscribe"
UNSUBSCRIBE_TTL_S = 400 * 86400
MAX_CONTEXT_IN_LINK = 20


# --- workspace configuration ---------------------------------------------------------------


@dataclass
class CachedWorkspace:
    config: WorkspaceConfig
    channels: dict[tuple[str, str], ChannelSettings]
    templates: list[Template]


class WorkspaceCache:
    """Settings, channels and templates per workspace, kept for ``ttl_s`` seconds.

    Every survey request needs them and they change rarely; writes through this process's API
    drop its entry at once, and other replicas see a change within ``ttl_s``.
    """

    def __init__(self, settings: DispatchSettings, *, ttl_s: float = 5.0) -> None:
        self.settings = settings
        self._cache: TTLCache[CachedWorkspace] = TTLCache(ttl_s)

    async def get(self, session: AsyncSession, workspace_id: str) -> CachedWorkspace:
        async def fetch() -> CachedWorkspace:
            rows = (
                await session.scalars(select(Template).where(Template.workspace_id == workspace_id))
            ).all()
            for row in rows:
                session.expunge(row)
            return CachedWorkspace(
                config=await workspace_config(session, workspace_id),
                channels=await channel_settings(session, self.settings, [workspace_id]),
                templates=list(rows),
            )

        entry = await self._cache.get_or_load(workspace_id, fetch)
        assert entry is not None  # fetch always returns one
        return entry

    def invalidate(self, workspace_id: str) -> None:
        self._cache.invalidate(workspace_id)


async def workspace_config(session: AsyncSession, workspace_id: str) -> WorkspaceConfig:
    """Return the workspace's dispatch settings (defaults when it has none)."""
    row = await session.get(WorkspaceSettings, workspace_id)
    return WorkspaceConfig.model_validate(row.settings) if row else WorkspaceConfig()


async def workspace_configs(
    session: AsyncSession, workspace_ids: Iterable[str]
) -> dict[str, WorkspaceConfig]:
    """Return the dispatch settings of several workspaces (defaults where none are stored)."""
    ids = set(workspace_ids)
    rows = (
        await session.scalars(select(WorkspaceSettings).where(WorkspaceSettings.workspace_id.in_(ids)))
    ).all()
    found = {r.workspace_id: WorkspaceConfig.model_validate(r.settings) for r in rows}
    return {ws: found.get(ws, WorkspaceConfig()) for ws in ids}


async def channel_settings(
    session: AsyncSession, settings: DispatchSettings, workspace_ids: Iterable[str]
) -> dict[tuple[str, str], ChannelSettings]:
    """Return the effective settings of every channel of the given workspaces."""
    ids = set(workspace_ids)
    rows = (await session.scalars(select(ChannelConfig).where(ChannelConfig.workspace_id.in_(ids)))).all()
    own = {(r.workspace_id, r.channel): r.config for r in rows}
    return {
        (ws, ch): resolve_channel(ch, own.get((ws, ch)), settings) for ws in ids for ch in domain.CHANNELS
    }


def configured_channels(channels: dict[tuple[str, str], ChannelSettings], workspace_id: str) -> set[str]:
    """Return the channels that can send in ``workspace_id``."""
    return {ch for (ws, ch), c in channels.items() if ws == workspace_id and c.configured}


async def opt_outs_of(
    session: AsyncSession, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], set[str]]:
    """Return the opted-out channels ("" = every channel) per (workspace, contact)."""
    keys = set(pairs)
    if not keys:
        return {}
    rows = (
        await session.execute(
            select(OptOut.workspace_id, OptOut.contact_id, OptOut.channel).where(
                tuple_(OptOut.workspace_id, OptOut.contact_id).in_(keys)
            )
        )
    ).all()
    out: dict[tuple[str, str], set[str]] = {}
    for ws, contact, channel in rows:
        out.setdefault((ws, contact), set()).add(channel)
    return out


async def invalid_addresses(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Return which of the (workspace, address) pairs hard-bounced before."""
    keys = {p for p in pairs if p[1]}
    if not keys:
        return set()
    rows = (
        await session.execute(
            select(InvalidAddress.workspace_id, InvalidAddress.address).where(
                tuple_(InvalidAddress.workspace_id, InvalidAddress.address).in_(keys)
            )
        )
    ).all()
    return {(ws, address) for ws, address in rows}


async def contact_state(
    session: AsyncSession, workspace_id: str, contact_id: str, recipient: Recipient | None
) -> tuple[set[str], set[str]]:
    """Return (opted-out channels, invalid addresses) of a contact, in one round trip."""
    addresses = [a for a in (domain.address_for(ch, recipient) for ch in ("email", "sms")) if a]
    opted = select(literal("opt-out").label("kind"), OptOut.channel.label("value")).where(
        OptOut.workspace_id == workspace_id, OptOut.contact_id == contact_id
    )
    invalid = select(literal("invalid").label("kind"), InvalidAddress.address.label("value")).where(
        InvalidAddress.workspace_id == workspace_id, InvalidAddress.address.in_(addresses or [""])
    )
    rows = (await session.execute(union_all(opted, invalid))).all()
    return {v for k, v in rows if k == "opt-out"}, {v for k, v in rows if k == "invalid"}


def recipient_of(invitation: Invitation) -> Recipient:
    """Return the invitation's recipient as the event catalogue describes one."""
    return Recipient(
        name=invitation.recipient_name,
        email=invitation.recipient_email,
        phone=invitation.recipient_phone,
        locale=invitation.locale,
        timezone=invitation.recipient_timezone,
    )


def usable_channels(configured: set[str], opted_out: set[str]) -> set[str]:
    """Return the configured channels the contact has not opted out of (a link is never sent)."""
    if "" in opted_out:
        return {"link"} & configured
    return configured - opted_out


# --- templates -------------------------------------------------------------------------------


async def find_template(
    session: AsyncSession, *, workspace_id: str, survey_id: str, channel: str, locale: str | None, kind: str
) -> Template | None:
    """Return the most specific template: survey over any survey, locale over any locale, kind over any kind."""
    rows = (
        await session.scalars(
            select(Template).where(
                Template.workspace_id == workspace_id,
                Template.channel == channel,
                Template.survey_id.in_([survey_id, ""]),
                Template.locale.in_(_locales(locale)),
                Template.kind.in_([kind, ""]),
            )
        )
    ).all()
    return pick_template(rows, survey_id=survey_id, locale=locale, kind=kind)


def _locales(locale: str | None) -> list[str]:
    """Return ``de-CH`` as ``["de-CH", "de", ""]``: the exact locale, its language, any."""
    if not locale:
        return [""]
    language = locale.split("-")[0].split("_")[0]
    return list(dict.fromkeys([locale, language, ""]))


def pick_template(
    rows: Sequence[Template], *, survey_id: str, locale: str | None, kind: str
) -> Template | None:
    """Return the most specific of ``rows`` for the survey, locale and kind, or None."""
    order = _locales(locale)

    def rank(t: Template) -> tuple[int, int, int]:
        return (t.survey_id != survey_id, order.index(t.locale) if t.locale in order else 9, t.kind != kind)

    candidates = [
        t for t in rows if t.locale in order and t.survey_id in (survey_id, "") and t.kind in (kind, "")
    ]
    return min(candidates, key=rank) if candidates else None


def template_spec(template: Template | None) -> templates.TemplateSpec | None:
    """Return what rendering needs of a stored template (None: the built-in one)."""
    if template is None:
        return None
    return templates.TemplateSpec(
        template.id, template.subject, template.text_body, template.html_body, template.embed
    )


# --- survey requests -----------------------------------------------------------------------


def link_context(context: dict[str, str]) -> dict[str, str]:
    """Return the hidden fields that ride in the survey link (a few, short)."""
    return {k[:64]: v[:200] for k, v in list(context.items())[:MAX_CONTEXT_IN_LINK] if isinstance(v, str)}


def issue_survey_url(settings: DispatchSettings, invitation: Invitation, *, channel: str, ttl_s: int) -> str:
    """Return the signed, expiring survey link of the invitation over ``channel``."""
    token = issue_link_token(
        settings.secret_key,
        SurveyLink(
            workspace_id=invitation.workspace_id,
            invitation_id=invitation.id,
            request_id=invitation.request_id,
            survey_id=invitation.survey_id,
            contact_id=invitation.contact_id,
            kind=invitation.kind,
            channel=channel,
            locale=invitation.locale,
            context=link_context(invitation.context or {}),
        ),
        ttl_s=ttl_s,
    )
    return domain.survey_url(settings.survey_base_url, token)


def unsubscribe_url(settings: DispatchSettings, invitation: Invitation) -> str:
    """Return the invitation's one-click unsubscribe URL (a signed token)."""
    token = sign_token(
        settings.secret_key,
        UNSUBSCRIBE_PURPOSE,
        {"ws": invitation.workspace_id, "con": invitation.contact_id, "inv": invitation.id},
        ttl_s=UNSUBSCRIBE_TTL_S,
    )
    return domain.public_link(settings.public_url, f"/u/{token}")


def short_url(settings: DispatchSettings, invitation: Invitation) -> str | None:
    """Return the invitation's short personal link, or None for an invitation without one."""
    return (
        domain.public_link(settings.public_url, f"/l/{invitation.short_code}")
        if invitation.short_code
        else None
    )


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
    recipient = domain.choose_recipient(
        event.recipient,
        None
        if event.recipient is not None
        else await last_recipient(session, workspace_id=event.workspace_id, contact_id=event.contact_id),
    )
    ws = event.workspace_id
    cached = await (cache or WorkspaceCache(settings)).get(session, ws)
    config, channels = cached.config, cached.channels
    opted_out, invalid = await contact_state(session, ws, event.contact_id, recipient)
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
    invitation = Invitation(
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
    )
    invitation.survey_url = issue_survey_url(
        settings, invitation, channel=channel, ttl_s=domain.link_ttl_s(ttl_days, send_at=send_at, now=now)
    )
    invitation.message_id = (
        domain.message_id(invitation.id, channels[(ws, "email")].mail_from or settings.mail_from)
        if channel == "email"
        else None
    )
    row = await session.scalar(
        insert(Invitation)
        .values(
            **{
                c.key: getattr(invitation, c.key)
                for c in Invitation.__table__.columns
                if getattr(invitation, c.key, None) is not None
            }
        )
        .on_conflict_do_nothing(index_elements=["workspace_id", "request_id"])
        .returning(Invitation)
    )
    if row is None:
        return None
    await outbox.add(session, InvitationCreated(**event_fields(row, now), send_at=send_at))
    if problem:
        await outbox.add(session, InvitationFailed(**event_fields(row, now), error=problem))
    elif status == "sent":
        await outbox.add(session, InvitationSent(**event_fields(row, now), message_id=None))
    return row


async def last_recipient(session: AsyncSession, *, workspace_id: str, contact_id: str) -> Recipient | None:
    """Return the recipient of the contact's most recent invitation that had an address."""
    row = await session.scalar(
        select(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.contact_id == contact_id,
            or_(Invitation.recipient_email.is_not(None), Invitation.recipient_phone.is_not(None)),
        )
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(1)
    )
    return recipient_of(row) if row is not None else None


async def erase_contact(session: AsyncSession, outbox: Outbox, *, event: ContactErased, now: datetime) -> int:
    """Blank the contact's recipient fields and fail its unsent invitations; return how many were failed."""
    failed = await fail_pending(
        session,
        outbox,
        workspace_id=event.workspace_id,
        contact_id=event.contact_id,
        error="the contact was erased before the invitation was sent",
        now=now,
    )
    await session.execute(
        update(Invitation)
        .where(Invitation.workspace_id == event.workspace_id, Invitation.contact_id == event.contact_id)
        .values(recipient_email=None, recipient_name=None, recipient_phone=None, context={})
        .execution_options(synchronize_session=False)
    )
    return failed


async def fail_pending(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    contact_id: str,
    error: str,
    now: datetime,
    channel: str | None = None,
) -> int:
    """Fail the contact's scheduled invitations (on ``channel``, or all) and cancel their reminders."""
    query = select(Invitation).where(
        Invitation.workspace_id == workspace_id,
        Invitation.contact_id == contact_id,
        Invitation.status == "scheduled",
    )
    if channel:
        query = query.where(Invitation.channel == channel)
    pending = (await session.scalars(query.with_for_update())).all()
    for invitation in pending:
        invitation.status, invitation.last_error = "failed", error
        await outbox.add(session, InvitationFailed(**event_fields(invitation, now), error=error))
    await cancel_reminders(
        session,
        select(Invitation.id).where(
            Invitation.workspace_id == workspace_id, Invitation.contact_id == contact_id
        ),
        reason=error,
        channel=channel,
    )
    return len(pending)


async def cancel_reminders(
    session: AsyncSession, invitation_ids: Any, *, reason: str, channel: str | None = None
) -> None:
    """Cancel the still-scheduled reminders of the given invitations (on ``channel``, or all)."""
    query = (
        update(Reminder)
        .where(Reminder.invitation_id.in_(invitation_ids), Reminder.status == "scheduled")
        .values(status="cancelled", last_error=reason)
        .execution_options(synchronize_session=False)
    )
    if channel:
        query = query.where(Reminder.channel == channel)
    await session.execute(query)


# --- opt-outs ----------------------------------------------------------------------------


async def record_opt_out(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    contact_id: str,
    channel: str | None,
    source: str,
    now: datetime,
    publish: bool,
) -> bool:
    """Record the opt-out, fail what was still to be sent; return whether it is new."""
    new = await session.scalar(
        insert(OptOut)
        .values(
            workspace_id=workspace_id,
            contact_id=contact_id,
            channel=channel or "",
            source=source[:100],
            opted_out_at=now,
        )
        .on_conflict_do_nothing()
        .returning(OptOut.contact_id)
    )
    if new is None:
        return False
    if publish:
        await outbox.add(
            session,
            ContactOptedOut(
                workspace_id=workspace_id,
                contact_id=contact_id,
                channel=channel,  # type: ignore[arg-type]
                source=source,
                opted_out_at=now,
            ),
        )
    await fail_pending(
        session,
        outbox,
        workspace_id=workspace_id,
        contact_id=contact_id,
        error="the contact opted out of these surveys",
        now=now,
        channel=channel,
    )
    return True


async def opted_out(session: AsyncSession, outbox: Outbox, *, event: ContactOptedOut, now: datetime) -> None:
    """Honour an opt-out recorded elsewhere (or our own, coming back from the topic)."""
    await record_opt_out(
        session,
        outbox,
        workspace_id=event.workspace_id,
        contact_id=event.contact_id,
        channel=event.channel,
        source=event.source,
        now=now,
        publish=False,
    )


async def unsubscribe(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    contact_id: str,
    invitation_id: str,
    now: datetime,
) -> bool:
    """Record an unsubscribe link's opt-out (every channel) and publish ``ContactOptedOut``."""
    return await record_opt_out(
        session,
        outbox,
        workspace_id=workspace_id,
        contact_id=contact_id,
        channel=None,
        source=f"unsubscribe-link:{invitation_id}",
        now=now,
        publish=True,
    )


# --- responses ---------------------------------------------------------------------------


async def responded(
    session: AsyncSession, *, event: ResponseStarted | ResponseCompleted, now: datetime
) -> Invitation | None:
    """Record the funnel's last steps on the invitation and stop its reminders."""
    if not event.invitation_id:
        return None
    invitation = await session.scalar(
        select(Invitation)
        .where(Invitation.workspace_id == event.workspace_id, Invitation.id == event.invitation_id)
        .with_for_update()
    )
    if invitation is None:
        return None
    if isinstance(event, ResponseStarted):
        invitation.started_at = invitation.started_at or event.started_at
    else:
        invitation.completed_at = invitation.completed_at or event.completed_at
        invitation.started_at = invitation.started_at or event.completed_at
    await cancel_reminders(session, [invitation.id], reason="the contact responded")
    return invitation


# --- the funnel from our own links -----------------------------------------------------------


async def invitation_by_code(session: AsyncSession, code: str) -> Invitation | None:
    """Return the invitation of a short code, locked for the funnel update, or None."""
    return await session.scalar(select(Invitation).where(Invitation.short_code == code).with_for_update())


async def record_click(
    session: AsyncSession, outbox: Outbox, *, invitation: Invitation, now: datetime
) -> None:
    """Record the first click on the invitation and publish ``InvitationClicked``."""
    if invitation.clicked_at is None:
        invitation.clicked_at = now
        await outbox.add(session, InvitationClicked(**event_fields(invitation, now)))


async def record_open(
    session: AsyncSession, outbox: Outbox, *, invitation: Invitation, now: datetime
) -> None:
    """Record the first open of the invitation and publish ``InvitationOpened``."""
    if invitation.opened_at is None:
        invitation.opened_at = now
        await outbox.add(session, InvitationOpened(**event_fields(invitation, now)))


# --- provider callbacks ----------------------------------------------------------------------


async def find_by_message(
    session: AsyncSession,
    *,
    message_id: str | None,
    provider_message_id: str | None,
    workspace_id: str | None,
) -> Invitation | None:
    """Return the invitation a provider report is about (its own message or one of its reminders)."""
    if message_id:
        bracketed = f"<{domain.bare_message_id(message_id)}>"
        inv_id = await session.scalar(select(Invitation.id).where(Invitation.message_id == bracketed))
        if inv_id is None:
            inv_id = await session.scalar(
                select(Reminder.invitation_id).where(Reminder.message_id == bracketed)
            )
    elif provider_message_id:
        inv_query = select(Invitation.id).where(Invitation.provider_message_id == provider_message_id)
        rem_query = select(Reminder.invitation_id).where(Reminder.provider_message_id == provider_message_id)
        if workspace_id:
            inv_query = inv_query.where(Invitation.workspace_id == workspace_id)
            rem_query = rem_query.where(Reminder.workspace_id == workspace_id)
        inv_id = await session.scalar(inv_query) or await session.scalar(rem_query)
    else:
        return None
    if inv_id is None:
        return None
    return await session.scalar(select(Invitation).where(Invitation.id == inv_id).with_for_update())


async def first_time(session: AsyncSession, provider: str, event_id: str) -> bool:
    """Return whether this provider event was not applied before (and remember it)."""
    if not event_id:
        return True
    return (
        await session.scalar(
            insert(ProviderEvent)
            .values(provider=provider, event_id=event_id[:200])
            .on_conflict_do_nothing()
            .returning(ProviderEvent.event_id)
        )
    ) is not None


async def apply_delivery_event(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    report: DeliveryEvent,
    now: datetime,
    workspace_id: str | None = None,
) -> str:
    """Apply one provider report; return what happened ("applied", "duplicate", "unknown-message")."""
    if not await first_time(session, report.provider, report.event_id):
        return "duplicate"
    invitation = await find_by_message(
        session,
        message_id=report.message_id,
        provider_message_id=report.provider_message_id,
        workspace_id=workspace_id,
    )
    if invitation is None:
        return "unknown-message"
    at = min(report.at or now, now)
    fields = event_fields(invitation, now)
    if report.state == "delivered":
        if invitation.delivered_at is None:
            invitation.delivered_at = at
            await outbox.add(session, InvitationDelivered(**fields))
    elif report.state == "opened":
        await record_open(session, outbox, invitation=invitation, now=at)
    elif report.state == "clicked":
        await record_click(session, outbox, invitation=invitation, now=at)
    elif report.state == "complained":
        if invitation.complained_at is None:
            invitation.complained_at = at
            await outbox.add(session, InvitationComplained(**fields))
        await record_opt_out(
            session,
            outbox,
            workspace_id=invitation.workspace_id,
            contact_id=invitation.contact_id,
            channel=invitation.channel,
            source=f"{report.provider}:complaint",
            now=now,
            publish=True,
        )
    elif report.state == "unsubscribed":
        await record_opt_out(
            session,
            outbox,
            workspace_id=invitation.workspace_id,
            contact_id=invitation.contact_id,
            channel=None,
            source=f"{report.provider}:unsubscribe",
            now=now,
            publish=True,
        )
    elif report.state == "bounced" and not report.hard:
        await outbox.add(session, InvitationBounced(**fields, hard=False, detail=report.detail))
    else:  # a hard bounce, or the provider gave up on the message
        await undeliverable(
            session,
            outbox,
            settings,
            invitation=invitation,
            bounced=report.state == "bounced",
            detail=report.detail or report.state,
            now=now,
        )
    return "applied"


async def undeliverable(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    invitation: Invitation,
    bounced: bool,
    detail: str,
    now: datetime,
) -> bool:
    """Handle a message that can never arrive: mark a bounced address invalid, then fall back.

    Return whether a fallback channel was scheduled; otherwise the invitation is failed.
    """
    channel = invitation.channel
    fields = event_fields(invitation, now)
    if bounced:
        invitation.bounced_at = invitation.bounced_at or now
        address = domain.address_for(channel, recipient_of(invitation))
        if address:
            await session.execute(
                insert(InvalidAddress)
                .values(
                    workspace_id=invitation.workspace_id, address=address, reason=detail[:500], marked_at=now
                )
                .on_conflict_do_nothing()
            )
        await outbox.add(session, InvitationBounced(**fields, hard=True, detail=detail))
    await cancel_reminders(session, [invitation.id], reason=f"{channel} failed: {detail}", channel=channel)
    if await fall_back(session, outbox, settings, invitation=invitation, now=now, why=detail):
        return True
    if invitation.status != "failed":
        invitation.status = "failed"
        invitation.last_error = f"{'bounced' if bounced else 'not delivered'} on {channel}: {detail}"
        await outbox.add(session, InvitationFailed(**fields, error=invitation.last_error))
    return False


async def fall_back(
    session: AsyncSession,
    outbox: Outbox,
    settings: DispatchSettings,
    *,
    invitation: Invitation,
    now: datetime,
    why: str,
) -> bool:
    """Switch the invitation to its next deliverable fallback channel; return whether there was one."""
    ws = invitation.workspace_id
    remaining = list(invitation.fallback_channels or [])
    if not remaining:
        return False
    channels = await channel_settings(session, settings, [ws])
    recipient = recipient_of(invitation)
    opted = (await opt_outs_of(session, [(ws, invitation.contact_id)])).get(
        (ws, invitation.contact_id), set()
    )
    if "" in opted:
        return False
    addresses = [domain.address_for(ch, recipient) for ch in ("email", "sms")]
    invalid = {a for _, a in await invalid_addresses(session, [(ws, a) for a in addresses if a])}
    choice = domain.choose_channel(
        remaining[0],
        remaining[1:],
        recipient,
        configured=usable_channels(configured_channels(channels, ws), opted),
        invalid=invalid,
    )
    if choice.problem:
        invitation.fallback_channels = []
        return False
    previous = invitation.channel
    invitation.channel = choice.channel
    invitation.fallback_channels = list(choice.fallbacks)
    invitation.attempts = 0
    invitation.claimed_at = None
    invitation.provider_message_id = None
    invitation.last_error = (
        f"{previous} could not reach the contact ({why}); falling back to {choice.channel}"
    )
    invitation.message_id = (
        domain.message_id(invitation.id, channels[(ws, "email")].mail_from or settings.mail_from)
        if choice.channel == "email"
        else None
    )
    ttl = max(int((invitation.expires_at - now).total_seconds()), 3600) if invitation.expires_at else 86400
    invitation.survey_url = issue_survey_url(settings, invitation, channel=choice.channel, ttl_s=ttl)
    template = await find_template(
        session,
        workspace_id=ws,
        survey_id=invitation.survey_id,
        channel=choice.channel,
        locale=invitation.locale,
        kind=invitation.kind,
    )
    invitation.template_id = template.id if template else None
    if choice.channel == "link":
        invitation.status, invitation.sent_at = "sent", now
        await outbox.add(session, InvitationSent(**event_fields(invitation, now), message_id=None))
    else:
        invitation.status, invitation.next_attempt_at = "scheduled", now
    return True


# --- reading ------------------------------------------------------------------------------


async def get_invitation(session: AsyncSession, *, workspace_id: str, invitation_id: str) -> Invitation:
    """Return the workspace's invitation or raise ``NotFound``."""
    invitation = await session.scalar(
        select(Invitation).where(Invitation.workspace_id == workspace_id, Invitation.id == invitation_id)
    )
    if invitation is None:
        raise NotFound(f"No invitation {invitation_id!r} in this workspace.", field="invitation_id")
    return invitation


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
) -> list[Invitation]:
    """Return the workspace's invitations that match the filters, newest first."""
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
    rows = await session.scalars(
        query.order_by(Invitation.created_at.desc(), Invitation.id.desc()).limit(limit)
    )
    return list(rows)


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
    """Return the funnel counts (one row, or one per ``group_by`` value) of the matching invitations."""
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


def event_fields(invitation: Invitation, now: datetime) -> dict[str, Any]:
    """Return the fields every ``Invitation*`` event carries."""
    return {
        "workspace_id": invitation.workspace_id,
        "invitation_id": invitation.id,
        "request_id": invitation.request_id,
        "contact_id": invitation.contact_id,
        "survey_id": invitation.survey_id,
        "kind": invitation.kind,
        "channel": invitation.channel,
        "occurred_at": now,
        "template_id": invitation.template_id,
        "locale": invitation.locale,
    }
