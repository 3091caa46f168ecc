"""Request and response bodies of the responses API.

Booleans and integers in requests are strict: ``"required": "yes"`` or ``"points": "5"`` is refused
(422 naming the field), never read as true or 5."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from services.responses.domain.definition import CsatStyle, SurveyQuestionType

Slug = Annotated[str, StringConstraints(min_length=1, max_length=63)]
LocaleTag = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", max_length=20)
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
LocalText = Text | dict[LocaleTag, Annotated[str, StringConstraints(max_length=1000)]]
"""A text in one language, or per locale: ``{"en": "…", "nl": "…"}``."""
Colour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]

NPS_SURVEY_EXAMPLE: dict[str, Any] = {
    "name": "Support NPS",
    "default_locale": "en",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": {
                "en": "How likely are you to recommend Acme to a friend or colleague?",
                "nl": "Hoe waarschijnlijk is het dat u Acme aanbeveelt aan een vriend of collega?",
            },
        },
        {
            "id": "why_low",
            "type": "open",
            "text": {"en": "What should we do better?", "nl": "Wat kunnen we beter doen?"},
            "show_if": [{"question": "nps", "max": 6}],
        },
        {
            "id": "why_high",
            "type": "open",
            "text": {"en": "What did you like most?", "nl": "Wat vond u het beste?"},
            "show_if": [{"question": "nps", "min": 7}],
        },
        {
            "id": "consent",
            "type": "consent",
            "text": {
                "en": "May we contact you about your answer?",
                "nl": "Mogen we contact met u opnemen over uw antwoord?",
            },
            "show_if": [{"question": "nps", "max": 6}],
        },
        {"id": "agent", "type": "hidden"},
    ],
    "thank_you_text": {
        "en": "Thank you! Your answer goes straight to our support team.",
        "nl": "Bedankt! Uw antwoord gaat direct naar ons supportteam.",
    },
    "outcomes": [
        {
            "when": [{"question": "nps", "min": 9}],
            "text": {
                "en": "Thank you! Would you share that in a review?",
                "nl": "Bedankt! Wilt u een review schrijven?",
            },
            "link_url": "https://example.com/review",
            "link_text": {"en": "Write a review", "nl": "Schrijf een review"},
        }
    ],
}


class ConditionIn(BaseModel):
    """An earlier answer in a range (``min``/``max``) or among values (``one_of``), or a contact
    attribute among values. Values compare as text: consent is ``yes``/``no``."""

    model_config = ConfigDict(extra="forbid")

    question: Slug | None = Field(None, description="An earlier question or hidden field id")
    attribute: Slug | None = Field(None, description="A contact attribute: link context key attr.<name>")
    min: StrictInt | None = Field(None, ge=-1000, le=1000)
    max: StrictInt | None = Field(None, ge=-1000, le=1000)
    one_of: list[Annotated[str, StringConstraints(max_length=200)]] | None = Field(None, max_length=50)


class OptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    text: LocalText


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=63,
        description="A slug, unique within the survey; the form field and answer key (for hidden "
        "fields: the invitation context key).",
    )
    type: SurveyQuestionType = Field(
        description="nps/nls 0-10, csat 1-5 (or 1-10), ces 1-7, rating (stars), single_choice, "
        "multiple_choice, open (free text), consent (yes/no: may we contact you?), hidden (from the invitation)"
    )
    text: LocalText | None = Field(
        None, description="Required except for hidden fields; `{agent}` inserts a hidden field"
    )
    required: StrictBool = Field(False, description="true or false (no other spelling)")
    options: list[OptionIn] | None = Field(None, max_length=30, description="Choice questions: 2-30 options")
    style: CsatStyle | None = Field(None, description="csat only")
    points: StrictInt | None = Field(None, description="csat: 5 or 10; rating: 3-10 stars (default 5)")
    show_if: list[ConditionIn] | None = Field(None, max_length=10, description="Shown only when all hold")
    end_if: list[ConditionIn] | None = Field(
        None, max_length=10, description="After this question, skip to the end when all hold"
    )


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    when: list[ConditionIn] = Field(min_length=1, max_length=10)
    text: LocalText
    link_url: Annotated[str, StringConstraints(pattern=r"^https://\S+$", max_length=2000)] | None = None
    link_text: LocalText | None = None


class BrandingIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"primary_color": "#0b6e4f", "font": "rounded", "tone": "playful", "logo": None}]
        },
    )

    logo: str | None = Field(
        None, max_length=200_000, description="Inline image: data:image/(png|svg+xml|…);base64,…"
    )
    primary_color: Colour | None = None
    background_color: Colour | None = None
    text_color: Colour | None = None
    font: Literal["system", "serif", "rounded", "mono"] | None = None
    tone: Literal["friendly", "formal", "playful"] | None = Field(
        None, description="Picks the default thank-you text when a survey has none"
    )


OneLine = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
"""Text without line breaks or other control characters (it may end up in an email header)."""


class WorkspaceBrandingIn(BrandingIn):
    """The workspace's look: its survey pages, and what emails need besides (dispatch receives it all
    with ``BrandingChanged``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme",
                    "primary_color": "#0b6e4f",
                    "font": "rounded",
                    "tone": "friendly",
                    "logo_url": "https://acme.example/logo.png",
                    "footer": "Acme B.V., Keizersgracht 1, 1015 CJ Amsterdam",
                }
            ]
        },
    )

    name: OneLine | None = Field(None, description="The company name, in emails and their subject lines")
    logo_url: (
        Annotated[
            str,
            StringConstraints(max_length=2000, pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?$"),
        ]
        | None
    ) = Field(
        None, description="An https URL of the logo for emails (mail clients load it; pages use `logo`)"
    )
    footer: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00-\x09\x0b-\x1f\x7f]+$")
        ]
        | None
    ) = Field(None, description="The postal address or legal line under every email (line breaks allowed)")


class SurveyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [NPS_SURVEY_EXAMPLE]})

    name: str = Field(min_length=1, max_length=200)
    title: LocalText | None = Field(None, description="Shown above the questions (default: none)")
    default_locale: LocaleTag = Field("en", description="The fallback language of every text")
    questions: list[QuestionIn] = Field(min_length=1, max_length=50)
    thank_you_text: LocalText | None = None
    outcomes: list[OutcomeIn] = Field(
        default_factory=list, max_length=10, description="Thank-you pages per outcome; the first that holds"
    )
    branding: BrandingIn | None = Field(None, description="Overrides the workspace's branding")
    reward_pool_id: str | None = Field(None, description="Give each completed response one code of this pool")


class LintWarningOut(BaseModel):
    code: Literal["double_barrelled", "leading", "internal_term", "no_neutral", "required_open", "too_long"]
    field: str
    question_id: str | None
    locale: str | None
    message: str


class LintOut(BaseModel):
    estimated_seconds: int
    max_seconds: int
    warnings: list[LintWarningOut]


class SurveyOut(BaseModel):
    id: str
    name: str
    version: int
    title: LocalText | None = None
    default_locale: str = "en"
    questions: list[QuestionIn]
    thank_you_text: LocalText | None
    outcomes: list[OutcomeIn] = []
    branding: BrandingIn | None = None
    reward_pool_id: str | None = None
    closed: bool = False
    created_at: datetime
    updated_at: datetime | None = None
    warnings: list[LintWarningOut] = Field(default_factory=list, description="The question checklist")


class SurveyVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    created_at: datetime
    definition: SurveyCreate


class QuestionOut(BaseModel):
    """A question in the respondent's language."""

    id: str
    type: SurveyQuestionType
    text: str
    required: bool
    min: int | None = Field(None, description="Lowest allowed answer of a scored question or rating")
    max: int | None = Field(None, description="Highest allowed answer of a scored question or rating")
    style: str | None = None
    options: list[dict[str, str]] = Field(
        default_factory=list, description="[{id, text}] of a choice question"
    )
    show_if: list[ConditionIn] = Field(default_factory=list)
    end_if: list[ConditionIn] = Field(default_factory=list)


class ProgressOut(BaseModel):
    done: int = Field(description="Questions behind the respondent")
    total: int = Field(description="Questions this respondent will see, as far as known now")


class PublicSurveyOut(BaseModel):
    """What a survey link shows: no workspace data beyond the survey itself."""

    survey_id: str
    name: str
    version: int
    questions: list[QuestionOut]
    thank_you_text: str | None
    locale: str | None
    answered: bool = Field(description="True once this link's response is completed")
    started: bool = Field(False, description="True once a first answer is saved")
    answers: dict[str, Any] = Field(default_factory=dict, description="Answers saved so far")
    next_questions: list[str] = Field(default_factory=list, description="The ids of the next page")
    progress: ProgressOut | None = None
    form_url: str = Field(description="The HTML page of this link")


class ResponseSubmit(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"answers": {"nps": 9, "why": "Quick and friendly help", "consent": True}}]
        },
    )

    answers: dict[str, Any] = Field(
        description="Question id → answer: an integer for scored questions and ratings, text for open "
        "questions, true/false for consent, an option id (single) or a list of them (multiple choice). "
        "Completes the response together with answers saved before."
    )


class AnswerSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"value": 9}]})

    value: Any = Field(description="The answer, typed as in ResponseSubmit; null clears it")


class AnswerSaved(BaseModel):
    question_id: str
    value: Any
    progress: ProgressOut
    next_questions: list[str]


class ResponseCreated(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    survey_id: str
    survey_version: int
    consent_to_contact: bool
    completed_at: datetime
    reward_code: str | None = None


class AnswerOut(BaseModel):
    question_id: str
    type: SurveyQuestionType
    value: int | bool | str | list[str] | None


class ResponseOut(BaseModel):
    id: str
    survey_id: str
    survey_version: int
    invitation_id: str | None
    request_id: str | None
    kiosk_id: str | None = None
    contact_id: str
    kind: str
    channel: str
    locale: str | None
    hidden_fields: dict[str, str] = Field(default_factory=dict)
    consent_to_contact: bool
    status: Literal["partial", "completed"]
    started_at: datetime
    completed_at: datetime | None
    erased: bool
    reward_code: str | None = None
    answers: list[AnswerOut]


class DropOffQuestion(BaseModel):
    question_id: str
    type: SurveyQuestionType
    answered: int = Field(description="Responses (partial or completed) with an answer to it")
    last_answered: int = Field(description="Partial responses whose last answer was this question")


class DropOffOut(BaseModel):
    survey_id: str
    started: int
    completed: int
    completion_rate: float | None
    questions: list[DropOffQuestion]


# --- workspace settings, kiosks, rewards --------------------------------------------------


class GlossaryTermIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    term: str = Field(min_length=2, max_length=100)
    hint: str | None = Field(None, max_length=300, description="What to say instead")


class GlossaryIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"terms": [{"term": "L2 queue", "hint": "Say “our specialists”."}]}]},
    )

    terms: list[GlossaryTermIn] = Field(max_length=500)


class KioskCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"location_id": "amsterdam-centraal", "name": "Store entrance"}]},
    )

    location_id: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str | None = Field(None, max_length=200)
    locale: LocaleTag | None = Field(None, description="The page language (default: the survey's)")


class KioskOut(BaseModel):
    id: str
    survey_id: str
    location_id: str
    name: str | None
    locale: str | None
    active: bool
    url: str = Field(description="The public link for the tablet or poster")
    qr_svg_url: str
    qr_png_url: str
    created_at: datetime


class RewardPoolCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Coffee vouchers"}]})

    name: str = Field(min_length=1, max_length=200)


class RewardCodesAdd(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"codes": ["COFFEE-8F2K", "COFFEE-Q7ZP"]}]}
    )

    codes: list[Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]] = (
        Field(min_length=1, max_length=10_000)
    )


class RewardPoolOut(BaseModel):
    id: str
    name: str
    total: int
    remaining: int
    created_at: datetime
