"""What follow-up's routes depend on, typed: its runtime (settings, database, outbox)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.followup.settings import FollowUpSettings
from shared.service import Runtime, get_runtime

FollowUpRuntime = Runtime[FollowUpSettings, None]
RuntimeDep = Annotated[FollowUpRuntime, Depends(get_runtime)]
