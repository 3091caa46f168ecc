"""The outbox rows of the events evaluation causes (``CustomerEventReceived``, ``SurveyRequested``),
built as plain data: what ``outbox_row`` makes of the models, without building, validating and
dumping two models per event. Their values were validated on the way in (the stored event, the
rule, the contact's columns); ``tests/unit/test_trigger_envelopes.py`` holds the rows to the
models' own output."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared import tracing
from shared.events import CustomerEventReceived, SurveyRequested, new_id, utcnow
from shared.outbox import Outbox
from shared.vocabulary import Channel

_RECEIVED = (CustomerEventReceived.topic, CustomerEventReceived.type_name())
_REQUESTED = (SurveyRequested.topic, SurveyRequested.type_name())
_RECIPIENT_FIELDS = ("name", "email", "phone", "locale", "timezone", "company")


def envelope_time(now: datetime | None = None) -> str:
    """Return a CloudEvent's ``time`` for events made at ``now`` (default: the current time)."""
    return (now or utcnow()).isoformat().replace("+00:00", "Z")


def customer_event_received(
    outbox: Outbox,
    *,
    time: str,
    workspace_id: str,
    event_id: str,
    source: str,
    source_event_id: str,
    event_type: str,
    occurred_at: datetime,
    contact_id: str,
    properties: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the outbox row of ``CustomerEventReceived``, in the trace in hand."""
    data = {
        "workspace_id": workspace_id,
        "event_id": event_id,
        "source": source,
        "source_event_id": source_event_id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "contact_id": contact_id,
        "properties": dict(properties),
    }
    return _row(outbox, _RECEIVED, time, workspace_id, contact_id, data)


def survey_requested(
    outbox: Outbox,
    *,
    time: str,
    workspace_id: str,
    request_id: str,
    contact: Mapping[str, Any],
    survey_id: str,
    kind: str,
    channel: Channel,
    send_at: datetime | None,
    reason: str,
    fallback_channels: tuple[Channel, ...],
    locale: str | None,
    context: dict[str, str],
) -> dict[str, Any]:
    """Return the outbox row of ``SurveyRequested`` for ``contact`` (a contact row: its ``id`` and the
    recipient's fields), in the trace in hand."""
    data = {
        "workspace_id": workspace_id,
        "request_id": request_id,
        "contact_id": contact["id"],
        "survey_id": survey_id,
        "kind": kind,
        "channel": channel,
        "send_at": send_at,
        "recipient": {f: contact[f] for f in _RECIPIENT_FIELDS},
        "reason": reason,
        "fallback_channels": list(fallback_channels),
        "locale": locale,
        "context": context,
    }
    return _row(outbox, _REQUESTED, time, workspace_id, contact["id"], data)


def _row(
    outbox: Outbox,
    kind: tuple[str, str],
    time: str,
    workspace_id: str,
    contact_id: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The row ``outbox_row`` writes: datetimes in ``data`` are left to the statement's JSON
    encoder, which writes them as the models' serialiser does."""
    topic, type_name = kind
    event_id = new_id()
    payload = {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/closeloop/{outbox.source}",
        "type": type_name,
        "time": time,
        "subject": contact_id,
        "datacontenttype": "application/json",
        "workspaceid": workspace_id,
        "traceparent": tracing.current(),
        "data": data,
    }
    key = f"{workspace_id}:{contact_id}" if contact_id else workspace_id
    return {"event_id": event_id, "topic": topic, "key": key, "payload": payload}
