"""CRM connectors of a workspace, and the calls each public event queues for them (in the consumer's
transaction; the ``crm`` worker sends them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.crm import kinds, secrets
from services.dispatch.handlers.configuration import check_outbound_url
from services.dispatch.models import CrmAttempt, CrmCall, CrmConnector, erased_contacts
from services.dispatch.queries import all_owned, owned, with_children
from services.dispatch.schemas import CrmConnectorIn, CrmConnectorPatch, CrmCredentialsIn
from services.dispatch.schemas.crm import GenericMapping, _Credentials
from shared.erasure import is_erased
from shared.errors import InvalidInput
from shared.events import EventData, new_id
from shared.netguard import OutboundGuard


def _credentials(kind: str, auth: str, body: _Credentials) -> dict[str, Any]:
    """Return the credentials ``kind`` needs from ``body``; raise ``InvalidInput`` naming a missing one."""

    def need(*names: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            value = getattr(body, name)
            value = value.get_secret_value() if isinstance(value, SecretStr) else value
            if not value:
                raise InvalidInput(f"a {kind} connector needs {name}", field=name)
            out[name] = value
        return out

    if kind == "hubspot":
        return need("access_token")
    if kind == "zendesk":
        return need("email", "api_token")
    by_auth = {
        "bearer": ("token",),
        "basic": ("username", "password"),
        "header": ("header_name", "header_value"),
    }
    return need(*by_auth.get(auth, ()))


async def _check_mappings(guard: OutboundGuard, mappings: list[GenericMapping]) -> list[dict[str, Any]]:
    """The mappings as stored; each URL's host is one a workspace may reach (checked again at connect time)."""
    out = []
    for i, mapping in enumerate(mappings):
        host = mapping.url.split("/", 3)[:3]
        await check_outbound_url(guard, "/".join(host) + "/", field=f"mappings.{i}.url")
        out.append(mapping.model_dump(mode="json"))
    return out


async def create_connector(
    session: AsyncSession, guard: OutboundGuard, *, secret: str, workspace_id: str, body: CrmConnectorIn
) -> CrmConnector:
    config: dict[str, Any] = {"burst_per_10s": body.burst_per_10s}
    if body.kind == "hubspot":
        config["match_by"], config["detractor_notes"] = body.match_by, body.detractor_notes
    elif body.kind == "zendesk":
        if not body.subdomain:
            raise InvalidInput("a zendesk connector needs subdomain", field="subdomain")
        config["subdomain"] = body.subdomain
    else:
        if not body.mappings:
            raise InvalidInput("a generic connector needs at least one mapping", field="mappings")
        config["auth"], config["mappings"] = body.auth, await _check_mappings(guard, body.mappings)
    row = CrmConnector(
        id=new_id(),
        workspace_id=workspace_id,
        kind=body.kind,
        name=body.name,
        config=config,
        sealed_credentials=secrets.seal(secret, _credentials(body.kind, body.auth, body)),
        enabled=True,
        prepared=body.kind != "hubspot",
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def get_connector(session: AsyncSession, *, workspace_id: str, connector_id: str) -> CrmConnector:
    return await owned(session, CrmConnector, workspace_id=workspace_id, row_id=connector_id)


async def list_connectors(session: AsyncSession, *, workspace_id: str) -> list[CrmConnector]:
    return await all_owned(session, CrmConnector, workspace_id=workspace_id)


async def patch_connector(
    session: AsyncSession,
    guard: OutboundGuard,
    *,
    workspace_id: str,
    connector_id: str,
    body: CrmConnectorPatch,
) -> CrmConnector:
    row = await get_connector(session, workspace_id=workspace_id, connector_id=connector_id)
    if body.name is not None:
        row.name = body.name
    if body.enabled is not None:
        row.enabled = body.enabled
    config = dict(row.config)
    if body.match_by is not None and row.kind == "hubspot":
        config["match_by"] = body.match_by
    if body.detractor_notes is not None and row.kind == "hubspot":
        config["detractor_notes"] = body.detractor_notes
    if body.mappings is not None and row.kind == "generic":
        config["mappings"] = await _check_mappings(guard, body.mappings)
    if body.burst_per_10s is not None:
        config["burst_per_10s"] = body.burst_per_10s
    row.config = config
    await session.flush()
    await session.refresh(row)
    return row


async def replace_credentials(
    session: AsyncSession, *, secret: str, workspace_id: str, connector_id: str, body: CrmCredentialsIn
) -> CrmConnector:
    row = await get_connector(session, workspace_id=workspace_id, connector_id=connector_id)
    credentials = _credentials(row.kind, row.config.get("auth", "none"), body)
    row.sealed_credentials = secrets.seal(secret, credentials)
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
    return with_children(calls, attempts, parent_id=lambda a: a.call_id)


async def enqueue(
    session: AsyncSession, event: EventData, *, event_id: str, occurred_at: datetime, now: datetime
) -> int:
    """Queue what ``event`` asks of every enabled connector of its workspace; return how many calls are
    new (the same event again queues nothing)."""
    connectors = (
        await session.scalars(
            select(CrmConnector).where(
                CrmConnector.workspace_id == event.workspace_id, CrmConnector.enabled.is_(True)
            )
        )
    ).all()
    if not connectors:
        return 0
    contact_id = getattr(event, "contact_id", None) or None
    if contact_id and await is_erased(
        session, erased_contacts, workspace_id=event.workspace_id, contact_id=contact_id
    ):
        return 0
    body = kinds.public_body(event, event_id=event_id, occurred_at=occurred_at)
    rows: list[dict[str, Any]] = []
    for connector in connectors:
        for key, request in await kinds.plan(session, connector, event, event_id=event_id, body=body):
            rows.append(
                {
                    "id": new_id(),
                    "workspace_id": event.workspace_id,
                    "connector_id": connector.id,
                    "event_id": key,
                    "event_type": event.type_name(),
                    "contact_id": contact_id,
                    "request": request,
                    "status": "scheduled",
                    "attempts": 0,
                    "next_attempt_at": now,
                }
            )
    if not rows:
        return 0
    # One statement compiled once (its cache key does not depend on the rows), executed for every row.
    created = await session.execute(insert(CrmCall).on_conflict_do_nothing().returning(CrmCall.id), rows)
    return len(created.all())
