"""The public event catalogue: what integrators' webhooks receive, versioned apart from the internal events.

Each public type (``response.scored``) is made from one internal event (``ResponseScored``) by its own
frozen model, which names the fields integrators may rely on; internal fields stay internal, so an
internal change never breaks a receiver. The body of every delivery is the same envelope::

    {"id": <event id>, "type": "response.scored", "version": 1, "timestamp": <when it happened>,
     "workspace_id": ..., "data": {...}}

``id`` is the internal event's id, also sent as ``webhook-id``: a receiver deduplicates on it. A breaking
change to a payload gets a new ``version`` and a new model; additive changes keep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from shared import events
from shared.events import EventData
from shared.vocabulary import Channel, LoyaltyCell, ScoreMetric, SurveyKind, TargetStatus


class PublicPayload(BaseModel):
    """Base of every public payload: built from the internal event's fields, ignoring the rest."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def _case_id() -> Any:
    return Field(validation_alias=AliasChoices("case_id", "task_id"), description="The follow-up case.")


class InvitationPayload(PublicPayload):
    invitation_id: str
    request_id: str
    contact_id: str
    survey_id: str
    kind: SurveyKind
    channel: Channel
    locale: str | None = None
    occurred_at: datetime
    reminder: int | None = Field(
        None, description="invitation.sent: 0 for the invitation, N for its N-th reminder"
    )
    hard: bool | None = Field(None, description="invitation.bounced: a hard bounce")
    error: str | None = Field(None, description="invitation.failed: why, in closeloop's words")


class PublicAnswer(PublicPayload):
    question_id: str
    type: str
    value: int | bool | str | None
    choices: tuple[str, ...] = ()


class _ResponsePayload(PublicPayload):
    response_id: str
    invitation_id: str | None
    contact_id: str
    survey_id: str
    survey_version: int
    kind: SurveyKind
    channel: Channel


class ResponseStartedPayload(_ResponsePayload):
    hidden_fields: dict[str, str] = Field(default_factory=dict, description="ticket_id, agent, product, …")
    started_at: datetime


class ResponseCompletedPayload(_ResponsePayload):
    locale: str | None = None
    hidden_fields: dict[str, str] = Field(default_factory=dict)
    answers: tuple[PublicAnswer, ...]
    consent_to_contact: bool
    completed_at: datetime


class PublicScore(PublicPayload):
    question_id: str
    metric: ScoreMetric
    score: int
    classification: str = Field(
        description="promoter/passive/detractor (NPS, NLS) or positive/neutral/negative"
    )
    negative: bool


class ResponseScoredPayload(PublicPayload):
    response_id: str
    contact_id: str
    survey_id: str
    kind: SurveyKind
    channel: Channel | None = None
    scores: tuple[PublicScore, ...] = Field(description="Every scored question, in the survey's order")
    loyalty: LoyaltyCell | None = Field(
        None, description="The NPS x NLS loyalty segment, when both were answered"
    )
    negative: bool
    consent_to_contact: bool
    comment: str | None = Field(None, description="The first open answer, as written")
    scored_at: datetime


class NegativeFeedbackPayload(PublicPayload):
    response_id: str
    contact_id: str
    survey_id: str
    kind: SurveyKind
    scores: tuple[PublicScore, ...]
    negatives: tuple[PublicScore, ...] = Field(description="The answers that count as negative feedback")
    loyalty: LoyaltyCell | None = None
    consent_to_contact: bool
    comment: str | None = None
    detected_at: datetime


class _CasePayload(PublicPayload):
    case_id: str = _case_id()
    contact_id: str
    occurred_at: datetime
    actor: str = Field(description="An agent id, an API caller, or `system`")


class CaseOpenedPayload(_CasePayload):
    response_id: str
    survey_id: str
    metric: str | None = None
    score: int
    opened_because: str
    priority: str
    team_id: str | None = None
    assignee: str | None = None
    first_contact_due_at: datetime | None = None
    resolution_due_at: datetime | None = None


class CaseAssignedPayload(_CasePayload):
    assignee: str
    team_id: str | None = None
    previous_assignee: str | None = None
    reason: str | None = None


class CaseStatusChangedPayload(_CasePayload):
    from_status: str
    to_status: str
    reason: str | None = None


class CaseResolvedPayload(_CasePayload):
    root_cause_category: str | None = None
    root_cause: str | None = None
    action_taken: str | None = None
    retention: str | None = Field(None, description="requested, not_requested or not_possible")


class CaseOutcomePayload(_CasePayload):
    won_back: bool
    retention_score: int


class TargetStatusChangedPayload(PublicPayload):
    target_id: str
    name: str
    metric: ScoreMetric
    survey_id: str | None = None
    filters: tuple[str, ...] = ()
    direction: Literal["at_least", "at_most"]
    threshold: float
    window_days: int
    previous_status: TargetStatus | None
    status: TargetStatus
    value: float | None
    n: int
    low: float | None = None
    high: float | None = None
    changed_at: datetime


class ContactOptedOutPayload(PublicPayload):
    contact_id: str
    channel: Channel | None = Field(None, description="null: every channel")
    source: str
    opted_out_at: datetime


class ContactErasedPayload(PublicPayload):
    contact_id: str
    erased_at: datetime


@dataclass(frozen=True)
class PublicEvent:
    """One public type: its name, version, the internal event it is made from and its payload model."""

    name: str
    source: type[EventData]
    payload: type[PublicPayload]
    summary: str
    version: int = 1

    def data(self, event: EventData) -> dict[str, Any]:
        return self.payload.model_validate(event.model_dump()).model_dump(mode="json")


def _invitation(name: str, source: type[EventData], summary: str) -> PublicEvent:
    return PublicEvent(name, source, InvitationPayload, summary)


CATALOGUE: tuple[PublicEvent, ...] = (
    _invitation("invitation.created", events.InvitationCreated, "An invitation was scheduled for a contact."),
    _invitation("invitation.sent", events.InvitationSent, "The invitation (or a reminder) left closeloop."),
    _invitation("invitation.delivered", events.InvitationDelivered, "The provider delivered the invitation."),
    _invitation("invitation.opened", events.InvitationOpened, "The contact opened the invitation."),
    _invitation("invitation.clicked", events.InvitationClicked, "The contact clicked the survey link."),
    _invitation("invitation.bounced", events.InvitationBounced, "The invitation bounced."),
    _invitation("invitation.complained", events.InvitationComplained, "The contact marked it as spam."),
    _invitation("invitation.failed", events.InvitationFailed, "The invitation could not be sent."),
    PublicEvent(
        "response.started", events.ResponseStarted, ResponseStartedPayload, "A contact began a survey."
    ),
    PublicEvent(
        "response.completed",
        events.ResponseCompleted,
        ResponseCompletedPayload,
        "A response with its answers.",
    ),
    PublicEvent(
        "response.scored",
        events.ResponseScored,
        ResponseScoredPayload,
        "A response scored: every metric, its classification and the loyalty segment.",
    ),
    PublicEvent(
        "feedback.negative",
        events.NegativeFeedbackDetected,
        NegativeFeedbackPayload,
        "A response with negative feedback (an NPS detractor, a low CSAT or CES).",
    ),
    PublicEvent("case.opened", events.FollowUpOpened, CaseOpenedPayload, "A follow-up case was opened."),
    PublicEvent("case.assigned", events.FollowUpAssigned, CaseAssignedPayload, "A case got an assignee."),
    PublicEvent(
        "case.status_changed",
        events.FollowUpStatusChanged,
        CaseStatusChangedPayload,
        "A case changed status.",
    ),
    PublicEvent("case.resolved", events.FollowUpResolved, CaseResolvedPayload, "A case was resolved."),
    PublicEvent(
        "case.outcome_recorded",
        events.FollowUpOutcomeRecorded,
        CaseOutcomePayload,
        "The retention survey came back: `won_back` says whether the customer was won back.",
    ),
    PublicEvent(
        "target.status_changed",
        events.TargetStatusChanged,
        TargetStatusChangedPayload,
        "An experience target moved between met, at risk, breached and too few answers.",
    ),
    PublicEvent(
        "contact.opted_out",
        events.ContactOptedOut,
        ContactOptedOutPayload,
        "A contact asked not to be surveyed.",
    ),
    PublicEvent(
        "contact.erased",
        events.ContactErased,
        ContactErasedPayload,
        "A contact's personal data was erased: erase your copies too.",
    ),
)

BY_NAME: dict[str, PublicEvent] = {p.name: p for p in CATALOGUE}
BY_SOURCE: dict[type[EventData], PublicEvent] = {p.source: p for p in CATALOGUE}

NOTIFICATION_TYPES = frozenset({"scoring.low_score", "scoring.target_status_changed"})
"""Types of the staff notifications a scoring rule sends to webhooks (``NotificationRequested``)."""

SUBSCRIBABLE = frozenset(BY_NAME) | NOTIFICATION_TYPES


def survey_of(event: EventData) -> str | None:
    """The survey the event is about, if it names one."""
    value = getattr(event, "survey_id", None)
    return value if isinstance(value, str) else None


def metrics_of(event: EventData) -> set[str]:
    """The metrics the event is about: every scored metric, a case's or a target's metric."""
    scores = getattr(event, "scores", None)
    if scores is not None:
        return {s.metric for s in scores}
    metric = getattr(event, "metric", None)
    return {metric} if isinstance(metric, str) else set()


def envelope(public: PublicEvent, event: EventData, *, event_id: str, timestamp: datetime) -> dict[str, Any]:
    """Return the body of a delivery of ``event`` as ``public``."""
    return {
        "id": event_id,
        "type": public.name,
        "version": public.version,
        "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
        "workspace_id": event.workspace_id,
        "data": public.data(event),
    }
