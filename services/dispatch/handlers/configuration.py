"""What a workspace configures: settings, channels, templates and webhook subscriptions."""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, templates
from services.dispatch.channels import resolve_channel
from services.dispatch.handlers.workspace import template_spec, workspace_config
from services.dispatch.models import (
    ChannelConfig,
    Template,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    WorkspaceSettings,
)
from services.dispatch.schemas import (
    ChannelConfigIn,
    ChannelConfigOut,
    PreviewIn,
    PreviewOut,
    SubscriptionIn,
    SubscriptionPatch,
    TemplateIn,
    TemplateOut,
    WorkspaceConfig,
)
from services.dispatch.settings import DispatchSettings
from shared import standard_webhooks
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import Recipient, is_uuid, new_id
from shared.vocabulary import SEND_CHANNELS, SendChannel

SECRET_FIELDS = ("auth_token",)


# --- settings -----------------------------------------------------------------------------------


async def put_settings(
    session: AsyncSession, *, workspace_id: str, config: WorkspaceConfig
) -> WorkspaceConfig:
    """Store the workspace's dispatch settings; return them."""
    data = config.model_dump(mode="json")
    await session.execute(
        insert(WorkspaceSettings)
        .values(workspace_id=workspace_id, settings=data)
        .on_conflict_do_update(index_elements=["workspace_id"], set_={"settings": data})
    )
    return config


# --- channels ----------------------------------------------------------------------------------


def _masked(config: dict[str, Any]) -> dict[str, Any]:
    return {k: ("••••" + str(v)[-4:] if k in SECRET_FIELDS and v else v) for k, v in config.items()}


def channel_out(
    channel: SendChannel, own: dict[str, Any] | None, settings: DispatchSettings
) -> ChannelConfigOut:
    """Return a channel's configuration for the API: effective state, own values, secrets masked."""
    effective = resolve_channel(channel, own, settings)
    return ChannelConfigOut(
        channel=channel,
        configured=effective.configured,
        config=_masked(own or {}),
        effective_sender=effective.sender or effective.mail_from or effective.webhook_url,
    )


async def put_channel(
    session: AsyncSession,
    settings: DispatchSettings,
    *,
    workspace_id: str,
    channel: SendChannel,
    body: ChannelConfigIn,
) -> ChannelConfigOut:
    """Store a channel's configuration; return it with secrets masked."""
    allowed = {
        "email": {"mail_from", "reply_to", "rate_per_minute"},
        "sms": {"base_url", "account_sid", "auth_token", "from", "rate_per_minute"},
        "whatsapp": {"base_url", "account_sid", "auth_token", "from", "rate_per_minute"},
        "chat": {"webhook_url", "rate_per_minute"},
    }.get(channel)
    if allowed is None:
        raise InvalidInput(f"channel {channel!r} has nothing to configure", field="channel")
    data = body.stored()
    extra = sorted(set(data) - allowed)
    if extra:
        raise InvalidInput(
            f"{', '.join(extra)} do not apply to {channel}; it takes {', '.join(sorted(allowed))}",
            field=extra[0],
        )
    for field in ("mail_from", "reply_to"):
        if field in data and "@" not in parseaddr(data[field])[1]:
            raise InvalidInput(
                f"{field} must be an email address such as 'Acme <surveys@acme.example>'", field=field
            )
    await session.execute(
        insert(ChannelConfig)
        .values(workspace_id=workspace_id, channel=channel, config=data)
        .on_conflict_do_update(index_elements=["workspace_id", "channel"], set_={"config": data})
    )
    return channel_out(channel, data, settings)


async def list_channels(
    session: AsyncSession, settings: DispatchSettings, *, workspace_id: str
) -> list[ChannelConfigOut]:
    """Return every sending channel of the workspace, configured or not."""
    rows = (
        await session.scalars(select(ChannelConfig).where(ChannelConfig.workspace_id == workspace_id))
    ).all()
    own = {r.channel: r.config for r in rows}
    return [channel_out(ch, own.get(ch), settings) for ch in SEND_CHANNELS]


async def delete_channel(session: AsyncSession, *, workspace_id: str, channel: SendChannel) -> None:
    """Forget the workspace's own configuration of ``channel``."""
    await session.execute(
        delete(ChannelConfig).where(
            ChannelConfig.workspace_id == workspace_id, ChannelConfig.channel == channel
        )
    )


# --- templates ---------------------------------------------------------------------------------


def template_out(t: Template) -> TemplateOut:
    """Return the API view of a stored template ("" stored for "any" shows as null)."""
    return TemplateOut(
        id=t.id,
        name=t.name,
        survey_id=t.survey_id or None,
        channel=t.channel,
        locale=t.locale or None,
        kind=t.kind or None,
        subject=t.subject,
        text=t.text_body,
        html=t.html_body,
        embed=t.embed,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


def _embed(body: TemplateIn) -> dict[str, Any] | None:
    if body.no_embed:
        return {}
    return body.embed.model_dump(exclude_none=True) if body.embed is not None else None


def check_template(body: TemplateIn) -> None:
    """Raise ``InvalidInput`` naming the field when the template is unusable."""
    if body.channel != "email":
        for field in ("subject", "html", "embed"):
            if getattr(body, field) is not None:
                raise InvalidInput(f"{field} applies to email templates only", field=field)
    try:
        templates.validate(
            body.channel, subject=body.subject, text=body.text, html=body.html, embed=_embed(body)
        )
    except templates.TemplateProblem as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc


async def save_template(
    session: AsyncSession, *, workspace_id: str, body: TemplateIn, template_id: str | None = None
) -> Template:
    """Create (or replace ``template_id``) and return the template; one per survey, channel, locale, kind."""
    check_template(body)
    values = {
        "name": body.name,
        "survey_id": body.survey_id or "",
        "channel": body.channel,
        "locale": body.locale or "",
        "kind": body.kind or "",
        "subject": body.subject,
        "text_body": body.text,
        "html_body": body.html,
        "embed": _embed(body),
    }
    clash = await session.scalar(
        select(Template.id).where(
            Template.workspace_id == workspace_id,
            *(getattr(Template, k) == values[k] for k in ("survey_id", "channel", "locale", "kind")),
        )
    )
    if clash is not None and clash != template_id:
        raise Conflict(
            f"template {clash} already covers this survey, channel, locale and kind; change that one",
            field="survey_id",
        )
    if template_id is None:
        template = Template(id=new_id(), workspace_id=workspace_id, **values)
        session.add(template)
    else:
        template = await get_template(session, workspace_id=workspace_id, template_id=template_id)
        for key, value in values.items():
            setattr(template, key, value)
    await session.flush()
    await session.refresh(template)
    return template


async def get_template(session: AsyncSession, *, workspace_id: str, template_id: str) -> Template:
    """Return the workspace's template or raise ``NotFound``."""
    template = (
        await session.scalar(
            select(Template).where(Template.workspace_id == workspace_id, Template.id == template_id)
        )
        if is_uuid(template_id)
        else None
    )
    if template is None:
        raise NotFound(f"No template {template_id!r} in this workspace.", field="template_id")
    return template


async def list_templates(session: AsyncSession, *, workspace_id: str) -> list[Template]:
    """Return the workspace's templates, oldest first."""
    return list(
        await session.scalars(
            select(Template).where(Template.workspace_id == workspace_id).order_by(Template.created_at)
        )
    )


async def delete_template(session: AsyncSession, *, workspace_id: str, template_id: str) -> None:
    """Delete the workspace's template or raise ``NotFound``."""
    template = await get_template(session, workspace_id=workspace_id, template_id=template_id)
    await session.delete(template)


async def preview(
    session: AsyncSession, settings: DispatchSettings, *, workspace_id: str, body: PreviewIn
) -> PreviewOut:
    """Return the message a template makes for the sample recipient and merge fields."""
    spec: templates.TemplateSpec | None = None
    channel: str = body.channel
    if body.template_id:
        stored = await get_template(session, workspace_id=workspace_id, template_id=body.template_id)
        spec, channel = template_spec(stored), stored.channel
    elif body.template is not None:
        check_template(body.template)
        channel = body.template.channel
        spec = templates.TemplateSpec(
            None, body.template.subject, body.template.text, body.template.html, _embed(body.template)
        )
    config = await workspace_config(session, workspace_id=workspace_id)
    brand = templates.Branding(
        name=config.branding.name,
        colour=config.branding.colour,
        logo_url=str(config.branding.logo_url) if config.branding.logo_url else None,
        footer=config.branding.footer,
    )
    recipient = Recipient(name=body.recipient.get("name"))
    survey_url = domain.survey_url(settings.survey_base_url, "preview-token")
    fields = templates.fields_for(
        channel=channel,
        kind=body.kind,
        name=recipient.name,
        context=body.context,
        brand=brand,
        survey_url=survey_url,
        short_url=domain.public_link(settings.public_url, "/l/preview"),
        unsubscribe_url=domain.public_link(settings.public_url, "/u/preview"),
        ttl_days=config.link_ttl_days or settings.link_ttl_days,
        locale=body.locale,
        embed=templates.embed_for(body.kind, brand, spec.embed if spec else None)
        if channel == "email"
        else None,
    )
    try:
        rendered = templates.render(channel, fields, spec)
    except templates.TemplateProblem as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc
    return PreviewOut(
        subject=rendered.subject, text=rendered.text, html=rendered.html, template_id=body.template_id
    )


# --- webhook subscriptions -------------------------------------------------------------------


async def create_subscription(
    session: AsyncSession, *, workspace_id: str, body: SubscriptionIn
) -> WebhookSubscription:
    """Create and return a webhook subscription with a new ``whsec_`` secret."""
    subscription = WebhookSubscription(
        id=new_id(),
        workspace_id=workspace_id,
        url=str(body.url),
        secret=standard_webhooks.new_secret(),
        event_types=sorted(set(body.event_types)),
        description=body.description,
        enabled=True,
        consecutive_failures=0,
    )
    session.add(subscription)
    await session.flush()
    await session.refresh(subscription)
    return subscription


async def get_subscription(
    session: AsyncSession, *, workspace_id: str, subscription_id: str
) -> WebhookSubscription:
    """Return the workspace's subscription or raise ``NotFound``."""
    row = (
        await session.scalar(
            select(WebhookSubscription).where(
                WebhookSubscription.workspace_id == workspace_id, WebhookSubscription.id == subscription_id
            )
        )
        if is_uuid(subscription_id)
        else None
    )
    if row is None:
        raise NotFound(
            f"No webhook subscription {subscription_id!r} in this workspace.", field="subscription_id"
        )
    return row


async def list_subscriptions(session: AsyncSession, *, workspace_id: str) -> list[WebhookSubscription]:
    """Return the workspace's subscriptions, oldest first."""
    return list(
        await session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.workspace_id == workspace_id)
            .order_by(WebhookSubscription.created_at)
        )
    )


async def patch_subscription(
    session: AsyncSession, *, workspace_id: str, subscription_id: str, body: SubscriptionPatch
) -> WebhookSubscription:
    """Change and return a subscription; enabling it clears its failure count."""
    row = await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    if body.url is not None:
        row.url = str(body.url)
    if body.event_types is not None:
        row.event_types = sorted(set(body.event_types))
    if body.description is not None:
        row.description = body.description
    if body.enabled is not None:
        row.enabled = body.enabled
        if body.enabled:
            row.disabled_reason, row.consecutive_failures = None, 0
        else:
            row.disabled_reason = "disabled through the API"
    await session.flush()
    await session.refresh(row)
    return row


async def delete_subscription(session: AsyncSession, *, workspace_id: str, subscription_id: str) -> None:
    """Delete a subscription and its delivery log."""
    row = await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    await session.delete(row)


async def list_deliveries(
    session: AsyncSession, *, workspace_id: str, subscription_id: str, status: str | None, limit: int
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """Return the subscription's delivery log, newest first, each with its attempts."""
    await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    deliveries = (
        await session.scalars(
            query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).limit(limit)
        )
    ).all()
    attempts = (
        await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
        )
    ).all()
    by_delivery: dict[str, list[WebhookAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    return [(d, by_delivery.get(d.id, [])) for d in deliveries]


async def replay_delivery(
    session: AsyncSession, *, workspace_id: str, subscription_id: str, delivery_id: str, now: datetime
) -> WebhookDelivery:
    """Send a delivery again (same ``webhook-id``), with a fresh set of attempts."""
    subscription = await get_subscription(session, workspace_id=workspace_id, subscription_id=subscription_id)
    delivery = (
        await session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.id == delivery_id)
            .with_for_update()
        )
        if is_uuid(delivery_id)
        else None
    )
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id!r} for this subscription.", field="delivery_id")
    if not subscription.enabled:
        raise Conflict("the subscription is disabled; re-enable it before replaying", field="subscription_id")
    if delivery.status in ("scheduled", "sending"):
        raise Conflict("the delivery is still being attempted", field="delivery_id")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "scheduled", 0, now
    delivery.claimed_at = None
    await session.flush()
    return delivery
