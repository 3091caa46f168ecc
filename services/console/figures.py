"""The overview's figures kept for a few seconds per (workspace, role, filters), so that a page opened
again, by the same person or a colleague, does not ask scoring eight questions again.

Sound because the figures change only when scoring counts something: the overview's live stream asks
scoring for the counts every second anyway, and when they move it calls ``changed`` for the workspace,
which drops every kept entry of it (its epoch moves on) before the browser fetches the page again. A
page no stream watches is at most ``overview_cache_s`` old (the page says as of when), and a page served
from an older entry gets its ``changed`` on the stream's first poll. A load that began before a change
is not kept (``TTLCache``'s generation). Each console replica keeps its own."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from shared.cache import TTLCache

Figures = tuple[dict[str, Any], datetime]
"""The overview's answers from scoring and when they were asked."""


class FiguresCache:
    def __init__(self, ttl_s: float, *, max_entries: int = 2_000) -> None:
        self.entries: TTLCache[Figures] | None = (
            TTLCache(ttl_s, max_entries=max_entries) if ttl_s > 0 else None
        )
        self.epochs: dict[str, int] = {}

    async def get_or_load(
        self,
        *,
        workspace_id: str,
        role: str,
        scope: dict[str, Any],
        load: Callable[[], Awaitable[dict[str, Any]]],
        now: Callable[[], datetime],
    ) -> Figures:
        """Return the figures kept for this scope, or load them (kept only when every call answered)."""
        loaded: list[Figures] = []

        async def fresh() -> Figures | None:
            figures = (await load(), now())
            loaded.append(figures)
            complete = not any(isinstance(v, Exception) for v in figures[0].values())
            return figures if complete else None

        if self.entries is None:
            return (await load(), now())
        key = json.dumps([workspace_id, self.epochs.get(workspace_id, 0), role, scope], sort_keys=True)
        found = await self.entries.get_or_load(key, fresh)
        if found is not None:
            return found
        # Some call failed: not kept; this request shows its own answers (or, having waited on another
        # request's load, asks again).
        return loaded[-1] if loaded else (await load(), now())

    def changed(self, workspace_id: str) -> None:
        """Forget every kept figure of the workspace (and what loads of it are under way will bring)."""
        self.epochs[workspace_id] = self.epochs.get(workspace_id, 0) + 1
        if self.entries is not None:
            self.entries.generation += 1
