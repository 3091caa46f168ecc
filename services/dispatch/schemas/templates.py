"""Message templates and their preview."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.dispatch.schemas.common import Flag, HeaderLine
from shared.vocabulary import SendChannel, SurveyKind


class TemplateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Support CSAT, German email",
                    "survey_id": "svy-support",
                    "channel": "email",
                    "locale": "de",
                    "subject": "{{ first_name }}, wie hat {{ agent_first_name or 'unser Team' }} Ihnen geholfen?",
                    "text": "{{ greeting }}\n\nBitte bewerten Sie uns: {{ survey_url }}\n",
                    "html": '<p>{{ greeting }}</p>{{ embed }}<p><a href="{{ survey_url }}">Jetzt bewerten</a></p>',
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    survey_id: str | None = Field(None, max_length=64, description="null: every survey")
    channel: SendChannel
    locale: str | None = Field(None, max_length=20, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    kind: SurveyKind | None = Field(None, description="null: every kind")
    subject: HeaderLine | None = Field(
        None, max_length=500, description="email only, one line; null: the built-in subject"
    )
    text: str = Field(min_length=1, max_length=20_000, description="plain text (email) or the whole message")
    html: str | None = Field(
        None, max_length=100_000, description="email only: the content inside the branded layout"
    )
    no_embed: Flag = Field(
        False,
        description="email only: embed no question (the email only links to the survey); false: embed the "
        "survey's own first question where it can be answered with one click",
    )
    embed: Any = Field(
        None,
        description="Gone: the embedded question is always the survey's own first question, in its own scale "
        "and words (`no_embed` leaves it out). A value is refused.",
        json_schema_extra={"deprecated": True},
    )

    @field_validator("embed")
    @classmethod
    def _embed_is_the_surveys(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(
                "a template cannot set its own embedded question or scale any more: the email embeds the "
                "survey's own first question (set no_embed: true to leave it out)"
            )
        return None


class TemplateWarningOut(BaseModel):
    field: str = Field(description="subject, text or html")
    message: str


class TemplateOut(BaseModel):
    id: str
    name: str
    survey_id: str | None
    channel: str
    locale: str | None
    kind: str | None
    subject: str | None
    text: str
    html: str | None
    no_embed: bool
    created_at: datetime
    updated_at: datetime
    warnings: list[TemplateWarningOut] = Field(
        default_factory=list,
        description="Merge fields that do not exist or render nothing where they are used (the template is "
        "saved all the same).",
    )


class PreviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "template_id": None,
                    "channel": "email",
                    "kind": "transactional",
                    "recipient": {"name": "Ada Lovelace", "email": "ada@example.com"},
                    "context": {"agent": "Grace Hopper", "product": "Acme Cloud"},
                }
            ]
        },
    )

    template_id: str | None = Field(None, description="Preview a stored template …")
    template: TemplateIn | None = Field(
        None, description="… or one not stored yet; neither: the built-in one."
    )
    channel: SendChannel = "email"
    kind: SurveyKind = "transactional"
    survey_id: str = Field(
        "preview",
        max_length=64,
        description="Embed this survey's first question, as dispatch last heard of it; a survey dispatch does "
        "not know embeds nothing, as in a real email",
    )
    locale: str | None = Field(None, max_length=20)
    recipient: dict[str, str | None] = Field(default_factory=dict, description="name, email, phone")
    context: dict[str, str] = Field(
        default_factory=dict, description="merge fields: agent, product, ticket_id …"
    )


class PreviewOut(BaseModel):
    subject: str
    text: str
    html: str | None
    template_id: str | None
    warnings: list[TemplateWarningOut] = Field(default_factory=list)
