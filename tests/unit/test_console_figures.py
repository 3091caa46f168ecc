"""The overview's figures cache: kept per workspace, role and scope; dropped when the live stream says
the workspace's counts moved; never keeping a load that began before that, nor a page with a refusal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from services.console.apis import ServiceError
from services.console.figures import FiguresCache

SCOPE = {"from": "2026-09-01", "to": "2026-11-30", "filter": []}


def now() -> datetime:
    return datetime(2026, 11, 30, 12, tzinfo=UTC)


class Scoring:
    """Counts the loads; each answers its own number."""

    def __init__(self) -> None:
        self.loads = 0

    async def load(self) -> dict[str, Any]:
        self.loads += 1
        return {"metrics": {"n": self.loads}}


async def figures(cache: FiguresCache, scoring: Scoring, workspace: str = "acme", role: str = "owner") -> Any:
    data, _ = await cache.get_or_load(
        workspace_id=workspace, role=role, scope=SCOPE, load=scoring.load, now=now
    )
    return data["metrics"]["n"]


async def test_figures_are_kept_per_workspace_and_role_until_the_workspace_changes():
    cache, scoring = FiguresCache(60), Scoring()
    assert [await figures(cache, scoring), await figures(cache, scoring)] == [1, 1]
    assert await figures(cache, scoring, role="viewer") == 2
    assert await figures(cache, scoring, workspace="other") == 3
    cache.changed("acme")
    assert await figures(cache, scoring) == 4
    assert await figures(cache, scoring, workspace="other") == 3


async def test_a_load_under_way_when_the_counts_moved_is_not_kept():
    cache, started, release = FiguresCache(60), asyncio.Event(), asyncio.Event()

    async def slow() -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"metrics": {"n": "before the change"}}

    pending = asyncio.create_task(
        cache.get_or_load(workspace_id="acme", role="owner", scope=SCOPE, load=slow, now=now)
    )
    await started.wait()
    cache.changed("acme")
    release.set()
    assert (await pending)[0]["metrics"]["n"] == "before the change"  # that page shows what it asked
    assert await figures(cache, Scoring()) == 1  # the next one asks again


async def test_a_page_with_a_refusal_is_shown_but_not_kept_and_no_cache_keeps_nothing():
    calls = 0

    async def refused() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"metrics": ServiceError("scoring", 503, "busy")}

    cache = FiguresCache(60)
    for _ in range(2):
        data, _ = await cache.get_or_load(
            workspace_id="acme", role="owner", scope=SCOPE, load=refused, now=now
        )
        assert isinstance(data["metrics"], ServiceError)
    assert calls == 2
    off, scoring = FiguresCache(0), Scoring()
    assert [await figures(off, scoring), await figures(off, scoring)] == [1, 2]
