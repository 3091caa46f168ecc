"""Request and response bodies of the responses API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

QuestionType = Literal["nps", "nls", "csat", "ces", "open", "consent"]

NPS_SURVEY_EXAMPLE: dict[str, Any] = {
    "name": "Support NPS",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": "How likely are you to recommend Acme to a friend or colleague?",
        },
        {"id": "why", "type": "open", "required": False, "text": "What is the main reason for your score?"},
        {
            "id": "consent",
            "type": "consent",
            "required": False,
            "text": "May we contact you about your answer?",
        },
    ],
    "thank_you_text": "Thank you! Your answer goes straight to our support team.",
}


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=63,
        description="A slug, unique within the survey; the form field and answer key.",
    )
    type: QuestionType = Field(
        description="nps/nls 0-10, csat 1-5, ces 1-7, open (free text), consent (yes/no: may we contact you?)"
    )
    text: str = Field(min_length=1, max_length=1000)
    required: bool = False


class SurveyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [NPS_SURVEY_EXAMPLE]})

    name: str = Field(min_length=1, max_length=200)
    questions: list[QuestionIn] = Field(min_length=1, max_length=50)
    thank_you_text: str | None = Field(None, max_length=2000)


class SurveyOut(BaseModel):
    id: str
    name: str
    version: int
    questions: list[QuestionIn]
    thank_you_text: str | None
    created_at: datetime


class QuestionOut(QuestionIn):
    min: int | None = Field(None, description="Lowest allowed answer of a scored question")
    max: int | None = Field(None, description="Highest allowed answer of a scored question")


class PublicSurveyOut(BaseModel):
    """What a survey link shows: no workspace data beyond the survey itself."""

    survey_id: str
    name: str
    version: int
    questions: list[QuestionOut]
    thank_you_text: str | None
    locale: str | None
    answered: bool = Field(description="True once this link's invitation has a response")
    form_url: str = Field(description="The HTML page of this link")


class ResponseSubmit(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"answers": {"nps": 9, "why": "Quick and friendly help", "consent": True}}]
        },
    )

    answers: dict[str, Any] = Field(
        description="Question id → answer: an integer for scored questions, "
        "text for open questions, true/false for consent"
    )


class ResponseCreated(BaseModel):
    id: str
    survey_id: str
    survey_version: int
    consent_to_contact: bool
    completed_at: datetime


class AnswerOut(BaseModel):
    question_id: str
    type: QuestionType
    value: int | bool | str | None


class ResponseOut(BaseModel):
    id: str
    survey_id: str
    survey_version: int
    invitation_id: str | None
    request_id: str | None
    contact_id: str
    kind: str
    channel: str
    locale: str | None
    consent_to_contact: bool
    completed_at: datetime
    erased: bool
    answers: list[AnswerOut]
