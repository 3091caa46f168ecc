"""Pure rules of the responses service: survey definitions and answers."""

from __future__ import annotations

import pytest

from services.responses.domain.answers import (
    Problem,
    check_value,
    consent_given,
    form_answers,
    link_score,
    validate_answers,
)
from services.responses.domain.definition import Answer, FieldError, Question, check_survey, for_respondent
from services.responses.handlers.visits import can_reach
from shared.survey_links import SurveyLink

NPS = Question("nps", "nps", "How likely are you to recommend us?", required=True)
CSAT = Question("csat", "csat", "How satisfied are you?")
WHY = Question("why", "open", "Why?")
CONSENT = Question("consent", "consent", "May we contact you about your answer?")
SURVEY = [NPS, WHY, CONSENT]


def _validate(answers: dict[str, object], questions: list[Question] = SURVEY, max_chars: int = 20):
    return validate_answers(questions, answers, max_chars=max_chars)


# --- survey definitions ------------------------------------------------------------------


def test_a_survey_with_a_scored_question_is_valid():
    assert check_survey(SURVEY) == []
    assert check_survey([CSAT]) == []


def test_a_survey_needs_a_scored_question():
    assert [e.field for e in check_survey([WHY, CONSENT])] == ["questions"]


def test_question_ids_are_unique_slugs():
    errors = check_survey(
        [NPS, Question("nps", "open", "again"), Question("Bad Id!", "open", "x"), Question("-x", "open", "x")]
    )
    assert [e.field for e in errors] == ["questions.1.id", "questions.2.id", "questions.3.id"]
    assert "used twice" in errors[0].message


def test_at_most_one_consent_question():
    errors = check_survey([NPS, CONSENT, Question("consent2", "consent", "Again?")])
    assert errors == [FieldError("questions.2.type", "a survey has at most one consent question")]


def test_unknown_question_types_are_named():
    errors = check_survey([NPS, Question("stars", "stars", "Rate us")])
    assert [e.field for e in errors] == ["questions.1.type"]


# --- answers -----------------------------------------------------------------------------


def test_valid_answers_come_back_typed_in_question_order():
    answers, errors = _validate({"consent": True, "why": "  Fast help  ", "nps": 9})
    assert errors == {}
    assert answers == [
        Answer("nps", "nps", 9),
        Answer("why", "open", "Fast help"),
        Answer("consent", "consent", True),
    ]


@pytest.mark.parametrize("value", [11, -1, 7.5, 7.0, "7", True, None, [7]])
def test_nps_must_be_a_whole_number_from_0_to_10(value):
    answers, errors = _validate({"nps": value})
    assert "nps" in errors and answers == []


@pytest.mark.parametrize("value", [0, 10])
def test_nps_bounds_are_allowed(value):
    assert _validate({"nps": value})[1] == {}


@pytest.mark.parametrize("qtype, low, high", [("csat", 1, 5), ("ces", 1, 7), ("nls", 0, 10)])
def test_each_scale_has_its_range(qtype, low, high):
    q = [Question("q", qtype, "?", required=True)]
    assert _validate({"q": low}, q)[1] == {} and _validate({"q": high}, q)[1] == {}
    assert "q" in _validate({"q": low - 1}, q)[1] and "q" in _validate({"q": high + 1}, q)[1]


def test_missing_required_answer_is_named_and_optional_ones_may_be_skipped():
    _, errors = _validate({"why": "   "})
    assert errors == {"nps": "This question needs an answer."}
    assert _validate({"nps": 3}) == ([Answer("nps", "nps", 3)], {})


def test_unknown_question_ids_are_refused():
    assert "extra" in _validate({"nps": 3, "extra": "x"})[1]


def test_open_answers_are_text_and_not_too_long():
    assert "why" in _validate({"nps": 3, "why": "x" * 21})[1]
    assert _validate({"nps": 3, "why": "x" * 20})[1] == {}
    assert "why" in _validate({"nps": 3, "why": 42})[1]


def test_consent_is_a_boolean_and_counts_only_when_yes():
    assert "consent" in _validate({"nps": 3, "consent": "yes"})[1]
    assert consent_given(_validate({"nps": 3, "consent": True})[0]) is True
    assert consent_given(_validate({"nps": 3, "consent": False})[0]) is False
    assert consent_given(_validate({"nps": 3})[0]) is False


def test_form_values_are_typed_like_json_answers():
    form = {"nps": " 8 ", "why": "ok", "consent": "yes", "submit": "Send"}
    assert form_answers(SURVEY, form) == {"nps": 8, "why": "ok", "consent": True}
    assert form_answers(SURVEY, {"nps": "eight", "consent": "maybe", "why": ""}) == {
        "nps": "eight",
        "consent": "maybe",
    }
    assert form_answers(SURVEY, {"consent": "no"}) == {"consent": False}
    assert form_answers(SURVEY, {"why": "line one\r\nline two"}) == {"why": "line one\nline two"}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("9", ("nps", 9)),
        ("0", ("nps", 0)),
        ("11", Problem("err.link_score")),
        ("-1", Problem("err.link_score")),
        ("abc", Problem("err.link_score")),
        ("9.5", Problem("err.link_score")),
        ("9" * 50, Problem("err.link_score")),
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_score_in_the_link_is_an_answer_only_when_it_is_a_point_of_the_scale(raw, expected):
    assert link_score(SURVEY, raw) == expected


def test_score_in_the_link_answers_the_first_question_in_its_own_scale():
    # The invitation embeds the survey's first question: its scale decides, whatever follows.
    assert link_score([CSAT, NPS], "5") == ("csat", 5)
    assert link_score([CSAT, NPS], "9") == Problem("err.link_score")
    assert link_score([Question("agent", "hidden"), CSAT, NPS], "1") == ("csat", 1)
    # A first question that takes no score refuses one (before, the first scored question took it).
    assert link_score([WHY, CSAT, NPS], "5") == Problem("err.link_no_score")
    assert link_score([CONSENT, NPS], "1") == Problem("err.link_no_score")


# --- who is asked for consent ---------------------------------------------------------------


def _link(**fields: object) -> SurveyLink:
    base: dict[str, object] = {
        "workspace_id": "ws-a",
        "invitation_id": "inv-1",
        "request_id": "req-1",
        "survey_id": "svy-1",
        "contact_id": "con-1",
    }
    return SurveyLink(**{**base, **fields})


@pytest.mark.parametrize(
    "link, reachable",
    [
        (_link(respondent={"name": "Ada", "email": "ada@example.com"}), True),
        (_link(respondent={"phone": "+31612345678"}), True),
        (_link(respondent={"name": "Ada"}), False),
        (_link(respondent={}), False),
        (_link(invitation_id="kiosk:abc", request_id="kiosk:k1", contact_id="kiosk:door"), False),
        (_link(invitation_id="kiosk:abc", respondent={"email": "a@example.com"}), False),
        # Issued before links carried their respondent: sent to an address, unless nothing was sent.
        (_link(channel="email"), True),
        (_link(channel="link"), False),
    ],
)
def test_consent_is_asked_only_of_respondents_someone_can_reach(link, reachable):
    assert can_reach(link) is reachable
    asked = [q.id for q in for_respondent(SURVEY, reachable=can_reach(link)) if q.asked]
    assert asked == (["nps", "why", "consent"] if reachable else ["nps", "why"])


def test_a_withheld_consent_question_refuses_an_answer():
    [withheld] = [q for q in for_respondent(SURVEY, reachable=False) if q.type == "consent"]
    assert check_value(withheld, True, max_chars=10) == (None, Problem("err.not_asked", {"id": "consent"}))
