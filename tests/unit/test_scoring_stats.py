"""The statistics of scoring against reference values computed independently: scipy, numpy and the
formulas written out by hand here — never by the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from services.scoring import domain
from services.scoring.domain import Tally

Z = 1.96  # the project's z (scipy's exact 1.95996 moves intervals by under 0.01 points)


def reference_wilson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low * 100, ci.high * 100


def reference_adjusted_wald(promoters: int, passives: int, detractors: int) -> tuple[float, float]:
    """Rocks (2016): ¾ of an observation added to promoters and detractors, 1½ to passives; the
    interval of the weighted mean of +1/0/−1 with the trinomial variance."""
    values = np.array([1.0, 0.0, -1.0])
    weights = np.array([promoters + 0.75, passives + 1.5, detractors + 0.75])
    n = weights.sum()
    centre = np.average(values, weights=weights)
    variance = np.average((values - centre) ** 2, weights=weights)
    half = Z * math.sqrt(variance / n)
    return max(centre - half, -1) * 100, min(centre + half, 1) * 100


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 10), (10, 10), (3, 7), (30, 40), (500, 1000)])
def test_shares_have_the_wilson_interval(k, n):
    low, high = domain.wilson_interval(k, n)
    ref_low, ref_high = reference_wilson(k, n)
    assert low == pytest.approx(ref_low, abs=0.01) and high == pytest.approx(ref_high, abs=0.01)
    assert 0 <= low <= k / n * 100 <= high <= 100
    assert high - low > 0, "the interval never collapses, even at n = 1 or at 0% and 100%"


def test_no_answers_no_interval():
    assert domain.wilson_interval(0, 0) is None
    assert domain.net_score_interval(0, 0, 0) is None
    summary = domain.summarise("nps", Tally())
    assert (summary.n, summary.score, summary.low, summary.high, summary.margin_of_error) == (
        0,
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "promoters, passives, detractors",
    [
        (0, 0, 1),
        (1, 0, 0),
        (0, 1, 0),
        (1, 1, 1),
        (0, 5, 0),
        (10, 0, 0),
        (0, 0, 10),
        (5, 3, 2),
        (50, 30, 20),
        (400, 350, 250),
    ],
)
def test_net_scores_have_the_adjusted_wald_interval(promoters, passives, detractors):
    n = promoters + passives + detractors
    low, high = domain.net_score_interval(promoters, detractors, n)
    ref_low, ref_high = reference_adjusted_wald(promoters, passives, detractors)
    assert (low, high) == (pytest.approx(ref_low, abs=1e-9), pytest.approx(ref_high, abs=1e-9))
    assert -100 <= low < high <= 100


def test_one_detractor_by_hand():
    # n' = 4, p' = 0.75/4 = 0.1875, d' = 1.75/4 = 0.4375, centre −0.25,
    # variance p' + d' − centre² = 0.5625, half-width 1.96·sqrt(0.5625/4) = 0.735 → −98.5 … 48.5
    assert domain.net_score_interval(0, 1, 1) == (pytest.approx(-98.5), pytest.approx(48.5))
    summary = domain.summarise("nps", domain.tally({3: 1}, "nps"))
    assert summary.score == -100 and summary.margin_of_error == pytest.approx(73.5)


def test_all_passives_is_zero_with_a_wide_interval():
    summary = domain.summarise("nps", domain.tally({7: 3, 8: 2}, "nps"))
    assert summary.score == 0
    # n' = 8, p' = d' = 0.09375, variance 0.1875, half-width 1.96·sqrt(0.1875/8) = 0.3001
    assert summary.low == pytest.approx(-30.006, abs=1e-3) and summary.high == pytest.approx(30.006, abs=1e-3)


@pytest.mark.parametrize(
    "scale, seven, eight, nine",
    [("standard", "passive", "passive", "promoter"), ("european", "passive", "promoter", "promoter")],
)
@pytest.mark.parametrize("metric", ["nps", "nls"])
def test_boundaries_on_both_scales(metric, scale, seven, eight, nine):
    assert domain.classify(metric, 6, nps_scale=scale) == "detractor"
    assert domain.classify(metric, 7, nps_scale=scale) == seven
    assert domain.classify(metric, 8, nps_scale=scale) == eight
    assert domain.classify(metric, 9, nps_scale=scale) == nine


def test_the_mean_has_a_t_interval():
    histogram = {1: 2, 4: 3, 6: 4, 7: 1}
    sample = np.repeat(list(histogram), list(histogram.values()))
    ref = stats.t.interval(0.95, len(sample) - 1, loc=sample.mean(), scale=stats.sem(sample))
    counts = domain.tally(histogram, "ces")
    low, high = domain.mean_interval(counts)
    assert (low, high) == (pytest.approx(ref[0], abs=2e-3), pytest.approx(ref[1], abs=2e-3))
    assert domain.mean_interval(domain.tally({5: 1}, "ces")) is None


@pytest.mark.parametrize("df", [1, 2, 5, 10, 29, 30, 35, 45, 80, 150, 5000])
def test_t_quantiles_are_never_below_the_exact_ones(df):
    from services.scoring.domain.stats import t_975

    exact = stats.t.ppf(0.975, df)
    assert exact - 1e-3 <= t_975(df) <= exact + 0.05


@pytest.mark.parametrize(
    "k1, n1, k2, n2", [(30, 40, 20, 40), (45, 50, 40, 50), (5, 10, 5, 10), (100, 400, 140, 400), (1, 1, 0, 1)]
)
def test_shares_differ_by_the_pooled_two_proportion_test(k1, n1, k2, n2):
    # The 2×2 chi-square test without continuity correction is the pooled z-test squared.
    _, p, _, _ = stats.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)
    change = domain.share_change(k1, n1, k2, n2)
    assert change.p_value == pytest.approx(p, rel=1e-9)
    assert change.difference == pytest.approx((k1 / n1 - k2 / n2) * 100)
    assert change.significant == (p < 0.05)


def reference_nps_test(now: tuple[int, int, int], before: tuple[int, int, int]) -> tuple[float, float]:
    """z and p of the NPS difference with the variance of +1/0/−1 pooled over both periods."""
    a = np.repeat([1, 0, -1], now)
    b = np.repeat([1, 0, -1], before)
    pooled = np.concatenate([a, b]).var()
    z = (a.mean() - b.mean()) / math.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    return z, 2 * stats.norm.sf(abs(z))


@pytest.mark.parametrize(
    "now, before",
    [
        ((60, 25, 15), (45, 30, 25)),
        ((10, 5, 5), (8, 6, 6)),
        ((200, 100, 100), (150, 120, 130)),
        ((3, 0, 0), (0, 0, 2)),
    ],
)
def test_nps_differs_by_the_z_test_on_the_pooled_trinomial_variance(now, before):
    z, p = reference_nps_test(now, before)
    change = domain.net_score_change(Tally(now[0], now[1], now[2]), Tally(before[0], before[1], before[2]))
    assert change.z == pytest.approx(z, rel=1e-9) and change.p_value == pytest.approx(p, rel=1e-6)
    assert change.significant == (p < 0.05)


def test_a_change_is_not_significant_below_the_minimum_n_or_without_answers():
    small = domain.net_score_change(Tally(3, 0, 0), Tally(0, 0, 2), min_n=5)
    assert small.p_value is not None and small.p_value < 0.05 and not small.significant
    assert domain.net_score_change(Tally(3, 0, 0), Tally()) == domain.Change(None, None, None, False)
    same = domain.share_change(4, 4, 6, 6)
    assert (same.difference, same.p_value, same.significant) == (0, 1.0, False)


@pytest.mark.parametrize(
    "value, low, high, direction, expected",
    [
        (85, 70, 95, "at_least", "met"),
        (75, 60, 85, "at_least", "at_risk"),
        (60, 45, 79.9, "at_least", "breached"),
        (80, 65, 90, "at_least", "met"),
        (10, 5, 20, "at_most", "met"),
        (25, 12, 35, "at_most", "at_risk"),
        (40, 20.1, 55, "at_most", "breached"),
    ],
)
def test_a_target_is_breached_only_when_the_whole_interval_is_on_the_wrong_side(
    value, low, high, direction, expected
):
    threshold = 80 if direction == "at_least" else 20
    status = domain.target_status(
        value=value, low=low, high=high, n=50, threshold=threshold, direction=direction, min_n=5
    )
    assert status == expected


def test_a_target_without_enough_answers_has_no_verdict():
    status = domain.target_status(value=0, low=0, high=10, n=4, threshold=80, direction="at_least", min_n=5)
    assert status == "too_few_answers"


@pytest.mark.parametrize(
    "nps, nls, cell",
    [
        (10, 10, "pure"),
        (9, 3, "false"),
        (2, 9, "trapped"),
        (0, 6, "disloyal"),
        (8, 10, "undecided"),
        (10, 7, "undecided"),
    ],
)
def test_loyalty_cells_on_the_standard_scale(nps, nls, cell):
    got = domain.loyalty_cell(domain.classify("nps", nps), domain.classify("nls", nls))
    assert got == cell


def test_the_european_scale_moves_eight_into_high():
    assert (
        domain.loyalty_cell(domain.classify("nps", 8, nps_scale="european"), domain.classify("nls", 2))
        == "false"
    )


answers = st.lists(st.tuples(st.integers(0, 10), st.sampled_from(["a", "b", "c", None])), max_size=200)


@settings(max_examples=200, deadline=None)
@given(answers, st.sampled_from(["standard", "european"]))
def test_groups_sum_to_the_total(rows, scale):
    by_group: dict[str | None, dict[int, int]] = {}
    everything: dict[int, int] = {}
    for score, group in rows:
        by_group.setdefault(group, {}).setdefault(score, 0)
        by_group[group][score] += 1
        everything[score] = everything.get(score, 0) + 1
    parts = sum((domain.tally(h, "nps", nps_scale=scale) for h in by_group.values()), Tally())
    assert parts == domain.tally(everything, "nps", nps_scale=scale)
    assert parts.n == len(rows)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_intervals_hold_their_estimate_and_stay_on_the_scale(promoters, passives, detractors):
    n = promoters + passives + detractors
    if n == 0:
        return
    low, high = domain.net_score_interval(promoters, detractors, n)
    assert -100 <= low < high <= 100
    w_low, w_high = domain.wilson_interval(promoters, n)
    assert 0 <= w_low <= promoters / n * 100 <= w_high <= 100


def test_every_scored_answer_of_a_response_counts():
    answers = [
        domain.AnswerView("nps", 9, None, "q-nps"),
        domain.AnswerView("open", "fine", None, "q-why"),
        domain.AnswerView("nls", 3, None, "q-nls"),
        domain.AnswerView("csat", 8, (1, 10), "q-csat"),
        domain.AnswerView("ces", 2, None, "q-ces"),
        domain.AnswerView("rating", 2, (1, 3), "q-stars"),
        domain.AnswerView("nps", None, None, "q-skipped"),
    ]
    scored = domain.score_all(answers)
    assert [(s.question_id, s.metric, s.score, s.classification, s.negative) for s in scored] == [
        ("q-nps", "nps", 9, "promoter", False),
        ("q-nls", "nls", 3, "detractor", True),
        ("q-csat", "csat", 4, "positive", False),
        ("q-ces", "ces", 2, "negative", True),
        ("q-stars", "rating", 3, "neutral", False),
    ]
    pair = domain.loyalty_pair(scored)
    assert pair is not None and domain.loyalty_cell(pair[0].classification, pair[1].classification) == "false"


def test_negative_feedback_thresholds_are_the_workspaces():
    strict = domain.NegativeRules(nps=4, csat=1)
    scored = domain.score_all(
        [domain.AnswerView("nps", 5, None, "a"), domain.AnswerView("csat", 2, None, "b")], negative=strict
    )
    assert [(s.classification, s.negative) for s in scored] == [("detractor", False), ("negative", False)]
