"""Routes for signed webhooks, one URL per integration: ``receive_webhook`` verifies, parses and
stores a request (``fastpath.py`` serves the POSTs with it, in front of FastAPI); the routes here
document them in OpenAPI and serve what reaches FastAPI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status

from services.trigger.deps import TriggerRuntime, rate_limit
from services.trigger.handlers import ingest, integrations
from services.trigger.hubspot import HubSpotUnavailable
from services.trigger.schemas.events import EventAccepted, EventResult
from services.trigger.sources import kinds
from services.trigger.sources.common import (
    Incoming,
    MalformedPayload,
    PayloadError,
    SignatureError,
    SignedRequest,
)
from services.trigger.store import EventReceipt
from shared import tracing
from shared.errors import CloseloopError, InvalidInput, MalformedBody, NotFound, Unauthorized
from shared.guard import GuardedRoute, public

router = APIRouter(route_class=GuardedRoute)
# /v1/webhooks/<path>/<integration id>: the path of each integration kind.
PATH_KINDS = {
    "standard": "standard-webhooks",
    "hubspot": "hubspot",
    "zendesk": "zendesk",
    "cloudevents": "cloudevents",
    "generic": "generic",
}
KIND_PATHS = {kind: path for path, kind in PATH_KINDS.items()}
WEBHOOK_ACCESS = public(
    "the source signs each request (its own scheme, or the integration's secret); no API key is sent"
)


class Unavailable(CloseloopError):
    """503: a webhook cannot be stored now (HubSpot could not be asked for a contact); the sender retries."""

    status, code, title = 503, "unavailable", "Service unavailable"


_WEBHOOK_DESCRIPTION = (
    "Acknowledged (202) as soon as the events are stored; the rules are applied right after (`GET "
    "/v1/events/{event_id}` shows the decisions once its `status` is `evaluated`). A redelivery (the same source event id) is "
    "acknowledged with `status: duplicate` and not processed again (a batch delivered again before its first delivery "
    "was evaluated is answered `accepted`; its events are still decided once). Event ids are derived from the "
    "source's event id, so a redelivery is answered with the same ids. 401 for a bad or stale signature, "
    "429 with `Retry-After` when the integration sends faster than its rate limit, 413 for a body over "
    "`CLOSELOOP_MAX_BODY_BYTES`."
)


async def receive_webhook(kind: str, integration_id: str, request: Request, body: bytes) -> EventAccepted:
    """Verify, normalise and store one webhook request (``body``) of an integration of ``kind``."""
    runtime: TriggerRuntime = request.app.state.runtime
    settings = runtime.settings
    caches = runtime.deps.caches
    integration = caches.integrations.get(integration_id)
    if integration is None or not integration.enabled:
        async with runtime.db.sessionmaker() as session:
            integration = await integrations.load_integration(session, caches, integration_id=integration_id)
    if integration.kind != kind:
        raise NotFound(
            f"Integration {integration_id!r} is a {integration.kind} integration; its URL is "
            f"/v1/webhooks/{KIND_PATHS[integration.kind]}/{integration_id}.",
            field="integration_id",
        )
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}
    signed = SignedRequest(
        method=request.method,
        # Only HubSpot signs the URL: the one it called is the public one (behind a proxy) or ours.
        uris=_called_urls(request, settings.public_url) if kind == "hubspot" else (),
        headers=headers,
        body=body,
        now=runtime.deps.clock.now().timestamp(),
    )
    try:
        message_id = kinds.verify(
            kind, integration.secret, integration.config, signed, tolerance_s=settings.signature_tolerance_s
        )
    except SignatureError as exc:
        raise Unauthorized(f"Webhook signature rejected: {exc}.", field=exc.header) from exc
    # After the signature: whoever merely knows the URL cannot use up the sender's rate.
    rate_limit(runtime, integration.id, integration.config.get("rate_limit_per_s"))
    events, ignored = _parse(kind, body, headers, integration.config, message_id)
    if kind == "hubspot" and integration.config.get("access_token"):
        try:
            events = await ingest.resolve_hubspot_contacts(
                runtime.deps.hubspot, token=integration.config["access_token"], events=events
            )
        except HubSpotUnavailable as exc:
            # Not acknowledged: HubSpot retries 5xx, and the events are stored once it answers.
            raise Unavailable(f"{exc}; retry later.", headers={"Retry-After": "30"}) from exc
    if len(events) > settings.max_batch_events:
        raise InvalidInput(
            f"{len(events)} events in one request; at most {settings.max_batch_events}.", field="body"
        )
    results: list[EventReceipt] = []
    # The webhook's trace (continuing the sender's traceparent, if it sent one) stays with its events:
    # the evaluator, later and elsewhere, publishes what they cause in that trace.
    trace = tracing.new_traceparent(parent=tracing.parse(headers.get("traceparent")) or tracing.current())
    for event in events:
        event.traceparent = trace
    if events:
        results = await runtime.deps.batcher.submit(
            workspace_id=integration.workspace_id,
            integration_id=integration.id,
            source=integration.source,
            events=events,
        )
    return event_accepted(results, ignored=ignored)


def _called_urls(request: Request, public_url: str) -> tuple[str, ...]:
    """Return the URLs a sender may have signed: the public one first, then the one this server saw."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return (public_url.rstrip("/") + target, str(request.url))


def _parse(
    kind: str, body: bytes, headers: dict[str, str], config: dict[str, Any], message_id: str | None
) -> tuple[list[Incoming], int]:
    """Return (events, ignored) from a verified body; an unreadable one is a 4xx naming its fault."""
    try:
        return kinds.parse(kind, body, headers, config, message_id)
    except MalformedPayload as exc:
        raise MalformedBody(str(exc), field=exc.field) from exc
    except PayloadError as exc:
        raise InvalidInput(str(exc), errors=exc.errors) from exc


def event_accepted(results: Sequence[EventReceipt], *, ignored: int) -> EventAccepted:
    """Return a request's answer from what happened to each of its events (none: all ignored)."""
    if not results:
        return EventAccepted(status="ignored", event_id="", surveys_requested=0, received=0, ignored=ignored)
    duplicates = sum(r.status == "duplicate" for r in results)
    counts = [r.surveys_requested for r in results]
    return EventAccepted(
        status="duplicate" if duplicates == len(results) else "accepted",
        event_id=results[0].event_id or "",
        surveys_requested=None if None in counts else sum(c or 0 for c in counts),
        received=len(results),
        duplicates=duplicates,
        ignored=ignored,
        events=[EventResult.model_validate(r) for r in results] if len(results) > 1 else None,
    )


_WEBHOOK_EXAMPLES: dict[str, Any] = {
    "standard": {
        "type": "ticket.solved",
        "timestamp": "2026-11-23T10:00:00Z",
        "data": {
            "contact": {"external_id": "cus_42", "email": "ada@example.com", "name": "Ada"},
            "ticket_id": "T-1",
        },
    },
    "hubspot": [
        {
            "eventId": 1,
            "subscriptionId": 2110001,
            "portalId": 62515,
            "appId": 54321,
            "occurredAt": 1795176000000,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": 123,
            "propertyName": "lifecyclestage",
            "propertyValue": "customer",
            "changeSource": "CRM_UI",
        }
    ],
    "zendesk": {
        "type": "zen:event-type:ticket.status_changed",
        "account_id": 12514403,
        "id": "2b24ef10-19d4-4740-93cf-8f98ec4776c0",
        "time": "2026-11-23T10:00:00Z",
        "subject": "zen:ticket:35436",
        "detail": {"id": "35436", "requester_id": "20978392", "status": "SOLVED"},
        "event": {"current": "SOLVED", "previous": "OPEN"},
    },
    "cloudevents": {
        "specversion": "1.0",
        "id": "A234-1234-1234",
        "source": "//shop.example.com/orders",
        "type": "com.shop.order.delivered",
        "time": "2026-11-23T10:00:00Z",
        "subject": "cus_42",
        "data": {"order": "A-7"},
    },
    "generic": {"freshdesk_webhook": {"ticket_id": 4242, "ticket_contact_email": "ada@example.com"}},
}


def _webhook_route(path: str, kind: str, summary: str) -> None:
    async def route(
        integration_id: Annotated[str, Path(description="The integration's id, from its webhook URL")],
        request: Request,
    ) -> Response:
        # Webhook POSTs are served by services.trigger.fastpath in front of FastAPI; this route
        # documents them and serves what reaches it (an app mounted without the fast path).
        accepted = await receive_webhook(kind, integration_id, request, await request.body())
        return Response(accepted.model_dump_json(), status_code=202, media_type="application/json")

    route.__name__ = f"receive_{path}_webhook"
    router.add_api_route(
        f"/v1/webhooks/{path}/{{integration_id}}",
        route,
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        tags=["webhooks"],
        summary=summary,
        description=_WEBHOOK_DESCRIPTION,
        response_model=EventAccepted,
        dependencies=[WEBHOOK_ACCESS],
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": {}, "example": _WEBHOOK_EXAMPLES[path]}},
                "required": True,
            }
        },
    )


_webhook_route("standard", "standard-webhooks", "Receive an event signed with the Standard Webhooks scheme")
_webhook_route("hubspot", "hubspot", "Receive a HubSpot webhook batch (X-HubSpot-Signature-v3)")
_webhook_route("zendesk", "zendesk", "Receive a Zendesk webhook (X-Zendesk-Webhook-Signature)")
_webhook_route("cloudevents", "cloudevents", "Receive CloudEvents 1.0 (structured, binary or batch mode)")
_webhook_route("generic", "generic", "Receive any JSON through the integration's field mapping")
