"""Request and response bodies of the case API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from services.followup.domain.cases import Priority
from services.followup.schemas.common import AgentId, Id, NonBlank, Text

CASE_EXAMPLE: dict[str, Any] = {
    "id": "0b7e5c1e-8d2f-4c1a-9f3e-2b1d6a7c9e10",
    "status": "open",
    "priority": "normal",
    "opened_because": "negative",
    "response_id": "r-1",
    "survey_id": "s-1",
    "contact_id": "c-1",
    "contact": {
        "known": True,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": None,
        "locale": "nl-NL",
        "timezone": "Europe/Amsterdam",
        "company": "Analytical Engines BV",
    },
    "answers": [
        {"question_id": "nps", "metric": "nps", "score": 3, "classification": "detractor", "negative": True}
    ],
    "comment": "Delivery was two weeks late.",
    "team_id": "7d0c…",
    "assignee": "grace",
    "sla": {
        "first_contact_due_at": "2026-11-25T10:00:00Z",
        "first_contact_due_business_at": "2026-11-24T16:00:00Z",
    },
}


class Contact(BaseModel):
    known: bool = Field(description="False: the event did not say who answered (contact details unknown).")
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    company: str | None = None


class AnswerOut(BaseModel):
    question_id: str
    metric: str
    score: int
    classification: str
    negative: bool


class Sla(BaseModel):
    policy_id: str | None = None
    first_contact_due_at: datetime | None = None
    first_contact_due_business_at: datetime | None = None
    resolution_due_at: datetime | None = None
    resolution_due_business_at: datetime | None = None
    paused_at: datetime | None = None
    first_contacted_at: datetime | None = None
    first_contact_met: bool | None = Field(None, description="Calendar clock; null until contacted.")
    resolution_met: bool | None = Field(None, description="Calendar clock; null until resolved.")


class Resolution(BaseModel):
    root_cause_category: str | None = None
    root_cause: str | None = None
    action_taken: str | None = None
    note: str | None = None
    resolved_at: datetime | None = None


class Retention(BaseModel):
    status: Literal["not_requested", "requested", "not_possible", "answered"] | None = Field(
        None, description="not_possible: the customer has no channel; the case closed on resolution."
    )
    request_id: str | None = None
    channel: str | None = None
    won_back: bool | None = None
    score: int | None = None


class CaseOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [CASE_EXAMPLE]})

    id: str
    status: str
    priority: str
    opened_because: str
    response_id: str
    request_id: str | None
    survey_id: str
    contact_id: str | None
    kind: str
    channel: str | None = Field(description="The channel the customer answered on.")
    contact: Contact
    answers: list[AnswerOut]
    loyalty: str | None
    dimensions: dict[str, str]
    comment: str | None
    team_id: str | None
    assignee: str | None
    sla: Sla
    resolution: Resolution
    retention: Retention
    climbed_at: datetime | None
    reopen_count: int
    erased: bool
    feedback_at: datetime
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    title: Annotated[str, Field(max_length=200)] | None = None


class NoteOut(BaseModel):
    id: str
    author: str
    body: str | None = Field(description="Null once the contact was erased.")
    attachments: list[dict[str, str]]
    erased: bool
    created_at: datetime


class HistoryOut(BaseModel):
    kind: str
    actor: str
    occurred_at: datetime
    details: dict[str, Any]


class CaseDetail(CaseOut):
    history: list[HistoryOut]
    notes: list[NoteOut]


class AssignIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"agent_id": "grace"}, {"team_id": "7d0c…", "note": "Dutch-speaking team"}]
        },
    )

    agent_id: AgentId | None = None
    team_id: Id | None = Field(None, description="Without agent_id: the team's next member in turn takes it.")
    note: Text | None = None


class StatusIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "in_progress", "note": "Called, left a voicemail."}]},
    )

    status: Annotated[NonBlank, Field(max_length=40)]
    note: Text | None = None


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"priority": "high"}]})

    priority: Priority


class NoteIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "body": "Customer prefers a call after 17:00.",
                    "attachments": [{"url": "https://crm.example/t/42", "title": "Ticket"}],
                }
            ]
        },
    )

    body: Text
    attachments: Annotated[list[Attachment], Field(max_length=20)] = []


class RootCause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Annotated[NonBlank, Field(max_length=80)]
    cause: Annotated[NonBlank, Field(max_length=80)]


class ResolveIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "root_cause": {"category": "Delivery", "cause": "Late"},
                    "action_taken": "Refunded the shipping and sent the parcel by courier.",
                    "note": "Customer was happy with the courier.",
                }
            ]
        },
    )

    root_cause: RootCause
    action_taken: Text
    note: Text | None = None


class ReopenIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "The refund never arrived."}]}
    )

    reason: Text


BulkAction = Literal["assign", "status", "note", "priority"]


class BulkIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"case_ids": ["0b7e…", "1c8f…"], "action": "assign", "agent_id": "grace"},
                {
                    "case_ids": ["0b7e…"],
                    "action": "status",
                    "status": "in_progress",
                    "note": "Batch call-back",
                },
            ]
        },
    )

    case_ids: Annotated[list[Annotated[NonBlank, Field(max_length=64)]], Field(min_length=1, max_length=500)]
    action: BulkAction
    agent_id: AgentId | None = None
    team_id: Id | None = None
    status: Annotated[NonBlank, Field(max_length=40)] | None = None
    priority: Priority | None = None
    note: Text | None = Field(
        None, description="The note of a status change or assignment, or the note to add."
    )


class BulkResult(BaseModel):
    id: str
    ok: bool
    status: int = Field(description="The HTTP status this case alone would have answered.")
    error: str | None = None
    case: CaseOut | None = None


class BulkOut(BaseModel):
    succeeded: int
    failed: int
    results: list[BulkResult]


class DecisionOut(BaseModel):
    id: int
    kind: Literal["opening", "routing"]
    outcome: str = Field(description="opening: opened | no_consent | unreachable; routing: routed | default")
    reason: str
    response_id: str
    contact_id: str | None
    case_id: str | None
    rule_id: str | None
    team_id: str | None
    assignee: str | None
    created_at: datetime
