"""What follow-up's routes depend on, typed: its runtime (settings, database, outbox) and its own
dependencies (the clock every rule reads, the escalation scheduler), and who is acting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from services.followup.escalation import EscalationScheduler
from services.followup.settings import FollowUpSettings
from shared.clock import Clock
from shared.service import Runtime, get_runtime


@dataclass
class FollowUp:
    clock: Clock
    escalator: EscalationScheduler


FollowUpRuntime = Runtime[FollowUpSettings, FollowUp]
RuntimeDep = Annotated[FollowUpRuntime, Depends(get_runtime)]


def get_actor(
    x_actor: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Who is acting (an agent id); recorded with every change. Default: api.",
        ),
    ] = None,
) -> str:
    return (x_actor or "").strip() or "api"


ActorDep = Annotated[str, Depends(get_actor)]
