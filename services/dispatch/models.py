"""The dispatch service's tables (schema ``dispatch``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    or_,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.erasure import erased_contacts_table
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.revocation import revoked_keys_table
from shared.vocabulary import Channel, SurveyKind

SCHEMA = "dispatch"


def due_or_abandoned(model: Any, *, now: datetime, stale: datetime) -> ColumnElement[bool]:
    """Rows a sender may claim: scheduled and due, or claimed before ``stale`` by one that stopped.
    (``services.dispatch.due`` asks the same in SQL text: change both.)"""
    return or_(
        and_(model.status == "scheduled", model.next_attempt_at <= now),
        and_(model.status == "sending", model.claimed_at < stale),
    )


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
revoked_keys = revoked_keys_table(Base.metadata)
"""API keys the console revoked (``KeyRevoked``): this service refuses them (``shared.revocation``)."""


class Invitation(Base):
    """One per survey request: whom to ask, over which channel, and how far sending got.

    Status: ``scheduled`` → ``sending`` (claimed by a sender) → ``sent``; or ``failed`` with
    ``last_error``. A failed attempt goes back to ``scheduled`` with a later ``next_attempt_at``.
    A hard bounce (or a provider failure) with fallback channels left switches ``channel`` to the
    next one and goes back to ``scheduled``. The funnel timestamps (``delivered_at`` …
    ``completed_at``) are set once, by provider callbacks, the short link and response events.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("workspace_id", "request_id"),
        Index("ix_invitations_workspace_contact", "workspace_id", "contact_id", "created_at"),
        Index("ix_invitations_workspace_created", "workspace_id", "created_at"),
        Index(
            "ix_invitations_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('scheduled', 'sending')"),
        ),
        Index("ix_invitations_message_id", "message_id"),
        Index("ix_invitations_provider_message_id", "provider_message_id"),
        Index("ix_invitations_workspace_survey", "workspace_id", "survey_id", "created_at"),
        UniqueConstraint("short_code"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    request_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(200))
    survey_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[SurveyKind] = mapped_column(String(20))
    channel: Mapped[Channel] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(20))
    recipient_email: Mapped[str | None] = mapped_column(Text)
    recipient_name: Mapped[str | None] = mapped_column(Text)
    recipient_phone: Mapped[str | None] = mapped_column(Text)
    recipient_company: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    survey_url: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    template_id: Mapped[str | None] = mapped_column(String(36))
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"), default=dict)
    fallback_channels: Mapped[list[Channel]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb"), default=list
    )
    """Channels still to try, in order, when the current one cannot reach the contact."""
    recipient_timezone: Mapped[str | None] = mapped_column(String(64))
    short_code: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clicked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    complained_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminders_sent: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the contact was erased: the recipient, context and survey link are gone, the short link too."""
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the retention policy anonymised it (``AnonymisationDue``): as erased, and no contact id."""
    traceparent: Mapped[str | None] = mapped_column(String(55))
    """The W3C trace of the survey request: the email and ``InvitationSent`` continue it."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Reminder(Base):
    """A reminder of an invitation nobody answered yet: sent like an invitation, own claim and attempts.

    Status: ``scheduled`` → ``sending`` → ``sent``; ``failed``; or ``cancelled`` when the contact
    responded or opted out first, or the link expired.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("invitation_id", "seq"),
        Index(
            "ix_reminders_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('scheduled', 'sending')"),
        ),
        Index("ix_reminders_message_id", "message_id"),
        Index("ix_reminders_provider_message_id", "provider_message_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    invitation_id: Mapped[str] = mapped_column(String(36), ForeignKey("invitations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str | None] = mapped_column(String(300))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WorkspaceSettings(Base):
    """Branding, quiet hours, reminders, rate limits and tracking of one workspace (JSON, validated by the API)."""

    __tablename__ = "workspace_settings"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ReceivedSetting(Base):
    """Configuration another service owns, as its latest event said: ``branding`` (responses,
    ``BrandingChanged``) and ``quiet_hours`` (trigger, ``QuietHoursChanged``). It wins over the
    workspace's own (deprecated) value of the same concept in ``workspace_settings``."""

    __tablename__ = "received_settings"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    concept: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The owner's time of the change: an older event arriving late changes nothing."""


class Survey(Base):
    """What an invitation email needs of one published survey version (``SurveyPublished``): the
    survey's languages and its first question (type, scale, texts and labels per language)."""

    __tablename__ = "surveys"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    languages: Mapped[list[str]] = mapped_column(JSONB)
    first_question: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


erased_contacts = erased_contacts_table(Base.metadata)
"""Contacts erased (``ContactErased``; ``shared.erasure``): a survey request or a notification about one
that arrives later stores nothing about them and sends nothing."""


class ChannelConfig(Base):
    """Provider credentials and addresses of one channel in one workspace."""

    __tablename__ = "channel_configs"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Template(Base):
    """A message template for a survey (or ``""``: any), a channel and a locale (or ``""``: any)."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("workspace_id", "survey_id", "channel", "locale", "kind"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    survey_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    embed: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class OptOut(Base):
    """A contact who asked not to be surveyed again, on one channel or (``""``) on every channel."""

    __tablename__ = "opt_outs"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    opted_out_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InvalidAddress(Base):
    """An email address or phone number that hard-bounced: never tried again."""

    __tablename__ = "invalid_addresses"

    workspace_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    address: Mapped[str] = mapped_column(Text, primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProviderEvent(Base):
    """Provider callback events already applied (replay protection and redelivery dedup)."""

    __tablename__ = "provider_events"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Notification(Base):
    """A message to staff (email or chat) from ``NotificationRequested``; sent by the notifier."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("workspace_id", "notification_id"),
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('scheduled', 'sending')"),
        ),
        Index("ix_notifications_contact", "workspace_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    notification_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    """The contact the body quotes (``NotificationRequested.contact_id``): erasure replaces the body."""
    channel: Mapped[str] = mapped_column(String(20))
    to: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookSubscription(Base):
    """An integrator's endpoint for outgoing webhooks, signed with its own ``whsec_`` secret."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_workspace", "workspace_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSONB)
    survey_ids: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    """Only events about these surveys (events that name no survey always pass); empty: every survey."""
    metrics: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    """Only events about one of these metrics (events that name no metric always pass); empty: every one."""
    description: Mapped[str | None] = mapped_column(Text)
    notify_email: Mapped[str | None] = mapped_column(String(254))
    """Who hears (by email) that the subscription was disabled after failures or a 410."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class WebhookDelivery(Base):
    """One message to one subscription; ``msg_id`` (``webhook-id``) is kept across retries and replays."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "msg_id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('scheduled', 'sending')"),
        ),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "created_at"),
        Index("ix_webhook_deliveries_contact", "workspace_id", "contact_id"),
        Index(
            "ix_webhook_deliveries_pending_order",
            "subscription_id",
            "order_key",
            "seq",
            postgresql_where=text("status IN ('scheduled', 'sending')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    subscription_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    contact_id: Mapped[str | None] = mapped_column(String(64))
    """The contact the payload quotes (``NotificationRequested.contact_id``): erasure replaces its body."""
    msg_id: Mapped[str] = mapped_column(String(100))
    order_key: Mapped[str | None] = mapped_column(String(200))
    """Deliveries of one subscription with the same key (the contact) go out one at a time, in ``seq``
    order: a later one waits while an earlier one is still scheduled or sending."""
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookAttempt(Base):
    """The delivery log: every HTTP attempt of a webhook delivery, with its outcome."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CrmConnector(Base):
    """A workspace's connection to its CRM (``kind``: ``hubspot``), with credentials sealed at rest
    (``crm.secrets``: AES-256-GCM, a key derived from the service secret); the API never returns them."""

    __tablename__ = "crm_connectors"
    __table_args__ = (Index("ix_crm_connectors_workspace", "workspace_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """What is not secret: how contacts are matched, the burst budget."""
    sealed_credentials: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    prepared: Mapped[bool] = mapped_column(Boolean, default=False)
    """HubSpot: the closeloop contact properties exist (created on first use)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CrmCall(Base):
    """One update to send to a CRM because of one event: queued by the consumer, sent by the ``crm``
    worker (claim → call → record), so a CRM that is down never holds up the loop."""

    __tablename__ = "crm_calls"
    __table_args__ = (
        UniqueConstraint("connector_id", "event_id"),
        Index(
            "ix_crm_calls_due", "next_attempt_at", postgresql_where=text("status IN ('scheduled', 'sending')")
        ),
        Index("ix_crm_calls_connector", "connector_id", "created_at"),
        Index("ix_crm_calls_contact", "workspace_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(63))
    connector_id: Mapped[str] = mapped_column(String(36), ForeignKey("crm_connectors.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """What to send (e.g. the contact to match and the property values)."""
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CrmAttempt(Base):
    """The call log: every HTTP request made to a CRM, with its outcome."""

    __tablename__ = "crm_attempts"
    __table_args__ = (
        Index("ix_crm_attempts_call", "call_id", "id"),
        Index("ix_crm_attempts_budget", "connector_id", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(36), ForeignKey("crm_calls.id", ondelete="CASCADE"))
    connector_id: Mapped[str] = mapped_column(String(36))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
