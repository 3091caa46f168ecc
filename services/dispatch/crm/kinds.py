"""What each kind of connector does with an event, and how its requests are addressed and signed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import catalogue
from services.dispatch.crm import generic, hubspot, zendesk
from services.dispatch.crm.request import Request
from services.dispatch.models import CrmCall, CrmConnector, Invitation
from services.dispatch.settings import DispatchSettings
from shared.events import (
    EventData,
    FollowUpOpened,
    FollowUpOutcomeRecorded,
    NegativeFeedbackDetected,
    ResponseScored,
)

KINDS = ("hubspot", "zendesk", "generic")


async def plan(
    session: AsyncSession,
    connector: CrmConnector,
    event: EventData,
    *,
    event_id: str,
    body: dict[str, Any] | None,
) -> list[tuple[str, dict[str, Any]]]:
    """Return the calls ``event`` asks of ``connector``, each with its unique key (the event id, with the
    mapping's index for the generic connector)."""
    if connector.kind == "hubspot":
        match_by = connector.config.get("match_by", "email")
        if isinstance(event, ResponseScored):
            queued = hubspot.contact_update(event, match_by=match_by)
        elif isinstance(event, NegativeFeedbackDetected) and connector.config.get("detractor_notes"):
            queued = hubspot.detractor_note(event, match_by=match_by)
        else:
            queued = None
        return [(event_id, queued)] if queued else []
    if connector.kind == "zendesk":
        queued = await _zendesk(session, connector, event)
        return [(event_id, queued)] if queued else []
    if body is None:
        return []
    return [
        (f"{event_id}:{i}", generic.planned(mapping, body))
        for i, mapping in enumerate(connector.config.get("mappings", []))
        if mapping["event_type"] == body["type"]
    ]


async def _zendesk(session: AsyncSession, connector: CrmConnector, event: EventData) -> dict[str, Any] | None:
    if isinstance(event, ResponseScored):
        if event.request_id is None:
            return None
        context = await session.scalar(
            select(Invitation.context).where(
                Invitation.workspace_id == event.workspace_id, Invitation.request_id == event.request_id
            )
        )
        ticket = (context or {}).get("ticket_id")
        return zendesk.scored_note(event, ticket_id=ticket) if ticket and str(ticket).isdigit() else None
    if isinstance(event, FollowUpOpened):
        ticket = await _ticket_of(session, connector, "response_id", event.response_id)
        return zendesk.case_note(event, ticket_id=ticket) if ticket else None
    if isinstance(event, FollowUpOutcomeRecorded):
        ticket = await _ticket_of(session, connector, "case_id", event.task_id)
        return zendesk.outcome_note(event, ticket_id=ticket) if ticket else None
    return None


async def _ticket_of(session: AsyncSession, connector: CrmConnector, key: str, value: str) -> str | None:
    """The ticket an earlier note of this connector went to (the response's note, the case's link)."""
    request = await session.scalar(
        select(CrmCall.request)
        .where(CrmCall.connector_id == connector.id, CrmCall.request[key].astext == value)
        .order_by(CrmCall.created_at.desc())
        .limit(1)
    )
    return str(request["ticket_id"]) if request and request.get("ticket_id") else None


def requests(connector: CrmConnector, queued: dict[str, Any]) -> list[Request]:
    """The requests of one queued call; HubSpot's first ones create the properties not yet made."""
    if connector.kind == "hubspot" and queued.get("note"):
        return [hubspot.note_requests(queued)]
    if connector.kind == "hubspot":
        made = set(connector.config.get("properties", ()))
        steps = [] if connector.prepared else [r for r in hubspot.property_requests() if r.step not in made]
        return [*steps, hubspot.update_request(queued)]
    if connector.kind == "zendesk":
        return [zendesk.update_request(queued)]
    return [generic.request(queued)]


def headers(connector: CrmConnector, credentials: dict[str, Any]) -> dict[str, str]:
    if connector.kind == "hubspot":
        return {"Authorization": f"Bearer {credentials['access_token']}"}
    if connector.kind == "zendesk":
        return {"Authorization": zendesk.authorization(credentials)}
    return generic.authorization(connector.config.get("auth", "none"), credentials)


def base_url(connector: CrmConnector, settings: DispatchSettings) -> str:
    if connector.kind == "hubspot":
        return settings.hubspot_base_url.rstrip("/")
    if connector.kind == "zendesk":
        return settings.zendesk_base_url.format(subdomain=connector.config["subdomain"]).rstrip("/")
    return ""


def public_body(event: EventData, *, event_id: str, occurred_at: Any) -> dict[str, Any] | None:
    public = catalogue.BY_SOURCE.get(type(event))
    return catalogue.envelope(public, event, event_id=event_id, timestamp=occurred_at) if public else None
