"""What scoring's routes depend on, typed: its runtime (settings, database, outbox)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.scoring.settings import ScoringSettings
from shared.service import Runtime, get_runtime

ScoringRuntime = Runtime[ScoringSettings, None]
RuntimeDep = Annotated[ScoringRuntime, Depends(get_runtime)]
