"""A small in-process cache with a time to live, for settings read on every request.

Writes through this process invalidate at once; other replicas see a change within the TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TTLCache(Generic[T]):
    """Values by key for ``ttl_s`` seconds; at most ``max_entries`` (then it starts over)."""

    def __init__(
        self, ttl_s: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, T]] = {}
        self._loading: dict[str, asyncio.Future[T | None]] = {}
        self.generation = 0

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[T | None]]) -> T | None:
        """Return the fresh value, or load it (``None``: nothing there, not cached). Callers that
        miss while a load of ``key`` is under way wait for that load instead of starting their own,
        so an entry expiring under load costs one query, not one per request in flight."""
        value = self.get(key)
        if value is not None:
            return value
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        pending = asyncio.get_running_loop().create_future()
        self._loading[key] = pending
        generation = self.generation
        try:
            value = await load()
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: nobody may be waiting
            raise
        else:
            pending.set_result(value)
            if value is not None:
                self.put(key, value, generation=generation)
            return value
        finally:
            del self._loading[key]

    def put(self, key: str, value: T, *, generation: int | None = None) -> None:
        # A load that started before an invalidation must not put stale data back.
        if generation is not None and generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl_s, value)

    def invalidate(self, key: str) -> None:
        self.generation += 1
        self._entries.pop(key, None)
