"""The machinery every service shares: the worker loop, event upcasting, roles, the clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from shared.clock import Clock
from shared.events import (
    CUSTOMER_EVENTS,
    CloudEvent,
    ContactErased,
    EventData,
    UnknownEventType,
    Upcasters,
)
from shared.settings import ServiceSettings
from shared.worker import Worker

# --- the worker loop ------------------------------------------------------------------------


class Passes(Worker):
    """Does ``plan[i]`` items in pass i (an exception fails the pass), then nothing."""

    name = "test"

    def __init__(self, plan: list[int | Exception], **kwargs: float) -> None:
        kwargs.setdefault("poll_interval_s", 60)
        super().__init__(batch=10, **kwargs)  # type: ignore[arg-type]
        self.plan = plan
        self.passes: list[float] = []
        self.passed = asyncio.Event()

    async def work_once(self) -> int:
        self.passes.append(asyncio.get_running_loop().time())
        self.passed.set()
        step = self.plan.pop(0) if self.plan else 0
        if isinstance(step, Exception):
            raise step
        return step

    async def until_passes(self, n: int) -> None:
        while len(self.passes) < n:
            self.passed.clear()
            await asyncio.wait_for(self.passed.wait(), 5)


async def test_a_full_pass_is_followed_at_once_by_another_and_a_short_one_waits_for_the_poll():
    worker = Passes([10, 10, 3])
    task = asyncio.create_task(worker.run())
    await worker.until_passes(3)
    await asyncio.sleep(0.05)
    assert len(worker.passes) == 3  # the short pass waits for the 60 s poll
    worker.stop()
    await asyncio.wait_for(task, 1)


async def test_a_wake_up_starts_the_next_pass_before_the_poll():
    worker = Passes([])
    task = asyncio.create_task(worker.run())
    await worker.until_passes(1)
    worker.wake()
    await worker.until_passes(2)
    worker.stop()
    await asyncio.wait_for(task, 1)


async def test_a_failed_pass_is_retried_after_a_backoff_that_doubles():
    worker = Passes([RuntimeError("db down"), RuntimeError("still down"), 0], poll_interval_s=0.02)
    task = asyncio.create_task(worker.run())
    await worker.until_passes(3)
    first, second = worker.passes[1] - worker.passes[0], worker.passes[2] - worker.passes[1]
    assert first >= 0.02 and second >= 0.04
    worker.stop()
    await asyncio.wait_for(task, 1)


async def test_stop_ends_the_loop_after_the_pass_in_hand():
    release = asyncio.Event()
    finished: list[str] = []

    class Slow(Worker):
        name = "slow"

        async def work_once(self) -> int:
            await release.wait()
            finished.append("pass")
            return 0

    worker = Slow(poll_interval_s=60, batch=1)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.01)
    worker.stop()
    assert not task.done()
    release.set()
    await asyncio.wait_for(task, 1)
    assert finished == ["pass"]


async def test_woken_right_after_a_pass_that_did_work_it_lingers_to_take_more_at_once():
    worker = Passes([1, 1, 0], linger_s=0.2)
    task = asyncio.create_task(worker.run())
    await worker.until_passes(1)
    worker.wake()
    await worker.until_passes(2)
    assert worker.passes[1] - worker.passes[0] >= 0.19
    # After a pass that found nothing, a wake-up is answered at once.
    worker.wake()
    await worker.until_passes(3)
    worker.wake()
    await worker.until_passes(4)
    assert worker.passes[3] - worker.passes[2] < 0.15
    worker.stop()
    await asyncio.wait_for(task, 1)


# --- upcasting old event versions ------------------------------------------------------------


class Greeted(EventData):
    """A test event at version 3: ``name`` was ``who`` in v1; ``polite`` came in v2 (required)."""

    topic: ClassVar[str] = CUSTOMER_EVENTS
    version: ClassVar[int] = 3
    name: str
    polite: bool


def test_old_versions_are_upcast_step_by_step_to_the_current_model(monkeypatch):
    monkeypatch.setitem(__import__("shared.events").events.EVENT_TYPES, Greeted.type_name(), Greeted)
    upcasters = Upcasters()

    @upcasters.register("closeloop.Greeted.v1", to=Greeted)  # a v1 becomes a v2 ...
    def _v1(data: dict) -> dict:
        return {**{k: v for k, v in data.items() if k != "who"}, "name": data["who"], "polite": False}

    assert upcasters.older_names("closeloop.Greeted.v3") == {"closeloop.Greeted.v1"}
    old = CloudEvent(
        id="e1",
        source="/closeloop/test",
        type="closeloop.Greeted.v1",
        time=datetime.now(UTC),
        workspaceid="ws",
        data={"workspace_id": "ws", "who": "Ada"},
    )
    assert old.parse_data(upcasters) == Greeted(workspace_id="ws", name="Ada", polite=False)
    with pytest.raises(UnknownEventType):
        old.parse_data(Upcasters())  # without the upcaster, v1 is unknown
    with pytest.raises(ValueError, match="already"):
        upcasters.register("closeloop.Greeted.v1", to=Greeted)(_v1)


def test_the_current_version_is_parsed_as_it_is():
    event = CloudEvent.wrap(
        ContactErased(workspace_id="ws", contact_id="c", erased_at=datetime.now(UTC)), source="t"
    )
    assert isinstance(event.parse_data(), ContactErased)


# --- roles -----------------------------------------------------------------------------------


def _settings(role: str) -> ServiceSettings:
    return ServiceSettings(database_url="postgresql://x/y", role=role)


def test_a_role_names_what_the_process_runs():
    everything = _settings("all")
    assert everything.serves_api and everything.runs("relay") and everything.runs("scheduler")
    api = _settings("api")
    assert api.serves_api and not api.runs("relay") and not api.runs("consumer")
    worker = _settings("worker")
    assert not worker.serves_api and worker.runs("consumer") and worker.runs("evaluator")
    some = _settings("api, relay")
    assert some.serves_api and some.runs("relay") and not some.runs("consumer")


def test_a_role_naming_a_worker_the_service_lacks_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"scheduler.*choose from all, api, worker, consumer, relay"):
        _settings("api,scheduler").check_role({"relay", "consumer"})
    with pytest.raises(ValueError):
        _settings("api;relay")


# --- the clock -------------------------------------------------------------------------------


def test_the_clock_moves_only_when_told():
    clock = Clock()
    before = clock.now()
    clock.advance(timedelta(days=2))
    assert clock.now() - before >= timedelta(days=2)
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    clock.set(moment)
    assert abs(clock.now() - moment) < timedelta(seconds=1)
    clock.reset()
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)


async def test_a_failed_pass_of_a_slow_polling_worker_is_retried_within_a_second():
    worker = Passes([RuntimeError("db down"), 0], poll_interval_s=60)
    task = asyncio.create_task(worker.run())
    await worker.until_passes(2)
    assert worker.passes[1] - worker.passes[0] <= 1.5
    worker.stop()
    await asyncio.wait_for(task, 1)
