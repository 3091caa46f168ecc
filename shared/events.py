"""The event catalogue: a CloudEvents 1.0 envelope and one frozen data model per event.

Every event type is named in the past tense and carries its schema version in the CloudEvents
``type`` (``closeloop.SurveyRequested.v1``). Additive changes keep the version; a breaking
change gives the model ``version = 2`` and registers an upcaster from the old payload
(``UPCASTERS.register``), so that consumers read events written before the change — still in
the topics, the outboxes and the dead-letter topics — as the current model.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_json

from shared import tracing
from shared.randomness import random_bytes
from shared.vocabulary import Channel, LoyaltyCell, QuestionType, ScoreMetric, SurveyKind, TargetStatus

# Topics, named for what they carry. Each has a dead-letter topic ``<topic>.dlq``.
CUSTOMER_EVENTS = "customer-events"
SURVEY_REQUESTS = "survey-requests"
INVITATIONS = "invitations"
RESPONSES = "responses"
SCORES = "scores"
FOLLOWUPS = "followups"
NOTIFICATIONS = "notifications"
SURVEYS = "surveys"
WORKSPACES = "workspaces"
TOPICS = (
    CUSTOMER_EVENTS,
    SURVEY_REQUESTS,
    INVITATIONS,
    RESPONSES,
    SCORES,
    FOLLOWUPS,
    NOTIFICATIONS,
    SURVEYS,
    WORKSPACES,
)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


ALL_TOPICS = TOPICS + tuple(dead_letter_topic(t) for t in TOPICS)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A random (version 4) UUID, as text: what ``str(uuid.uuid4())`` gives, at a fraction of the cost."""
    raw = bytearray(random_bytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_uuid(value: str) -> bool:
    """Return whether ``value`` is a UUID (ids in URLs are checked before they reach a query)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class EventData(BaseModel):
    """Base of every event payload: frozen, versioned, routed to one topic."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: ClassVar[str]
    version: ClassVar[int] = 1

    workspace_id: str

    @classmethod
    def type_name(cls) -> str:
        return f"closeloop.{cls.__name__}.v{cls.version}"

    def partition_key(self) -> str:
        """Events about a customer stay in order on one partition."""
        contact_id = getattr(self, "contact_id", None)
        return f"{self.workspace_id}:{contact_id}" if contact_id else self.workspace_id

    def cloudevent_subject(self) -> str | None:
        return getattr(self, "contact_id", None)


Upcast = Callable[[dict[str, Any]], dict[str, Any]]


class Upcasters:
    """Steps from an old event version's payload to the next version's, chained to the current one."""

    def __init__(self) -> None:
        self._steps: dict[str, tuple[str, Upcast]] = {}

    def register(self, old_type: str, *, to: type[EventData]) -> Callable[[Upcast], Upcast]:
        """Decorate a function that turns the data of ``old_type`` into the data of ``to``."""

        def add(step: Upcast) -> Upcast:
            if old_type == to.type_name() or old_type in self._steps:
                raise ValueError(f"{old_type} already has an upcaster or is the current version")
            self._steps[old_type] = (to.type_name(), step)
            return step

        return add

    def upcast(self, event_type: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Return ``(type, data)`` brought up to the newest version this registry knows."""
        while (step := self._steps.get(event_type)) is not None:
            event_type, data = step[0], step[1](data)
        return event_type, data

    def older_names(self, current: str) -> set[str]:
        """Return the old type names that upcast to ``current``."""
        return {old for old in self._steps if self._newest(old) == current}

    def _newest(self, event_type: str) -> str:
        while (step := self._steps.get(event_type)) is not None:
            event_type = step[0]
        return event_type


UPCASTERS = Upcasters()
"""The catalogue's upcasters; each new event version registers its step here, next to its model."""


class Recipient(BaseModel):
    """Where and how to reach a contact, as known when the survey was requested."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    """IANA name, e.g. ``Europe/Amsterdam``: quiet hours are kept in the contact's own time."""
    company: str | None = None

    @property
    def reachable(self) -> bool:
        """Whether a person can get back to this contact (an email address or a phone number)."""
        return bool(self.email or self.phone)


# --- trigger ---------------------------------------------------------------------------


class CustomerEventReceived(EventData):
    topic: ClassVar[str] = CUSTOMER_EVENTS

    event_id: str
    source: str
    source_event_id: str
    event_type: str
    occurred_at: datetime
    contact_id: str
    properties: dict[str, Any] = Field(default_factory=dict)


class ContactOptedOut(EventData):
    """The contact asked not to be surveyed again (an unsubscribe link, the API, a CRM field)."""

    topic: ClassVar[str] = CUSTOMER_EVENTS

    contact_id: str
    channel: Channel | None = None
    """None: every channel."""
    source: str
    opted_out_at: datetime


class ContactErased(EventData):
    """Every service removes this contact's personal data."""

    topic: ClassVar[str] = CUSTOMER_EVENTS

    contact_id: str
    erased_at: datetime


class SurveyRequested(EventData):
    topic: ClassVar[str] = SURVEY_REQUESTS

    request_id: str
    contact_id: str
    survey_id: str
    kind: SurveyKind = "transactional"
    channel: Channel = "email"
    send_at: datetime | None = None
    recipient: Recipient | None = None
    """None means: reach the contact the way dispatch reached them last."""
    reason: str | None = None
    """What caused it, e.g. ``rule:<id>`` or ``followup:<task id>``."""
    fallback_channels: tuple[Channel, ...] = ()
    """Tried in order when ``channel`` cannot reach the contact (no address, hard bounce)."""
    locale: str | None = None
    """The survey language the rule chose; None means the recipient's own locale."""
    context: dict[str, str] = Field(default_factory=dict)
    """Merge and hidden fields from the triggering event: agent, product, ticket_id, …"""


# --- dispatch --------------------------------------------------------------------------


class _InvitationEvent(EventData):
    topic: ClassVar[str] = INVITATIONS

    invitation_id: str
    request_id: str
    contact_id: str
    survey_id: str
    kind: SurveyKind
    channel: Channel
    occurred_at: datetime
    template_id: str | None = None
    locale: str | None = None


class InvitationCreated(_InvitationEvent):
    send_at: datetime


class InvitationSent(_InvitationEvent):
    message_id: str | None = None
    reminder: int = 0
    """0 for the invitation itself, N for its N-th reminder."""


class InvitationDelivered(_InvitationEvent):
    pass


class InvitationOpened(_InvitationEvent):
    pass


class InvitationClicked(_InvitationEvent):
    pass


class InvitationBounced(_InvitationEvent):
    hard: bool = True
    detail: str | None = None


class InvitationComplained(_InvitationEvent):
    """The recipient marked the invitation as spam; they are opted out of the channel."""


class InvitationFailed(_InvitationEvent):
    error: str


class NotificationRequested(EventData):
    """Tell a person (staff) something: a new task, a breached SLA. Keyed by the contact it quotes
    (``contact_id``), else by its own id."""

    topic: ClassVar[str] = NOTIFICATIONS

    notification_id: str
    channel: Literal["email", "chat", "webhook"] = "email"
    to: str
    subject: str
    body: str
    contact_id: str | None = None
    """The contact whose words or details the body quotes (a comment, who to call), if any: once that
    contact is erased, dispatch keeps and sends no copy of the body."""

    def partition_key(self) -> str:
        """Keyed by the contact it quotes, like everything about a customer; else by its own id."""
        return f"{self.workspace_id}:{self.contact_id or self.notification_id}"


# --- responses -------------------------------------------------------------------------


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)

    question_id: str
    type: QuestionType
    value: int | bool | str | None
    """Scores and stars are integers, consent true/false, open answers text, a single choice its option
    id, a multiple choice its option ids joined by commas (they are slugs; ``choices`` has the list)."""
    scale: tuple[int, int] | None = None
    """(lowest, highest) when not the type's default: csat on 1-10, star ratings."""
    choices: tuple[str, ...] = ()
    """The chosen option ids of a multiple-choice question."""


class _ResponseEvent(EventData):
    topic: ClassVar[str] = RESPONSES

    response_id: str
    invitation_id: str | None
    request_id: str | None
    contact_id: str
    survey_id: str
    survey_version: int
    kind: SurveyKind
    channel: Channel
    hidden_fields: dict[str, str] = Field(default_factory=dict)
    """From the invitation (agent, product, ticket id, ``attr.<name>`` contact attributes, …)."""


class ResponseStarted(_ResponseEvent):
    started_at: datetime


class ResponseCompleted(_ResponseEvent):
    locale: str | None = None
    answers: tuple[Answer, ...]
    consent_to_contact: bool
    completed_at: datetime
    respondent: Recipient | None = None
    """Who answered, as the invitation knew them (for a person who follows up); None when anonymous
    (a kiosk or an open link)."""


# --- survey definitions (responses) ---------------------------------------------------------


class SurveyQuestion(BaseModel):
    """A question as other services need to know it: its id, type and scale."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: QuestionType
    scale: tuple[int, int] | None = None
    """(lowest, highest) when not the type's default."""
    text: str | None = None
    """The question in the survey's default language, for reports."""
    texts: dict[str, str] = Field(default_factory=dict)
    """The question in each of the survey's languages (language code → text), as the page asks it."""
    labels: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """For scale questions: each point's label in each language, lowest first, exactly as the survey page
    shows them (CSAT faces and words, CES agreement, NPS end anchors with blanks between), so that an
    email that embeds the question shows the same words."""
    required: bool = False


class _SurveyEvent(EventData):
    topic: ClassVar[str] = SURVEYS

    survey_id: str

    def partition_key(self) -> str:
        return f"{self.workspace_id}:{self.survey_id}"


class SurveyPublished(_SurveyEvent):
    """A survey was created or got a new version."""

    survey_version: int
    name: str
    open: bool
    questions: tuple[SurveyQuestion, ...]
    languages: tuple[str, ...] = ()
    published_at: datetime


class SurveyClosed(_SurveyEvent):
    """The survey takes no more responses; nobody should be invited to it."""

    closed_at: datetime


class SurveyReopened(_SurveyEvent):
    reopened_at: datetime


# --- workspace configuration that one service owns and others apply ------------------------


class _WorkspaceEvent(EventData):
    topic: ClassVar[str] = WORKSPACES


class BrandingChanged(_WorkspaceEvent):
    """The workspace's look (owned by responses, which shows it on survey pages; dispatch puts it in
    every email)."""

    name: str | None = None
    """The company name, in the email header and the questions."""
    primary_color: str | None = None
    """#rrggbb: buttons and accents."""
    logo_url: str | None = None
    """An https URL of the logo (mail clients load it)."""
    footer: str | None = None
    """The postal address or legal line under every email."""
    font: str | None = None
    tone: str | None = None
    changed_at: datetime


class QuietHoursChanged(_WorkspaceEvent):
    """When the workspace's contacts may not be messaged (owned by trigger, which decides when to send;
    dispatch applies it to what it schedules itself, such as reminders)."""

    start: str | None = None
    """HH:MM in the contact's time zone; None: no quiet hours."""
    end: str | None = None
    channels: tuple[Channel, ...] = ()
    """The channels they apply to; empty: every channel that sends a message."""
    default_timezone: str | None = None
    """IANA name used for contacts without a time zone."""
    changed_at: datetime


class AnonymisationDue(_WorkspaceEvent):
    """The workspace's retention policy (owned by trigger) says: answers older than ``cutoff`` are no
    longer identifiable. Every service anonymises its own rows from before ``cutoff`` — drops their links
    to the contact and their free text, keeps scores and dimensions — and a second run changes nothing.

    Trigger publishes one a day per workspace with a policy; its id is derived from the workspace and the
    day (``event_id``), so a re-run or a second replica publishes the same event and inboxes drop it."""

    day: date
    """The UTC day of the run."""
    cutoff: datetime
    """Rows from before this moment are anonymised (the run's time minus the policy's days)."""
    anonymise_after_days: int
    due_at: datetime

    @staticmethod
    def event_id(workspace_id: str, day: date) -> str:
        """Return the id of the workspace's run on ``day``: the same for every run and every replica."""
        return str(uuid.uuid5(_ANONYMISATION, f"{workspace_id}:{day.isoformat()}"))


_ANONYMISATION = uuid.UUID("6a1d9c4e-2f7b-5b0e-9c3a-8e4f1d2b7a60")
"""The namespace of ``AnonymisationDue`` event ids (UUID version 5)."""


class KeyRevoked(_WorkspaceEvent):
    """An API key was revoked in the console; every service refuses it from now on (each keeps the
    revoked ids in its own table, ``shared.revocation``)."""

    key_id: str
    revoked_at: datetime
    expires_at: datetime | None = None
    """When the key would have expired anyway; after that its revocation can be forgotten."""
    revoked_by: str | None = None
    """Who revoked it: ``user:<id>`` or ``key:<id>``."""


class KeyUsed(_WorkspaceEvent):
    """Callers used an API key (at most one event per key, process and minute): the console shows
    when each key was last used."""

    key_id: str
    used_at: datetime
    """The minute of the last use (seconds are zero)."""


# --- scoring ---------------------------------------------------------------------------

Classification = Literal["promoter", "passive", "detractor", "positive", "neutral", "negative"]


class ScoredAnswer(BaseModel):
    """One scored question of a response: its metric, value and what the value means."""

    model_config = ConfigDict(frozen=True)

    question_id: str
    metric: ScoreMetric
    score: int
    """On the metric's own scale (CSAT from another scale is mapped onto 1-5)."""
    classification: Classification
    negative: bool


class _ScoreEvent(EventData):
    topic: ClassVar[str] = SCORES
    version: ClassVar[int] = 2

    response_id: str
    request_id: str | None
    contact_id: str
    survey_id: str
    kind: SurveyKind
    channel: Channel | None = None
    scores: tuple[ScoredAnswer, ...]
    """Every answered score question of the response, in the survey's order."""
    loyalty: LoyaltyCell | None = None
    """The NPS x NLS cell, when the response answered both."""
    dimensions: dict[str, str] = Field(default_factory=dict)
    """What the response is sliced by: channel, kind, language, the contact's and event's attributes."""
    consent_to_contact: bool = False
    respondent: Recipient | None = None
    comment: str | None = None
    """The first open answer, as written."""

    def first(self, *metrics: ScoreMetric) -> ScoredAnswer | None:
        """Return the first scored answer (of one of ``metrics``, when given)."""
        return next((a for a in self.scores if not metrics or a.metric in metrics), None)


class ResponseScored(_ScoreEvent):
    negative: bool
    """Whether any answer is negative feedback."""
    scored_at: datetime


class NegativeFeedbackDetected(_ScoreEvent):
    """The detractor event: a response with at least one answer that counts as negative feedback."""

    negatives: tuple[ScoredAnswer, ...]
    """The negative answers, in the survey's order."""
    detected_at: datetime


def _v1_scores(data: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """A v1 score event held one metric and score; its question is named after the metric."""
    negative = data.get("negative", data.get("classification") in ("detractor", "negative"))
    return (
        {
            "question_id": data["metric"],
            "metric": data["metric"],
            "score": data["score"],
            "classification": data.get("classification") or ("detractor" if negative else "passive"),
            "negative": bool(negative),
        },
    )


@UPCASTERS.register("closeloop.ResponseScored.v1", to=ResponseScored)
def _response_scored_v1(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "scores": _v1_scores(data)}


@UPCASTERS.register("closeloop.NegativeFeedbackDetected.v1", to=NegativeFeedbackDetected)
def _negative_feedback_v1(data: dict[str, Any]) -> dict[str, Any]:
    scores = _v1_scores({**data, "negative": True})
    return {**data, "scores": scores, "negatives": scores}


class TargetStatusChanged(EventData):
    """An experience target moved between met, at risk, breached and too few answers (once per change)."""

    topic: ClassVar[str] = SCORES

    target_id: str
    name: str
    metric: ScoreMetric
    question_id: str | None = None
    survey_id: str | None = None
    filters: tuple[str, ...] = ()
    """The segment, as ``dim=value`` / ``dim!=value`` filters."""
    direction: Literal["at_least", "at_most"] = "at_least"
    threshold: float
    window_days: int
    owner: str | None = None
    previous_status: TargetStatus | None
    """None: the target's first evaluated status."""
    status: TargetStatus
    value: float | None
    """The current score in the window (NPS points, or a percentage); None with too few answers."""
    n: int
    low: float | None = None
    high: float | None = None
    """The 95% interval of ``value``."""
    changed_at: datetime

    def partition_key(self) -> str:
        return f"{self.workspace_id}:{self.target_id}"


# --- followup --------------------------------------------------------------------------


class _FollowUpEvent(EventData):
    """A change to a follow-up case (the payloads say ``task_id``: a case keeps its task's id)."""

    topic: ClassVar[str] = FOLLOWUPS

    task_id: str
    contact_id: str
    """The contact the case is about; empty once the contact was erased."""
    occurred_at: datetime
    actor: str = "system"
    """Who made the change: an agent id, an API caller, or ``system`` (routing, the scheduler)."""

    def partition_key(self) -> str:
        return f"{self.workspace_id}:{self.task_id}"


class FollowUpOpened(_FollowUpEvent):
    response_id: str
    survey_id: str
    score: int
    metric: str | None = None
    opened_because: Literal["negative", "loyalty", "threshold"] = "negative"
    priority: str = "normal"
    team_id: str | None = None
    assignee: str | None = None
    first_contact_due_at: datetime | None = None
    resolution_due_at: datetime | None = None


class FollowUpAssigned(_FollowUpEvent):
    assignee: str
    team_id: str | None = None
    previous_assignee: str | None = None
    reason: str | None = None
    """Why, when routing or the escalation ladder assigned it."""


class FollowUpStatusChanged(_FollowUpEvent):
    """A case moved between statuses (open, in_progress, the workspace's own, closed)."""

    from_status: str
    to_status: str
    reason: str | None = None


class FollowUpPriorityChanged(_FollowUpEvent):
    """The case's priority changed; its SLA due times were recomputed from its opening."""

    from_priority: str
    to_priority: str
    first_contact_due_at: datetime | None = None
    resolution_due_at: datetime | None = None


class FollowUpNoteAdded(_FollowUpEvent):
    """A note was appended; its text stays in followup (it may hold personal data), the API serves it."""

    note_id: str
    attachments: int = 0


class FollowUpResolved(_FollowUpEvent):
    note: str
    retention_request_id: str | None
    root_cause_category: str | None = None
    root_cause: str | None = None
    action_taken: str | None = None
    retention: Literal["requested", "not_requested", "not_possible"] | None = None


class FollowUpReopened(_FollowUpEvent):
    reason: str
    from_status: str
    to_status: str


class FollowUpEscalated(_FollowUpEvent):
    """A step of the escalation ladder fired for the case (at most once per case and step)."""

    step_id: str
    step: str
    trigger: Literal["age", "first_contact_breach", "resolution_breach"]
    action: Literal["notify_assignee", "notify_lead", "reassign"]
    notified: str | None = None
    reassigned_to: str | None = None


class FollowUpOutcomeRecorded(_FollowUpEvent):
    """The retention survey came back: was the customer won back?"""

    won_back: bool
    retention_score: int


class FollowUpClimbed(_FollowUpEvent):
    """A detractor with a case answered a later survey as a promoter."""

    response_id: str
    metric: str
    score: int


EVENT_TYPES: dict[str, type[EventData]] = {
    model.type_name(): model
    for model in (
        CustomerEventReceived,
        ContactOptedOut,
        ContactErased,
        SurveyRequested,
        InvitationCreated,
        InvitationSent,
        InvitationDelivered,
        InvitationOpened,
        InvitationClicked,
        InvitationBounced,
        InvitationComplained,
        InvitationFailed,
        NotificationRequested,
        ResponseStarted,
        ResponseCompleted,
        SurveyPublished,
        SurveyClosed,
        SurveyReopened,
        BrandingChanged,
        QuietHoursChanged,
        AnonymisationDue,
        KeyRevoked,
        KeyUsed,
        ResponseScored,
        NegativeFeedbackDetected,
        TargetStatusChanged,
        FollowUpOpened,
        FollowUpAssigned,
        FollowUpResolved,
        FollowUpOutcomeRecorded,
        FollowUpStatusChanged,
        FollowUpPriorityChanged,
        FollowUpNoteAdded,
        FollowUpReopened,
        FollowUpEscalated,
        FollowUpClimbed,
    )
}


class EventHead(BaseModel):
    """A CloudEvent's attributes without its data: what a consumer keeps of the envelope (its id,
    type, time, trace) once the data is typed."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    workspaceid: str
    traceparent: str | None = None
    """CloudEvents distributed-tracing extension: the W3C traceparent of the span that caused the
    event (``shared.tracing``); its consumer continues the trace."""


class CloudEvent(EventHead):
    """CloudEvents 1.0, structured JSON mode; ``workspaceid`` is an extension attribute."""

    data: dict[str, Any]

    @classmethod
    def wrap(cls, data: EventData, *, source: str, event_id: str | None = None) -> CloudEvent:
        """Return the envelope for ``data`` published by ``source`` (a service name), in the trace in hand."""
        return cls(
            id=event_id or new_id(),
            source=f"/closeloop/{source}",
            type=data.type_name(),
            time=utcnow(),
            subject=data.cloudevent_subject(),
            workspaceid=data.workspace_id,
            data=data.model_dump(mode="json"),
            traceparent=tracing.current(),
        )

    @classmethod
    def wrap_json(cls, data: EventData, *, source: str, event_id: str | None = None) -> dict[str, Any]:
        """Return ``wrap(…).model_dump(mode="json")`` without building the envelope model (for
        writers of many events at once; the payload is still validated by its own model)."""
        head = _head(data, source=source, event_id=event_id or new_id(), traceparent=tracing.current())
        return {**head, "data": data.model_dump(mode="json")}

    def parse_data(self, upcasters: Upcasters | None = None) -> EventData:
        """Return the typed payload, upcast to the current version; raises ``UnknownEventType`` or a
        pydantic ValidationError."""
        event_type, data = (upcasters or UPCASTERS).upcast(self.type, self.data)
        model = EVENT_TYPES.get(event_type)
        if model is None:
            raise UnknownEventType(self.type)
        return model.model_validate(data)

    @classmethod
    def wrap_text(
        cls, data: EventData, *, source: str, traceparent: str | None, event_id: str | None = None
    ) -> tuple[str, str]:
        """Return ``(id, JSON)`` of the envelope ``wrap`` would build in the trace ``traceparent``,
        serialised once (the data by its own model's serialiser, the attributes around it): what an
        outbox stores and the relay sends."""
        event_id = event_id or new_id()
        head = _head(data, source=source, event_id=event_id, traceparent=traceparent)
        return event_id, f'{to_json(head).decode()[:-1]},"data":{data.model_dump_json()}}}'


def _head(data: EventData, *, source: str, event_id: str, traceparent: str | None) -> dict[str, Any]:
    """The envelope's attributes as JSON values, in the model's order (``data`` goes last)."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/closeloop/{source}",
        "type": data.type_name(),
        "time": utcnow().isoformat().replace("+00:00", "Z"),
        "subject": data.cloudevent_subject(),
        "datacontenttype": "application/json",
        "workspaceid": data.workspace_id,
        "traceparent": traceparent,
    }


@functools.cache
def _typed_envelope(model: type[EventData]) -> type[EventHead]:
    return create_model(f"{model.__name__}Envelope", __base__=EventHead, data=(model, ...))


def read_event(raw: bytes | str, *, declared_type: str | None = None) -> tuple[EventHead, EventData]:
    """Return a consumed event's envelope and its typed data, upcast to the current version.

    When ``declared_type`` (the record's ``ce_type`` header) is a current event type, the envelope and
    its data are validated in one pass; otherwise — no header, an older version to upcast, a header
    the envelope contradicts, data that does not validate — as a ``CloudEvent`` and then
    ``parse_data``, which raises a pydantic ValidationError or ``UnknownEventType`` for what is wrong."""
    model = EVENT_TYPES.get(declared_type) if declared_type is not None else None
    if model is not None:
        try:
            typed = _typed_envelope(model).model_validate_json(raw)
        except ValidationError:
            pass
        else:
            if typed.type == declared_type:
                return typed, cast(EventData, typed.data)  # type: ignore[attr-defined]
    envelope = CloudEvent.model_validate_json(raw)
    return envelope, envelope.parse_data()


class UnknownEventType(ValueError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type
