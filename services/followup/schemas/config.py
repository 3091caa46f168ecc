"""Request and response bodies of the workspace's case-work set-up."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from services.followup.domain.cases import Priority
from services.followup.domain.escalation import Action, Clock, Trigger
from services.followup.domain.routing import Strategy
from services.followup.domain.taxonomy import DEFAULT_TAXONOMY
from services.followup.schemas.common import AgentId, Id, Name, NonBlank
from shared.inputs import Flag, Integer
from shared.vocabulary import LoyaltyCell, ScoreMetric

RetentionChannel = Literal["email", "sms", "whatsapp", "link"]
HourMinute = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["09:00"])]
Minutes = Annotated[Integer, Field(ge=1, le=365 * 24 * 60)]
_ZONES = available_timezones()


def _zone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Amsterdam)")
    return value


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
        description="The survey sent when a case is resolved; null sends none."
    )
    retention_channel: RetentionChannel = Field(
        "email", description="Used when the customer's own channel is not known (older events)."
    )
    retention_delay_seconds: Integer = Field(
        0, ge=0, le=30 * 24 * 3600, description="Wait this long after resolving before asking."
    )
    notify_email: EmailStr | None = Field(None, description="Who hears about every new case; null: nobody.")


class SettingsOut(SettingsIn):
    configured: bool = Field(description="False until PUT /v1/settings was called.")


class AgentIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Grace Hopper", "email": "grace@acme.example"}]},
    )

    name: Name
    email: EmailStr | None = Field(
        None, description="Where the agent hears about assignments and escalations."
    )
    active: Flag = Field(True, description="Inactive agents get no new cases.")


class AgentOut(AgentIn):
    id: str
    created_at: datetime


class TeamIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Benelux",
                    "timezone": "Europe/Amsterdam",
                    "members": ["grace", "ada"],
                    "lead_agent_id": "grace",
                    "strategy": "round_robin",
                    "weekdays": [0, 1, 2, 3, 4],
                    "day_start": "09:00",
                    "day_end": "17:00",
                    "holiday_country": "NL",
                    "days_off": ["2026-12-24"],
                    "notify_channel": "chat",
                    "notify_to": "https://hooks.slack.com/services/T000/B000/XXX",
                }
            ]
        },
    )

    name: Name
    timezone: str = "UTC"
    members: Annotated[list[AgentId], Field(max_length=500)] = []
    lead_agent_id: AgentId | None = None
    strategy: Strategy = "round_robin"
    weekdays: Annotated[list[Annotated[Integer, Field(ge=0, le=6)]], Field(min_length=1, max_length=7)] = [
        0,
        1,
        2,
        3,
        4,
    ]
    day_start: HourMinute = "09:00"
    day_end: HourMinute = "17:00"
    holiday_country: Annotated[str, Field(min_length=2, max_length=3)] | None = Field(
        None,
        description="ISO 3166 country whose public holidays the team does not work (the holidays package).",
    )
    holiday_subdivision: Annotated[str, Field(max_length=16)] | None = None
    days_off: Annotated[list[date], Field(max_length=400)] = Field([], description="The team's own days off.")
    notify_channel: Literal["email", "chat"] | None = None
    notify_to: Annotated[str, Field(max_length=500)] | None = Field(
        None, description="An email address, or a chat webhook URL (dispatch posts to it)."
    )

    _check_zone = field_validator("timezone")(_zone)


class TeamOut(TeamIn):
    id: str
    created_at: datetime


class ScoreCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: ScoreMetric | None = None
    min: Integer | None = None
    max: Integer | None = None


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dimensions: dict[Annotated[str, Field(max_length=64)], Annotated[list[str], Field(min_length=1)]] = Field(
        {},
        description="Segment dimension → values that match (any, without case): country, product, team, agent, …",
    )
    survey_ids: list[str] = []
    themes: list[str] = []
    score: ScoreCondition | None = None


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id | None = Field(None, description="Keep a rule's id across replacements (decisions name it).")
    name: Name
    conditions: Conditions = Conditions()
    team_id: Id | None = None
    agent_id: AgentId | None = None
    priority: Priority | None = Field(None, description="The priority of cases this rule routes.")
    enabled: Flag = True


class RulesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {
                            "name": "Very unhappy → seniors",
                            "conditions": {"score": {"metric": "nps", "max": 2}},
                            "team_id": "…",
                            "priority": "high",
                        },
                        {
                            "name": "Benelux",
                            "conditions": {"dimensions": {"country": ["NL", "BE"]}},
                            "team_id": "…",
                        },
                    ],
                    "default_team_id": None,
                }
            ]
        },
    )

    rules: Annotated[list[RuleIn], Field(max_length=200)]
    default_team_id: Id | None = Field(
        None, description="Where unmatched cases go; null: the unassigned queue."
    )


class RuleOut(RuleIn):
    id: str
    position: int


class RulesOut(BaseModel):
    rules: list[RuleOut]
    default_team_id: str | None


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    team_id: Id | None = Field(None, description="null: any team.")
    priority: Priority | None = Field(None, description="null: any priority.")
    first_contact_minutes: Minutes | None = 48 * 60
    resolution_minutes: Minutes | None = 7 * 24 * 60
    first_contact_business_minutes: Minutes | None = 16 * 60
    resolution_business_minutes: Minutes | None = 40 * 60
    pause_while_waiting: Flag = Field(
        False, description="Stop the clocks while the case waits on the customer."
    )


class PoliciesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "policies": [
                        {"name": "Default", "first_contact_minutes": 2880, "resolution_minutes": 10080},
                        {
                            "name": "Urgent",
                            "priority": "urgent",
                            "first_contact_minutes": 240,
                            "first_contact_business_minutes": 120,
                        },
                    ]
                }
            ]
        },
    )

    policies: Annotated[list[PolicyIn], Field(max_length=100)]


class PolicyOut(PolicyIn):
    id: str


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id | None = Field(
        None, description="Keep an existing step (and the cases it applies to); null: a new step."
    )
    name: Name
    trigger: Trigger
    after_minutes: Annotated[Integer, Field(ge=0, le=365 * 24 * 60)] = 0
    clock: Clock = "business"
    action: Action
    team_id: Id | None = Field(None, description="Only cases of this team.")
    reassign_team_id: Id | None = None
    reassign_agent_id: AgentId | None = None


class LadderIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "steps": [
                        {
                            "name": "Remind the assignee",
                            "trigger": "age",
                            "after_minutes": 1440,
                            "action": "notify_assignee",
                        },
                        {"name": "Tell the lead", "trigger": "first_contact_breach", "action": "notify_lead"},
                        {"name": "Give it to the lead", "trigger": "resolution_breach", "action": "reassign"},
                    ]
                }
            ]
        },
    )

    steps: list[StepIn]


class StepOut(StepIn):
    id: str
    position: int
    created_at: datetime = Field(
        description="The step applies to cases opened from then on (never retroactive)."
    )


class CustomStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
    waits_on_customer: Flag = False


class WorkflowIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "custom_statuses": [
                        {"name": "waiting_on_customer", "waits_on_customer": True},
                        {"name": "refund_pending"},
                    ],
                    "allow_backward": False,
                    "note_on_status_change": True,
                    "note_on_reassign": False,
                }
            ]
        },
    )

    custom_statuses: Annotated[list[CustomStatusIn], Field(max_length=20)] = Field(
        [], description="Between in_progress and resolved, in this order."
    )
    allow_backward: Flag = False
    note_on_status_change: Flag = False
    note_on_reassign: Flag = False


class WorkflowOut(WorkflowIn):
    statuses: list[str] = Field(description="Every status in order.")


class OpeningRulesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"loyalty_cells": ["false", "trapped"], "score_below": {"csat": 3}}]},
    )

    loyalty_cells: list[LoyaltyCell] = Field([], description="Open a case for these loyalty cells too.")
    score_below: dict[ScoreMetric, Integer] = Field(
        {}, description="Open a case for any answer of a metric below this."
    )


_TAXONOMY_EXAMPLE: dict[str, Any] = {"taxonomy": DEFAULT_TAXONOMY}


class RootCausesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_TAXONOMY_EXAMPLE]})

    taxonomy: (
        dict[Annotated[str, Field(max_length=80)], list[Annotated[str, Field(max_length=80)]]] | None
    ) = Field(description="category → causes; null restores the default.")


class RootCausesOut(BaseModel):
    taxonomy: dict[str, list[str]]
    default: bool


def model_dict(model: BaseModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude=exclude)
