"""Request and response bodies of the follow-up API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from services.followup.domain import Status

RetentionChannel = Literal["email", "sms", "whatsapp", "link"]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class SettingsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "retention_survey_id": "3c9a…",
                    "retention_channel": "email",
                    "retention_delay_seconds": 86400,
                    "notify_email": "cx-team@acme.example",
                }
            ]
        },
    )

    retention_survey_id: Annotated[NonBlank, Field(max_length=64)] | None = Field(
        description="The survey sent when a task is resolved; null sends none."
    )
    retention_channel: RetentionChannel = "email"
    retention_delay_seconds: int = Field(
        0, ge=0, le=30 * 24 * 3600, description="Wait this long after resolving before asking."
    )
    notify_email: EmailStr | None = Field(None, description="Who hears about every new task; null: nobody.")


class SettingsOut(SettingsIn):
    configured: bool = Field(description="False until PUT /v1/settings was called.")


class AssignIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"assignee": "sam@acme.example"}]}
    )

    assignee: Annotated[NonBlank, Field(max_length=200)]


class ResolveIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "Called the customer, refunded the late delivery fee."}]},
    )

    note: Annotated[NonBlank, Field(max_length=10_000)]


class HistoryEntry(BaseModel):
    kind: Literal["opened", "assigned", "resolved", "outcome"]
    occurred_at: datetime
    assignee: str | None = None
    note: str | None = None
    retention_request_id: str | None = None
    won_back: bool | None = None
    retention_score: int | None = None


class TaskOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b7e…",
                    "status": "open",
                    "response_id": "r-1",
                    "survey_id": "s-1",
                    "contact_id": "c-1",
                    "metric": "nps",
                    "score": 3,
                    "comment": "Delivery was two weeks late.",
                    "assignee": None,
                    "resolution_note": None,
                    "retention_request_id": None,
                    "won_back": None,
                    "retention_score": None,
                    "feedback_at": "2026-11-23T10:00:00Z",
                    "created_at": "2026-11-23T10:00:01Z",
                    "resolved_at": None,
                    "closed_at": None,
                }
            ]
        }
    )

    id: str
    status: Status
    response_id: str
    survey_id: str
    contact_id: str
    metric: str
    score: int
    comment: str | None
    assignee: str | None
    resolution_note: str | None
    retention_request_id: str | None
    won_back: bool | None
    retention_score: int | None
    feedback_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None


class TaskDetail(TaskOut):
    history: list[HistoryEntry]


class RetentionSurvey(BaseModel):
    requested: bool = Field(
        description="True when a retention SurveyRequested was published; dispatch sends it."
    )
    survey_id: str | None = None
    request_id: str | None = None
    detail: str


class ResolveOut(BaseModel):
    task: TaskOut
    retention_survey: RetentionSurvey
