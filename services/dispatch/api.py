"""Routes of the dispatch service: parse, call a handler, return."""

from __future__ import annotations

import base64
import html
import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, providers, queries
from services.dispatch.handlers import callbacks, configuration, funnel, optouts
from services.dispatch.handlers.links import UNSUBSCRIBE_PURPOSE, short_url
from services.dispatch.handlers.workspace import workspace_config
from services.dispatch.schemas import (
    AttemptOut,
    ChannelConfigIn,
    ChannelConfigOut,
    DeliveryOut,
    FunnelOut,
    InvitationOut,
    InvitationStatus,
    PreviewIn,
    PreviewOut,
    ReminderOut,
    SendChannel,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
    TemplateIn,
    TemplateOut,
    WorkspaceConfig,
)
from shared.errors import InvalidInput, NotFound, Unauthorized, parse_json_object
from shared.security import InvalidToken, verify_token
from shared.service import Runtime, RuntimeDep, SessionDep, WorkspaceDep

router = APIRouter()
public = APIRouter()
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ChannelPath = Annotated[SendChannel, Path(description="email, sms, whatsapp or chat")]


def _invitation_out(runtime: Runtime, row: Any) -> InvitationOut:
    out = InvitationOut.model_validate(row)
    out.short_url = short_url(runtime.settings, row)
    return out


# --- invitations ---------------------------------------------------------------------------


@router.get("/v1/invitations", tags=["invitations"], summary="List invitations, newest first")
async def list_invitations(
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    contact_id: Annotated[str | None, Query(max_length=200)] = None,
    survey_id: Annotated[str | None, Query(max_length=64)] = None,
    request_id: Annotated[str | None, Query(max_length=64, description="the survey request's id")] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    status: InvitationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[InvitationOut]:
    rows = await queries.list_invitations(
        session,
        workspace_id=workspace,
        contact_id=contact_id,
        survey_id=survey_id,
        status=status,
        limit=limit,
        request_id=request_id,
        channel=channel,
    )
    return [_invitation_out(runtime, row) for row in rows]


@router.get(
    "/v1/invitations/{invitation_id}",
    tags=["invitations"],
    summary="Read an invitation: its status, recipient, survey link, funnel steps and last error",
)
async def get_invitation(
    invitation_id: Annotated[uuid.UUID, Path()],
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> InvitationOut:
    invitation = await queries.get_invitation(
        session, workspace_id=workspace, invitation_id=str(invitation_id)
    )
    return _invitation_out(runtime, invitation)


@router.get(
    "/v1/invitations/{invitation_id}/reminders",
    tags=["invitations"],
    summary="List an invitation's reminders: scheduled, sent, cancelled or failed",
)
async def list_reminders(
    invitation_id: Annotated[uuid.UUID, Path()], workspace: WorkspaceDep, session: SessionDep
) -> list[ReminderOut]:
    await queries.get_invitation(session, workspace_id=workspace, invitation_id=str(invitation_id))
    rows = await queries.reminders_of(session, invitation_id=str(invitation_id))
    return [ReminderOut.model_validate(r) for r in rows]


@router.get(
    "/v1/funnel",
    tags=["invitations"],
    summary="The funnel invited → delivered → opened → clicked → started → completed",
    description="Counts invitations by how far they got; a later step implies the earlier ones "
    "(opens are reported unreliably, a started survey was certainly clicked). Filter by survey, "
    "channel, template and creation time; `group_by` returns one funnel per value.",
)
async def get_funnel(
    workspace: WorkspaceDep,
    session: SessionDep,
    survey_id: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    template_id: Annotated[str | None, Query(max_length=36)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: Literal["survey_id", "channel", "template_id"] | None = None,
) -> list[FunnelOut]:
    if since and until and since >= until:
        raise InvalidInput("since must be before until", field="since")
    rows = await queries.funnel(
        session,
        workspace_id=workspace,
        survey_id=survey_id,
        channel=channel,
        template_id=template_id,
        since=since,
        until=until,
        group_by=group_by,
    )
    out = []
    for row in rows:
        counts = {stage: row[stage] for stage in domain.FUNNEL_STAGES}
        out.append(
            FunnelOut(
                group=row.get("group"),
                counts=counts,
                rates=domain.funnel_rates(counts),
                bounced=row["bounced"],
                complained=row["complained"],
                failed=row["failed"],
                pending=row["pending"],
            )
        )
    return out


# --- settings and channels --------------------------------------------------------------------


@router.get(
    "/v1/settings", tags=["settings"], summary="Read the workspace's branding, quiet hours and reminders"
)
async def get_settings(workspace: WorkspaceDep, session: SessionDep) -> WorkspaceConfig:
    return await workspace_config(session, workspace_id=workspace)


@router.put(
    "/v1/settings", tags=["settings"], summary="Set branding, quiet hours, reminders, open tracking, link TTL"
)
async def put_settings(
    body: WorkspaceConfig, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> WorkspaceConfig:
    runtime.extras["cache"].invalidate_after_commit(session, workspace)
    return await configuration.put_settings(session, workspace_id=workspace, config=body)


@router.get("/v1/channels", tags=["settings"], summary="List channels: configured or not, secrets masked")
async def list_channels(
    workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[ChannelConfigOut]:
    return await configuration.list_channels(session, runtime.settings, workspace_id=workspace)


@router.put(
    "/v1/channels/{channel}",
    tags=["settings"],
    summary="Configure a channel: provider credentials, sender, chat webhook, rate limit",
)
async def put_channel(
    channel: ChannelPath,
    body: Annotated[ChannelConfigIn, Body()],
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ChannelConfigOut:
    runtime.extras["cache"].invalidate_after_commit(session, workspace)
    return await configuration.put_channel(
        session, runtime.settings, workspace_id=workspace, channel=channel, body=body
    )


@router.delete(
    "/v1/channels/{channel}",
    tags=["settings"],
    status_code=204,
    summary="Forget a channel's configuration (the deployment defaults apply again)",
)
async def delete_channel(
    channel: ChannelPath, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    runtime.extras["cache"].invalidate_after_commit(session, workspace)
    await configuration.delete_channel(session, workspace_id=workspace, channel=channel)
    return Response(status_code=204)


# --- templates -------------------------------------------------------------------------------


@router.get("/v1/templates", tags=["templates"], summary="List the workspace's message templates")
async def list_templates(workspace: WorkspaceDep, session: SessionDep) -> list[TemplateOut]:
    return [
        configuration.template_out(t)
        for t in await configuration.list_templates(session, workspace_id=workspace)
    ]


@router.post(
    "/v1/templates",
    tags=["templates"],
    status_code=201,
    summary="Create a template for a survey, channel and locale (Jinja2, sandboxed)",
)
async def create_template(
    body: TemplateIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> TemplateOut:
    runtime.extras["cache"].invalidate_after_commit(session, workspace)
    return configuration.template_out(
        await configuration.save_template(session, workspace_id=workspace, body=body)
    )


@router.post(
    "/v1/templates/preview",
    tags=["templates"],
    summary="Render a template (stored, inline, or built-in) for a sample recipient and merge fields",
)
async def preview_template(
    body: PreviewIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> PreviewOut:
    return await configuration.preview(session, runtime.settings, workspace_id=workspace, body=body)


@router.get("/v1/templates/{template_id}", tags=["templates"], summary="Read a template")
async def get_template(template_id: str, workspace: WorkspaceDep, session: SessionDep) -> TemplateOut:
    return configuration.template_out(
        await configuration.get_template(session, workspace_id=workspace, template_id=template_id)
    )


@router.put("/v1/templates/{template_id}", tags=["templates"], summary="Replace a template")
async def put_template(
    template_id: str, body: TemplateIn, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> TemplateOut:
    runtime.extras["cache"].invalidate_after_commit(session, workspace)
    return configuration.template_out(
        await configuration.save_template(session, workspace_id=workspace, body=body, template_id=template_id)
    )


@router.delete(
    "/v1/templates/{template_id}", tags=["templates"], status_code=204, summary="Delete a template"
)
async def delete_template(
    template_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    runtime.extras["cache"].invalidate_after_commit(session, workspace)
    await configuration.delete_template(session, workspace_id=workspace, template_id=template_id)
    return Response(status_code=204)


# --- outgoing webhooks ------------------------------------------------------------------------


@router.post(
    "/v1/webhooks",
    tags=["webhooks"],
    status_code=201,
    summary="Subscribe an endpoint to outgoing webhooks; the signing secret is shown once",
)
async def create_webhook(
    body: SubscriptionIn, workspace: WorkspaceDep, session: SessionDep
) -> SubscriptionOut:
    row = await configuration.create_subscription(session, workspace_id=workspace, body=body)
    return _subscription_out(row, with_secret=True)


def _subscription_out(row: Any, *, with_secret: bool = False) -> SubscriptionOut:
    out = SubscriptionOut.model_validate(row)
    out.secret = row.secret if with_secret else None
    return out


@router.get("/v1/webhooks", tags=["webhooks"], summary="List webhook subscriptions")
async def list_webhooks(workspace: WorkspaceDep, session: SessionDep) -> list[SubscriptionOut]:
    rows = await configuration.list_subscriptions(session, workspace_id=workspace)
    return [_subscription_out(r) for r in rows]


@router.get("/v1/webhooks/{subscription_id}", tags=["webhooks"], summary="Read a webhook subscription")
async def get_webhook(subscription_id: str, workspace: WorkspaceDep, session: SessionDep) -> SubscriptionOut:
    row = await configuration.get_subscription(
        session, workspace_id=workspace, subscription_id=subscription_id
    )
    return _subscription_out(row)


@router.patch(
    "/v1/webhooks/{subscription_id}",
    tags=["webhooks"],
    summary="Change a subscription; `enabled: true` re-enables one disabled after failures",
)
async def patch_webhook(
    subscription_id: str, body: SubscriptionPatch, workspace: WorkspaceDep, session: SessionDep
) -> SubscriptionOut:
    row = await configuration.patch_subscription(
        session, workspace_id=workspace, subscription_id=subscription_id, body=body
    )
    return _subscription_out(row)


@router.delete(
    "/v1/webhooks/{subscription_id}", tags=["webhooks"], status_code=204, summary="Delete a subscription"
)
async def delete_webhook(subscription_id: str, workspace: WorkspaceDep, session: SessionDep) -> Response:
    await configuration.delete_subscription(session, workspace_id=workspace, subscription_id=subscription_id)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{subscription_id}/deliveries",
    tags=["webhooks"],
    summary="The delivery log: each delivery with every attempt's status code, error and duration",
)
async def list_deliveries(
    subscription_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    status: Literal["scheduled", "sending", "delivered", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryOut]:
    rows = await configuration.list_deliveries(
        session, workspace_id=workspace, subscription_id=subscription_id, status=status, limit=limit
    )
    out = []
    for delivery, attempts in rows:
        item = DeliveryOut.model_validate(delivery)
        item.log = [AttemptOut.model_validate(a) for a in attempts]
        out.append(item)
    return out


@router.post(
    "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay",
    tags=["webhooks"],
    status_code=202,
    summary="Send a delivery again with the same webhook-id (after fixing the endpoint)",
)
async def replay_delivery(
    subscription_id: str, delivery_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> DeliveryOut:
    row = await configuration.replay_delivery(
        session,
        workspace_id=workspace,
        subscription_id=subscription_id,
        delivery_id=delivery_id,
        now=runtime.extras["clock"].now(),
    )
    runtime.extras["notifier"].wake_after_commit(session)
    return DeliveryOut.model_validate(row)


# --- public links: short link, open pixel, unsubscribe ----------------------------------------


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{html.escape(title)}</title><body style='font:16px system-ui;max-width:32rem;margin:3rem auto;"
        f"padding:0 1rem;color:#1f2933'><h1 style='font-size:1.4rem'>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


@public.get(
    "/l/{code}",
    tags=["public"],
    summary="Short personal link: counts the click and redirects to the survey",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "to the survey"},
        404: {"description": "unknown link"},
        410: {"description": "expired"},
    },
)
async def short_link(
    code: Annotated[str, Path(max_length=16)],
    session: SessionDep,
    runtime: RuntimeDep,
    score: Annotated[int | None, Query(ge=0, le=10)] = None,
) -> Response:
    now = runtime.extras["clock"].now()
    invitation = await funnel.invitation_by_code(session, code=code)
    if invitation is None:
        return _page("This link is not known", "<p>Check that you copied the whole link.</p>", status=404)
    if invitation.expires_at is not None and now >= invitation.expires_at:
        return _page("This survey link has expired", "<p>Thank you for your interest.</p>", status=410)
    await funnel.record_click(session, runtime.outbox, invitation=invitation, now=now)
    target = invitation.survey_url if score is None else domain.score_url(invitation.survey_url, score)
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


@public.get(
    "/o/{code}.gif",
    tags=["public"],
    summary="Open-tracking pixel (only in emails of workspaces that enable open tracking)",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}}},
)
async def open_pixel(
    code: Annotated[str, Path(max_length=16)], session: SessionDep, runtime: RuntimeDep
) -> Response:
    invitation = await funnel.invitation_by_code(session, code=code)
    if invitation is not None and invitation.channel == "email":
        await funnel.record_open(
            session, runtime.outbox, invitation=invitation, now=runtime.extras["clock"].now()
        )
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})


def _unsubscribe_claims(runtime: Runtime, token: str) -> dict[str, Any]:
    try:
        claims = verify_token(runtime.settings.secret_key, UNSUBSCRIBE_PURPOSE, token)
    except InvalidToken:
        raise NotFound("This unsubscribe link is not valid.", field="token") from None
    if not all(isinstance(claims.get(k), str) for k in ("ws", "con", "inv")):
        raise NotFound("This unsubscribe link is not valid.", field="token")
    return claims


@public.get(
    "/u/{token}",
    tags=["public"],
    summary="Unsubscribe page: asks to confirm (link scanners never unsubscribe anyone)",
    response_class=HTMLResponse,
)
async def unsubscribe_page(token: Annotated[str, Path(max_length=1000)], runtime: RuntimeDep) -> HTMLResponse:
    _unsubscribe_claims(runtime, token)
    return _page(
        "Unsubscribe from feedback surveys",
        "<p>We will not ask you for feedback again.</p>"
        f"<form method=post action='/u/{html.escape(token)}'>"
        "<button style='font:inherit;padding:.6rem 1.2rem'>Unsubscribe</button></form>",
    )


@public.post(
    "/u/{token}",
    tags=["public"],
    summary="Unsubscribe (one-click, RFC 8058): records the opt-out and publishes ContactOptedOut",
    response_class=HTMLResponse,
)
async def unsubscribe(
    token: Annotated[str, Path(max_length=1000)], session: SessionDep, runtime: RuntimeDep
) -> HTMLResponse:
    claims = _unsubscribe_claims(runtime, token)
    await optouts.unsubscribe(
        session,
        runtime.outbox,
        workspace_id=claims["ws"],
        contact_id=claims["con"],
        invitation_id=claims["inv"],
        now=runtime.extras["clock"].now(),
    )
    return _page("You are unsubscribed", "<p>We will not ask you for feedback again.</p>")


# --- provider callbacks -----------------------------------------------------------------------


@public.post(
    "/v1/providers/sendgrid/events",
    tags=["providers"],
    summary="SendGrid Event Webhook (signed with ECDSA; configure the verification key)",
)
async def sendgrid_events(request: Request, session: SessionDep, runtime: RuntimeDep) -> dict[str, int]:
    settings, now = runtime.settings, runtime.extras["clock"].now()
    if not settings.sendgrid_webhook_public_key:
        raise NotFound("SendGrid callbacks are not configured on this deployment.", field="provider")
    payload = await request.body()
    try:
        providers.verify_sendgrid(
            settings.sendgrid_webhook_public_key,
            payload,
            request.headers.get(providers.SENDGRID_SIGNATURE),
            request.headers.get(providers.SENDGRID_TIMESTAMP),
            now=now.timestamp(),
            tolerance_s=settings.callback_tolerance_s,
        )
    except providers.InvalidSignature as exc:
        raise Unauthorized(str(exc), field=exc.field) from exc
    try:
        items = json.loads(payload)
    except ValueError:
        raise InvalidInput("the body must be a JSON array of events", field="body") from None
    if not isinstance(items, list):
        raise InvalidInput("the body must be a JSON array of events", field="body")
    return await _apply(session, runtime, providers.sendgrid_events(items), now=now)


@public.post(
    "/v1/providers/mailgun/events",
    tags=["providers"],
    summary="Mailgun webhook (HMAC-SHA256 over timestamp + token with the signing key)",
)
async def mailgun_events(request: Request, session: SessionDep, runtime: RuntimeDep) -> dict[str, int]:
    settings, now = runtime.settings, runtime.extras["clock"].now()
    if not settings.mailgun_signing_key:
        raise NotFound("Mailgun callbacks are not configured on this deployment.", field="provider")
    body = parse_json_object(await request.body())
    signature = body.get("signature")
    try:
        token = providers.verify_mailgun(
            settings.mailgun_signing_key,
            signature if isinstance(signature, dict) else {},
            now=now.timestamp(),
            tolerance_s=settings.callback_tolerance_s,
        )
    except providers.InvalidSignature as exc:
        raise Unauthorized(str(exc), field=exc.field) from exc
    if not await callbacks.first_time(session, provider="mailgun-token", event_id=token):
        return {"applied": 0, "duplicate": 1, "unknown": 0}
    report = providers.mailgun_event(body)
    return await _apply(session, runtime, [report] if report else [], now=now)


@public.post(
    "/v1/providers/twilio/{workspace_id}/status",
    tags=["providers"],
    summary="Twilio status callback for SMS/WhatsApp (X-Twilio-Signature with the auth token)",
)
async def twilio_status(
    workspace_id: Annotated[str, Path(max_length=63)],
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, int]:
    settings, now = runtime.settings, runtime.extras["clock"].now()
    raw = (await request.body()).decode(errors="replace")
    params = parse_qsl(raw, keep_blank_values=True)
    tokens = await callbacks.twilio_auth_tokens(session, settings, workspace_id=workspace_id)
    if not tokens:
        raise NotFound("No SMS provider is configured for this workspace.", field="workspace_id")
    url = domain.public_link(settings.public_url, request.url.path)
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get(providers.TWILIO_SIGNATURE)
    errors = []
    for token in tokens:  # sms and whatsapp may use different accounts
        try:
            providers.verify_twilio(token, url, params, signature)
            break
        except providers.InvalidSignature as exc:
            errors.append(exc)
    else:
        raise Unauthorized(str(errors[0]), field=errors[0].field)
    report = providers.twilio_event(dict(params))
    return await _apply(session, runtime, [report] if report else [], now=now, workspace_id=workspace_id)


async def _apply(
    session: AsyncSession,
    runtime: Runtime,
    reports: list[providers.DeliveryEvent],
    *,
    now: datetime,
    workspace_id: str | None = None,
) -> dict[str, int]:
    counts = await callbacks.apply_reports(
        session, runtime.outbox, runtime.settings, reports=reports, now=now, workspace_id=workspace_id
    )
    runtime.extras["sender"].wake_after_commit(session)
    return counts
