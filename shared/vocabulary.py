"""The project's words, each defined once: types for annotations (API schemas, events, ORM
columns) and the runtime tuples derived from them with ``typing.get_args``."""

from __future__ import annotations

from typing import Literal, get_args

ServiceName = Literal["trigger", "dispatch", "responses", "scoring", "followup"]
SERVICES: tuple[ServiceName, ...] = get_args(ServiceName)
"""The feedback services, in the order of the loop."""

StackServiceName = Literal["trigger", "dispatch", "responses", "scoring", "followup", "console"]
STACK_SERVICES: tuple[StackServiceName, ...] = get_args(StackServiceName)
"""Everything the stack runs, each with its own schema and migrations: the feedback services and the
console (people, sessions, API keys; no feedback data)."""

Channel = Literal["email", "sms", "whatsapp", "chat", "link"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
"""How a customer is invited; ``link`` is a link (QR code, kiosk, web page) that nobody sends."""

SendChannel = Literal["email", "sms", "whatsapp", "chat"]
SEND_CHANNELS: tuple[SendChannel, ...] = get_args(SendChannel)
"""The channels dispatch sends a message over."""

SurveyKind = Literal["transactional", "relationship", "retention"]
SURVEY_KINDS: tuple[SurveyKind, ...] = get_args(SurveyKind)

QuestionType = Literal[
    "nps", "nls", "csat", "ces", "open", "consent", "rating", "single_choice", "multiple_choice"
]
QUESTION_TYPES: tuple[QuestionType, ...] = get_args(QuestionType)

Metric = Literal["nps", "nls", "csat", "ces"]
METRICS: tuple[Metric, ...] = get_args(Metric)
"""The metrics of ARCHITECTURE.md's "Scores"."""

ScoreMetric = Literal["nps", "nls", "csat", "ces", "rating"]
SCORE_METRICS: tuple[ScoreMetric, ...] = get_args(ScoreMetric)
"""What a scored answer counts under: the four metrics, and star ratings as their own."""

LoyaltyCell = Literal["pure", "false", "trapped", "disloyal", "undecided"]
LOYALTY_CELLS: tuple[LoyaltyCell, ...] = get_args(LoyaltyCell)
"""The NPS x NLS matrix (promoter = high): pure loyalty (high/high), false loyalty (high NPS, low
NLS), trapped loyalty (low NPS, high NLS), disloyalty (low/low); undecided: a passive on either."""

TargetStatus = Literal["met", "at_risk", "breached", "too_few_answers"]
TARGET_STATUSES: tuple[TargetStatus, ...] = get_args(TargetStatus)
"""An experience target's state: met (the estimate is on the right side), at risk (the estimate is on the
wrong side but the 95% interval still reaches the threshold), breached (the whole interval is on the wrong
side), too few answers (fewer than the workspace's minimum n in the window)."""

NpsScale = Literal["standard", "european"]
"""standard: promoters 9-10; european: promoters 8-10."""

Interval = Literal["day", "week", "month"]
"""The buckets of a trend."""

ContactField = Literal["email", "name", "phone", "locale", "timezone", "country", "company", "role", "plan"]
CONTACT_FIELDS: tuple[ContactField, ...] = get_args(ContactField)
"""A contact's own columns (anything else a source sends is an attribute)."""
