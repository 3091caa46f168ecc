"""Pure rules of the follow-up service, one module per concern: the case's life (``cases``),
routing, SLA clocks, the escalation ladder, the root-cause taxonomy, metrics and notices."""

from services.followup.domain.cases import (
    NO_RETENTION_SURVEY,
    Decision,
    TransitionRefused,
    accepts_outcome,
    check_assignable,
    check_resolvable,
    decide_on_negative_feedback,
    retention_reason,
    won_back,
)
from services.followup.domain.notices import new_case_notice

__all__ = [
    "NO_RETENTION_SURVEY",
    "Decision",
    "TransitionRefused",
    "accepts_outcome",
    "check_assignable",
    "check_resolvable",
    "decide_on_negative_feedback",
    "new_case_notice",
    "retention_reason",
    "won_back",
]
