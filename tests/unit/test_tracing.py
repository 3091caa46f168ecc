"""``shared.tracing``: W3C traceparent handling, and every event written in a span carries it."""

from __future__ import annotations

import asyncio

import pytest

from shared import tracing
from shared.events import CloudEvent, CustomerEventReceived, utcnow
from shared.kafka import event_headers

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def event() -> CustomerEventReceived:
    return CustomerEventReceived(
        workspace_id="ws-trace",
        event_id="e-1",
        source="test",
        source_event_id="e-1",
        event_type="ticket.solved",
        occurred_at=utcnow(),
        contact_id="c-1",
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # an unknown version
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # the all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ],
)
def test_invalid_traceparents_are_ignored(value: str | None):
    assert tracing.parse(value) is None


def test_a_valid_traceparent_is_kept():
    assert tracing.parse(PARENT.upper().encode()) == PARENT


def test_a_span_continues_its_parent_trace_and_nests():
    assert tracing.current() is None
    with tracing.span("request", parent=PARENT) as outer:
        assert tracing.trace_id(outer) == tracing.trace_id(PARENT) and outer != PARENT
        assert outer.endswith("-01")
        with tracing.span("handler") as inner:
            assert tracing.trace_id(inner) == tracing.trace_id(PARENT) and inner != outer
            assert tracing.current() == inner
        assert tracing.current() == outer
    assert tracing.current() is None


def test_a_span_without_a_parent_starts_a_trace():
    with tracing.span("request", parent="not a traceparent") as root:
        assert tracing.parse(root) == root and tracing.trace_id(root) != tracing.trace_id(PARENT)


async def test_concurrent_tasks_keep_their_own_trace():
    async def in_span(parent: str) -> str | None:
        with tracing.span("task", parent=parent):
            await asyncio.sleep(0.01)
            return tracing.trace_id(CloudEvent.wrap(event(), source="test").traceparent)

    other = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert await asyncio.gather(in_span(PARENT), in_span(other)) == [
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "a" * 32,
    ]


def test_events_carry_the_span_in_hand_as_the_cloudevents_extension():
    assert CloudEvent.wrap(event(), source="test").traceparent is None
    with tracing.span("request", parent=PARENT) as current:
        envelope = CloudEvent.wrap(event(), source="test")
        as_json = CloudEvent.wrap_json(event(), source="test")
    assert envelope.traceparent == current and as_json["traceparent"] == current
    assert CloudEvent.model_validate_json(envelope.model_dump_json()).traceparent == current
    headers = dict(event_headers(event_id="e", event_type="t", source="/s", traceparent=current))
    assert headers["ce_traceparent"] == current.encode()
    assert "ce_traceparent" not in dict(event_headers(event_id="e", event_type="t", source="/s"))
