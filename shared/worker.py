"""One loop for every background worker: the outbox relay, the trigger's evaluator and scheduler,
dispatch's invitation sender and notifier.

A worker does its work in passes (``work_once`` returns how much it did). After a full pass
(``batch`` or more) it goes again at once: there is more waiting. Otherwise it waits until it is
woken (``wake``, or ``wake_after_commit`` once a transaction that made work commits) or until
``poll_interval_s`` has passed. When it is woken right after a pass that did work, things are
streaming in: it lingers until ``linger_s`` after that pass ended, so the next pass takes more at
once (one transaction for many items instead of one each). After a quiet spell, work goes at once.

A pass that fails is logged and retried after a backoff that starts at the poll interval (at most
1 s) and doubles up to ``max_backoff_s``;
``stop`` ends the loop after the pass in hand, so shutdown drains in-flight work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)


class Worker:
    """Base of the background loops; a subclass implements ``work_once``."""

    name: str = "worker"

    def __init__(
        self,
        *,
        poll_interval_s: float,
        batch: int,
        linger_s: float = 0.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self.linger_s = linger_s
        self.max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def work_once(self) -> int:
        """Do one pass of work; return how many items it handled."""
        raise NotImplementedError

    async def before_pass(self) -> None:
        """Called before each pass (e.g. to (re)connect a listener); nothing by default."""

    async def after_run(self) -> None:
        """Called once when the loop ends, stopped or failed (close what ``before_pass`` opened)."""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """End the loop once the pass in hand is done."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Start the next pass now instead of at the next poll."""
        self._wake.set()

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake once ``session`` commits (it made work due); a rollback wakes nobody."""
        event.listen(session.sync_session, "after_commit", lambda _s: self._wake.set(), once=True)

    async def run(self) -> None:
        """Work until stopped."""
        loop = asyncio.get_running_loop()
        first_backoff = min(self.poll_interval_s, 1.0, self.max_backoff_s)
        backoff = first_backoff
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    await self.before_pass()
                    done = await self.work_once()
                except Exception:
                    log.exception("%s pass failed; retrying in %.1fs", self.name, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
                backoff = first_backoff
                if done >= self.batch:
                    continue
                ended = loop.time()
                await self._sleep(self.poll_interval_s)
                # Woken soon after a pass that did work: let more gather for the next one.
                if done and self.linger_s and (rest := ended + self.linger_s - loop.time()) > 0:
                    await self._sleep(rest, wake=False)
        finally:
            await self.after_run()

    async def _sleep(self, timeout: float, *, wake: bool = True) -> None:
        """Sleep up to ``timeout``; cut short by ``stop`` and, with ``wake``, by a wake-up."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wake:
            waits.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()


async def supervised(run: Callable[[], Awaitable[None]], what: str, *, restart_after_s: float = 1.0) -> None:
    """Run a loop; a crash is logged and the loop restarted, so one bad moment is not an outage."""
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s crashed; restarting in %.0fs", what, restart_after_s)
            await asyncio.sleep(restart_after_s)
