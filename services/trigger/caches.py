"""In-memory caches of what every webhook needs: the integration (with its secret) and the
workspace's rules, policy and surveys. Changes made through this process invalidate at once; other
replicas see them within ``CLOSELOOP_TRIGGER_CACHE_TTL_S``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from services.trigger.domain.model import Policy, RuleView
from shared.cache import TTLCache

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
    surveys: dict[str, bool] = field(default_factory=dict)
    """The workspace's surveys trigger knows (from responses' events): survey id → open."""

    def any_match(self, source: str, event_type: str) -> bool:
        return any(r.matches(source, event_type) for r in self.rules)


class Caches:
    def __init__(self, ttl_s: float) -> None:
        self.integrations: TTLCache[IntegrationView] = TTLCache(ttl_s)
        self.workspaces: TTLCache[WorkspaceRules] = TTLCache(ttl_s)
