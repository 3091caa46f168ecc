"""A small in-process cache with a time to live, for settings read on every request.

Writes through this process invalidate at once; other replicas see a change within the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
        self.generation = 0

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

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
