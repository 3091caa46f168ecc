"""Closed-loop metrics: the won-back rate with its interval, and the recovery funnel.

- **won-back rate** = cases closed with a non-negative retention answer / cases with a retention
  answer, with a 95% Wilson score interval (sound for small n and for rates near 0 or 1).
- **within SLA** = cases contacted (resolved) by their due time / cases that were contacted
  (resolved) or are past their due time without it: cases still inside their time are not counted.
- **reopen rate** = cases reopened at least once / cases resolved at least once.
- **climbed**: a detractor whose case exists answers a later survey (any kind) as a promoter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


def wilson(successes: int, n: int, *, z: float = Z95) -> tuple[float, float] | None:
    """Return the Wilson score interval of ``successes / n`` (None when n is 0)."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(part: int, whole: int) -> float | None:
    """Return ``part / whole``, or None when there is no whole."""
    return part / whole if whole else None


FUNNEL_STEPS = (
    "negative_answers",
    "consented",
    "case_opened",
    "contacted",
    "resolved",
    "retention_answered",
    "won_back",
)


@dataclass(frozen=True)
class FunnelStep:
    step: str
    count: int
    share_of_previous: float | None
    dropped: int


def funnel(counts: Sequence[int]) -> list[FunnelStep]:
    """Return the recovery funnel's steps with the drop from each previous step."""
    steps = []
    previous: int | None = None
    for name, count in zip(FUNNEL_STEPS, counts, strict=True):
        steps.append(
            FunnelStep(
                name,
                count,
                None if previous is None else rate(count, previous),
                0 if previous is None else max(previous - count, 0),
            )
        )
        previous = count
    return steps
