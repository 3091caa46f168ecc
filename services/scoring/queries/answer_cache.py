"""The answers of each workspace's last ``days`` days in memory (``columnar.Columns``), kept as fresh as
PostgreSQL: what segmented reports over recent days are counted from in an API process.

**Loading** happens in the background on a workspace's first segmented report (which, like every one
until the columns are there, reads PostgreSQL): startup does not wait for it.

**Catching up**: before answering, one statement reads the workspace's answers whose response key is
above the *settled* key, with the ``scoring.answer_generations`` counter and a checkpoint. Response keys
come from an identity, and transactions do not commit in the order they took them: a key above the
highest one seen can still be committed below it later. So the settled key only moves to the highest
key ``top`` visible in some earlier snapshot once every transaction of this database that was in
progress in that snapshot (``pg_snapshot_xip``, those holding their xid lock) has ended: a transaction
that takes a key holds an xid already (the consumer writes its inbox rows first), so any key at or below
``top`` belongs to a transaction that had ended or was one of those. Answers above the settled key that
are cached already are skipped (their primary keys are remembered until settled), so reading them again
adds nothing, and a redelivered event adds no row to begin with (the inbox and the primary key).

**Invalidation**: answers are only inserted by the consumer. Any update or delete of answers
(re-scoring, a repair, retention deleting them one day) bumps the workspace's generation in the same
transaction (a trigger, migration ``d4f1a9c3e7b2``); a catch-up that sees another generation drops the
workspace's columns and loads them again, and until then PostgreSQL answers.

**Memory** is what the columns hold (``stats``; ~30 bytes an answer, up to twice that before the
arrays are full) for the answers of ``days`` days per workspace that had a segmented report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scoring.domain import DECLARED
from services.scoring.queries.columnar import COLUMNS, Columns
from services.scoring.queries.scope import Histograms, Scope
from shared.db import Database

log = logging.getLogger(__name__)

CACHED_ANSWERS = Gauge("closeloop_scoring_cached_answers", "Answers in the scoring API's columnar cache")
CACHED_BYTES = Gauge("closeloop_scoring_cached_bytes", "Bytes of the scoring API's columnar cache")

SELECTED = ", ".join(
    [
        "a.response_key",
        "a.question_id",
        "a.survey_key",
        "a.metric",
        "(a.day - CAST(:first AS date)) AS day",
        "a.score",
        *(f"a.{name}" for name in DECLARED),
    ]
)
assert len(SELECTED.split(", ")) == len(COLUMNS)

IN_WORKSPACE = "a.survey_key IN (SELECT key FROM scoring.surveys WHERE workspace_id = :ws) AND a.day >= CAST(:first AS date)"

CHECKPOINT = """
(SELECT generation FROM scoring.answer_generations WHERE workspace_id = :ws) AS generation,
(SELECT max(response_key) FROM scoring.answers) AS top,
ARRAY(
  SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) x
  WHERE xid(x) IN (
    SELECT l.transactionid FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
    WHERE l.locktype = 'transactionid' AND s.datname = current_database()
  )
) AS waiting
"""
"""The workspace's generation, the highest response key visible and the transactions of this database
still in progress in this statement's snapshot."""

RUNNING = (
    "ARRAY(SELECT w FROM unnest(CAST(:waiting AS text[])) w "
    "WHERE NOT pg_visible_in_snapshot(CAST(w AS xid8), pg_current_snapshot())) AS running"
)
"""Which of the given transactions are still in progress in this statement's snapshot."""


@dataclass
class Checkpoint:
    top: int
    """Every answer with a response key up to this is visible once ``waiting`` have ended."""
    waiting: frozenset[str]


@dataclass
class Cached:
    columns: Columns
    generation: int
    settled: int
    """Every answer of the workspace (in the days) with a response key up to this is in the columns."""
    seen: set[tuple[int, str]] = field(default_factory=set)
    """The (response key, question) of the answers above ``settled`` in the columns."""
    pending: list[Checkpoint] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    used: float = field(default_factory=time.monotonic)

    def add(self, rows: list[Any], *, loading: bool = False) -> None:
        """Add answers read from PostgreSQL, but none that is in the columns already (while loading,
        every row is new)."""
        fresh = []
        for row in rows:
            if row[0] <= self.settled:
                if loading:
                    fresh.append(row)
                continue
            key = (row[0], row[1])
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(row)
        self.columns.append(fresh)

    def settle(self, checkpoint: Checkpoint, running: set[str]) -> None:
        """Move the settled key past every checkpoint none of whose transactions still runs (the
        answers read just now came from a snapshot taken after they ended), then add ``checkpoint``."""
        still = [c for c in self.pending if c.waiting & running]
        ended = [c.top for c in self.pending if not c.waiting & running]
        if not checkpoint.waiting:
            ended.append(checkpoint.top)
        elif len(still) < 8:
            still.append(checkpoint)
        else:
            still[-1] = checkpoint  # a later checkpoint covers the one it replaces
        self.pending = still
        if ended and max(ended) > self.settled:
            self.settled = max(ended)
            self.seen = {k for k in self.seen if k[0] > self.settled}


def utc_today() -> date:
    return datetime.now(UTC).date()


class AnswerCache:
    """The columns of every workspace that asked for a segmented report, loaded and caught up."""

    def __init__(
        self,
        db: Database,
        *,
        days: int,
        max_answers: int = 10_000_000,
        today: Callable[[], date] = utc_today,
        settle_timeout_s: float = 60.0,
    ) -> None:
        self.db = db
        self.days = days
        self.max_answers = max_answers
        self.too_large: dict[str, float] = {}
        """Workspaces whose answers alone exceeded ``max_answers``, and when (not loaded for an hour)."""
        self.today = today
        self.settle_timeout_s = settle_timeout_s
        self.workspaces: dict[str, Cached] = {}
        self.served = 0
        """Histograms counted from the columns (rather than PostgreSQL) so far."""
        self.loading: dict[str, asyncio.Task[None]] = {}

    async def histograms(
        self, scope: Scope, *, workspace_id: str, metric: str, question_id: str | None
    ) -> Histograms | None:
        """Return the scope's histograms from the columns, caught up first; None when they cannot
        answer (not loaded yet, days before them, an ad-hoc dimension): PostgreSQL answers then."""
        cached = self.workspaces.get(workspace_id)
        if cached is None or self._stale(cached):
            self.load_soon(workspace_id)
        if cached is None or not cached.columns.covers(scope):
            return None
        cached.used = time.monotonic()
        async with cached.lock:
            if not await self._catch_up(cached, workspace_id):
                return None
        self.served += 1
        return cached.columns.histograms(scope, metric=metric, question_id=question_id)

    def _stale(self, cached: Cached) -> bool:
        """Whether the columns hold more than a month of days no longer in the horizon."""
        return (self.today() - cached.columns.first_day).days > self.days + 30

    def load_soon(self, workspace_id: str) -> None:
        """Start loading a workspace's columns in the background, unless that is under way."""
        refused = self.too_large.get(workspace_id)
        if refused is not None and time.monotonic() - refused < 3600:
            return
        if workspace_id not in self.loading:
            self.loading[workspace_id] = asyncio.create_task(self._load_quietly(workspace_id))

    async def ready(self, workspace_id: str) -> Cached:
        """Load a workspace's columns now, or wait for the load under way (tests, the bench)."""
        self.load_soon(workspace_id)
        await asyncio.shield(self.loading[workspace_id])
        return self.workspaces[workspace_id]

    async def close(self) -> None:
        for task in list(self.loading.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def stats(self) -> dict[str, float]:
        answers = sum(c.columns.size for c in self.workspaces.values())
        nbytes = sum(c.columns.nbytes for c in self.workspaces.values())
        per_million = nbytes / (answers / 1e6) / 1e6 if answers else 0.0
        return {"answers": answers, "bytes": nbytes, "mb_per_million": per_million}

    async def _load_quietly(self, workspace_id: str) -> None:
        try:
            started = time.monotonic()
            self.workspaces[workspace_id] = await self._load(workspace_id)
            self._bound(workspace_id)
            self._report()
            if workspace_id not in self.workspaces:
                return
            log.info(
                "answer cache: %s loaded, %d answers in %.1f s",
                workspace_id,
                self.workspaces[workspace_id].columns.size,
                time.monotonic() - started,
            )
        except Exception:
            log.exception("answer cache: loading %s failed; PostgreSQL answers its reports", workspace_id)
        finally:
            self.loading.pop(workspace_id, None)

    def _bound(self, loaded: str) -> None:
        """Drop the workspaces used least recently while the columns hold more than ``max_answers``
        (and the one just loaded if it alone does)."""
        by_use = sorted((c.used, ws) for ws, c in self.workspaces.items() if ws != loaded)
        while self.stats()["answers"] > self.max_answers:
            if by_use:
                del self.workspaces[by_use.pop(0)[1]]
            else:
                del self.workspaces[loaded]
                self.too_large[loaded] = time.monotonic()
                log.warning("answer cache: %s has more than %d answers; not kept", loaded, self.max_answers)

    async def _load(self, workspace_id: str) -> Cached:
        """Read the workspace's answers of the horizon in one snapshot taken once every transaction
        that could still commit a key up to the settled one has ended."""
        first = self.today() - timedelta(days=self.days - 1)
        params = {"ws": workspace_id, "first": first}
        async with self.db.engine.connect() as conn:
            before = await self._checkpoint(conn, params)
            await conn.commit()
            await self._wait_for(conn, before.waiting)
        async with self.db.engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                meta = (await conn.execute(text(f"SELECT {CHECKPOINT}"), params)).one()
                cached = Cached(Columns(first), generation=meta.generation or 0, settled=before.top)
                query = f"SELECT {SELECTED} FROM scoring.answers a WHERE {IN_WORKSPACE}"
                result = await conn.stream(text(query), params)
                async for rows in result.partitions(5_000):
                    cached.add(list(rows), loading=True)
                    await asyncio.sleep(0)  # let requests run between batches
        cached.columns.order()
        cached.settle(Checkpoint(meta.top or 0, frozenset(meta.waiting)), set())
        return cached

    async def _checkpoint(self, conn: AsyncConnection, params: dict[str, Any]) -> Checkpoint:
        meta = (await conn.execute(text(f"SELECT {CHECKPOINT}"), params)).one()
        return Checkpoint(meta.top or 0, frozenset(meta.waiting))

    async def _wait_for(self, conn: AsyncConnection, waiting: frozenset[str]) -> None:
        """Wait until none of the ``waiting`` transactions runs (``TimeoutError`` after the timeout)."""
        delay = 0.01
        async with asyncio.timeout(self.settle_timeout_s):
            while waiting:
                row = (await conn.execute(text(f"SELECT {RUNNING}"), {"waiting": list(waiting)})).one()
                await conn.commit()
                waiting = frozenset(row.running)
                if waiting:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)

    async def _catch_up(self, cached: Cached, workspace_id: str) -> bool:
        """Add the answers committed since; False when the generation changed (a reload is started)."""
        waiting = sorted(set().union(*(c.waiting for c in cached.pending)))
        params = {"ws": workspace_id, "first": cached.columns.first_day, "waiting": waiting}
        query = (
            f"WITH meta AS MATERIALIZED (SELECT {CHECKPOINT}, {RUNNING}) "
            f"SELECT meta.*, a.* FROM meta LEFT JOIN LATERAL (SELECT {SELECTED} FROM scoring.answers a "
            f"WHERE a.response_key > {int(cached.settled)} AND {IN_WORKSPACE}) a ON true"
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(text(query), params)).all()
        meta = rows[0]
        if (meta.generation or 0) != cached.generation:
            if self.workspaces.get(workspace_id) is cached:
                del self.workspaces[workspace_id]
                self._report()
            self.load_soon(workspace_id)
            return False
        cached.add([row[-len(COLUMNS) :] for row in rows if row.response_key is not None])
        columns = cached.columns
        if columns.size - columns.ordered > columns.size // 4:
            columns.order()
        cached.settle(Checkpoint(meta.top or 0, frozenset(meta.waiting)), set(meta.running))
        self._report()
        return True

    def _report(self) -> None:
        stats = self.stats()
        CACHED_ANSWERS.set(stats["answers"])
        CACHED_BYTES.set(stats["bytes"])


_active: AnswerCache | None = None


def install(cache: AnswerCache | None) -> None:
    """Make ``cache`` the one segmented reports of this process read (None: PostgreSQL only)."""
    global _active
    _active = cache


def active() -> AnswerCache | None:
    return _active
