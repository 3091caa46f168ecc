"""Pure rules and calculations of the scoring service: no I/O, trivially unit-tested.

- ``scores``: classifying answers, every scored answer of a response, the loyalty cell;
- ``stats``: counts, scores, 95% intervals and the significance of changes;
- ``dimensions``: what a response is sliced by, and segment filters;
- ``targets``: the status of an experience target.
"""

from services.scoring.domain.dimensions import (
    DECLARED,
    Condition,
    InvalidFilter,
    Segment,
    check_dimension,
    dimensions_of,
    parse_filters,
)
from services.scoring.domain.scores import (
    SCALES,
    AnswerView,
    Classification,
    NegativeRules,
    Scored,
    ScoreOutOfRange,
    classify,
    first_comment,
    is_negative,
    loyalty_cell,
    loyalty_pair,
    primary_score,
    score_all,
    score_answers,
    to_csat_5,
    to_five_points,
)
from services.scoring.domain.stats import (
    SIGNIFICANCE,
    Z_95,
    Change,
    Summary,
    Tally,
    mean,
    mean_interval,
    metric_change,
    net_score,
    net_score_change,
    net_score_interval,
    net_score_margin_of_error,
    score_interval,
    share_change,
    share_margin_of_error,
    share_percent,
    summarise,
    tally,
    wilson_interval,
)
from services.scoring.domain.targets import target_status
from shared.vocabulary import SCORE_METRICS, Metric, ScoreMetric

METRICS: tuple[ScoreMetric, ...] = SCORE_METRICS
"""Every metric a report can show: NPS, NLS, CSAT, CES and star ratings."""

__all__ = [
    "DECLARED",
    "METRICS",
    "SCALES",
    "SIGNIFICANCE",
    "Z_95",
    "AnswerView",
    "Change",
    "Classification",
    "Condition",
    "InvalidFilter",
    "Metric",
    "NegativeRules",
    "ScoreMetric",
    "ScoreOutOfRange",
    "Scored",
    "Segment",
    "Summary",
    "Tally",
    "check_dimension",
    "classify",
    "dimensions_of",
    "first_comment",
    "is_negative",
    "loyalty_cell",
    "loyalty_pair",
    "mean",
    "mean_interval",
    "metric_change",
    "net_score",
    "net_score_change",
    "net_score_interval",
    "net_score_margin_of_error",
    "parse_filters",
    "primary_score",
    "score_all",
    "score_answers",
    "score_interval",
    "share_change",
    "share_margin_of_error",
    "share_percent",
    "summarise",
    "tally",
    "target_status",
    "to_csat_5",
    "to_five_points",
    "wilson_interval",
]
