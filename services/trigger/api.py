"""Routes of the trigger service: parse, call a handler, return."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status
from pydantic import TypeAdapter, ValidationError

from services.trigger import domain, queries, sources
from services.trigger.caches import Caches
from services.trigger.handlers import contacts, dryrun, imports, ingest, integrations, rules, settings
from services.trigger.hubspot import HubSpotClient, HubSpotUnavailable
from services.trigger.importer import ImportFormatError, read_rows
from services.trigger.models import AuditEntry, Decision, Integration, Rule
from services.trigger.schemas import AuditEntry as AuditOut
from services.trigger.schemas import (
    ContactCreate,
    ContactOut,
    ContactUpsert,
    DecisionOut,
    DirectEvent,
    DryRunRequest,
    DryRunResult,
    EventAccepted,
    EventResult,
    ImportResult,
    IntegrationCreate,
    IntegrationOut,
    IntegrationUpdate,
    OptOut,
    ReceivedEventOut,
    RuleCreate,
    RuleOut,
    RulePatch,
)
from services.trigger.schemas import WorkspaceSettings as SettingsBody
from services.trigger.store import EventReceipt
from shared.errors import CloseloopError, InvalidInput, MalformedBody, NotFound, Unauthorized
from shared.service import Runtime, RuntimeDep, SessionDep, WorkspaceDep

router = APIRouter()
ExternalId = Annotated[str, Path(min_length=1, max_length=200, description="The contact's id in your CRM")]
PATH_KINDS = {
    "standard": "standard-webhooks",
    "hubspot": "hubspot",
    "zendesk": "zendesk",
    "cloudevents": "cloudevents",
    "generic": "generic",
}
KIND_PATHS = {kind: path for path, kind in PATH_KINDS.items()}
_direct_events = TypeAdapter(DirectEvent | list[DirectEvent])


class TooManyRequests(CloseloopError):
    status, code, title = 429, "rate-limited", "Too many requests"


class Unavailable(CloseloopError):
    status, code, title = 503, "unavailable", "Service unavailable"


def _now(runtime: Runtime) -> datetime:
    return runtime.extras["clock"]()  # type: ignore[no-any-return]


def _caches(runtime: Runtime) -> Caches:
    return runtime.extras["caches"]  # type: ignore[no-any-return]


async def get_actor(request: Request, workspace: WorkspaceDep) -> str:
    """Return who makes this change: the API key's id, and the person the caller names in X-Actor."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    key_id = key.split(".")[1] if key.count(".") == 2 else "unknown"
    person = request.headers.get("x-actor", "").strip()[:200]
    return f"{person} (api key {key_id})" if person else f"api key {key_id}"


ActorDep = Annotated[str, Depends(get_actor)]


def _rate_limit(runtime: Runtime, key: str, rate: float | None) -> None:
    wait = runtime.extras["limiter"].acquire(key, time.monotonic(), rate=rate)
    if wait > 0:
        seconds = max(1, int(wait + 0.999))
        raise TooManyRequests(
            f"More than {rate or runtime.settings.rate_limit_per_s:g} requests per second; retry in {seconds}s.",
            headers={"Retry-After": str(seconds)},
        )


# --- integrations --------------------------------------------------------------------------


def _integration_out(
    runtime: Runtime, integration: Integration, *, secret: str | None = None
) -> IntegrationOut:
    path = KIND_PATHS[integration.kind]
    return IntegrationOut(
        id=integration.id,
        name=integration.name,
        kind=integration.kind,
        source=integration.source,
        enabled=integration.enabled,
        webhook_url=f"{runtime.settings.public_url.rstrip('/')}/v1/webhooks/{path}/{integration.id}",
        config=integrations.public_config(integration.config),
        secret=secret,
    )


@router.post(
    "/v1/integrations",
    status_code=status.HTTP_201_CREATED,
    tags=["integrations"],
    summary="Connect a source; the response shows its webhook URL (and a generated secret, once)",
)
async def create_integration(
    body: IntegrationCreate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
) -> IntegrationOut:
    integration, secret = await integrations.create_integration(
        session, workspace_id=workspace, body=body, actor=actor
    )
    return _integration_out(runtime, integration, secret=secret)


@router.get("/v1/integrations", tags=["integrations"], summary="List the workspace's integrations")
async def list_integrations(
    workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[IntegrationOut]:
    rows = await queries.list_integrations(session, workspace_id=workspace)
    return [_integration_out(runtime, i) for i in rows]


@router.get("/v1/integrations/{integration_id}", tags=["integrations"], summary="Read an integration")
async def get_integration(
    integration_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> IntegrationOut:
    integration = await integrations.find_integration(
        session, workspace_id=workspace, integration_id=integration_id
    )
    return _integration_out(runtime, integration)


@router.patch(
    "/v1/integrations/{integration_id}",
    tags=["integrations"],
    summary="Enable, disable, rename or reconfigure an integration, or set its secret (audited)",
)
async def update_integration(
    integration_id: str,
    body: IntegrationUpdate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
) -> IntegrationOut:
    integration = await integrations.update_integration(
        session,
        _caches(runtime),
        workspace_id=workspace,
        integration_id=integration_id,
        body=body,
        actor=actor,
    )
    return _integration_out(runtime, integration)


# --- webhooks --------------------------------------------------------------------------------

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
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    caches = _caches(runtime)
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
    signed = sources.SignedRequest(
        method=request.method,
        # Only HubSpot signs the URL: the one it called is the public one (behind a proxy) or ours.
        uris=_called_urls(request, settings.public_url) if kind == "hubspot" else (),
        headers=headers,
        body=body,
        now=_now(runtime).timestamp(),
    )
    try:
        message_id = sources.verify(
            kind, integration.secret, integration.config, signed, tolerance_s=settings.signature_tolerance_s
        )
    except sources.SignatureError as exc:
        raise Unauthorized(f"Webhook signature rejected: {exc}.", field=exc.header) from exc
    # After the signature: whoever merely knows the URL cannot use up the sender's rate.
    _rate_limit(runtime, integration.id, integration.config.get("rate_limit_per_s"))
    events, ignored = _parse(kind, body, headers, integration.config, message_id)
    if kind == "hubspot" and integration.config.get("access_token"):
        client: HubSpotClient = runtime.extras["hubspot"]
        try:
            events = await ingest.resolve_hubspot_contacts(
                client, token=integration.config["access_token"], events=events
            )
        except HubSpotUnavailable as exc:
            # Not acknowledged: HubSpot retries 5xx, and the events are stored once it answers.
            raise Unavailable(f"{exc}; retry later.", headers={"Retry-After": "30"}) from exc
    if len(events) > settings.max_batch_events:
        raise InvalidInput(
            f"{len(events)} events in one request; at most {settings.max_batch_events}.", field="body"
        )
    return await _store(
        runtime, integration.workspace_id, integration.id, integration.source, events, ignored
    )


def _called_urls(request: Request, public_url: str) -> tuple[str, ...]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return (public_url.rstrip("/") + target, str(request.url))


def _parse(
    kind: str, body: bytes, headers: dict[str, str], config: dict[str, Any], message_id: str | None
) -> tuple[list[sources.Incoming], int]:
    try:
        return sources.parse(kind, body, headers, config, message_id)
    except sources.MalformedPayload as exc:
        raise MalformedBody(str(exc), field=exc.field) from exc
    except sources.PayloadError as exc:
        raise InvalidInput(str(exc), errors=exc.errors) from exc


async def _store(
    runtime: Runtime,
    workspace_id: str,
    integration_id: str | None,
    source: str,
    events: list[sources.Incoming],
    ignored: int,
    *,
    evaluate: bool = False,
) -> EventAccepted:
    """Store the events; with ``evaluate``, apply the rules before answering (direct posts)."""
    if not events:
        return EventAccepted(status="ignored", event_id="", surveys_requested=0, received=0, ignored=ignored)
    if evaluate:
        results = await ingest.store_and_evaluate(
            runtime.db,
            runtime.outbox,
            _caches(runtime),
            workspace_id=workspace_id,
            source=source,
            events=events,
            now=_now(runtime),
        )
    else:
        results = await runtime.extras["batcher"].submit(
            workspace_id=workspace_id, integration_id=integration_id, source=source, events=events
        )
    duplicates = sum(r.status == "duplicate" for r in results)
    counts = [r.surveys_requested for r in results]
    return EventAccepted(
        status="duplicate" if duplicates == len(results) else "accepted",
        event_id=results[0].event_id or "",
        surveys_requested=None if None in counts else sum(c or 0 for c in counts),
        received=len(results),
        duplicates=duplicates,
        ignored=ignored,
        events=[_event_result(r) for r in results] if len(results) > 1 else None,
    )


def _event_result(receipt: EventReceipt) -> EventResult:
    return EventResult(
        source_event_id=receipt.source_event_id,
        event_id=receipt.event_id,
        status=receipt.status,
        surveys_requested=receipt.surveys_requested,
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


@router.post(
    "/v1/events",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["events"],
    summary="Post events directly with the workspace API key (one event or a list)",
    description="Source `api`; `id` is your event id, and a repeated id is acknowledged as a duplicate.",
)
async def post_events(
    workspace: WorkspaceDep,
    runtime: RuntimeDep,
    body: Annotated[
        Any, Body(openapi_examples={"event": {"value": DirectEvent.model_json_schema()["examples"][0]}})
    ],
) -> EventAccepted:
    _rate_limit(runtime, f"workspace:{workspace}", None)
    body = sources.without_nul(body)
    try:
        parsed = _direct_events.validate_python(body)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise InvalidInput("The events do not have the expected shape.", errors=errors) from exc
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items or len(items) > runtime.settings.max_batch_events:
        raise InvalidInput(f"Send 1 to {runtime.settings.max_batch_events} events.", field="body")
    raws = body if isinstance(body, list) else [body]
    events = []
    for index, raw in enumerate(raws):
        try:
            events.append(
                sources.parse_standard_shape(
                    raw, event_id=str(raw["id"]), where=f"{index}." if isinstance(body, list) else ""
                )
            )
        except sources.PayloadError as exc:
            raise InvalidInput(str(exc), errors=exc.errors) from exc
    return await _store(runtime, workspace, None, "api", events, 0, evaluate=True)


# --- events and decisions -------------------------------------------------------------------------


def _decision_out(d: Decision) -> DecisionOut:
    return DecisionOut(
        id=d.id,
        rule_id=d.rule_id,
        rule_version=d.rule_version,
        contact_id=d.contact_id,
        event_id=d.received_event_id,
        outcome=d.outcome,
        reason=d.reason,
        request_id=d.request_id,
        send_at=d.send_at,
        channel=d.channel,
        created_at=d.created_at,
    )


@router.get(
    "/v1/events/{event_id}",
    tags=["events"],
    summary="A received event, normalised, with every decision it caused",
)
async def get_event(event_id: str, workspace: WorkspaceDep, session: SessionDep) -> ReceivedEventOut:
    event = await queries.get_event(session, workspace_id=workspace, event_id=event_id)
    return ReceivedEventOut(
        id=event.id,
        source=event.source,
        source_event_id=event.source_event_id,
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        contact_id=event.contact_id,
        received_at=event.received_at,
        status=event.status,
        evaluated_at=event.evaluated_at,
        error=event.error,
        properties=event.properties,
        decisions=[_decision_out(d) for d in event.decisions],
    )


@router.get(
    "/v1/events/{event_id}/decisions",
    tags=["events"],
    summary="Every decision an event caused, with its reason",
)
async def event_decisions(event_id: str, workspace: WorkspaceDep, session: SessionDep) -> list[DecisionOut]:
    return (await get_event(event_id, workspace, session)).decisions


@router.get(
    "/v1/decisions",
    tags=["events"],
    summary="Recent decisions of the workspace, newest first, by outcome or rule",
)
async def list_decisions(
    workspace: WorkspaceDep,
    session: SessionDep,
    outcome: Annotated[str | None, Query(description="e.g. suppressed_by_cap")] = None,
    rule_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DecisionOut]:
    if outcome is not None and outcome not in domain.OUTCOMES:
        raise InvalidInput(f"outcome is one of {', '.join(domain.OUTCOMES)}", field="outcome")
    rows = await queries.list_decisions(
        session, workspace_id=workspace, outcome=outcome, rule_id=rule_id, limit=limit
    )
    return [_decision_out(d) for d in rows]


# --- contacts ---------------------------------------------------------------------------------


def _contact_out(c: Any) -> ContactOut:
    get = c.get if isinstance(c, dict) else lambda k: getattr(c, k)
    return ContactOut(
        id=get("id"),
        external_id=get("external_id"),
        email=get("email"),
        name=get("name"),
        phone=get("phone"),
        locale=get("locale"),
        timezone=get("timezone"),
        country=get("country"),
        company=get("company"),
        role=get("role"),
        plan=get("plan"),
        attributes=get("attributes") or {},
        opted_out=get("opted_out"),
        opted_out_channels=list(get("opted_out_channels") or []),
        created_at=get("created_at"),
        updated_at=get("updated_at"),
    )


@router.put(
    "/v1/contacts/{external_id}",
    tags=["contacts"],
    summary="Create or update a contact by your CRM id",
    responses={201: {"description": "Created"}},
)
async def put_contact(
    external_id: ExternalId,
    body: ContactUpsert,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> ContactOut:
    contact, created = await contacts.upsert_contact(
        session,
        runtime.outbox,
        workspace_id=workspace,
        external_id=external_id,
        fields=body.model_dump(exclude_unset=True),
        now=_now(runtime),
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _contact_out(contact)


@router.post(
    "/v1/contacts",
    tags=["contacts"],
    summary="Create or update a contact by external id and/or email",
    responses={201: {"description": "Created"}},
)
async def post_contact(
    body: ContactCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, response: Response
) -> ContactOut:
    fields = body.model_dump(exclude_unset=True)
    external_id = fields.pop("external_id", None)
    contact, created = await contacts.upsert_contact(
        session,
        runtime.outbox,
        workspace_id=workspace,
        external_id=external_id,
        fields=fields,
        now=_now(runtime),
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _contact_out(contact)


@router.get("/v1/contacts", tags=["contacts"], summary="List contacts, optionally by email")
async def list_contacts(
    workspace: WorkspaceDep,
    session: SessionDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ContactOut]:
    rows = await queries.list_contacts(
        session, workspace_id=workspace, email=email, limit=limit, offset=offset
    )
    return [_contact_out(c) for c in rows]


@router.get("/v1/contacts/{external_id}", tags=["contacts"], summary="Read a contact")
async def get_contact(external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep) -> ContactOut:
    return _contact_out(await contacts.find_contact(session, workspace_id=workspace, external_id=external_id))


@router.delete(
    "/v1/contacts/{external_id}",
    tags=["contacts"],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase a contact's personal data here and in every service (publishes ContactErased)",
)
async def erase_contact(
    external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await contacts.erase_contact(
        session, runtime.outbox, workspace_id=workspace, external_id=external_id, now=_now(runtime)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/contacts/{external_id}/opt-out",
    tags=["contacts"],
    summary="Opt a contact out of surveys (one channel or all); publishes ContactOptedOut",
)
async def opt_out(
    external_id: ExternalId,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    body: Annotated[
        OptOut | None,
        Body(openapi_examples={"every channel": {"value": {}}, "only SMS": {"value": {"channel": "sms"}}}),
    ] = None,
) -> ContactOut:
    contact = await contacts.find_contact(session, workspace_id=workspace, external_id=external_id)
    contact = await contacts.set_opt_out(
        session,
        runtime.outbox,
        workspace_id=workspace,
        contact=contact,
        channel=body.channel if body else None,
        now=_now(runtime),
        source="api",
    )
    return _contact_out(contact)


@router.delete(
    "/v1/contacts/{external_id}/opt-out",
    tags=["contacts"],
    summary="Opt a contact back in to every channel (when the customer asks for it)",
)
async def opt_in(external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep) -> ContactOut:
    contact = await contacts.find_contact(session, workspace_id=workspace, external_id=external_id)
    return _contact_out(await contacts.opt_in(session, workspace_id=workspace, contact_id=contact["id"]))


@router.get(
    "/v1/contacts/{external_id}/decisions",
    tags=["contacts"],
    summary="Every survey decision made for a contact, with its reason",
)
async def contact_decisions(
    external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep
) -> list[DecisionOut]:
    rows = await queries.contact_decisions(session, workspace_id=workspace, external_id=external_id)
    return [_decision_out(d) for d in rows]


@router.post(
    "/v1/contacts/import",
    tags=["contacts"],
    summary="Bulk upsert contacts from CSV or JSON lines, with an error per invalid row",
    description="Send `text/csv` (header row) or `application/x-ndjson`. Valid rows are applied and "
    "invalid ones reported; with `atomic=true` nothing is applied unless every row is valid (422).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "external_id,email,name,plan\ncus_1,ada@example.com,Ada,pro\n",
                },
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"external_id":"cus_1","email":"ada@example.com"}\n',
                },
            },
        }
    },
)
async def import_contacts(
    request: Request,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    atomic: bool = False,
) -> ImportResult:
    try:
        rows = read_rows(request.headers.get("content-type", ""), await request.body())
    except ImportFormatError as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc
    if len(rows) > runtime.settings.import_max_rows:
        raise InvalidInput(
            f"{len(rows)} rows in one request; at most {runtime.settings.import_max_rows} (the CLI sends chunks).",
            field="body",
        )
    result = await imports.import_contacts(
        session, runtime.outbox, workspace_id=workspace, rows=rows, now=_now(runtime), atomic=atomic
    )
    if atomic and result.failed:
        response.status_code = 422
    return result


# --- rules ------------------------------------------------------------------------------------------


def _rule_out(r: Rule) -> RuleOut:
    return RuleOut.model_validate(
        {
            **rules.rule_snapshot(r),
            "id": r.id,
            "version": r.version,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
    )


@router.post(
    "/v1/rules",
    status_code=status.HTTP_201_CREATED,
    tags=["rules"],
    summary="Create a trigger rule: which event, conditions, survey, channel, timing, sampling, caps",
)
async def create_rule(
    body: RuleCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, actor: ActorDep
) -> RuleOut:
    return _rule_out(
        await rules.create_rule(session, _caches(runtime), workspace_id=workspace, body=body, actor=actor)
    )


@router.get("/v1/rules", tags=["rules"], summary="List the workspace's rules")
async def list_rules(workspace: WorkspaceDep, session: SessionDep) -> list[RuleOut]:
    return [_rule_out(r) for r in await queries.list_rules(session, workspace_id=workspace)]


@router.post(
    "/v1/rules/dry-run",
    tags=["rules"],
    summary="For this event and contact: which rules match, what would happen, and why (writes nothing)",
)
async def dry_run(
    body: DryRunRequest, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> DryRunResult:
    return await dryrun.dry_run(
        session, _caches(runtime), workspace_id=workspace, body=body, now=_now(runtime)
    )


@router.get("/v1/rules/{rule_id}", tags=["rules"], summary="Read a rule")
async def get_rule(rule_id: str, workspace: WorkspaceDep, session: SessionDep) -> RuleOut:
    return _rule_out(await rules.find_rule(session, workspace_id=workspace, rule_id=rule_id))


@router.put("/v1/rules/{rule_id}", tags=["rules"], summary="Replace a rule (audited; the version goes up)")
async def replace_rule(
    rule_id: str,
    body: RuleCreate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
) -> RuleOut:
    rule = await rules.change_rule(
        session,
        _caches(runtime),
        workspace_id=workspace,
        rule_id=rule_id,
        changes=body.model_dump(mode="json"),
        actor=actor,
        replace=True,
    )
    return _rule_out(rule)


@router.patch(
    "/v1/rules/{rule_id}",
    tags=["rules"],
    summary="Change some fields of a rule, e.g. enable or disable it (audited)",
)
async def patch_rule(
    rule_id: str,
    body: RulePatch,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: ActorDep,
) -> RuleOut:
    rule = await rules.change_rule(
        session,
        _caches(runtime),
        workspace_id=workspace,
        rule_id=rule_id,
        changes=rules.rule_patch_changes(body),
        actor=actor,
        replace=False,
    )
    return _rule_out(rule)


@router.delete(
    "/v1/rules/{rule_id}",
    tags=["rules"],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a rule (audited; its past decisions stay)",
)
async def delete_rule(
    rule_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, actor: ActorDep
) -> Response:
    await rules.delete_rule(session, _caches(runtime), workspace_id=workspace, rule_id=rule_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _audit_out(a: AuditEntry) -> AuditOut:
    return AuditOut(
        id=a.id,
        entity=a.entity,
        entity_id=a.entity_id,
        action=a.action,
        actor=a.actor,
        at=a.at,
        before=a.before,
        after=a.after,
    )


@router.get("/v1/rules/{rule_id}/history", tags=["rules"], summary="Who changed a rule, when, and what")
async def rule_history(rule_id: str, workspace: WorkspaceDep, session: SessionDep) -> list[AuditOut]:
    rows = await queries.rule_history(session, workspace_id=workspace, rule_id=rule_id)
    return [_audit_out(a) for a in rows]


@router.get("/v1/audit", tags=["rules"], summary="The workspace's audit log: rules, settings, integrations")
async def audit_log(
    workspace: WorkspaceDep,
    session: SessionDep,
    entity: Annotated[str | None, Query(pattern="^(rule|settings|integration)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditOut]:
    rows = await queries.audit_log(session, workspace_id=workspace, entity=entity, limit=limit)
    return [_audit_out(a) for a in rows]


# --- settings ------------------------------------------------------------------------------------


@router.get(
    "/v1/settings",
    tags=["settings"],
    summary="The workspace's contact-frequency cap, quiet hours and time zone",
)
async def get_settings(workspace: WorkspaceDep, session: SessionDep) -> SettingsBody:
    return settings.settings_out(await queries.workspace_settings(session, workspace_id=workspace))


@router.put(
    "/v1/settings",
    tags=["settings"],
    summary="Replace the workspace's frequency cap and quiet hours (audited)",
)
async def put_settings(
    body: SettingsBody, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep, actor: ActorDep
) -> SettingsBody:
    return await settings.put_settings(
        session, _caches(runtime), workspace_id=workspace, body=body, actor=actor
    )
