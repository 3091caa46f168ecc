"""The ``crm`` worker: sends queued CRM calls with the claim → call → record pattern.

Per connector, at most ``burst_per_10s`` HTTP requests in any 10 seconds (counted in the call log, so
replicas share the budget); a call that would exceed it waits for the window to move. A 429 answer
reschedules the call after its ``Retry-After`` seconds (10 when it gives none) without counting
against the call's attempts budget more than once; a 5xx answer or no answer is retried with
exponential backoff and jitter up to ``crm_max_attempts``; any other 4xx fails the call for good.
HubSpot's closeloop contact properties are created before a connector's first update (409: exists).
"""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain
from services.dispatch.channels import status_text, transport_error
from services.dispatch.crm import hubspot, kinds, secrets
from services.dispatch.crm.request import Request
from services.dispatch.due import any_due, due_sql
from services.dispatch.models import CrmAttempt, CrmCall, CrmConnector, due_or_abandoned
from services.dispatch.settings import DispatchSettings
from shared.clock import Clock
from shared.db import Database
from shared.netguard import BlockedDestination, GuardedTransport, OutboundGuard
from shared.worker import Worker

log = logging.getLogger(__name__)

WINDOW = timedelta(seconds=10)
_DUE_SQL = due_sql(CrmCall)


class _Stop(Exception):
    """The call ends here for this pass: ``status`` and ``at`` say what becomes of it."""

    def __init__(
        self, status: str, *, error: str | None, code: int | None, at: datetime | None = None
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.code, self.at = status, error, code, at


class CrmWorker(Worker):
    name = "crm"

    def __init__(
        self,
        db: Database,
        settings: DispatchSettings,
        *,
        clock: Clock,
        guard: OutboundGuard,
        batch_size: int = 20,
    ) -> None:
        super().__init__(poll_interval_s=settings.sender_poll_interval_ms / 1000, batch=batch_size)
        self.db, self.settings, self.clock = db, settings, clock
        common: dict[str, Any] = {
            "timeout": settings.http_timeout_s,
            "headers": {"User-Agent": "closeloop-dispatch/0.1"},
            "follow_redirects": False,
        }
        self.http = httpx.AsyncClient(**common)
        self.tenant = httpx.AsyncClient(
            transport=GuardedTransport(guard, httpx.AsyncHTTPTransport()), **common
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.tenant.aclose()

    async def work_once(self) -> int:
        now = self.clock.now()
        stale = now - timedelta(seconds=self.settings.send_claim_timeout_s)
        if not await any_due(self.db, _DUE_SQL, now=now, stale=stale):
            return 0
        claimed = await self._claim(now)
        for call, connector in claimed:
            await self._run(call, connector)
        return len(claimed)

    async def _claim(self, now: datetime) -> list[tuple[CrmCall, CrmConnector]]:
        stale = now - timedelta(seconds=self.settings.send_claim_timeout_s)
        async with self.db.unit_of_work() as session:
            rows = (
                await session.execute(
                    select(CrmCall, CrmConnector)
                    .join(CrmConnector, CrmConnector.id == CrmCall.connector_id)
                    .where(due_or_abandoned(CrmCall, now=now, stale=stale))
                    .order_by(CrmCall.next_attempt_at, CrmCall.created_at)
                    .limit(self.batch)
                    .with_for_update(of=CrmCall, skip_locked=True)
                )
            ).all()
            claimed = []
            for call, connector in rows:
                if not connector.enabled:
                    call.status, call.last_error = "cancelled", "the connector is disabled"
                    continue
                call.status, call.claimed_at, call.attempts = "sending", now, call.attempts + 1
                claimed.append((call, connector))
            return claimed

    async def _run(self, call: CrmCall, connector: CrmConnector) -> None:
        if not call.request:  # emptied by erasure while it was on its way
            await self._record(call, _Stop("cancelled", error="the contact was erased", code=None))
            return
        try:
            credentials = secrets.unseal(
                connector.sealed_credentials, self.settings.secret_key, self.settings.secret_key_previous
            )
            headers = kinds.headers(connector, credentials)
            for first in kinds.requests(connector, call.request):
                step: Request | None = first
                while step is not None:
                    reply = await self._send(call, connector, step, headers)
                    if step.step is not None:
                        await self._step_done(connector.id, step.step)
                    step = step.then(reply) if step.then is not None else None
            outcome = _Stop("done", error=None, code=call.last_status_code)
        except _Stop as stop:
            outcome = stop
        except (ValueError, KeyError) as exc:  # credentials that do not open, a request missing a field
            outcome = _Stop("failed", error=f"cannot make the call: {exc}", code=None)
        await self._record(call, outcome)

    async def _send(
        self, call: CrmCall, connector: CrmConnector, step: Request, headers: dict[str, str]
    ) -> Any:
        """Make one request within the budget; return the JSON reply (None when it is not JSON) of a good
        answer, raise ``_Stop`` otherwise."""
        now = self.clock.now()
        budget = int(connector.config.get("burst_per_10s", 100))
        async with self.db.unit_of_work() as session:
            used, oldest = await _window(session, connector.id, now)
        if used >= budget:
            assert oldest is not None
            raise _Stop(
                "wait", error="the connector's 10-second budget is used up", code=None, at=oldest + WINDOW
            )
        started = time.perf_counter()
        status: int | None
        retry_after: float | None = None
        reply: Any = None
        try:
            # A generic connector's URL is the workspace's: through the outbound guard.
            client = self.tenant if step.absolute else self.http
            url = step.path if step.absolute else kinds.base_url(connector, self.settings) + step.path
            response = await client.request(
                step.method, url, json=step.body, headers={**headers, **step.headers}
            )
            status, error = response.status_code, None
            if status not in step.ok_statuses:
                error = f"replied {status_text(status)}"
            if status == 429:
                retry_after = _seconds(response.headers.get("retry-after"))
            elif error is None and step.then is not None:
                try:
                    reply = response.json()
                except ValueError:
                    reply = None
        except (httpx.HTTPError, BlockedDestination) as exc:
            status, error = None, str(transport_error(exc))
        async with self.db.unit_of_work() as session:
            session.add(
                CrmAttempt(
                    call_id=call.id,
                    connector_id=connector.id,
                    method=step.method,
                    path=_path(step),
                    status_code=status,
                    error=error,
                    duration_ms=int((time.perf_counter() - started) * 1000),
                    attempted_at=now,
                )
            )
        call.last_status_code = status
        if error is None:
            return reply
        if status == 429:
            raise _Stop(
                "wait", error=error, code=status, at=self.clock.now() + timedelta(seconds=retry_after or 10)
            )
        if status is None or status >= 500 or status == 408:
            raise _Stop("retry", error=error, code=status)
        raise _Stop("failed", error=error, code=status)

    async def _step_done(self, connector_id: str, name: str) -> None:
        """Note that a preparation step is done (HubSpot: the property exists), so that a call that waits
        for the budget does not make it again."""
        async with self.db.unit_of_work() as session:
            row = await session.get(CrmConnector, connector_id, with_for_update=True)
            if row is not None:
                made = sorted({*row.config.get("properties", ()), name})
                row.config = {**row.config, "properties": made}
                row.prepared = set(made) >= set(hubspot.PROPERTY_NAMES)

    async def _record(self, call: CrmCall, outcome: _Stop) -> None:
        now, s = self.clock.now(), self.settings
        async with self.db.unit_of_work() as session:
            row = await session.get(CrmCall, call.id, with_for_update=True)
            if row is None or row.status != "sending" or row.attempts != call.attempts:
                return
            row.last_status_code, row.last_error = outcome.code, outcome.error
            if outcome.status == "done":
                row.status, row.done_at = "done", now
            elif outcome.status == "cancelled" or not row.request:
                row.status = "cancelled"
                if not row.request:  # emptied by an erasure while in flight: that is what ended it
                    row.last_error = "the contact was erased"
            elif outcome.status == "wait":
                # Waiting for the budget or the CRM's Retry-After is not a failed attempt.
                row.status, row.attempts, row.next_attempt_at = (
                    "scheduled",
                    row.attempts - 1,
                    outcome.at or now,
                )
            elif outcome.status == "retry" and row.attempts < s.crm_max_attempts:
                row.status = "scheduled"
                row.next_attempt_at = now + timedelta(
                    seconds=domain.jittered_delay_s(
                        row.attempts, base_s=s.crm_backoff_s, jitter=random.random()
                    )
                )
            else:
                row.status = "failed"
                log.warning("crm call %s failed: %s", row.id, outcome.error)


async def _window(session: AsyncSession, connector_id: str, now: datetime) -> tuple[int, datetime | None]:
    """Return how many requests the connector made in the last 10 seconds, and the oldest one's time."""
    used, oldest = (
        await session.execute(
            select(func.count(), func.min(CrmAttempt.attempted_at)).where(
                CrmAttempt.connector_id == connector_id, CrmAttempt.attempted_at > now - WINDOW
            )
        )
    ).one()
    return int(used), oldest


def _path(step: Request) -> str:
    """What the call log shows of a request's URL: its path, without the query (it may name a contact)."""
    return urlsplit(step.path).path if step.absolute else step.path.split("?")[0]


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None
