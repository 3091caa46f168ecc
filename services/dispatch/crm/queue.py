"""CRM connectors of a workspace, and the calls each public event queues for them (in the consumer's
transaction; the ``crm`` worker sends them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.crm import hubspot, secrets
from services.dispatch.models import CrmAttempt, CrmCall, CrmConnector, erased_contacts
from services.dispatch.schemas import CrmConnectorIn, CrmConnectorPatch
from shared.erasure import is_erased
from shared.errors import NotFound
from shared.events import EventData, ResponseScored, is_uuid, new_id


async def create_connector(
    session: AsyncSession, *, secret: str, workspace_id: str, body: CrmConnectorIn
) -> CrmConnector:
    row = CrmConnector(
        id=new_id(),
        workspace_id=workspace_id,
        kind=body.kind,
        name=body.name,
        config={"match_by": body.match_by, "burst_per_10s": body.burst_per_10s},
        sealed_credentials=secrets.seal(secret, {"access_token": body.access_token.get_secret_value()}),
        enabled=True,
        prepared=False,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def get_connector(session: AsyncSession, *, workspace_id: str, connector_id: str) -> CrmConnector:
    row = (
        await session.scalar(
            select(CrmConnector).where(
                CrmConnector.workspace_id == workspace_id, CrmConnector.id == connector_id
            )
        )
        if is_uuid(connector_id)
        else None
    )
    if row is None:
        raise NotFound(f"No CRM connector {connector_id!r} in this workspace.", field="connector_id")
    return row


async def list_connectors(session: AsyncSession, *, workspace_id: str) -> list[CrmConnector]:
    return list(
        await session.scalars(
            select(CrmConnector)
            .where(CrmConnector.workspace_id == workspace_id)
            .order_by(CrmConnector.created_at)
        )
    )


async def patch_connector(
    session: AsyncSession, *, workspace_id: str, connector_id: str, body: CrmConnectorPatch
) -> CrmConnector:
    row = await get_connector(session, workspace_id=workspace_id, connector_id=connector_id)
    if body.name is not None:
        row.name = body.name
    if body.enabled is not None:
        row.enabled = body.enabled
    config = dict(row.config)
    if body.match_by is not None:
        config["match_by"] = body.match_by
    if body.burst_per_10s is not None:
        config["burst_per_10s"] = body.burst_per_10s
    row.config = config
    await session.flush()
    await session.refresh(row)
    return row


async def replace_credentials(
    session: AsyncSession, *, secret: str, workspace_id: str, connector_id: str, access_token: str
) -> CrmConnector:
    row = await get_connector(session, workspace_id=workspace_id, connector_id=connector_id)
    row.sealed_credentials = secrets.seal(secret, {"access_token": access_token})
    await session.flush()
    await session.refresh(row)
    return row


async def delete_connector(session: AsyncSession, *, workspace_id: str, connector_id: str) -> None:
    await session.delete(await get_connector(session, workspace_id=workspace_id, connector_id=connector_id))


async def list_calls(
    session: AsyncSession, *, workspace_id: str, connector_id: str, limit: int
) -> list[tuple[CrmCall, list[CrmAttempt]]]:
    """The connector's call log, newest first, each call with its HTTP requests."""
    await get_connector(session, workspace_id=workspace_id, connector_id=connector_id)
    calls = (
        await session.scalars(
            select(CrmCall)
            .where(CrmCall.connector_id == connector_id)
            .order_by(CrmCall.created_at.desc(), CrmCall.id)
            .limit(limit)
        )
    ).all()
    attempts = (
        await session.scalars(
            select(CrmAttempt).where(CrmAttempt.call_id.in_([c.id for c in calls])).order_by(CrmAttempt.id)
        )
    ).all()
    by_call: dict[str, list[CrmAttempt]] = {}
    for attempt in attempts:
        by_call.setdefault(attempt.call_id, []).append(attempt)
    return [(c, by_call.get(c.id, [])) for c in calls]


async def enqueue(session: AsyncSession, event: EventData, *, event_id: str, now: datetime) -> int:
    """Queue the CRM update ``event`` asks for at every enabled connector of its workspace; return how
    many were new. HubSpot: a scored response updates the contact's closeloop properties."""
    if not isinstance(event, ResponseScored):
        return 0
    connectors = (
        await session.scalars(
            select(CrmConnector).where(
                CrmConnector.workspace_id == event.workspace_id, CrmConnector.enabled.is_(True)
            )
        )
    ).all()
    if not connectors or await is_erased(
        session, erased_contacts, workspace_id=event.workspace_id, contact_id=event.contact_id
    ):
        return 0
    rows: list[dict[str, Any]] = []
    for connector in connectors:
        request = hubspot.contact_update(event, match_by=connector.config.get("match_by", "email"))
        if request is None:
            continue
        rows.append(
            {
                "id": new_id(),
                "workspace_id": event.workspace_id,
                "connector_id": connector.id,
                "event_id": event_id,
                "event_type": event.type_name(),
                "contact_id": event.contact_id,
                "request": request,
                "status": "scheduled",
                "attempts": 0,
                "next_attempt_at": now,
            }
        )
    if not rows:
        return 0
    created = await session.execute(
        insert(CrmCall).values(rows).on_conflict_do_nothing().returning(CrmCall.id)
    )
    return len(created.all())
