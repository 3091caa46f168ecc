"""The contacts a service knows were erased (``ContactErased``), so that it never stores their personal
data again.

Why every consumer needs it: an event about a contact can reach a service after that service erased
the contact. The outbox relay of another service may have read the event just before that service's
own erasure scrubbed it (the relay publishes what it read), or the event was already on its topic,
waiting behind others on another partition. A consumer that stores personal data asks
``is_erased`` (or ``erased_among`` for a batch) first and stores the event without it.

Each service keeps its own ``erased_contacts`` table of this shape (``erased_contacts_table``): the
workspace and a SHA-256 of the contact id — not the id itself, so the list of who asked to be forgotten
is not a list of whom to look up — and when. Rows are never deleted: an event can arrive late for as
long as topics keep events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, exists, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

ERASED = "[erased]"
"""What replaces an erased contact's identifiers in free text that is kept."""
ERASED_BODY = "[erased] This message quoted a contact who has since been erased; what it said is gone."
"""The body of a staff notification (or its webhook delivery) that quoted an erased contact."""
ANONYMISED_BODY = (
    "[anonymised] This message quoted a customer; the retention policy has removed what it said."
)
"""The body of such a message once the workspace's retention policy has anonymised it."""


def erased_contacts_table(metadata: MetaData) -> Table:
    """Return the ``erased_contacts`` table of a service's schema."""
    return Table(
        "erased_contacts",
        metadata,
        Column("workspace_id", String(63), primary_key=True),
        Column("contact_hash", String(64), primary_key=True),
        Column("erased_at", DateTime(timezone=True), nullable=False),
    )


def contact_hash(contact_id: str) -> str:
    """Return what is kept of an erased contact's id: its SHA-256, in hex."""
    return hashlib.sha256(contact_id.encode()).hexdigest()


async def remember_erased(
    session: AsyncSession, table: Table, *, workspace_id: str, contact_id: str, erased_at: datetime
) -> None:
    """Record that the contact was erased (a redelivered ``ContactErased`` changes nothing)."""
    await session.execute(
        insert(table)
        .values(workspace_id=workspace_id, contact_hash=contact_hash(contact_id), erased_at=erased_at)
        .on_conflict_do_nothing()
    )


async def is_erased(
    session: AsyncSession, table: Table, *, workspace_id: str, contact_id: str | None
) -> bool:
    """Return whether the contact was erased from the workspace (no contact: False)."""
    if not contact_id:
        return False
    return bool(
        await session.scalar(
            select(
                exists().where(
                    table.c.workspace_id == workspace_id, table.c.contact_hash == contact_hash(contact_id)
                )
            )
        )
    )


async def erased_among(
    session: AsyncSession, table: Table, contacts: Iterable[tuple[str, str | None]]
) -> set[tuple[str, str]]:
    """Return the (workspace id, contact id) pairs of ``contacts`` that were erased: one query for a
    consumer's whole batch."""
    by_hash = {(ws, contact_hash(c)): (ws, c) for ws, c in contacts if c}
    if not by_hash:
        return set()
    rows = await session.execute(
        select(table.c.workspace_id, table.c.contact_hash).where(
            tuple_(table.c.workspace_id, table.c.contact_hash).in_(list(by_hash))
        )
    )
    return {by_hash[(ws, h)] for ws, h in rows}
