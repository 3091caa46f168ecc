"""The closed-loop report against real PostgreSQL: the won-back rate and its interval by root cause
and team against numbers computed here independently, SLA shares, reopen rate, climbed detractors and
the recovery funnel."""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.followup.app import create_app
from services.followup.settings import FollowUpSettings
from shared.clock import Clock
from shared.events import NegativeFeedbackDetected, ResponseScored
from tests.integration.test_followup_cases import case_for, negative, put
from tests.support.followup import retention_answer, scored_answer
from tests.support.stack import publish, running, settings_from, wait_until
from tests.support.surveys import set_retention_survey

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def client(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_from(FollowUpSettings, stack_env, role="api,relay,consumer")
    async with running(create_app(settings, clock=Clock())) as c:
        yield c


def scored_event(source: NegativeFeedbackDetected) -> ResponseScored:
    """The ResponseScored scoring publishes next to a NegativeFeedbackDetected."""
    data = source.model_dump(exclude={"negatives", "detected_at"})
    return ResponseScored(**data, negative=True, scored_at=source.detected_at)


def wilson(k: int, n: int) -> tuple[float, float]:
    """Computed here from the textbook formula, not with the service's code."""
    z = 1.959963984540054
    p = k / n
    root = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((p + z * z / (2 * n) - root) / (1 + z * z / n), (p + z * z / (2 * n) + root) / (1 + z * z / n))


# (root cause, retention answer: True = won back, False = not, None = no answer yet)
PLAN = [
    (("Delivery", "Late"), True),
    (("Delivery", "Late"), True),
    (("Delivery", "Late"), False),
    (("Delivery", "Late"), True),
    (("Delivery", "Late"), None),
    (("Billing", "Error"), False),
    (("Billing", "Error"), False),
    (("Billing", "Error"), True),
    (("Service", "Slow"), True),
]


async def test_won_back_rate_interval_funnel_and_climbed(client, producer, auth, workspace):
    await set_retention_survey(client, auth, producer, workspace=workspace)
    contact = "c-metrics-" + secrets.token_hex(3)
    # Two negative answers without consent: counted in the funnel, no case.
    refused = [negative(workspace, contact_id=contact, consent=False) for _ in range(2)]
    opened = [negative(workspace, contact_id=contact) for _ in PLAN]
    for event in (*refused, *opened):
        await publish(producer, event)
        await publish(producer, scored_event(event))
    cases = [await case_for(client, auth, e.response_id) for e in opened]
    requests = []
    for case, ((category, cause), _) in zip(cases, PLAN, strict=True):
        await put(client, auth, f"/v1/cases/{case['id']}/status", {"status": "in_progress"}, method="POST")
        resolved = await put(
            client,
            auth,
            f"/v1/cases/{case['id']}/resolve",
            {"root_cause": {"category": category, "cause": cause}, "action_taken": "Fixed."},
            method="POST",
        )
        requests.append(resolved["retention"]["request_id"])
    for request_id, (_, won) in zip(requests, PLAN, strict=True):
        if won is not None:
            await publish(
                producer,
                retention_answer(
                    workspace, request_id, score=5 if won else 1, negative=not won, contact_id=contact
                ),
            )
    # Reopen one case to measure the reopen rate; the detractor later answers a relationship survey as a promoter.
    await put(client, auth, f"/v1/cases/{cases[4]['id']}/reopen", {"reason": "Still late."}, method="POST")
    await publish(
        producer,
        scored_answer(
            workspace,
            contact_id=contact,
            request_id=None,
            kind="relationship",
            metric="nps",
            score=10,
            classification="promoter",
            negative=False,
        ),
    )

    async def settled() -> dict[str, Any] | None:
        report = (await client.get("/v1/metrics", headers=auth)).json()["groups"]
        return (
            report[0]
            if report and report[0]["retention_answered"] == 8 and report[0]["climbed"] == len(PLAN)
            else None
        )

    overall = await wait_until(settled, message="every retention answer and the climb recorded")
    answered = [won for _, won in PLAN if won is not None]
    k, n = sum(answered), len(answered)
    assert (overall["won_back"], overall["retention_answered"]) == (k, n)
    assert overall["won_back_rate"] == pytest.approx(k / n)
    assert overall["won_back_interval"] == pytest.approx(list(wilson(k, n)))
    assert (overall["opened"], overall["contacted"], overall["contacted_within_sla_pct"]) == (
        len(PLAN),
        len(PLAN),
        100.0,
    )
    assert overall["reopen_rate"] == pytest.approx(1 / len(PLAN))
    assert overall["climbed_rate"] == 1.0 and overall["median_hours_to_first_contact"] is not None

    by_cause = {
        g["key"]: g
        for g in (await client.get("/v1/metrics", params={"by": "root_cause"}, headers=auth)).json()["groups"]
    }
    for label, (category, cause) in (
        ("Delivery › Late", ("Delivery", "Late")),
        ("Billing › Error", ("Billing", "Error")),
    ):
        outcomes = [won for rc, won in PLAN if rc == (category, cause) and won is not None]
        group = by_cause[label]
        assert (group["won_back"], group["retention_answered"]) == (sum(outcomes), len(outcomes))
        assert group["won_back_interval"] == pytest.approx(list(wilson(sum(outcomes), len(outcomes))))
    assert by_cause["Delivery › Late"]["opened"] == 5  # the reopened case keeps its last root cause
    by_segment = (
        await client.get("/v1/metrics", params={"by": "segment", "dimension": "country"}, headers=auth)
    ).json()["groups"]
    assert [(g["key"], g["opened"]) for g in by_segment] == [("NL", len(PLAN))]
    by_week = (
        await client.get("/v1/metrics", params={"by": "period", "period": "week"}, headers=auth)
    ).json()["groups"]
    assert sum(g["opened"] for g in by_week) == len(PLAN)

    funnel = (await client.get("/v1/metrics/funnel", headers=auth)).json()["steps"]
    assert [(s["step"], s["count"]) for s in funnel] == [
        ("negative_answers", len(PLAN) + 2),
        ("consented", len(PLAN)),
        ("case_opened", len(PLAN)),
        ("contacted", len(PLAN)),
        ("resolved", len(PLAN)),
        ("retention_answered", n),
        ("won_back", k),
    ]
    assert funnel[1]["dropped"] == 2
