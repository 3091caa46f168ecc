"""Scoring and followup read their request bodies strictly (``shared.inputs``: ``Flag``, ``Integer``,
``Number``), as trigger,
dispatch and responses do: a boolean is true or false and a number a JSON number — "yes" is not true,
"80" is not 80, 30.0 is not an integer — and a value of the wrong type is a 422 naming the field, never
a guess. Dates stay ISO 8601 text (JSON has no date type)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.followup.app import create_app as create_followup
from services.followup.settings import FollowUpSettings
from services.scoring.app import create_app as create_scoring
from services.scoring.settings import ScoringSettings
from tests.support.stack import running, settings_from

pytestmark = pytest.mark.integration

TARGET = {"name": "CSAT", "metric": "csat", "threshold": 80}
RULE = {"name": "Zeroes", "metric": "nps", "channel": "chat", "to": "#cx"}


@pytest.fixture(scope="module")
async def scoring(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_scoring(settings_from(ScoringSettings, stack_env, role="api"))) as client:
        yield client


@pytest.fixture(scope="module")
async def followup(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_followup(settings_from(FollowUpSettings, stack_env, role="api"))) as client:
        yield client


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in response.json()["errors"]]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), (field, fields)


@pytest.mark.parametrize(
    "method, path, body, field",
    [
        ("put", "/v1/settings", {"min_n": "10"}, "min_n"),
        ("put", "/v1/settings", {"min_n": 10.0}, "min_n"),
        ("put", "/v1/settings", {"negative": {"nps": "6"}}, "negative.nps"),
        ("put", "/v1/settings", {"negative": {"nps": True}}, "negative.nps"),
        ("post", "/v1/targets", {**TARGET, "threshold": "80"}, "threshold"),
        ("post", "/v1/targets", {**TARGET, "window_days": "30"}, "window_days"),
        ("post", "/v1/targets", {**TARGET, "notify": {"email": "yes"}}, "notify.email"),
        ("post", "/v1/targets", {**TARGET, "notify": {"webhook": 1}}, "notify.webhook"),
        ("post", "/v1/notification-rules", {**RULE, "max_score": "3"}, "max_score"),
    ],
)
async def test_scoring_refuses_a_value_of_the_wrong_type(scoring, auth, method, path, body, field):
    assert_refused(await scoring.request(method.upper(), path, json=body, headers=auth), field)


async def test_scoring_still_takes_a_whole_number_for_a_threshold(scoring, auth):
    created = await scoring.post("/v1/targets", json={**TARGET, "threshold": 80}, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["threshold"] == 80.0 and created.json()["notify"]["email"] is True


@pytest.mark.parametrize(
    "method, path, body, field",
    [
        ("put", "/v1/agents/grace", {"name": "Grace", "active": "yes"}, "active"),
        ("put", "/v1/agents/grace", {"name": "Grace", "active": 1}, "active"),
        (
            "put",
            "/v1/settings",
            {"retention_survey_id": None, "retention_delay_seconds": "86400"},
            "retention_delay_seconds",
        ),
        ("put", "/v1/workflow", {"allow_backward": "true"}, "allow_backward"),
        (
            "put",
            "/v1/workflow",
            {"custom_statuses": [{"name": "waiting", "waits_on_customer": "yes"}]},
            "custom_statuses.0.waits_on_customer",
        ),
        ("put", "/v1/routing-rules", {"rules": [{"name": "r", "enabled": "no"}]}, "rules.0.enabled"),
        (
            "put",
            "/v1/routing-rules",
            {"rules": [{"name": "r", "conditions": {"score": {"max": "2"}}}]},
            "rules.0.conditions.score.max",
        ),
        ("put", "/v1/sla-policies", {"policies": [{"name": "p", "first_contact_minutes": "60"}]}, "policies"),
        ("put", "/v1/sla-policies", {"policies": [{"name": "p", "pause_while_waiting": 1}]}, "policies"),
        (
            "put",
            "/v1/escalation-ladder",
            {"steps": [{"name": "s", "trigger": "age", "action": "notify_lead", "after_minutes": 60.0}]},
            "steps",
        ),
        ("put", "/v1/opening-rules", {"score_below": {"csat": "3"}}, "score_below"),
        ("post", "/v1/teams", {"name": "T", "weekdays": ["1"]}, "weekdays"),
    ],
)
async def test_followup_refuses_a_value_of_the_wrong_type(followup, auth, method, path, body, field):
    response = await followup.request(method.upper(), path, json=body, headers=auth)
    assert_refused(response, field)


async def test_followup_still_reads_dates_as_iso_text(followup, auth):
    team = await followup.post(
        "/v1/teams", json={"name": "Dates", "days_off": ["2026-12-24"], "weekdays": [0, 1]}, headers=auth
    )
    assert team.status_code == 201, team.text
    assert team.json()["days_off"] == ["2026-12-24"]
