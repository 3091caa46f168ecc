"""What scoring's routes depend on, typed: its runtime (settings, database, outbox) and its own
dependencies (the clock and the target evaluator)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.scoring.handlers.targets import TargetEvaluator
from services.scoring.queries.answer_cache import AnswerCache
from services.scoring.settings import ScoringSettings
from shared.clock import Clock
from shared.service import Runtime, get_runtime


@dataclass
class Scoring:
    clock: Clock
    evaluator: TargetEvaluator
    warming: asyncio.Task[None] | None = None
    """Loading the text-analysis dictionaries in a thread, in a process that consumes responses."""
    answers: AnswerCache | None = None
    """Recent answers as columns in memory, for segmented reports (in a process that serves the API)."""


ScoringRuntime = Runtime[ScoringSettings, Scoring]
RuntimeDep = Annotated[ScoringRuntime, Depends(get_runtime)]
