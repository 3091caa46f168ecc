"""A saved survey as the editor's draft and back, and responses' field errors beside the editor's inputs."""

from services.console.domain.survey_edit import draft_of_survey, field_errors, input_of
from services.console.domain.survey_form import definition, rows_of

SAVED = {
    "id": "s-1",
    "version": 3,
    "name": "Store",
    "title": {"en": "Your visit", "nl": "Uw bezoek", "de": "Ihr Besuch"},
    "default_locale": "en",
    "questions": [
        {"id": "nps", "type": "nps", "required": True, "text": {"en": "Recommend?", "nl": "Aanbevelen?"}},
        {
            "id": "why",
            "type": "open",
            "required": False,
            "text": {"en": "Why?", "nl": "Waarom?", "de": "Warum?"},
            "show_if": [
                {"question": None, "attribute": "tier", "min": None, "max": None, "one_of": ["gold"]},
                {"question": "nps", "attribute": None, "min": None, "max": 6, "one_of": None},
            ],
        },
        {
            "id": "pay",
            "type": "single_choice",
            "required": False,
            "text": {"en": "Paid by?"},
            "options": [{"id": "card", "text": "Card"}, {"id": "cash", "text": "Cash"}],
            "end_if": [{"question": "pay", "one_of": ["cash"]}],
        },
        {"id": "agent", "type": "hidden", "required": False},
    ],
    "thank_you_text": {"en": "Thanks!"},
    "outcomes": [{"when": [{"question": "nps", "min": 9}], "text": {"en": "Review us?"}}],
    "branding": {"primary_color": "#0b6e4f", "tone": "formal", "font": None, "logo": None},
    "reward_pool_id": None,
}


def test_a_saved_survey_edited_without_changes_is_the_same_definition() -> None:
    draft = draft_of_survey(SAVED, blank_rows=2)
    assert draft.second_locale == "nl" and [r.id for r in draft.rows] == [
        "nps",
        "why",
        "pay",
        "agent",
        "",
        "",
    ]
    why = draft.rows[1]
    assert (why.text, why.text2, why.show_q, why.show_max) == ("Why?", "Waarom?", "nps", "6")
    assert draft.rows[2].end_values == "cash" and draft.branding.own
    back = definition(draft)
    for key in ("name", "title", "default_locale", "thank_you_text", "outcomes"):
        assert back[key] == SAVED[key], key
    questions = {q["id"]: q for q in back["questions"]}
    assert questions["why"]["text"] == {"en": "Why?", "nl": "Waarom?", "de": "Warum?"}
    assert questions["why"]["show_if"] == [
        {"question": "nps", "max": 6},
        {"attribute": "tier", "one_of": ["gold"]},
    ]
    assert questions["pay"]["options"] == SAVED["questions"][2]["options"]
    assert questions["pay"]["end_if"] == [{"question": "pay", "one_of": ["cash"]}]
    assert questions["agent"] == {"id": "agent", "type": "hidden", "required": False}
    assert back["branding"]["tone"] == "formal" and back["branding"]["primary_color"] == "#0b6e4f"
    assert "reward_pool_id" not in back


def test_a_posted_edit_keeps_what_the_editor_does_not_show() -> None:
    draft = draft_of_survey(SAVED, blank_rows=1)
    posted = {
        "id": [r.id for r in draft.rows],
        "type": [r.type for r in draft.rows],
        "text": ["Recommend us?", "Why?", "Paid by?", "", "Easy?"],
        "kept": [r.kept for r in draft.rows],
    }
    posted["id"][-1], posted["type"][-1] = "ease", "ces"
    rows = rows_of(posted, ["nps"], minimum=5)
    assert [r.id for r in rows] == ["nps", "why", "pay", "agent", "ease", ""]
    draft.rows = rows
    questions = {q["id"]: q for q in definition(draft)["questions"]}
    assert questions["nps"]["text"] == {"en": "Recommend us?"} and questions["nps"]["required"]
    assert questions["pay"]["options"][0]["id"] == "card" and questions["ease"]["type"] == "ces"


def test_responses_field_errors_go_beside_the_editors_inputs() -> None:
    assert input_of("questions.3.id", "nl") == "q4-id"
    assert input_of("questions.0.text.nl", "nl") == "q1-text2"
    assert input_of("questions.0.text.en", "nl") == "q1-text"
    assert input_of("questions.1.show_if.0.question", "") == "q2-show-q"
    assert input_of("branding.text_color", "") == "b-text"
    assert input_of("outcomes.0.text", "") is None
    errors = [{"field": "name", "message": "empty"}, {"field": "name", "message": "second"}, {"field": "x"}]
    assert field_errors(errors, "") == {"name": "empty"}
