"""The survey editor's form shaped as responses' survey definition."""

from services.console.domain.survey_form import (
    Branding,
    Draft,
    QuestionRow,
    condition,
    definition,
    logo_data_url,
    rows_of,
    show_condition,
)


def test_texts_in_two_languages_logic_branding_and_reward_become_the_definition() -> None:
    draft = Draft(
        name=" Store ",
        default_locale="en",
        second_locale="nl",
        rows=[
            QuestionRow(id="nps", type="nps", text="Recommend us?", text2="Aanbevelen?", required=True),
            QuestionRow(id="why", type="open", text="Why?", show_q="nps", show_max="6"),
            QuestionRow(id="consent", type="consent", text="Call you?", end_values="no"),
            QuestionRow(),
        ],
        branding=Branding(
            own=True, primary_color="#0b6e4f", font="rounded", logo="data:image/png;base64,AA=="
        ),
        reward_pool_id="pool-1",
    )
    out = definition(draft)
    assert out["name"] == "Store" and out["default_locale"] == "en"
    assert [q["id"] for q in out["questions"]] == ["nps", "why", "consent"]
    assert out["questions"][0]["text"] == {"en": "Recommend us?", "nl": "Aanbevelen?"}
    assert out["questions"][0]["required"] is True
    assert out["questions"][1]["show_if"] == [{"question": "nps", "max": 6}]
    assert out["questions"][2]["end_if"] == [{"question": "consent", "one_of": ["no"]}]
    assert out["branding"]["primary_color"] == "#0b6e4f" and out["branding"]["logo"].startswith("data:")
    assert out["reward_pool_id"] == "pool-1"


def test_one_language_gives_plain_texts_and_no_own_branding_leaves_the_workspaces() -> None:
    out = definition(Draft(name="x", rows=[QuestionRow(id="nps", type="nps", text="Recommend?")]))
    assert out["questions"][0]["text"] == "Recommend?"
    assert "branding" not in out and "reward_pool_id" not in out


def test_a_condition_needs_a_question_and_something_typed_and_keeps_what_is_not_a_number() -> None:
    assert condition("nps", "", "", "") is None
    assert condition("", "1", "", "") is None
    assert condition("nps", "9", "x", "") == {"question": "nps", "min": 9, "max": "x"}


def test_rows_of_the_posted_form_keep_their_order_and_pad_to_the_minimum() -> None:
    form = {"id": ["a", "", "b"], "type": ["nps", "open", "open"], "text": ["A", "", "B"]}
    rows = rows_of(form, ["b"], minimum=4)
    assert [r.id for r in rows] == ["a", "b", "", ""]
    assert rows[1].required and not rows[0].required and rows[1].text == "B"


def test_a_logo_is_an_inline_data_url_of_an_image_only() -> None:
    assert logo_data_url("image/png", b"\x89PNG") == "data:image/png;base64,iVBORw=="
    assert logo_data_url("text/html", b"<b>") is None and logo_data_url("image/png", b"") is None


def test_conditions_in_words() -> None:
    assert show_condition({"show_if": [{"question": "nps", "max": 6}]}, "show_if") == "nps ≤ 6"
    assert show_condition({"end_if": [{"question": "c", "one_of": ["no"]}]}, "end_if") == "c is no"
    assert show_condition({}, "show_if") == ""
