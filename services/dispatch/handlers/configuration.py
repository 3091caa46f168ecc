"""What a workspace configures: settings, channels and templates (webhook subscriptions are
``subscriptions``). A URL a workspace sets is refused when it points at an address tenants may not
reach (``shared.netguard``), and text bound for an email header is one line."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, embeds, template_checks, templates, wording
from services.dispatch.channels import resolve_channel
from services.dispatch.handlers.surveys import latest_surveys
from services.dispatch.handlers.workspace import brand_of, template_spec, workspace_config
from services.dispatch.models import ChannelConfig, Template, WorkspaceSettings
from services.dispatch.queries import all_owned, owned
from services.dispatch.schemas import (
    ChannelConfigIn,
    ChannelConfigOut,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplateWarningOut,
    WorkspaceConfig,
)
from services.dispatch.settings import DispatchSettings
from shared.errors import Conflict, InvalidInput
from shared.events import Recipient, new_id
from shared.netguard import BlockedDestination, OutboundGuard
from shared.vocabulary import SEND_CHANNELS, SendChannel

SECRET_FIELDS = ("auth_token",)


# --- settings -----------------------------------------------------------------------------------


async def put_settings(
    session: AsyncSession, *, workspace_id: str, config: WorkspaceConfig
) -> WorkspaceConfig:
    """Store the workspace's own dispatch settings; return the effective ones (the branding and quiet
    hours their owners sent win over these)."""
    data = config.model_dump(mode="json")
    await session.execute(
        insert(WorkspaceSettings)
        .values(workspace_id=workspace_id, settings=data)
        .on_conflict_do_update(index_elements=["workspace_id"], set_={"settings": data})
    )
    return await workspace_config(session, workspace_id=workspace_id)


async def check_outbound_url(guard: OutboundGuard, url: str, *, field: str) -> str:
    """Return ``url`` when a workspace may save it; raise ``InvalidInput`` naming ``field`` with the reason
    when it points at loopback, private, link-local, multicast or unspecified addresses."""
    try:
        return await guard.check_url(url)
    except BlockedDestination as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from exc


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
    guard: OutboundGuard,
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
    for field in ("base_url", "webhook_url"):
        if field in data:
            data[field] = await check_outbound_url(guard, data[field], field=field)
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
    """Return the API view of a stored template ("" stored for "any" shows as null), with its warnings."""
    warnings = template_checks.warnings_of(t.channel, subject=t.subject, text=t.text_body, html=t.html_body)
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
        no_embed=t.embed == {},
        created_at=t.created_at,
        updated_at=t.updated_at,
        warnings=[TemplateWarningOut(field=w.field, message=w.message) for w in warnings],
    )


def check_template(body: TemplateIn) -> list[template_checks.TemplateWarning]:
    """Return the template's warnings; raise ``InvalidInput`` naming the field when it is unusable."""
    if body.channel != "email":
        for field in ("subject", "html"):
            if getattr(body, field) is not None:
                raise InvalidInput(f"{field} applies to email templates only", field=field)
        if body.no_embed:
            raise InvalidInput("no_embed applies to email templates only", field="no_embed")
    try:
        return template_checks.validate(
            body.channel, subject=body.subject, text=body.text, html=body.html, embed=not body.no_embed
        )
    except templates.TemplateProblem as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc


async def save_template(
    session: AsyncSession, *, workspace_id: str, body: TemplateIn, template_id: str | None = None
) -> Template:
    """Create (or replace ``template_id``) and return the template; one per survey, channel, locale, kind."""
    check_template(body)
    values: dict[str, Any] = {
        "name": body.name,
        "survey_id": body.survey_id or "",
        "channel": body.channel,
        "locale": body.locale or "",
        "kind": body.kind or "",
        "subject": body.subject,
        "text_body": body.text,
        "html_body": body.html,
        "embed": {} if body.no_embed else None,
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
    return await owned(session, Template, workspace_id=workspace_id, row_id=template_id)


async def list_templates(session: AsyncSession, *, workspace_id: str) -> list[Template]:
    """Return the workspace's templates, oldest first."""
    return await all_owned(session, Template, workspace_id=workspace_id)


async def delete_template(session: AsyncSession, *, workspace_id: str, template_id: str) -> None:
    """Delete the workspace's template or raise ``NotFound``."""
    template = await get_template(session, workspace_id=workspace_id, template_id=template_id)
    await session.delete(template)


async def preview(
    session: AsyncSession, settings: DispatchSettings, *, workspace_id: str, body: PreviewIn
) -> PreviewOut:
    """Return the message a template makes for the sample recipient and merge fields, in the language the
    survey would be sent in, with the survey's first question embedded as dispatch knows it."""
    spec: templates.TemplateSpec | None = None
    channel: str = body.channel
    warnings: list[template_checks.TemplateWarning] = []
    if body.template_id:
        stored = await get_template(session, workspace_id=workspace_id, template_id=body.template_id)
        spec, channel = template_spec(stored), stored.channel
        warnings = template_checks.warnings_of(
            stored.channel, subject=stored.subject, text=stored.text_body, html=stored.html_body
        )
    elif body.template is not None:
        warnings = check_template(body.template)
        channel = body.template.channel
        spec = templates.TemplateSpec(
            None, body.template.subject, body.template.text, body.template.html, not body.template.no_embed
        )
    config = await workspace_config(session, workspace_id=workspace_id)
    survey = (await latest_surveys(session, keys=[(workspace_id, body.survey_id)])).get(
        (workspace_id, body.survey_id)
    )
    languages = survey.languages if survey else ()
    language = wording.message_language(body.locale, languages)
    link = domain.public_link(settings.public_url, "/l/preview")
    fields = templates.fields_for(
        channel=channel,
        kind=body.kind,
        name=Recipient(name=body.recipient.get("name")).name,
        context=body.context,
        brand=brand_of(config),
        survey_url=link,
        short_url=link,
        unsubscribe_url=domain.public_link(settings.public_url, "/u/preview"),
        ttl_days=config.link_ttl_days or settings.link_ttl_days,
        locale=body.locale,
        language=language,
        embed=embeds.embedded_question(
            survey.first_question if survey else None, language=language, languages=languages
        ),
    )
    try:
        rendered = templates.render(channel, fields, spec)
    except templates.TemplateProblem as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc
    return PreviewOut(
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        template_id=body.template_id,
        warnings=[TemplateWarningOut(field=w.field, message=w.message) for w in warnings],
    )
