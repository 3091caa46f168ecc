"""Routes of the trigger service: parse, call a handler, return."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import ValidationError
from sqlalchemy import select

from services.trigger import handlers
from services.trigger.models import Contact, Decision, Integration, Rule
from services.trigger.schemas import (
    ContactOut,
    ContactUpsert,
    DecisionOut,
    EventAccepted,
    InboundEvent,
    IntegrationCreate,
    IntegrationOut,
    RuleCreate,
    RuleOut,
)
from shared import standard_webhooks
from shared.errors import InvalidInput, NotFound, parse_json_object
from shared.events import new_id
from shared.service import RuntimeDep, SessionDep, WorkspaceDep

router = APIRouter()
ExternalId = Annotated[str, Path(min_length=1, max_length=200, description="The contact's id in your CRM")]


def _integration_out(
    runtime: RuntimeDep, integration: Integration, *, with_secret: bool = False
) -> IntegrationOut:
    return IntegrationOut(
        id=integration.id,
        name=integration.name,
        kind=integration.kind,
        enabled=integration.enabled,
        webhook_url=f"{runtime.settings.public_url}/v1/webhooks/standard/{integration.id}",
        secret=integration.secret if with_secret else None,
    )


@router.post(
    "/v1/integrations",
    status_code=status.HTTP_201_CREATED,
    tags=["integrations"],
    summary="Connect a source; the response shows its webhook URL and secret once",
)
async def create_integration(
    body: IntegrationCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> IntegrationOut:
    integration = Integration(
        id=new_id(),
        workspace_id=workspace,
        kind=body.kind,
        name=body.name,
        secret=standard_webhooks.new_secret(),
        enabled=True,
    )
    session.add(integration)
    await session.flush()
    return _integration_out(runtime, integration, with_secret=True)


@router.get("/v1/integrations", tags=["integrations"], summary="List the workspace's integrations")
async def list_integrations(
    workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[IntegrationOut]:
    rows = await session.scalars(
        select(Integration).where(Integration.workspace_id == workspace).order_by(Integration.created_at)
    )
    return [_integration_out(runtime, i) for i in rows]


@router.post(
    "/v1/webhooks/standard/{integration_id}",
    tags=["webhooks"],
    status_code=status.HTTP_202_ACCEPTED,
    summary="Receive an event signed with the Standard Webhooks scheme",
    description="Acknowledged only after the event is stored. A redelivery with the same "
    "`webhook-id` is acknowledged with `status: duplicate` and not processed again.",
)
async def receive_standard_webhook(
    integration_id: str, request: Request, session: SessionDep, runtime: RuntimeDep
) -> EventAccepted:
    body = await request.body()
    integration = await handlers.get_integration(session, integration_id=integration_id)
    message_id = handlers.verify_signature(integration, dict(request.headers), body)
    raw = parse_json_object(body)
    try:
        event = InboundEvent.model_validate(raw)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise InvalidInput(
            "The event does not have the expected shape: " + ", ".join(e["field"] for e in errors),
            errors=errors,
        ) from exc
    state, event_id, requested = await handlers.receive_event(
        session,
        runtime.outbox,
        workspace_id=integration.workspace_id,
        integration_id=integration.id,
        source="standard-webhooks",
        source_event_id=message_id,
        event=event,
        raw=raw,
    )
    return EventAccepted(status=state, event_id=event_id, surveys_requested=requested)  # type: ignore[arg-type]


@router.put(
    "/v1/contacts/{external_id}", tags=["contacts"], summary="Create or update a contact by your CRM id"
)
async def put_contact(
    external_id: ExternalId,
    body: ContactUpsert,
    workspace: WorkspaceDep,
    session: SessionDep,
    response: Response,
) -> ContactOut:
    contact, created = await handlers.put_contact(
        session, workspace_id=workspace, external_id=external_id, body=body
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _contact_out(contact)


@router.get("/v1/contacts/{external_id}", tags=["contacts"], summary="Read a contact")
async def get_contact(external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep) -> ContactOut:
    contact = await session.scalar(
        select(Contact).where(Contact.workspace_id == workspace, Contact.external_id == external_id)
    )
    if contact is None:
        raise NotFound(f"No contact with external id {external_id!r}.", field="external_id")
    return _contact_out(contact)


@router.get(
    "/v1/contacts/{external_id}/decisions",
    tags=["contacts"],
    summary="Every survey decision made for a contact, with its reason",
)
async def contact_decisions(
    external_id: ExternalId, workspace: WorkspaceDep, session: SessionDep
) -> list[DecisionOut]:
    contact = await get_contact(external_id, workspace, session)
    rows = await session.scalars(
        select(Decision)
        .where(Decision.workspace_id == workspace, Decision.contact_id == contact.id)
        .order_by(Decision.created_at)
    )
    return [
        DecisionOut(
            rule_id=d.rule_id,
            contact_id=d.contact_id,
            outcome=d.outcome,
            reason=d.reason,
            request_id=d.request_id,
            send_at=d.send_at,
        )
        for d in rows
    ]


def _contact_out(c: Contact) -> ContactOut:
    return ContactOut(
        id=c.id,
        external_id=c.external_id,
        email=c.email,
        name=c.name,
        phone=c.phone,
        locale=c.locale,
        attributes=c.attributes or {},
        opted_out=c.opted_out,
    )


@router.post(
    "/v1/rules",
    status_code=status.HTTP_201_CREATED,
    tags=["rules"],
    summary="Create a trigger rule: event type → survey, channel, delay",
)
async def create_rule(body: RuleCreate, workspace: WorkspaceDep, session: SessionDep) -> RuleOut:
    rule = await handlers.create_rule(session, workspace_id=workspace, body=body)
    return _rule_out(rule)


@router.get("/v1/rules", tags=["rules"], summary="List the workspace's rules")
async def list_rules(workspace: WorkspaceDep, session: SessionDep) -> list[RuleOut]:
    rows = await session.scalars(select(Rule).where(Rule.workspace_id == workspace).order_by(Rule.created_at))
    return [_rule_out(r) for r in rows]


def _rule_out(r: Rule) -> RuleOut:
    return RuleOut(
        id=r.id,
        name=r.name,
        event_type=r.event_type,
        survey_id=r.survey_id,
        channel=r.channel,  # type: ignore[arg-type]
        delay_seconds=r.delay_seconds,
        enabled=r.enabled,
    )
