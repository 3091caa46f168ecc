"""The evaluator's outbox rows, built as plain data (``handlers/envelopes.py``), are what
``outbox_row`` makes of the event models: the same row and, once the statement's JSON encoder has
written them, the same JSON (the envelope's own id and time aside)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pydantic_core
import pytest
from sqlalchemy import MetaData

from services.trigger.handlers.envelopes import customer_event_received, envelope_time, survey_requested
from services.trigger.handlers.tx import outbox_row
from services.trigger.store import json_param
from shared import tracing
from shared.events import CustomerEventReceived, Recipient, SurveyRequested
from shared.outbox import Outbox, outbox_table

OUTBOX = Outbox(outbox_table(MetaData()), source="trigger")
OCCURRED = [
    datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 12, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
]
PROPERTIES: list[dict[str, Any]] = [
    {},
    {"priority": "high", "n": 3, "x": 1.5, "ok": True, "none": None, "nested": {"a": [1, "b", None]}},
    {"ünïcode": '日本語 \u2028 "quoted" \\ back', "big": 2**70},
]


def _as_json(row: dict[str, Any]) -> dict[str, Any]:
    """The row as the statement's JSON parameter carries it, the envelope's id and time left out."""
    value = pydantic_core.from_json(json_param(row))
    del value["payload"]["id"], value["payload"]["time"], value["event_id"]
    return value  # type: ignore[no-any-return]


@pytest.mark.parametrize("traceparent", [None, "00-5a3c1e9b7d2f4a6c8e0b1d3f5a7c9e1b-1111111111111111-01"])
@pytest.mark.parametrize("occurred_at", OCCURRED)
@pytest.mark.parametrize("properties", PROPERTIES)
def test_customer_event_received_is_the_model_s_row(traceparent, occurred_at, properties):
    values = {
        "workspace_id": "ws-1",
        "event_id": "ev-1",
        "source": "hubspot",
        "source_event_id": "123",
        "event_type": "contact.propertyChange",
        "occurred_at": occurred_at,
        "contact_id": "c-1",
        "properties": properties,
    }
    with tracing.span("evaluate", parent=traceparent):
        model = outbox_row(OUTBOX, CustomerEventReceived(**values))
        plain = customer_event_received(OUTBOX, time=envelope_time(), **values)
    assert plain["payload"]["id"] == plain["event_id"]
    assert _as_json(plain) == _as_json(model)


@pytest.mark.parametrize("send_at", [None, datetime(2026, 12, 2, 7, 0, tzinfo=UTC)])
@pytest.mark.parametrize("locale", [None, "nl"])
def test_survey_requested_is_the_model_s_row(send_at, locale):
    contact = {
        "id": "c-1",
        "name": "Ada",
        "email": "ada@example.com",
        "phone": None,
        "locale": "en",
        "timezone": "Europe/Amsterdam",
        "company": None,
        "plan": "pro",
    }
    values = {
        "workspace_id": "ws-1",
        "request_id": "rq-1",
        "survey_id": "nps",
        "kind": "relationship",
        "channel": "sms",
        "send_at": send_at,
        "reason": "rule:r-1",
        "fallback_channels": ("email", "link"),
        "locale": locale,
        "context": {"event_type": "ticket.solved", "attr.plan": "pro"},
    }
    recipient = Recipient(
        **{f: contact[f] for f in ("name", "email", "phone", "locale", "timezone", "company")}
    )
    with tracing.span("evaluate"):
        model = outbox_row(OUTBOX, SurveyRequested(contact_id=contact["id"], recipient=recipient, **values))
        plain = survey_requested(OUTBOX, time=envelope_time(), contact=contact, **values)
    assert _as_json(plain) == _as_json(model)


def test_the_envelope_time_is_written_as_the_model_writes_it():
    assert envelope_time(datetime(2026, 12, 1, 12, 0, 0, 5, tzinfo=UTC)) == "2026-12-01T12:00:00.000005Z"
    stamp = pydantic_core.from_json(json_param({"t": datetime(2026, 12, 1, 12, 0, 0, 5, tzinfo=UTC)}))["t"]
    assert stamp == "2026-12-01T12:00:00.000005Z"  # the model's ``time`` as a consumer parses it
