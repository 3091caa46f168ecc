"""What a service keeps about the console's API keys: which are revoked, and when callers used them.

**Revoked keys.** The console publishes ``KeyRevoked`` (topic ``workspaces``) through its outbox. A
service's consumer records each in the service's own ``revoked_keys`` table (``revoked_keys_table``)
with ``RevokedKeys.record``, in the inbox's transaction; ``RevokedKeys`` holds the revoked ids in
memory, loaded at start and refreshed every ``poll_interval_s`` (1 s) from the table, so that every
replica — not only the one whose consumer got the event — refuses the key within about two seconds.
Revocations of keys that have expired anyway are forgotten a day after the expiry.

**Key usage.** ``KeyUsage`` notes each key's last minute of use in memory (a dictionary write per
request) and, every ``flush_interval_s`` (30 s), writes one ``KeyUsed`` event per key whose minute
changed to the service's outbox. The console records them as the keys' "last used".

A service wires both into its ``Authenticator`` (``shared.access``)::

    revoked = RevokedKeys(runtime.db, revoked_keys)           # in setup; await revoked.load()
    usage = KeyUsage(runtime.db, runtime.outbox)
    runtime.authenticator = Authenticator(settings.keyring, revoked=revoked, usage=usage)
    # workers: [revoked, usage]; consumes: {KeyRevoked: revoked.record}; topics: [..., WORKSPACES]
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.access import Principal
from shared.db import Database
from shared.events import KeyRevoked, KeyUsed
from shared.outbox import Outbox
from shared.worker import Worker

log = logging.getLogger(__name__)

FORGET_AFTER = timedelta(days=1)
"""How long after a revoked key's own expiry its revocation is kept."""
OVERLAP = timedelta(seconds=60)
"""A refresh re-reads rows recorded this long before the newest it has seen: a transaction that
commits late (its ``now()`` is when it began) is not missed."""


def revoked_keys_table(metadata: MetaData) -> Table:
    """The table a service keeps revoked key ids in (in its own schema)."""
    return Table(
        "revoked_keys",
        metadata,
        Column("key_id", String(32), primary_key=True),
        Column("workspace_id", String(63), nullable=False),
        Column("revoked_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True)),
        Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
    )


class RevokedKeys(Worker):
    """The revoked key ids, in memory: ``is_revoked`` is a set lookup. The ``revocations`` worker keeps
    the set in step with the table."""

    name = "revocations"

    def __init__(self, db: Database, table: Table, *, poll_interval_s: float = 1.0) -> None:
        super().__init__(poll_interval_s=poll_interval_s, batch=1_000_000)
        self.db = db
        self.table = table
        self._ids: set[tuple[str, str]] = set()
        self._seen_until: datetime | None = None
        self._pruned_at: datetime | None = None

    def is_revoked(self, workspace_id: str, key_id: str) -> bool:
        return (workspace_id, key_id) in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    async def load(self) -> int:
        """Read every revoked id (at start, before the service answers); return how many."""
        self._seen_until = None
        return await self.work_once()

    async def work_once(self) -> int:
        """Add the ids recorded since the last pass; return how many were new."""
        t = self.table
        query = select(t.c.workspace_id, t.c.key_id, t.c.recorded_at)
        if self._seen_until is not None:
            query = query.where(t.c.recorded_at >= self._seen_until - OVERLAP)
        async with self.db.unit_of_work() as session:
            rows = (await session.execute(query)).all()
            now = (await session.execute(select(func.now()))).scalar_one()
            if self._pruned_at is None or now - self._pruned_at > timedelta(hours=1):
                await session.execute(delete(t).where(t.c.expires_at < now - FORGET_AFTER))
                self._pruned_at = now
        before = len(self._ids)
        for row in rows:
            self._ids.add((row.workspace_id, row.key_id))
            if self._seen_until is None or row.recorded_at > self._seen_until:
                self._seen_until = row.recorded_at
        return len(self._ids) - before

    async def record(self, session: AsyncSession, event: KeyRevoked) -> None:
        """Store a revocation (the consumer's callback, in the inbox's transaction); this process refuses
        the key at once, the others at their next refresh."""
        await session.execute(
            insert(self.table)
            .values(
                key_id=event.key_id,
                workspace_id=event.workspace_id,
                revoked_at=event.revoked_at,
                expires_at=event.expires_at,
            )
            .on_conflict_do_nothing()
        )
        self._ids.add((event.workspace_id, event.key_id))


class KeyUsage(Worker):
    """When callers last used each key, to the minute, published as ``KeyUsed`` through the outbox."""

    name = "key-usage"

    def __init__(self, db: Database, outbox: Outbox, *, flush_interval_s: float = 30.0) -> None:
        super().__init__(poll_interval_s=flush_interval_s, batch=1_000_000)
        self.db = db
        self.outbox = outbox
        self._pending: dict[tuple[str, str], int] = {}
        self._published: dict[tuple[str, str], int] = {}

    def note(self, principal: Principal, now: float) -> None:
        """Remember that ``principal`` (a key) was used at ``now``; keys of the old format are not tracked."""
        if principal.legacy:
            return
        minute = int(now // 60)
        key = (principal.workspace_id, principal.id)
        if self._published.get(key) != minute:
            self._pending[key] = minute

    async def work_once(self) -> int:
        """Publish the minutes noted since the last flush; return how many keys."""
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            async with self.db.unit_of_work() as session:
                for (workspace_id, key_id), minute in pending.items():
                    used_at = datetime.fromtimestamp(minute * 60, UTC)
                    await self.outbox.add(
                        session, KeyUsed(workspace_id=workspace_id, key_id=key_id, used_at=used_at)
                    )
        except Exception:
            for key, minute in pending.items():  # try again at the next flush
                self._pending.setdefault(key, minute)
            raise
        self._published.update(pending)
        if len(self._published) > 100_000:
            self._published.clear()
        return len(pending)
