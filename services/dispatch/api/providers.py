"""Provider delivery callbacks (SendGrid, Mailgun, Twilio), public but signed by the provider."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, providers
from services.dispatch.deps import DispatchRuntime, RuntimeDep
from services.dispatch.handlers import callbacks
from shared.errors import InvalidInput, NotFound, Unauthorized, parse_json_object
from shared.guard import GuardedRoute, public
from shared.service import SessionDep

router = APIRouter(route_class=GuardedRoute)


@router.post(
    "/v1/providers/sendgrid/events",
    tags=["providers"],
    summary="SendGrid Event Webhook (signed with ECDSA; configure the verification key)",
    dependencies=[public("SendGrid signs each request (ECDSA with the verification key configured here)")],
)
async def sendgrid_events(request: Request, session: SessionDep, runtime: RuntimeDep) -> dict[str, int]:
    settings, now = runtime.settings, runtime.deps.clock.now()
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


@router.post(
    "/v1/providers/mailgun/events",
    tags=["providers"],
    summary="Mailgun webhook (HMAC-SHA256 over timestamp + token with the signing key)",
    dependencies=[public("Mailgun signs each request (HMAC-SHA256 with the signing key)")],
)
async def mailgun_events(request: Request, session: SessionDep, runtime: RuntimeDep) -> dict[str, int]:
    settings, now = runtime.settings, runtime.deps.clock.now()
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


@router.post(
    "/v1/providers/twilio/{workspace_id}/status",
    tags=["providers"],
    summary="Twilio status callback for SMS/WhatsApp (X-Twilio-Signature with the auth token)",
    dependencies=[public("Twilio signs each request (X-Twilio-Signature with the auth token)")],
)
async def twilio_status(
    workspace_id: Annotated[str, Path(max_length=63)],
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, int]:
    settings, now = runtime.settings, runtime.deps.clock.now()
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
    runtime: DispatchRuntime,
    reports: list[providers.DeliveryEvent],
    *,
    now: datetime,
    workspace_id: str | None = None,
) -> dict[str, int]:
    counts = await callbacks.apply_reports(
        session, runtime.outbox, runtime.settings, reports=reports, now=now, workspace_id=workspace_id
    )
    runtime.deps.sender.wake_after_commit(session)
    return counts
