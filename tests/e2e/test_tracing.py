"""A customer's answer that arrives with a W3C traceparent: the events it causes — the response,
its score, the follow-up case — carry the same trace, service after service."""

from __future__ import annotations

import httpx
import pytest

from closeloop.demo import DemoWorkspace, demo_event, send_signed
from closeloop.infra import Broker
from closeloop.mailcatcher import MailCatcher, recipient
from shared.events import FOLLOWUPS, RESPONSES, SCORES
from tests.e2e.test_closed_loop import survey_link
from tests.support.stack import TopicReader

pytestmark = pytest.mark.e2e

TRACE = "5a3c1e9b7d2f4a6c8e0b1d3f5a7c9e1b"
TRACEPARENT = f"00-{TRACE}-1111111111111111-01"


def in_trace(value: dict) -> bool:
    return (value.get("traceparent") or "").split("-")[1:2] == [TRACE]


async def test_an_answer_s_trace_reaches_its_score_and_its_case(
    demo: DemoWorkspace, smtp: MailCatcher, broker: Broker
):
    email = f"traced.{demo.workspace_id}@example.com"
    with httpx.Client(timeout=10) as http:
        assert send_signed(http, demo, demo_event(external_id="cus_traced", email=email)).status_code == 202
    invitation = await smtp.wait_for(lambda m: recipient(m) == email, timeout_s=60)
    async with httpx.AsyncClient(timeout=10) as http:
        link = await survey_link(http, invitation)
        answered = await http.post(
            link,
            data={"nps": "1", "why": "Traced.", "consent": "yes"},
            headers={"traceparent": TRACEPARENT},
            follow_redirects=True,
        )
        assert answered.status_code == 200, answered.text

    found = {}
    for topic in (RESPONSES, SCORES, FOLLOWUPS):
        async with TopicReader(broker.bootstrap_servers, topic) as reader:
            (found[topic],) = await reader.wait_for(in_trace, timeout_s=60)
            record = next(r for r in reader.records if r.value and TRACE.encode() in r.value)
            # The CloudEvents Kafka binding: the extension attribute as a ce_ header too.
            assert dict(record.headers)["ce_traceparent"].decode().split("-")[1] == TRACE
    assert found[FOLLOWUPS]["workspaceid"] == demo.workspace_id
    # Each service's span is its own: same trace, other span ids.
    spans = {v["traceparent"].split("-")[2] for v in found.values()}
    assert len(spans) == 3 and "1111111111111111" not in spans
