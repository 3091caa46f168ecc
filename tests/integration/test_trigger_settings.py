"""The workspace settings, trigger's alone for quiet hours: start, end, the channels they hold and the
time zone of contacts without one, published as ``QuietHoursChanged`` (for dispatch's reminders) through
the outbox whenever they change — the handler against a rolled-back session, then the API and the
broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.trigger.app import create_app
from services.trigger.caches import Caches
from services.trigger.handlers.settings import put_settings
from services.trigger.models import outbox
from services.trigger.schemas.settings import WorkspaceSettings as SettingsBody
from shared.clock import Clock
from shared.errors import InvalidInput
from shared.events import WORKSPACES, QuietHoursChanged
from shared.outbox import Outbox
from tests.support import trigger as fx
from tests.support.db import outbox_events
from tests.support.stack import TopicReader, running
from tests.support.trigger import ours

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def _put(session: AsyncSession, workspace: str, body: dict[str, Any]) -> SettingsBody:
    return await put_settings(
        session,
        Caches(0),
        Outbox(outbox, source="/closeloop/trigger"),
        workspace_id=workspace,
        body=SettingsBody.model_validate(body),
        actor="test",
        now=NOW,
    )


async def _published(session: AsyncSession, workspace: str) -> list[QuietHoursChanged]:
    events = await outbox_events(session, outbox)
    return [e for e in events if isinstance(e, QuietHoursChanged) and e.workspace_id == workspace]


async def test_a_change_of_quiet_hours_is_published_through_the_outbox_and_nothing_else_is(uow, workspace):
    evenings = {"start": "21:00", "end": "08:00", "channels": ["sms", "email"]}
    saved = await _put(uow, workspace, {"quiet_hours": evenings, "default_timezone": "Europe/Amsterdam"})
    assert saved.quiet_hours is not None and saved.quiet_hours.channels == ["email", "sms"]
    assert saved.quiet_hours.default_timezone == "Europe/Amsterdam"
    [first] = await _published(uow, workspace)
    assert (first.start, first.end, first.channels, first.default_timezone, first.changed_at) == (
        "21:00",
        "08:00",
        ("email", "sms"),
        "Europe/Amsterdam",
        NOW,
    )
    # The same quiet hours again (the time zone given inside them this time), or only a cap: no event.
    same = {**evenings, "default_timezone": "Europe/Amsterdam"}
    await _put(uow, workspace, {"quiet_hours": same})
    await _put(uow, workspace, {"quiet_hours": same, "frequency_cap": {"max_surveys": 1, "days": 30}})
    assert len(await _published(uow, workspace)) == 1
    # Other channels, another zone, none at all: each is published.
    await _put(uow, workspace, {"quiet_hours": {**same, "channels": ["whatsapp"]}})
    await _put(uow, workspace, {"quiet_hours": {**same, "channels": ["whatsapp"], "default_timezone": "UTC"}})
    await _put(uow, workspace, {})
    changes = await _published(uow, workspace)
    assert [(c.start, c.channels, c.default_timezone) for c in changes[1:]] == [
        ("21:00", ("whatsapp",), "Europe/Amsterdam"),
        ("21:00", ("whatsapp",), "UTC"),
        (None, (), "UTC"),
    ]


async def test_the_time_zone_is_one_setting_given_in_either_place(uow, workspace):
    both = {"quiet_hours": {"start": "22:00", "end": "07:00", "default_timezone": "Europe/Paris"}}
    assert (await _put(uow, workspace, {**both, "default_timezone": "Europe/Paris"})).default_timezone == (
        "Europe/Paris"
    )
    assert (await _put(uow, workspace, both)).default_timezone == "Europe/Paris"
    with pytest.raises(InvalidInput) as refused:
        await _put(uow, workspace, {**both, "default_timezone": "Europe/London"})
    assert refused.value.errors[0]["field"] == "quiet_hours.default_timezone"


@pytest.fixture(scope="module")
async def svc(stack_env: dict[str, str], producer: Any) -> AsyncIterator[SimpleNamespace]:
    clock = Clock()
    app = create_app(fx.trigger_settings(stack_env, role=fx.ALL_BUT_SCHEDULER), clock=clock)
    async with running(app) as client:
        yield SimpleNamespace(client=client, clock=clock, producer=producer)


async def test_quiet_hours_through_the_api_hold_the_channels_they_name_and_reach_the_broker(
    svc, auth, workspace, broker
):
    client = svc.client
    quiet = {"start": "21:00", "end": "08:00", "channels": ["sms"], "default_timezone": "Europe/Amsterdam"}
    async with TopicReader(broker.bootstrap_servers, WORKSPACES) as reader:
        saved = await client.put("/v1/settings", json={"quiet_hours": quiet}, headers=auth)
        assert saved.status_code == 200, saved.text
        [published] = await reader.wait_for(lambda v: ours(v, workspace))
    assert published["type"] == "closeloop.QuietHoursChanged.v1"
    assert published["data"]["channels"] == ["sms"] and published["data"]["default_timezone"] == (
        "Europe/Amsterdam"
    )
    shown = (await client.get("/v1/settings", headers=auth)).json()
    assert shown == {"frequency_cap": None, "quiet_hours": quiet, "default_timezone": "Europe/Amsterdam"}
    audit = (await client.get("/v1/audit", params={"entity": "settings"}, headers=auth)).json()
    assert audit[0]["after"]["quiet_hours"]["channels"] == ["sms"]

    await fx.known_survey(client, auth, svc.producer, "svy")
    for channel in ("email", "sms"):
        rule = {"name": channel, "event_type": f"ping.{channel}", "survey_id": "svy", "channel": channel}
        assert (await client.post("/v1/rules", json=rule, headers=auth)).status_code == 201
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    svc.clock.set(datetime(tomorrow.year, tomorrow.month, tomorrow.day, 22, 30, tzinfo=UTC))  # 23:30 there
    try:
        contact = {"external_id": "owl", "email": "owl@example.com", "phone": "+31612345678"}
        for channel in ("email", "sms"):
            event = {"id": f"night-{channel}", "type": f"ping.{channel}", "data": {"contact": contact}}
            assert (await client.post("/v1/events", json=event, headers=auth)).status_code == 202
    finally:
        svc.clock.reset()
    decisions = (await client.get("/v1/contacts/owl/decisions", headers=auth)).json()
    assert [(d["channel"], d["outcome"]) for d in decisions] == [("email", "sent"), ("sms", "delayed")]


@pytest.mark.parametrize(
    "quiet, field",
    [
        ({"start": "21:00", "end": "08:00", "channels": []}, "quiet_hours.channels"),
        ({"start": "21:00", "end": "08:00", "channels": ["link"]}, "quiet_hours.channels.0"),
        (
            {"start": "21:00", "end": "08:00", "default_timezone": "Mars/Olympus"},
            "quiet_hours.default_timezone",
        ),
        ({"start": "21:00", "end": "08:00", "when": "always"}, "quiet_hours.when"),
    ],
)
async def test_bad_quiet_hours_are_refused_naming_the_field(svc, auth, quiet, field):
    response = await svc.client.put("/v1/settings", json={"quiet_hours": quiet}, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert (await svc.client.get("/v1/settings", headers=auth)).json()["quiet_hours"] is None
