"""Score maths of the scoring service: classes, NPS, CSAT, CES and margins of error."""

from __future__ import annotations

import pytest

from services.scoring import domain
from services.scoring.domain import AnswerView, ScoreOutOfRange, score_answers, to_csat_5


@pytest.mark.parametrize(
    "score, expected",
    [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (9, "promoter"), (10, "promoter")],
)
def test_nps_classes_on_the_standard_scale(score, expected):
    assert domain.classify("nps", score) == expected
    assert domain.classify("nls", score) == expected


@pytest.mark.parametrize(
    "score, expected", [(6, "detractor"), (7, "passive"), (8, "promoter"), (10, "promoter")]
)
def test_the_european_scale_counts_eight_as_a_promoter(score, expected):
    assert domain.classify("nps", score, nps_scale="european") == expected


@pytest.mark.parametrize(
    "metric, score, expected",
    [
        ("csat", 1, "negative"),
        ("csat", 2, "negative"),
        ("csat", 3, "neutral"),
        ("csat", 4, "positive"),
        ("csat", 5, "positive"),
        ("ces", 1, "negative"),
        ("ces", 3, "negative"),
        ("ces", 4, "neutral"),
        ("ces", 5, "positive"),
        ("ces", 7, "positive"),
    ],
)
def test_csat_and_ces_classes(metric, score, expected):
    assert domain.classify(metric, score) == expected


@pytest.mark.parametrize(
    "metric, score",
    [("nps", -1), ("nps", 11), ("csat", 0), ("csat", 6), ("ces", 8), ("nps", True), ("nps", "9")],
)
def test_scores_off_the_scale_are_refused(metric, score):
    with pytest.raises(domain.ScoreOutOfRange):
        domain.classify(metric, score)


def test_negative_feedback_is_a_detractor_or_a_low_csat_or_ces():
    assert domain.score_answers([AnswerView("nps", 6)]).negative
    assert not domain.score_answers([AnswerView("nps", 7)]).negative
    assert domain.score_answers([AnswerView("csat", 2)]).negative
    assert not domain.score_answers([AnswerView("csat", 3)]).negative
    assert domain.score_answers([AnswerView("ces", 3)]).negative
    assert not domain.score_answers([AnswerView("ces", 4)]).negative


def test_the_primary_score_is_the_first_answered_score_question():
    answers = [
        AnswerView("open", "slow"),
        AnswerView("nps", None),
        AnswerView("csat", 2),
        AnswerView("nps", 10),
    ]
    assert domain.score_answers(answers) == domain.Scored("csat", 2, "negative", True)


def test_a_response_without_score_answers_has_no_score():
    assert domain.score_answers([AnswerView("open", "hello"), AnswerView("consent", True)]) is None
    assert domain.score_answers([]) is None


def test_a_score_answer_that_is_not_an_integer_is_refused():
    with pytest.raises(domain.ScoreOutOfRange):
        domain.score_answers([AnswerView("nps", "ten")])


def test_the_comment_is_the_first_non_blank_open_answer():
    answers = [
        AnswerView("nps", 3),
        AnswerView("open", "   "),
        AnswerView("open", " Too slow. "),
        AnswerView("open", "later"),
    ]
    assert domain.first_comment(answers) == "Too slow."
    assert domain.first_comment([AnswerView("nps", 3)]) is None


def test_nps_is_percent_promoters_minus_percent_detractors():
    assert domain.net_score(promoters=1, detractors=1, n=3) == pytest.approx(0.0)
    assert domain.net_score(promoters=0, detractors=1, n=1) == -100
    assert domain.net_score(promoters=4, detractors=0, n=4) == 100
    assert domain.net_score(promoters=5, detractors=2, n=10) == pytest.approx(30.0)


def test_no_responses_means_no_score_not_zero():
    assert domain.net_score(0, 0, 0) is None
    assert domain.net_score_margin_of_error(0, 0, 0) is None
    assert domain.share_percent(0, 0) is None
    assert domain.share_margin_of_error(0, 0) is None
    assert domain.mean(0, 0) is None
    empty = domain.summarise("nps", domain.tally({}, "nps"))
    assert (empty.n, empty.score, empty.margin_of_error) == (0, None, None)


def test_nps_margin_of_error_by_hand():
    # 3, 9, 7: p = d = 1/3, var = 2/3 - 0 = 0.6667, moe = 1.96 * sqrt(0.6667 / 3) * 100 = 92.40
    assert domain.net_score_margin_of_error(promoters=1, detractors=1, n=3) == pytest.approx(
        92.3952, abs=1e-3
    )
    # 5 promoters, 3 passives, 2 detractors: var = 0.5 + 0.2 - 0.3² = 0.61; 1.96 * sqrt(0.061) * 100 = 48.41
    assert domain.net_score_margin_of_error(promoters=5, detractors=2, n=10) == pytest.approx(
        48.4082, abs=1e-3
    )
    # ten times as many answers: the margin shrinks by sqrt(10) to 15.31
    assert domain.net_score_margin_of_error(promoters=50, detractors=20, n=100) == pytest.approx(
        15.3081, abs=1e-3
    )
    # everyone agrees: no spread, no margin
    assert domain.net_score_margin_of_error(promoters=0, detractors=1, n=1) == 0


def test_tally_classifies_a_histogram_and_the_scale_changes_the_counts():
    histogram = {3: 1, 8: 2, 9: 1, 10: 1}
    standard = domain.tally(histogram, "nps")
    assert (standard.positive, standard.neutral, standard.negative, standard.n) == (2, 2, 1, 5)
    assert standard.total == 3 + 16 + 9 + 10
    european = domain.tally(histogram, "nps", nps_scale="european")
    assert (european.positive, european.neutral, european.negative) == (4, 0, 1)
    assert domain.summarise("nps", standard).score == pytest.approx(20.0)
    assert domain.summarise("nps", european).score == pytest.approx(60.0)


def test_csat_is_the_top_two_box_share_with_its_margin_and_mean():
    summary = domain.summarise("csat", domain.tally({5: 10, 4: 20, 3: 6, 2: 2, 1: 2}, "csat"))
    assert (summary.n, summary.positive, summary.neutral, summary.negative) == (40, 30, 6, 4)
    assert summary.score == pytest.approx(75.0)
    # Wilson (was the Wald margin 13.42): centre (0.75 + 1.96²/80) / (1 + 1.96²/40), half-width
    # 1.96 / (1 + 1.96²/40) * sqrt(0.75 * 0.25 / 40 + 1.96² / 6400) = 0.1300 → 59.81 … 85.81%
    assert summary.margin_of_error == pytest.approx(13.0036, abs=1e-3)
    assert (summary.low, summary.high) == (pytest.approx(59.8057, abs=1e-3), pytest.approx(85.8130, abs=1e-3))
    assert summary.mean == pytest.approx((50 + 80 + 18 + 4 + 2) / 40)


def test_ces_reports_the_share_of_five_to_seven_and_the_mean():
    summary = domain.summarise("ces", domain.tally({7: 1, 5: 1, 4: 1, 1: 1}, "ces"))
    assert summary.score == pytest.approx(50.0)
    assert summary.mean == pytest.approx(17 / 4)
    assert summary.negative == 1


@pytest.mark.parametrize(
    "score, expected",
    [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3), (7, 4), (8, 4), (9, 5), (10, 5)],
)
def test_csat_on_ten_points_maps_proportionally_onto_five(score, expected):
    assert to_csat_5(score, (1, 10)) == expected


def test_a_ten_point_csat_answer_is_scored_with_the_top_two_box_rule():
    seven = score_answers([AnswerView("csat", 7, (1, 10))])
    four = score_answers([AnswerView("csat", 4, (1, 10))])
    assert seven is not None and seven.classification == "positive" and seven.score == 4
    assert four is not None and four.negative and four.score == 2
    with pytest.raises(ScoreOutOfRange):
        score_answers([AnswerView("csat", 11, (1, 10))])
