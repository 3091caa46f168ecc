"""Experience targets: whether a figure in its window is met, at risk or breached."""

from __future__ import annotations

from typing import Literal

from shared.vocabulary import TargetStatus

Direction = Literal["at_least", "at_most"]


def target_status(
    *,
    value: float | None,
    low: float | None,
    high: float | None,
    n: int,
    threshold: float,
    direction: Direction,
    min_n: int,
) -> TargetStatus:
    """Return a target's status.

    Breached only when the whole 95% interval is on the wrong side of the threshold; at risk when the
    estimate is on the wrong side but the interval still reaches the threshold; met otherwise. Below
    the workspace's minimum n there is no verdict.
    """
    if value is None or low is None or high is None or n < min_n:
        return "too_few_answers"
    if direction == "at_least":
        if value >= threshold:
            return "met"
        return "breached" if high < threshold else "at_risk"
    if value <= threshold:
        return "met"
    return "breached" if low > threshold else "at_risk"
