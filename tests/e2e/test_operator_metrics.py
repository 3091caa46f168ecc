"""The service processes serve the operator's metrics: dispatch counts its sends per channel, the
consumers their lag and processing time, every relay its outbox, every service its dead letters."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from closeloop.demo import DemoWorkspace, demo_event, send_signed
from closeloop.mailcatcher import MailCatcher, recipient
from tests.support.stack import wait_until

pytestmark = pytest.mark.e2e


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_sent_invitation_shows_in_the_metrics(
    demo: DemoWorkspace, urls: dict[str, str], smtp: MailCatcher
):
    email = f"metrics.{demo.workspace_id}@example.com"
    with httpx.Client(timeout=10) as http:
        assert send_signed(http, demo, demo_event(external_id="cus_metrics", email=email)).status_code == 202
    await smtp.wait_for(lambda m: recipient(m) == email, timeout_s=60)

    async with httpx.AsyncClient(timeout=10) as http:

        async def dispatch_metrics() -> dict | None:
            found = samples((await http.get(f"{urls['dispatch']}/metrics")).text)
            sent = found.get(
                ("closeloop_channel_sends_total", frozenset({("channel", "email"), ("outcome", "sent")}))
            )
            return found if sent and sent >= 1 else None

        found = await wait_until(dispatch_metrics, timeout_s=30, message="dispatch counts the email sent")
        names = {name for name, _ in found}
        assert {
            "closeloop_consumer_lag",
            "closeloop_event_processing_seconds_count",
            "closeloop_event_delay_seconds_count",
            "closeloop_outbox_pending",
            "closeloop_outbox_oldest_age_seconds",
            "closeloop_dead_letters_pending",
        } <= names
        lag = {
            dict(labels)["topic"]: v
            for (name, labels), v in found.items()
            if name == "closeloop_consumer_lag"
        }
        assert "survey-requests" in lag and all(v >= 0 for v in lag.values())
