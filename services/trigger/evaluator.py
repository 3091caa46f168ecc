"""The evaluator: applies the rules to events that webhooks stored.

A webhook is acknowledged as soon as its events are stored (what a CRM waits for, and all it
needs: the events are then safe). The evaluator claims the oldest pending events with ``FOR
UPDATE SKIP LOCKED`` (replicas share the work; a crash hands the claim back), applies each
workspace's rules, writes the decisions and the outbox, and marks the events evaluated, all in one
transaction: an event is decided once, and never lost.

It is a ``shared.worker.Worker`` named ``evaluator``: it wakes on the NOTIFY that storing sends at
commit and, as a fallback, every ``poll_interval_s``; while events keep coming, passes start at most
every ``linger_s`` so that each takes more at once. A batch that fails is retried one event at a
time; an event that fails on its own is marked with its error (``GET /v1/events/{id}`` shows it, the
log names it) so that it cannot hold up the events behind it — the database's counterpart of a
dead-letter topic. A lost database connection is not an event's fault: the pass fails, the worker
waits and tries again (listening anew), and the events wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
import pydantic_core
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.caches import Caches, WorkspaceRules
from services.trigger.handlers.evaluate import Pending, evaluate_many
from services.trigger.handlers.rules import load_workspace
from services.trigger.handlers.tx import in_transaction
from services.trigger.store import (
    EVALUATE_CHANNEL,
    SET_BATCH_ASIDE_SQL,
    contact_from_json,
    explode_batches,
    session_fetch,
)
from shared.clock import Clock
from shared.db import Database
from shared.outbox import Outbox
from shared.worker import Worker

log = logging.getLogger(__name__)

_CLAIM = text(
    """
SELECT id, workspace_id, source, source_event_id, event_type, occurred_at, payload::text, contact::text,
       traceparent
FROM trigger.received_events
WHERE evaluated_at IS NULL
ORDER BY seq
LIMIT :limit
FOR UPDATE SKIP LOCKED
"""
)
_OLDEST_BATCH = """
SELECT seq FROM trigger.received_batches WHERE error IS NULL ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
"""
_FAIL = text(
    """
UPDATE trigger.received_events SET evaluated_at = now(), evaluation_error = :error
WHERE id = :id AND evaluated_at IS NULL
"""
)


def _transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's fault (wait and retry), not the event's."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | asyncio.TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Evaluator(Worker):
    """Applies the rules to stored events, a batch per pass; woken by the NOTIFY storing sends."""

    name = "evaluator"

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        caches: Caches,
        *,
        dsn: str,
        batch: int = 500,
        poll_interval_s: float = 1.0,
        linger_s: float = 0.05,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(poll_interval_s=poll_interval_s, batch=batch, linger_s=linger_s)
        self.db = db
        self.outbox = outbox
        self.caches = caches
        self.dsn = dsn
        self.clock = clock or Clock()
        self._listener: asyncpg.Connection | None = None

    async def work_once(self) -> int:
        try:
            return await self.evaluate_pending()
        except Exception:
            # The database may have gone away under the listener too: listen anew on the next pass.
            if self._listener is not None:
                self._listener.terminate()
                self._listener = None
            raise

    async def before_pass(self) -> None:
        """Listen for the NOTIFY that storing sends (again, if the connection was lost)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(self.dsn)
            await self._listener.add_listener(EVALUATE_CHANNEL, lambda *_: self.wake())
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("cannot listen for new events (%s); looking every %.1fs", exc, self.poll_interval_s)
            self._listener = None

    async def after_run(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        self._listener = None

    async def evaluate_pending(self, *, limit: int | None = None) -> int:
        """Evaluate up to ``limit`` (default ``batch``) pending events; return how many were claimed.

        When fewer events are pending, the events of stored batches are moved in first: a backlog
        waits as batches, one row each, and only about one pass's worth at a time as events.
        """
        limit = limit or self.batch
        claimed = await self._evaluate_some(limit)
        while claimed < limit and await self.explode(max(1, (limit - claimed) // 50)):
            claimed += await self._evaluate_some(limit - claimed)
        return claimed

    async def explode(self, batches: int) -> int:
        """Move the events of up to ``batches`` stored batches into received events; return how many
        batches were moved or set aside (0: none is waiting)."""
        try:
            async with self.db.unit_of_work() as session:
                moved = await explode_batches(session_fetch(session), limit=batches)
            return moved
        except Exception as exc:
            if _transient(exc):
                raise
            log.warning("moving the events of %d stored batches failed (%s); moving one", batches, exc)
        # One at a time: the oldest batch is moved, or set aside with its error if it fails alone.
        failed: dict[str, Any] = {}
        try:
            async with self.db.unit_of_work() as session:
                fetch = session_fetch(session)
                oldest = await fetch(_OLDEST_BATCH)
                if not oldest:
                    return 0
                failed["seq"] = oldest[0][0]
                moved = await explode_batches(fetch, seq=failed["seq"])
            return moved
        except Exception as exc:
            if _transient(exc) or "seq" not in failed:
                raise
            log.error("stored batch %s cannot be moved and is set aside: %s", failed["seq"], exc)
            async with self.db.unit_of_work() as session:
                error = f"{type(exc).__name__}: {exc}"[:2000]
                await session_fetch(session)(SET_BATCH_ASIDE_SQL, failed["seq"], error)
            return 1

    async def _evaluate_some(self, limit: int) -> int:
        try:
            return await in_transaction(self.db, lambda s: self._evaluate(s, limit))
        except Exception as exc:
            if _transient(exc) or limit == 1:
                raise
            log.warning("evaluating a batch of events failed (%s); evaluating them one at a time", exc)
        claimed = 0
        for _ in range(limit):
            done = await self._evaluate_alone()
            if not done:
                break
            claimed += done
        return claimed

    async def _evaluate(self, session: AsyncSession, limit: int) -> int:
        rows = (await session.execute(_CLAIM, {"limit": limit})).all()
        await self._decide(session, rows)
        return len(rows)

    async def _decide(self, session: AsyncSession, rows: Sequence[Sequence[Any]]) -> None:
        """Apply each workspace's rules to the claimed rows, all workspaces together."""
        by_workspace: dict[str, list[Pending]] = {}
        for (
            event_id,
            workspace_id,
            source,
            source_event_id,
            event_type,
            occurred_at,
            payload,
            contact,
            traceparent,
        ) in rows:
            by_workspace.setdefault(workspace_id, []).append(
                Pending(
                    id=event_id,
                    source=source,
                    source_event_id=source_event_id,
                    event_type=event_type,
                    occurred_at=occurred_at,
                    contact=contact_from_json(contact) if contact is not None else None,
                    properties=_properties(payload),
                    traceparent=traceparent,
                )
            )
        now = self.clock.now()
        workspaces: dict[str, tuple[WorkspaceRules, list[Pending]]] = {}
        for workspace_id, events in by_workspace.items():
            rules = await load_workspace(session, self.caches, workspace_id=workspace_id)
            workspaces[workspace_id] = (rules, events)
        await evaluate_many(session, self.outbox, workspaces, now=now)

    async def _evaluate_alone(self) -> int:
        """Evaluate the oldest pending event on its own; mark it failed if it cannot be evaluated."""
        failed: dict[str, Any] = {}

        async def one(session: AsyncSession) -> int:
            row = (await session.execute(_CLAIM, {"limit": 1})).first()
            if row is None:
                return 0
            failed["id"] = row[0]
            await self._decide(session, [row])
            return 1

        try:
            return await in_transaction(self.db, one)
        except Exception as exc:
            if _transient(exc) or "id" not in failed:
                raise
            log.error(
                "event %s cannot be evaluated and is set aside: %s",
                failed["id"],
                exc,
                extra={"event_id": failed["id"]},
            )
            async with self.db.unit_of_work() as session:
                await session.execute(
                    _FAIL, {"id": failed["id"], "error": f"{type(exc).__name__}: {exc}"[:2000]}
                )
            return 1


def _properties(payload: str) -> dict[str, Any]:
    value = pydantic_core.from_json(payload)
    if not isinstance(value, dict):
        raise ValueError(f"stored event properties must be an object, not {type(value).__name__}")
    return value
