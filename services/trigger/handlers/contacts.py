"""Contacts: upserted by external id or email, opted out and back in, and erased (``ContactErased``);
and the contact as the rules see it (``contact_view``, ``contact_facts``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.domain.model import ContactView
from services.trigger.handlers.tx import outbox_row, write_outbox
from services.trigger.models import (
    CONTACT_COLUMNS,
    contact_surveys_table,
    contacts_table,
    received_events_table,
    schedules_table,
)
from services.trigger.sources.common import ContactRef
from services.trigger.store import explode_batches, session_fetch
from shared.errors import NotFound
from shared.events import ContactErased, ContactOptedOut, new_id
from shared.outbox import Outbox
from shared.vocabulary import CONTACT_FIELDS, Channel

_INSERTED: Any = literal_column("(xmax = 0)").label("inserted")


def _upsert_contacts_statement() -> Any:
    """Upsert one contact by external id (given fields win, attributes merge); its rows say if it was new."""
    stmt = insert(contacts_table)
    return stmt.on_conflict_do_update(
        index_elements=[contacts_table.c.workspace_id, contacts_table.c.external_id],
        set_={
            **{f: func.coalesce(stmt.excluded[f], contacts_table.c[f]) for f in CONTACT_FIELDS},
            "attributes": contacts_table.c.attributes.op("||")(stmt.excluded.attributes),
            "updated_at": func.now(),
        },
    ).returning(*CONTACT_COLUMNS, _INSERTED)


# Built once: SQLAlchemy caches the compiled form of a statement object it sees again.
_UPSERT_CONTACTS = _upsert_contacts_statement()


def contact_view(row: Mapping[str, Any]) -> ContactView:
    """Return the contact (a row of ``CONTACT_COLUMNS``) as the rules see it."""
    return ContactView(
        email=row["email"],
        phone=row["phone"],
        opted_out=row["opted_out"],
        id=row["id"],
        opted_out_channels=frozenset(row["opted_out_channels"] or ()),
        timezone=row["timezone"],
        facts=contact_facts(row),
    )


def contact_facts(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return what conditions on ``contact.<field>`` can look at."""
    facts = {f: row.get(f) for f in _FACT_FIELDS}
    facts["attributes"] = row.get("attributes") or {}
    return facts


_FACT_FIELDS = ("external_id", *CONTACT_FIELDS, "opted_out", "created_at")


# Column sizes: webhook data is clipped to them rather than failing the whole event.
_FIELD_LENGTHS = {
    "external_id": 200,
    "email": 320,
    "name": 200,
    "phone": 40,
    "locale": 20,
    "timezone": 64,
    "country": 64,
    "company": 200,
    "role": 100,
    "plan": 100,
}


def clip(field: str, value: Any) -> Any:
    """Return ``value`` as text cut to ``field``'s column size (None stays None)."""
    return str(value)[: _FIELD_LENGTHS[field]] if value is not None else None


def contact_values(workspace_id: str, ref: ContactRef) -> dict[str, Any]:
    """Return the row a new contact named by ``ref`` would be (fields clipped, unknown ones dropped)."""
    values: dict[str, Any] = {f: None for f in CONTACT_FIELDS}
    values.update({k: clip(k, v) for k, v in ref.fields.items() if k in CONTACT_FIELDS and v is not None})
    if ref.email:
        values["email"] = clip("email", ref.email)
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "external_id": clip("external_id", ref.external_id),
        **values,
        "attributes": dict(ref.attributes),
        "opted_out": False,
        "opted_out_channels": [],
    }


def ref_key(ref: ContactRef) -> str:
    """Return what identifies the contact ``ref`` names: its external id, else its email."""
    return (
        f"x:{clip('external_id', ref.external_id)}" if ref.external_id else f"e:{(ref.email or '').lower()}"
    )


def merge_refs(a: ContactRef, b: ContactRef) -> ContactRef:
    """Return one reference to the contact ``a`` and then ``b`` name (``b``'s values win)."""
    return ContactRef(
        external_id=a.external_id or b.external_id,
        email=b.email or a.email,
        fields={**a.fields, **{k: v for k, v in b.fields.items() if v is not None}},
        attributes={**a.attributes, **b.attributes},
    )


async def upsert_contact_by_email(
    session: AsyncSession, *, workspace_id: str, ref: ContactRef
) -> tuple[dict[str, Any], bool]:
    """Return the contact with this email (the oldest, if several) after the update, or a new one."""
    email = (ref.email or "").lower()
    # Serialise creators of one email address, so two at once do not make two contacts.
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"{workspace_id}:{email}", 0)))
    )
    existing = (
        await session.execute(
            select(contacts_table.c.id)
            .where(contacts_table.c.workspace_id == workspace_id, func.lower(contacts_table.c.email) == email)
            .order_by(contacts_table.c.created_at)
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    values = contact_values(workspace_id, ref)
    if existing is None:
        row = (
            (await session.execute(insert(contacts_table).values(values).returning(*CONTACT_COLUMNS)))
            .mappings()
            .one()
        )
        return dict(row), True
    changes = {k: v for k, v in values.items() if k in CONTACT_FIELDS and v is not None}
    row = (
        (
            await session.execute(
                update(contacts_table)
                .where(contacts_table.c.id == existing)
                .values(
                    **changes,
                    attributes=contacts_table.c.attributes.op("||")(literal(values["attributes"], JSONB)),
                    updated_at=func.now(),
                )
                .returning(*CONTACT_COLUMNS)
            )
        )
        .mappings()
        .one()
    )
    return dict(row), False


async def upsert_contact(
    session: AsyncSession,
    outbox: Outbox,
    *,
    workspace_id: str,
    external_id: str | None,
    fields: dict[str, Any],
    now: datetime,
    source: str = "api",
) -> tuple[dict[str, Any], bool]:
    """Return the contact after applying ``fields`` and whether it was created.

    ``opted_out: true`` opts the contact out (and tells the other services); ``false`` opts it back in.
    """
    opted_out = fields.pop("opted_out", None)
    attributes = fields.pop("attributes", None) or {}
    email = fields.pop("email", None)
    ref = ContactRef(
        external_id=external_id,
        email=str(email).lower() if email else None,
        fields={k: v for k, v in fields.items() if v is not None},
        attributes=attributes,
    )
    if external_id and ref.email:
        # A contact first known by its email alone is adopted by the first upsert naming its id.
        taken = select(contacts_table.c.id).where(
            contacts_table.c.workspace_id == workspace_id, contacts_table.c.external_id == external_id
        )
        oldest = (
            select(contacts_table.c.id)
            .where(
                contacts_table.c.workspace_id == workspace_id,
                contacts_table.c.external_id.is_(None),
                func.lower(contacts_table.c.email) == ref.email,
            )
            .order_by(contacts_table.c.created_at)
            .limit(1)
            .scalar_subquery()
        )
        await session.execute(
            update(contacts_table)
            .where(contacts_table.c.id == oldest, ~taken.exists())
            .values(external_id=external_id)
        )
    if external_id:
        row = (await session.execute(_UPSERT_CONTACTS, contact_values(workspace_id, ref))).mappings().one()
        contact, created = dict(row), bool(row["inserted"])
    else:
        contact, created = await upsert_contact_by_email(session, workspace_id=workspace_id, ref=ref)
    if opted_out is True and not contact["opted_out"]:
        contact = await set_opt_out(
            session, outbox, workspace_id=workspace_id, contact=contact, channel=None, now=now, source=source
        )
    elif opted_out is False and (contact["opted_out"] or contact["opted_out_channels"]):
        contact = await opt_in(session, workspace_id=workspace_id, contact_id=contact["id"])
    return contact, created


async def find_contact(session: AsyncSession, *, workspace_id: str, external_id: str) -> dict[str, Any]:
    """Return the contact with this external id, or raise ``NotFound``."""
    row = (
        (
            await session.execute(
                select(*CONTACT_COLUMNS).where(
                    contacts_table.c.workspace_id == workspace_id, contacts_table.c.external_id == external_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"No contact with external id {external_id!r}.", field="external_id")
    return dict(row)


async def set_opt_out(
    session: AsyncSession,
    outbox: Outbox | None,
    *,
    workspace_id: str,
    contact: Mapping[str, Any],
    channel: Channel | None,
    now: datetime,
    source: str,
) -> dict[str, Any]:
    """Return the contact opted out of ``channel`` (None: everything); publish ``ContactOptedOut``
    unless ``outbox`` is None (the event came from elsewhere)."""
    channels = list(contact["opted_out_channels"] or [])
    already = contact["opted_out"] if channel is None else contact["opted_out"] or channel in channels
    values: dict[str, Any] = {"updated_at": func.now()}
    if channel is None:
        values.update(opted_out=True, opted_out_at=now)
    elif channel not in channels:
        values.update(opted_out_channels=[*channels, channel], opted_out_at=now)
    row = (
        (
            await session.execute(
                update(contacts_table)
                .where(contacts_table.c.id == contact["id"])
                .values(**values)
                .returning(*CONTACT_COLUMNS)
            )
        )
        .mappings()
        .one()
    )
    if outbox is not None and not already:
        await write_outbox(
            session,
            outbox,
            [
                outbox_row(
                    outbox,
                    ContactOptedOut(
                        workspace_id=workspace_id,
                        contact_id=contact["id"],
                        channel=channel,
                        source=source,
                        opted_out_at=now,
                    ),
                )
            ],
        )
    return dict(row)


async def opt_in(session: AsyncSession, *, workspace_id: str, contact_id: str) -> dict[str, Any]:
    """Return the contact opted back in to every channel."""
    row = (
        (
            await session.execute(
                update(contacts_table)
                .where(contacts_table.c.id == contact_id, contacts_table.c.workspace_id == workspace_id)
                .values(opted_out=False, opted_out_channels=[], opted_out_at=None, updated_at=func.now())
                .returning(*CONTACT_COLUMNS)
            )
        )
        .mappings()
        .one()
    )
    return dict(row)


async def on_contact_opted_out(session: AsyncSession, event: ContactOptedOut) -> None:
    """Honour an opt-out that reached another service (an unsubscribe link, a CRM field)."""
    row = (
        (
            await session.execute(
                select(*CONTACT_COLUMNS)
                .where(
                    contacts_table.c.id == event.contact_id,
                    contacts_table.c.workspace_id == event.workspace_id,
                )
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return  # erased, or never ours: nothing to honour
    await set_opt_out(
        session,
        None,
        workspace_id=event.workspace_id,
        contact=dict(row),
        channel=event.channel,
        now=event.opted_out_at,
        source=event.source,
    )


async def erase_contact(
    session: AsyncSession, outbox: Outbox, *, workspace_id: str, external_id: str, now: datetime
) -> str:
    """Erase the contact's personal data here and tell every other service; return its id."""
    contact = await find_contact(session, workspace_id=workspace_id, external_id=external_id)
    contact_id = contact["id"]
    # Events still in stored batches become pending events first, to be erased with those below.
    await explode_batches(session_fetch(session), limit=2**31 - 1, workspace_id=workspace_id)
    # Schedules first, then the contact: the same lock order as the scheduler.
    await session.execute(delete(schedules_table).where(schedules_table.c.contact_id == contact_id))
    await session.execute(
        update(received_events_table)
        .where(
            received_events_table.c.workspace_id == workspace_id,
            received_events_table.c.contact_id == contact_id,
        )
        .values(payload={"erased": True})
    )
    # Events stored but not evaluated yet name the contact only in their own copy of it.
    named = received_events_table.c.contact["external_id"].astext == contact["external_id"]
    if contact["email"]:
        named = or_(
            named, func.lower(received_events_table.c.contact["email"].astext) == contact["email"].lower()
        )
    await session.execute(
        update(received_events_table)
        .where(
            received_events_table.c.workspace_id == workspace_id,
            received_events_table.c.evaluated_at.is_(None),
            named,
        )
        .values(payload={"erased": True}, contact=None, evaluated_at=func.now())
    )
    await session.execute(
        delete(contact_surveys_table).where(contact_surveys_table.c.contact_id == contact_id)
    )
    await session.execute(delete(contacts_table).where(contacts_table.c.id == contact_id))
    await write_outbox(
        session,
        outbox,
        [outbox_row(outbox, ContactErased(workspace_id=workspace_id, contact_id=contact_id, erased_at=now))],
    )
    return contact_id
