"""Group commit for webhooks: requests that arrive while a store is in flight share the next.

A webhook is acknowledged once its events are stored (the evaluator applies the rules after), and
under load most of storing's cost is per statement (a round trip, a commit), not per event. So
each source (integration) has at most ``concurrency`` statements in flight, on connections of the
driver's own pool (no ORM on this path); requests arriving meanwhile queue up and the next
statement takes all of them, up to ``max_events``. A lone request is not delayed: it is stored at
once. A request of one event is stored as a received event; a request of many (a HubSpot batch)
as one received batch, whose events the evaluator moves into received events later. Each request is
still acknowledged only after the statement holding its events has committed. If a shared
statement fails, its requests are retried one by one, so one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

import asyncpg

from services.trigger.sources.common import Incoming
from services.trigger.store import EventReceipt, store_batches, store_events
from shared.clock import Clock

log = logging.getLogger(__name__)

Key = tuple[str, str | None, str, bool]
"""Workspace, integration, source, and whether its requests are batches (more than one event)."""


@dataclass
class _Request:
    events: list[Incoming]
    done: asyncio.Future[list[EventReceipt]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class IngestBatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        max_events: int = 500,
        concurrency: int = 4,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.max_events = max_events
        self.concurrency = concurrency
        self._queues: dict[Key, deque[_Request]] = {}
        self._running: dict[Key, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self, *, workspace_id: str, integration_id: str | None, source: str, events: list[Incoming]
    ) -> list[EventReceipt]:
        """Return what happened to each event, once the statement storing them has committed."""
        key = (workspace_id, integration_id, source, len(events) > 1)
        request = _Request(events)
        self._queues.setdefault(key, deque()).append(request)
        if self._running.get(key, 0) < self.concurrency:
            self._running[key] = self._running.get(key, 0) + 1
            task = asyncio.create_task(self._drain(key), name=f"trigger-ingest-{source}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a client that hangs up does not cancel the others' store.
        return await asyncio.shield(request.done)

    async def _drain(self, key: Key) -> None:
        try:
            queue = self._queues[key]
            while queue:
                taken = [queue.popleft()]
                count = len(taken[0].events)
                while queue and count + len(queue[0].events) <= self.max_events:
                    count += len(queue[0].events)
                    taken.append(queue.popleft())
                await self._commit(key, taken)
        finally:
            self._running[key] -= 1
            if not self._running[key] and not self._queues.get(key):
                self._running.pop(key, None)
                self._queues.pop(key, None)

    async def _commit(self, key: Key, taken: list[_Request]) -> None:
        try:
            results = await self._ingest(key, taken)
        except Exception as exc:
            if len(taken) == 1:
                _settle(taken[0], exc)
                return
            log.warning(
                "a shared store failed (%s); retrying its %d requests one by one",
                exc,
                len(taken),
            )
            for request in taken:
                try:
                    _settle(request, (await self._ingest(key, [request]))[0])
                except Exception as single:
                    _settle(request, single)
            return
        for request, result in zip(taken, results, strict=True):
            _settle(request, result)

    async def _ingest(self, key: Key, taken: list[_Request]) -> list[list[EventReceipt]]:
        """Store the requests' events in one statement; return each request's results."""
        workspace_id, integration_id, source, batches = key
        async with self.pool.acquire() as connection:
            if batches:
                return await store_batches(
                    connection.fetch,
                    workspace_id=workspace_id,
                    integration_id=integration_id,
                    source=source,
                    requests=[r.events for r in taken],
                    now=self.clock.now(),
                )
            results = await store_events(
                connection.fetch,
                workspace_id=workspace_id,
                integration_id=integration_id,
                source=source,
                events=[e for r in taken for e in r.events],
                now=self.clock.now(),
            )
        answers, start = [], 0
        for request in taken:
            answers.append(results[start : start + len(request.events)])
            start += len(request.events)
        return answers


def _settle(request: _Request, outcome: list[EventReceipt] | BaseException) -> None:
    if request.done.done():
        return
    if isinstance(outcome, BaseException):
        request.done.set_exception(outcome)
    else:
        request.done.set_result(outcome)
