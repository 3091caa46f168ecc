"""Pure rules of the responses service beyond single answers: logic, pages, progress, languages,
the question checklist, branding and the kiosk rate limit."""

from __future__ import annotations

import pytest

from services.responses.domain.answers import (
    Problem,
    check_value,
    clean_context,
    completed_answers,
    form_answers,
)
from services.responses.domain.branding import check_branding, contrast, on_colour
from services.responses.domain.checklist import GlossaryTerm, estimated_seconds, lint
from services.responses.domain.definition import Condition, Option, Outcome, Question, check_survey
from services.responses.domain.languages import fill, locale_chain, localize, page_locale
from services.responses.domain.logic import Progress, next_step, plan, progress, thank_you_for
from services.responses.i18n import t, text_direction, ui_language
from shared.ratelimit import TokenBuckets

NPS = Question("nps", "nps", {"en": "Recommend us?", "nl": "Aanbevelen?"}, required=True)
WHY_LOW = Question("why_low", "open", "What went wrong?", show_if=(Condition(question="nps", max=6),))
WHY_HIGH = Question("why_high", "open", "What went well?", show_if=(Condition(question="nps", min=9),))
CONSENT = Question(
    "consent",
    "consent",
    "May we contact you?",
    show_if=(Condition(question="nps", max=6),),
    end_if=(Condition(question="consent", one_of=("no",)),),
)
PLAY = Question(
    "play",
    "single_choice",
    "Playground?",
    options=(Option("yes", "Yes"), Option("no", "No")),
    show_if=(Condition(attribute="segment", one_of=("family",)),),
)
AGENT = Question("agent", "hidden")
SURVEY = [NPS, WHY_LOW, WHY_HIGH, CONSENT, PLAY, AGENT]
FAMILY = {"attr.segment": "family"}


def ids(questions: list[Question]) -> list[str]:
    return [q.id for q in questions]


# --- logic ---------------------------------------------------------------------------------


def test_before_the_score_its_follow_ups_are_undecided_and_hidden_fields_hidden():
    assert plan(SURVEY, {}, FAMILY) == ["shown", "undecided", "undecided", "undecided", "undecided", "hidden"]
    assert plan(SURVEY, {}, {})[4] == "hidden"  # not a family: decided at once


@pytest.mark.parametrize(
    "score, shown",
    [(3, ["nps", "why_low", "consent", "play"]), (7, ["nps", "play"]), (10, ["nps", "why_high", "play"])],
)
def test_the_score_decides_which_questions_follow(score, shown):
    states = plan(SURVEY, {"nps": score, "consent": True}, FAMILY, passed=["nps", "consent"])
    assert [q.id for q, s in zip(SURVEY, states, strict=True) if s == "shown"] == shown


def test_consent_no_skips_to_the_end():
    states = plan(SURVEY, {"nps": 3, "consent": False}, FAMILY, passed=["nps", "why_low", "consent"])
    assert states[4] == "hidden"


def test_a_question_left_blank_never_satisfies_a_condition():
    q = Question("more", "open", "More?", show_if=(Condition(question="why_low", one_of=("x",)),))
    assert plan([NPS, WHY_LOW, q], {"nps": 2}, {}, passed=["nps", "why_low"])[2] == "hidden"
    assert plan([NPS, WHY_LOW, q], {"nps": 2}, {}, passed=["nps"])[2] == "undecided"


def test_pages_break_where_a_question_depends_on_an_answer_on_the_page():
    assert ids(next_step(SURVEY, {}, FAMILY, [])) == ["nps"]
    assert ids(next_step(SURVEY, {"nps": 3}, FAMILY, ["nps"])) == ["why_low", "consent"]  # consent may end it
    assert ids(next_step(SURVEY, {"nps": 3, "consent": True}, FAMILY, ["nps", "why_low", "consent"])) == [
        "play"
    ]
    assert next_step(SURVEY, {"nps": 10, "play": "yes"}, FAMILY, ["nps", "why_high", "play"]) == []


def test_a_survey_without_logic_is_one_page():
    simple = [Question("a", "nps", "?"), Question("b", "open", "?"), Question("c", "consent", "?")]
    assert ids(next_step(simple, {}, {}, [])) == ["a", "b", "c"]
    assert ids(next_step(simple, {"a": 9}, {}, ["a"])) == ["b", "c"]


def test_progress_counts_undecided_questions_so_it_never_jumps_backwards():
    assert progress(SURVEY, {}, FAMILY, []) == Progress(0, 5)
    assert progress(SURVEY, {"nps": 10}, FAMILY, ["nps"]) == Progress(1, 3)
    assert progress(SURVEY, {"nps": 10}, {}, ["nps"]) == Progress(1, 2)


def test_completed_answers_drop_questions_logic_hides_and_name_missing_required_ones():
    required_low = Question("why_low", "open", "?", required=True, show_if=WHY_LOW.show_if)
    kept, missing = completed_answers([NPS, required_low, WHY_HIGH], {"nps": 10, "why_low": "stale"}, {})
    assert [a.question_id for a in kept] == ["nps"] and missing == {}
    _, missing = completed_answers([NPS, required_low], {"nps": 2}, {})
    assert missing == {"why_low": Problem("err.required")}


def test_thank_you_per_outcome():
    promoters = Outcome((Condition(question="nps", min=9),), "Review us?")
    staff = Outcome((Condition(question="agent", one_of=("Grace",)),), "Grace says thanks")
    assert thank_you_for([promoters, staff], {"nps": 10}, {}) is promoters
    assert thank_you_for([promoters, staff], {"nps": 3}, {"agent": "Grace"}) is staff
    assert thank_you_for([promoters], {"nps": 3}, {}) is None


# --- definitions ---------------------------------------------------------------------------


def test_conditions_must_look_back_and_be_complete():
    errors = check_survey(
        [
            Question("a", "open", "?", show_if=(Condition(question="b", max=1),)),
            Question("b", "nps", "?"),
            Question("c", "open", "?", show_if=(Condition(question="b", min=5, max=2),)),
            Question("d", "open", "?", show_if=(Condition(question="a", min=1),)),
            Question("e", "open", "?", show_if=(Condition(question="b", attribute="x", one_of=("1",)),)),
        ]
    )
    assert [e.field for e in errors] == [
        "questions.0.show_if.0.question",
        "questions.2.show_if.0.min",
        "questions.3.show_if.0.min",
        "questions.4.show_if.0",
    ]


def test_texts_need_the_default_locale():
    assert [e.field for e in check_survey([Question("a", "nps", {"nl": "?"})])] == ["questions.0.text"]
    assert check_survey([Question("a", "nps", {"nl": "?"})], default_locale="nl") == []


# --- answers of every type -------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, value, expected",
    [
        (Question("r", "rating", "?", points=3), 3, 3),
        (Question("c", "csat", "?", points=10), 10, 10),
        (PLAY, "no", "no"),
        (
            Question("m", "multiple_choice", "?", options=(Option("a", "A"), Option("b", "B"))),
            ["b", "a"],
            ["a", "b"],
        ),
    ],
)
def test_typed_answers(question, value, expected):
    assert check_value(question, value, max_chars=10) == (expected, None)


@pytest.mark.parametrize(
    "question, value",
    [
        (Question("r", "rating", "?", points=3), 4),
        (Question("c", "csat", "?"), 6),
        (PLAY, "maybe"),
        (Question("m", "multiple_choice", "?", options=(Option("a", "A"),)), ["a", "a"]),
        (AGENT, "x"),
    ],
)
def test_untyped_answers_are_problems(question, value):
    assert check_value(question, value, max_chars=10)[1] is not None


def test_checkboxes_arrive_as_a_list():
    multi = Question("m", "multiple_choice", "?", options=(Option("a", "A"), Option("b", "B")))
    assert form_answers([multi, PLAY], {"m": ["a", "b"], "play": "yes"}) == {"m": ["a", "b"], "play": "yes"}


def test_problems_read_in_dutch():
    assert (
        Problem("err.range", {"low": 0, "high": 10}).text("nl") == "Kies een heel getal van 0 tot en met 10."
    )


# --- languages -------------------------------------------------------------------------------


def test_locale_chain_falls_back_from_region_to_language_to_the_default():
    assert locale_chain("nl_BE", "en") == ("nl-be", "nl", "en")
    assert locale_chain("not a locale!", "en") == ("en",)
    assert localize({"en": "Hi", "nl": "Hoi"}, locale_chain("nl-BE", "en")) == "Hoi"
    assert localize({"en": "Hi", "nl": "Hoi"}, locale_chain("de", "en")) == "Hi"
    assert localize("Plain", locale_chain("nl", "en")) == "Plain"
    assert page_locale(locale_chain("nl-BE", "en"), {"en", "nl"}) == "nl"


def test_interface_words_and_direction():
    assert ui_language("nl-BE") == "nl" and ui_language("de") == "en"
    assert text_direction("he-IL") == "rtl" and text_direction("nl") == "ltr"
    assert t("nl", "progress", {"n": 2, "total": 5}) == "Vraag 2 van 5"


def test_hidden_fields_fill_placeholders_as_plain_text():
    assert fill("Was {agent} helpful?", {"agent": "<b>Grace</b>"}) == "Was <b>Grace</b> helpful?"
    assert fill("Was {agent|our agent} helpful?", {}) == "Was our agent helpful?"
    assert fill("Use {braces} freely", {}) == "Use  freely"


def test_context_is_cleaned():
    assert clean_context({"a": "x" * 600, "n": 3, "bad": {"nested": 1}}) == {"a": "x" * 500, "n": "3"}
    assert clean_context(["not", "a", "dict"]) == {}


# --- the checklist --------------------------------------------------------------------------


def codes(questions: list[Question], **kw: object) -> list[tuple[str, str | None]]:
    return [(w.code, w.question_id) for w in lint(questions, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, code",
    [
        ("Was the agent friendly and polite?", "double_barrelled"),
        ({"nl": "Was de medewerker snel en vriendelijk?"}, "double_barrelled"),
        ("How great was your stay?", "leading"),
        ("Don't you agree the food was tasty?", "leading"),
        ({"nl": "Hoe geweldig was uw verblijf?"}, "leading"),
    ],
)
def test_wording_problems_are_found_in_english_and_dutch(text, code):
    assert (code, "q") in codes([Question("q", "csat", text)])


def test_the_standard_questions_pass():
    nps = Question("nps", "nps", "How likely are you to recommend us to a friend or colleague?")
    ces = Question("ces", "ces", "The company made it easy for me to handle my issue.")
    assert codes([nps, ces]) == []


def test_glossary_scales_required_open_and_length():
    found = codes(
        [
            Question("a", "nps", "Did the L2 queue help?"),
            Question("b", "rating", "Stars?", points=4),
            Question("c", "csat", "Satisfied?", points=10),
            Question("d", "open", "Why?", required=True),
        ],
        glossary=[GlossaryTerm("L2 queue")],
        max_seconds=30,
    )
    assert found == [
        ("internal_term", "a"),
        ("no_neutral", "b"),
        ("no_neutral", "c"),
        ("required_open", "d"),
        ("too_long", None),
    ]
    assert estimated_seconds([Question("a", "nps", "?")]) == 11


def test_checklist_explains_in_dutch():
    [warning] = lint([Question("d", "open", "Why?", required=True)], lang="nl")
    assert "optioneel" in warning.message


# --- branding and the rate limit -----------------------------------------------------------


def test_colours_must_be_readable():
    assert round(contrast("#000000", "#ffffff")) == 21
    assert on_colour("#1f4fd1") == "#ffffff" and on_colour("#ffe066") == "#111111"
    assert [e.field for e in check_branding({"text_color": "#999999"}, max_logo_bytes=10)] == ["text_color"]
    assert [e.field for e in check_branding({"primary_color": "#eeeeee"}, max_logo_bytes=10)] == [
        "primary_color"
    ]
    assert check_branding({"logo": "data:image/png;base64,AAAA"}, max_logo_bytes=10) == []
    assert [
        e.field for e in check_branding({"logo": "data:image/png;base64,AAAAAAAAAAAAAAAA"}, max_logo_bytes=10)
    ] == ["logo"]
    assert [e.field for e in check_branding({"logo": "javascript:alert(1)"}, max_logo_bytes=10)] == ["logo"]


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBuckets(rate=1, burst=2)
    assert bucket.acquire("k", 0) == 0 and bucket.acquire("k", 0) == 0
    assert bucket.acquire("k", 0) == pytest.approx(1)
    assert bucket.acquire("other", 0) == 0  # per key
    assert bucket.acquire("k", 1.0) == 0


def test_token_bucket_memory_is_bounded():
    bucket = TokenBuckets(rate=1, burst=1, max_keys=10)
    for i in range(100):
        bucket.acquire(f"k{i}", float(i))
    assert len(bucket._buckets) <= 10


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_the_glossary_hint_is_a_sentence_of_its_own(lang):
    question = Question("q", "nps", "How likely are you to recommend the L2 queue?")
    [warning] = [
        w
        for w in lint([question], glossary=[GlossaryTerm("L2 queue", "  say “our specialists”.")], lang=lang)
        if w.code == "internal_term"
    ]
    assert warning.message.endswith(". Say “our specialists”.")
    [plain] = [
        w for w in lint([question], glossary=[GlossaryTerm("L2 queue", " ")]) if w.code == "internal_term"
    ]
    assert plain.message.endswith("may not know.")
