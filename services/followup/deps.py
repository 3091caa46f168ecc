"""What follow-up's routes depend on, typed: its runtime (settings, database, outbox) and its own
dependencies (the clock every rule reads, the escalation scheduler), and who is acting (from the
caller's credential)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.followup.escalation import EscalationScheduler
from services.followup.settings import FollowUpSettings
from shared.clock import Clock
from shared.service import PrincipalDep, Runtime, get_runtime


@dataclass
class FollowUp:
    clock: Clock
    escalator: EscalationScheduler


FollowUpRuntime = Runtime[FollowUpSettings, FollowUp]
RuntimeDep = Annotated[FollowUpRuntime, Depends(get_runtime)]


async def get_actor(principal: PrincipalDep) -> str:
    """Return who is acting, as every history entry records it: the person of a console user token
    (``Grace Hopper (user:<id>)``) or the API key (``key:<id>``). An ``X-Actor`` header is not believed."""
    return principal.who[:200]


ActorDep = Annotated[str, Depends(get_actor)]
