"""W3C traceparents through the loop: a webhook's trace reaches the events the evaluator publishes
for it (later, in another process), the invitation email and ``InvitationSent``, and — carried in
the survey link — the customer's answer, its score and the follow-up case, service after service."""

from __future__ import annotations

import httpx
import pytest

from closeloop.demo import DemoWorkspace, demo_event, send_signed
from closeloop.infra import Broker
from closeloop.mailcatcher import MailCatcher, recipient
from shared.events import CUSTOMER_EVENTS, FOLLOWUPS, INVITATIONS, RESPONSES, SCORES, SURVEY_REQUESTS
from tests.e2e.test_closed_loop import survey_link
from tests.support.stack import TopicReader

pytestmark = pytest.mark.e2e

TRACE = "5a3c1e9b7d2f4a6c8e0b1d3f5a7c9e1b"
TRACEPARENT = f"00-{TRACE}-1111111111111111-01"


WEBHOOK_TRACE = "7e1d2c3b4a5f60718293a4b5c6d7e8f9"


def in_trace(value: dict, trace: str = TRACE) -> bool:
    return (value.get("traceparent") or "").split("-")[1:2] == [trace]


async def test_a_webhook_s_trace_reaches_the_survey_request_and_the_email(
    demo: DemoWorkspace, broker: Broker, smtp: MailCatcher
):
    email = f"webhook-traced.{demo.workspace_id}@example.com"
    with httpx.Client(timeout=10, headers={"traceparent": f"00-{WEBHOOK_TRACE}-2222222222222222-01"}) as http:
        sent = send_signed(http, demo, demo_event(external_id="cus_webhook_traced", email=email))
        assert sent.status_code == 202, sent.text
    for topic, event_type in (
        (CUSTOMER_EVENTS, "CustomerEventReceived"),
        (SURVEY_REQUESTS, "SurveyRequested"),
    ):
        async with TopicReader(broker.bootstrap_servers, topic) as reader:
            (found,) = await reader.wait_for(lambda v: in_trace(v, WEBHOOK_TRACE), timeout_s=60)
            assert event_type in found["type"] and found["workspaceid"] == demo.workspace_id
            assert found["traceparent"].split("-")[2] != "2222222222222222"  # the evaluator's own span
    # Dispatch keeps the request's trace with the invitation: the email and InvitationSent carry it.
    invitation = await smtp.wait_for(lambda m: recipient(m) == email, timeout_s=60)
    assert str(invitation["traceparent"]).split("-")[1] == WEBHOOK_TRACE
    async with TopicReader(broker.bootstrap_servers, INVITATIONS) as reader:
        await reader.wait_for(
            lambda v: in_trace(v, WEBHOOK_TRACE) and v["type"].startswith("closeloop.InvitationSent"),
            timeout_s=60,
        )


ANSWER_TRACE = "3c9e1b5a7d2f4a6c8e0b1d3f5a7c9e1b"


async def test_one_trace_runs_from_the_webhook_through_the_survey_link_to_the_case(
    demo: DemoWorkspace, smtp: MailCatcher, broker: Broker
):
    """The invitation's trace rides in the survey link: the answer, its score and the follow-up case
    continue the webhook's trace, even when a proxy in front of the survey pages starts its own."""
    email = f"traced.{demo.workspace_id}@example.com"
    with httpx.Client(timeout=10, headers={"traceparent": TRACEPARENT}) as http:
        assert send_signed(http, demo, demo_event(external_id="cus_traced", email=email)).status_code == 202
    invitation = await smtp.wait_for(lambda m: recipient(m) == email, timeout_s=60)
    assert str(invitation["traceparent"]).split("-")[1] == TRACE
    async with httpx.AsyncClient(timeout=10) as http:
        link = await survey_link(http, invitation)
        answered = await http.post(
            link,
            data={"nps": "1", "why": "Traced.", "consent": "yes"},
            headers={"traceparent": f"00-{ANSWER_TRACE}-3333333333333333-01"},
            follow_redirects=True,
        )
        assert answered.status_code == 200, answered.text

    found = {}
    for topic, event_type in (
        (RESPONSES, "closeloop.ResponseCompleted."),
        (SCORES, "closeloop.NegativeFeedbackDetected."),
        (FOLLOWUPS, "closeloop.FollowUpOpened."),
    ):
        async with TopicReader(broker.bootstrap_servers, topic) as reader:
            (found[topic],) = await reader.wait_for(
                lambda v, t=event_type: in_trace(v) and v["type"].startswith(t), timeout_s=60
            )
            record = next(r for r in reader.records if r.value and TRACE.encode() in r.value)
            # The CloudEvents Kafka binding: the extension attribute as a ce_ header too.
            assert dict(record.headers)["ce_traceparent"].decode().split("-")[1] == TRACE
            assert not [v for v in reader.values() if isinstance(v, dict) and in_trace(v, ANSWER_TRACE)]
    assert found[FOLLOWUPS]["workspaceid"] == demo.workspace_id
    assert found[RESPONSES]["data"]["response_id"] == found[SCORES]["data"]["response_id"]
    # Each service's span is its own: same trace, other span ids.
    spans = {v["traceparent"].split("-")[2] for v in found.values()}
    assert len(spans) == 3 and "1111111111111111" not in spans
