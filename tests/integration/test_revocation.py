"""Each of the five services refuses a revoked key: a consumer of its own (group
``closeloop-<service>-revocations``) records ``KeyRevoked`` (topic ``workspaces``) in the service's own
``revoked_keys`` table through its inbox, the process refuses the key at once — however far behind the
service's main consumer is — and a process that starts later reads the table before it answers."""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from shared.events import KeyRevoked
from tests.integration.test_access_routes import APPS
from tests.support.access import key_auth, key_id_of
from tests.support.stack import publish, running, wait_until

pytestmark = pytest.mark.integration
# A route each service lets a viewer use.
VIEWER_ROUTE = {
    "trigger": "/v1/surveys",
    "dispatch": "/v1/funnel",
    "responses": "/v1/surveys",
    "scoring": "/v1/metrics",
    "followup": "/v1/cases?limit=1",
}


@pytest.mark.parametrize("service", list(VIEWER_ROUTE))
async def test_a_revoked_key_is_refused_within_two_seconds_and_after_a_restart(
    service, settings_for, producer, workspace
):
    module = importlib.import_module(f"services.{service}.app")
    models = importlib.import_module(f"services.{service}.models")
    settings = settings_for(getattr(importlib.import_module(f"services.{service}.settings"), APPS[service]))
    auth, other = key_auth(workspace, "viewer"), key_auth(workspace, "viewer")
    path = VIEWER_ROUTE[service]
    async with running(module.create_app(settings)) as client:
        runtime = client._transport.app.state.runtime
        assert (await client.get(path, headers=auth)).status_code == 200
        await wait_until(lambda: runtime.revocations.assigned.is_set(), message="revocations are consumed")
        runtime.consumer.stop()  # the service's own events stall (a backlog): revocations do not wait for them
        started = time.monotonic()
        event = KeyRevoked(workspace_id=workspace, key_id=key_id_of(auth), revoked_at=datetime.now(UTC))
        await publish(producer, event)

        async def refused() -> bool:
            return (await client.get(path, headers=auth)).status_code == 401

        await wait_until(refused, timeout_s=10, interval_s=0.02, message="the revoked key is refused")
        assert time.monotonic() - started < 2
        answer = await client.get(path, headers=auth)
        assert f"The API key {key_id_of(auth)} was revoked" in answer.json()["detail"]
        assert (await client.get(path, headers=other)).status_code == 200
        async with runtime.db.unit_of_work() as session:
            rows = (await session.execute(select(models.revoked_keys.c.key_id))).scalars().all()
        assert key_id_of(auth) in rows
    # A process started afterwards (another replica, a restart) refuses it from its first request.
    async with running(module.create_app(settings_for(type(settings), role="api"))) as client:
        assert (await client.get(path, headers=auth)).status_code == 401
        assert (await client.get(path, headers=other)).status_code == 200
