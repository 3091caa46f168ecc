"""In-memory caches of what every webhook needs: the integration (with its secret) and the
workspace's rules and policy. Changes made through this process invalidate at once; other
replicas see them within ``CLOSELOOP_TRIGGER_CACHE_TTL_S``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from services.trigger.domain import Policy, RuleView

T = TypeVar("T")


@dataclass(frozen=True)
class IntegrationView:
    id: str
    workspace_id: str
    kind: str
    source: str
    secret: str
    config: dict[str, Any]
    enabled: bool
    name: str = ""


@dataclass(frozen=True)
class WorkspaceRules:
    rules: tuple[RuleView, ...]
    policy: Policy
    cap_window_days: int = 0
    """The longest window any cap of this workspace looks back over (0: no caps)."""
    survey_kinds: dict[str, str] = field(default_factory=dict)

    def any_match(self, source: str, event_type: str) -> bool:
        return any(r.matches(source, event_type) for r in self.rules)


class TTLCache(Generic[T]):
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


class Caches:
    def __init__(self, ttl_s: float) -> None:
        self.integrations: TTLCache[IntegrationView] = TTLCache(ttl_s)
        self.workspaces: TTLCache[WorkspaceRules] = TTLCache(ttl_s)
