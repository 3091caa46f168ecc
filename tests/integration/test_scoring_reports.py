"""Scoring's reports against real PostgreSQL and the real broker: every answer, segments, comparisons,
the loyalty matrix, response rates, themes, targets and notification rules."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from services.scoring.app import create_app
from services.scoring.settings import ScoringSettings
from shared.clock import Clock
from shared.events import (
    NOTIFICATIONS,
    SCORES,
    Answer,
    ContactErased,
    InvitationBounced,
    InvitationDelivered,
    InvitationSent,
    ResponseCompleted,
    SurveyClosed,
    SurveyPublished,
    SurveyQuestion,
    new_id,
    utcnow,
)
from shared.security import issue_api_key
from tests.conftest import SECRET_KEY
from tests.support.access import person_auth
from tests.support.stack import TopicReader, publish, running, settings_from, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def app(stack_env: dict[str, str]) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = settings_from(ScoringSettings, stack_env, target_interval_s=3600)
    application = create_app(settings, clock=Clock())
    async with running(application) as client:
        yield application, client


@pytest.fixture
def client(app: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app[1]


@pytest.fixture
def clock(app: tuple[FastAPI, httpx.AsyncClient]) -> Clock:
    the_clock: Clock = app[0].state.runtime.deps.clock
    yield the_clock
    the_clock.reset()


def response(
    workspace: str,
    survey_id: str,
    *answers: tuple[str, str, Any],
    contact_id: str = "c-1",
    hidden: dict[str, str] | None = None,
    consent: bool = False,
    kind: str = "transactional",
    channel: str = "email",
    locale: str | None = "en",
    at: datetime | None = None,
    invitation_id: str | None = None,
    response_id: str | None = None,
) -> ResponseCompleted:
    return ResponseCompleted(
        workspace_id=workspace,
        response_id=response_id or new_id(),
        invitation_id=invitation_id,
        request_id=new_id(),
        contact_id=contact_id,
        survey_id=survey_id,
        survey_version=1,
        kind=kind,  # type: ignore[arg-type]
        channel=channel,  # type: ignore[arg-type]
        locale=locale,
        hidden_fields=hidden or {},
        answers=tuple(Answer(question_id=q, type=t, value=v) for q, t, v in answers),  # type: ignore[arg-type]
        consent_to_contact=consent,
        completed_at=at or utcnow(),
    )


async def metrics(client: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/metrics", params=params, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


async def counted(
    client: httpx.AsyncClient, auth: dict[str, str], survey: str, n: int, metric: str = "nps", **params: Any
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await client.get(
            "/v1/metrics", params={"survey_id": survey, "metric": metric, **params}, headers=auth
        )
        return r.json() if r.status_code == 200 and r.json()["metrics"][0]["n"] >= n else None

    return await wait_until(check, message=f"{n} {metric} answers on {survey}")


def by_metric(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in body["metrics"]}


def svy() -> str:
    return "svy-" + secrets.token_hex(4)


async def test_every_answer_counts_once_and_a_redelivery_changes_nothing(
    client, producer, auth, workspace, broker
):
    survey = svy()
    first = response(
        workspace,
        survey,
        ("q-nps", "nps", 9),
        ("q-why", "open", "Delivery was late"),
        ("q-nls", "nls", 3),
        ("q-csat", "csat", 2),
        ("q-ces", "ces", 6),
        ("q-stars", "rating", 4),
        consent=True,
    )
    async with TopicReader(broker.bootstrap_servers, SCORES) as scores:
        envelope = await publish(producer, first)
        await publish(producer, first, event_id=envelope)  # the broker redelivers
        await publish(producer, first)  # the same response under a new event id
        await publish(producer, response(workspace, survey, ("q-nps", "nps", 10)))
        await counted(client, auth, survey, 2)
        await scores.wait_for(
            lambda v: v["workspaceid"] == workspace and v["type"] == "closeloop.ResponseScored.v2", count=2
        )
        mine = [
            v
            for v in scores.values()
            if isinstance(v, dict) and v["data"].get("response_id") == first.response_id
        ]

    figures = by_metric(await metrics(client, auth, survey_id=survey))
    assert {m: f["n"] for m, f in figures.items()} == {"nps": 2, "nls": 1, "csat": 1, "ces": 1, "rating": 1}
    assert (figures["nps"]["score"], figures["nls"]["score"], figures["csat"]["score"]) == (
        100.0,
        -100.0,
        0.0,
    )
    assert (figures["ces"]["score"], figures["rating"]["score"]) == (100.0, 100.0)

    [scored] = [v for v in mine if v["type"] == "closeloop.ResponseScored.v2"]
    [negative] = [v for v in mine if v["type"] == "closeloop.NegativeFeedbackDetected.v2"]
    assert [(s["question_id"], s["metric"], s["score"]) for s in scored["data"]["scores"]] == [
        ("q-nps", "nps", 9),
        ("q-nls", "nls", 3),
        ("q-csat", "csat", 2),
        ("q-ces", "ces", 6),
        ("q-stars", "rating", 4),
    ]
    assert scored["data"]["loyalty"] == "false" and scored["data"]["negative"] is True
    assert scored["data"]["dimensions"] == {"channel": "email", "kind": "transactional", "language": "en"}
    assert [a["question_id"] for a in negative["data"]["negatives"]] == ["q-nls", "q-csat"]

    one = await metrics(client, auth, survey_id=survey, metric="nps", question_id="q-nps")
    assert one["metrics"][0]["n"] == 2 and one["metrics"][0]["question_id"] == "q-nps"
    assert (await metrics(client, auth, survey_id=survey, metric="nps", question_id="q-other"))["metrics"][0][
        "n"
    ] == 0
    matrix = (await client.get("/v1/metrics/matrix", params={"survey_id": survey}, headers=auth)).json()
    assert (
        matrix["n"] == 1 and matrix["cells"]["false"]["count"] == 1 and matrix["cells"]["pure"]["count"] == 0
    )
    assert matrix["cells"]["false"]["low"] == pytest.approx(20.65, abs=0.01)  # Wilson for 1 of 1


async def test_segments_group_and_filter_and_hide_groups_with_too_few_answers(
    client, producer, auth, workspace
):
    survey, retention = svy(), svy()
    rows = [
        # (team, country, plan, tier, nps)
        *[("A", "NL", "pro", "gold", 10)] * 4,
        *[("A", "NL", "free", "gold", 3)] * 2,
        ("A", "BE", "pro", "silver", 9),
        *[("B", "NL", "pro", "silver", 6)] * 3,
        (None, "NL", "pro", "gold", 8),
        (None, "BE", "free", "gold", 0),
    ]
    for team, country, plan, tier, score in rows:
        hidden = {"attr.country": country, "attr.plan": plan, "attr.tier": tier}
        if team:
            hidden["team"] = team
        await publish(producer, response(workspace, survey, ("nps", "nps", score), hidden=hidden))
    await publish(producer, response(workspace, retention, ("nps", "nps", 0), kind="retention"))
    await counted(client, auth, survey, len(rows))
    await counted(client, auth, retention, 1)

    grouped = await metrics(client, auth, survey_id=survey, metric="nps", group_by="team")
    groups = {g["value"]: g["metrics"][0] for g in grouped["groups"]}
    assert grouped["metrics"][0]["n"] == sum(g["n"] for g in groups.values()) == 12
    assert groups["A"]["n"] == 7 and groups["A"]["score"] == pytest.approx((5 - 2) / 7 * 100, abs=0.01)
    assert groups["B"] == groups["B"] | {
        "n": 3,
        "too_few_answers": True,
        "score": None,
        "positive": None,
        "low": None,
    }
    assert groups[None]["too_few_answers"] is True

    segment = await metrics(client, auth, survey_id=survey, metric="nps", filter=["country=NL", "plan!=free"])
    # NL and not free: 4 × 10 (A), 3 × 6 (B), 1 × 8 → 4 promoters, 1 passive, 3 detractors of 8
    nl = segment["metrics"][0]
    assert (nl["n"], nl["positive"], nl["neutral"], nl["negative"]) == (8, 4, 1, 3)
    assert segment["filters"] == ["country=NL", "plan!=free"]
    adhoc = await metrics(
        client, auth, survey_id=survey, metric="nps", filter=["tier=gold"], group_by="country"
    )
    assert adhoc["metrics"][0]["n"] == 8
    assert {g["value"]: g["metrics"][0]["n"] for g in adhoc["groups"]} == {"BE": 1, "NL": 7}

    everyday = by_metric(await metrics(client, auth, metric="nps"))["nps"]
    assert everyday["n"] == 12, "retention surveys are left out of workspace-wide figures"
    with_retention = by_metric(
        await metrics(client, auth, metric="nps", kind=["transactional", "retention"])
    )["nps"]
    assert with_retention["n"] == 13
    by_survey = await metrics(
        client, auth, metric="nps", group_by="survey", kind=["transactional", "retention"]
    )
    assert {g["value"]: g["metrics"][0]["n"] for g in by_survey["groups"]} == {survey: 12, retention: 1}


async def test_a_period_is_compared_with_the_one_before_it(app, client, producer, auth, workspace):
    survey = svy()
    today = utcnow().date()
    ten_days_ago = datetime.combine(today - timedelta(days=10), datetime.min.time(), UTC) + timedelta(
        hours=12
    )
    two_days_ago = ten_days_ago + timedelta(days=8)
    for _ in range(20):
        await publish(
            producer, response(workspace, survey, ("nps", "nps", 3), ("csat", "csat", 2), at=ten_days_ago)
        )
    for _ in range(20):
        await publish(
            producer, response(workspace, survey, ("nps", "nps", 10), ("csat", "csat", 5), at=two_days_ago)
        )
    await counted(client, auth, survey, 40)
    since = (today - timedelta(days=6)).isoformat()
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    engine = app[0].state.runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        body = await metrics(
            client, auth, survey_id=survey, compare="true", **{"from": since, "to": today.isoformat()}
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # Every metric of a period in one query on the rollups: one for the period, one for the one before.
    assert sum("daily_histograms" in s for s in statements) == 2, statements
    nps, csat = by_metric(body)["nps"], by_metric(body)["csat"]
    assert (nps["n"], nps["score"]) == (20, 100.0)
    assert nps["change"] | {"p_value": None} == {
        "previous_from": (today - timedelta(days=13)).isoformat(),
        "previous_to": (today - timedelta(days=7)).isoformat(),
        "previous_n": 20,
        "previous_score": -100.0,
        "difference": 200.0,
        "p_value": None,
        "significant": True,
    }
    assert nps["change"]["p_value"] < 0.05 and csat["change"]["significant"] is True
    trend = (
        await client.get("/v1/metrics/trend", params={"survey_id": survey, "interval": "day"}, headers=auth)
    ).json()
    assert [(p["period_start"], p["n"]) for p in trend["points"]] == [
        (ten_days_ago.date().isoformat(), 20),
        (two_days_ago.date().isoformat(), 20),
    ]
    for interval in ("week", "month"):
        periods = (
            await client.get(
                "/v1/metrics/trend", params={"survey_id": survey, "interval": interval}, headers=auth
            )
        ).json()["points"]
        starts = [date.fromisoformat(p["period_start"]) for p in periods]
        assert sum(p["n"] for p in periods) == 40
        assert all(d.weekday() == 0 if interval == "week" else d.day == 1 for d in starts)


async def test_response_rates_come_from_the_invitation_funnel(client, producer, auth, workspace):
    survey = svy()
    invitations = [new_id() for _ in range(4)]
    now = utcnow()
    base = {"workspace_id": workspace, "survey_id": survey, "kind": "transactional", "occurred_at": now}
    for i, invitation in enumerate(invitations):
        about = base | {"invitation_id": invitation, "request_id": new_id(), "contact_id": f"c-{i}"}
        channel = "sms" if i == 3 else "email"
        await publish(producer, InvitationSent(**about, channel=channel, locale="nl"))
        if i < 2:
            await publish(producer, InvitationDelivered(**about, channel=channel))
        if i == 3:
            await publish(producer, InvitationBounced(**about, channel=channel))
    for i in range(2):
        await publish(
            producer,
            response(workspace, survey, ("nps", "nps", 9), contact_id=f"c-{i}", invitation_id=invitations[i]),
        )
    await counted(client, auth, survey, 2)

    async def rate() -> dict[str, Any] | None:
        body = (
            await client.get(
                "/v1/metrics/response-rate", params={"survey_id": survey, "group_by": "channel"}, headers=auth
            )
        ).json()
        return body if body.get("sent") == 4 and body.get("bounced") == 1 else None

    body = await wait_until(rate, message="funnel counted")
    # delivered: 2 confirmed + 1 sent by email without a bounce (SMTP confirms nothing); the bounce is not
    assert (body["invited"], body["delivered"], body["responded"]) == (4, 3, 2)
    assert body["response_rate"] == pytest.approx(66.67, abs=0.01)
    assert {g["value"]: (g["delivered"], g["responded"]) for g in body["groups"]} == {
        "email": (3, 2),
        "sms": (0, 0),
    }
    refused = await client.get("/v1/metrics/response-rate", params={"group_by": "team"}, headers=auth)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "group_by"


async def test_themes_comments_suggestions_and_erasure(client, producer, auth, workspace):
    survey = svy()
    comments = [
        ("c-nl-1", "nl", 2, "De levering was veel te laat en de factuur klopte niet"),
        ("c-nl-2", "nl", 3, "Leveringen komen nooit op tijd, factuur fout"),
        ("c-en-1", "en", 1, "The delivery was late and the invoice was wrong"),
        ("c-en-2", "en", 10, "Friendly staff and fast delivery"),
        ("c-en-3", "en", 9, "Very helpful agent"),
        ("c-en-4", "en", 4, "Invoice errors again, and the parcel arrived late"),
    ]
    for contact, locale, score, text in comments:
        await publish(
            producer,
            response(
                workspace,
                survey,
                ("nps", "nps", score),
                ("why", "open", text),
                contact_id=contact,
                locale=locale,
            ),
        )
    await counted(client, auth, survey, len(comments))
    body = (await client.get("/v1/themes", params={"survey_id": survey}, headers=auth)).json()
    themes = {t["theme"]: t for t in body["themes"]}
    assert body["comments"] == 6
    delivery = themes["delivery"]
    assert delivery["mentions"] == 5 and delivery["nps_n"] == 5
    # 1 promoter (10), 4 detractors (2, 3, 1, 4): NPS −60; the negative share over mentions with a sentiment
    assert delivery["nps"] == -60.0 and delivery["negative_share"] is not None
    assert themes["staff"]["too_few_answers"] is True and themes["staff"]["nps"] is None

    about = (
        await client.get("/v1/themes/delivery/comments", params={"survey_id": survey}, headers=auth)
    ).json()
    assert len(about["comments"]) == 5 and {c["language"] for c in about["comments"]} == {"nl", "en"}
    dutch = next(c for c in about["comments"] if c["language"] == "nl")
    assert dutch["label"] == "negative" and dutch["confidence"] == "high"

    suggestions = (
        await client.get(
            "/v1/themes/suggestions", params={"survey_id": survey, "min_mentions": 2}, headers=auth
        )
    ).json()
    terms = [s["term"] for s in suggestions["suggestions"]]
    assert terms[0] == "late", "detractors say late; nobody else does"
    assert "invoice" not in terms, "already a keyword of the built-in price theme"
    accepted = await client.post(
        "/v1/themes/suggestions/accept", json={"term": "late", "language": "en"}, headers=auth
    )
    assert accepted.status_code == 201 and accepted.json() == {"theme": "late", "keywords": {"en": ["late"]}}
    put = await client.put(
        "/v1/themes/rules/billing", json={"keywords": {"en": ["invoice"], "nl": ["factuur"]}}, headers=auth
    )
    assert put.status_code == 200
    themes = {
        t["theme"]: t
        for t in (await client.get("/v1/themes", params={"survey_id": survey}, headers=auth)).json()["themes"]
    }
    assert themes["billing"]["mentions"] == 4, "an edited rule applies to comments already received"
    assert "delivery" in [r["theme"] for r in (await client.get("/v1/themes/rules", headers=auth)).json()]
    assert (await client.delete("/v1/themes/rules/billing", headers=auth)).status_code == 204
    assert (await client.get("/v1/themes/billing/comments", headers=auth)).status_code == 404

    await publish(producer, ContactErased(workspace_id=workspace, contact_id="c-nl-1", erased_at=utcnow()))

    async def erased() -> bool:
        found = (
            await client.get("/v1/themes/delivery/comments", params={"survey_id": survey}, headers=auth)
        ).json()
        return len(found["comments"]) == 4

    await wait_until(erased, message="the erased contact's comment is gone")
    assert (await metrics(client, auth, survey_id=survey, metric="nps"))["metrics"][0]["n"] == 6, (
        "scores stay"
    )


async def test_a_target_breached_recovered_and_breached_again_notifies_exactly_three_times(
    app, client, clock, producer, auth, workspace, broker
):
    survey = svy()
    evaluator = app[0].state.runtime.deps.evaluator

    async def answers(score: int, n: int) -> None:
        at = clock.now()
        before = (await metrics(client, auth, survey_id=survey, metric="csat"))["metrics"][0]["n"] if n else 0
        for _ in range(n):
            await publish(producer, response(workspace, survey, ("csat", "csat", score), at=at))
        await counted(client, auth, survey, before + n, metric="csat")

    async with (
        TopicReader(broker.bootstrap_servers, NOTIFICATIONS) as notes,
        TopicReader(broker.bootstrap_servers, SCORES) as changes,
    ):
        await publish(producer, response(workspace, survey, ("csat", "csat", 1)))
        await counted(client, auth, survey, 1, metric="csat")
        created = await client.post(
            "/v1/targets",
            json={
                "name": "Support CSAT",
                "metric": "csat",
                "survey_id": survey,
                "threshold": 80,
                "window_days": 7,
                "owner": "lead@example.com",
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text
        target = created.json()["id"]

        async def status() -> dict[str, Any]:
            return (await client.get(f"/v1/targets/{target}", headers=auth)).json()

        first = await wait_until(lambda: _evaluated(client, auth, target), message="evaluated on creation")
        assert (first["status"], first["n"]) == ("too_few_answers", 1)
        await answers(1, 9)  # 0 of 10 satisfied: the whole interval (0 … 27.8%) is under 80
        clock.advance(timedelta(hours=2))
        await evaluator.work_once()
        assert (await status())["status"] == "breached"
        clock.advance(timedelta(hours=2))
        await evaluator.work_once()  # evaluated again, no change, nothing sent

        clock.advance(timedelta(days=8))  # the bad week leaves the window
        await answers(5, 10)
        clock.advance(timedelta(hours=2))
        await evaluator.work_once()
        recovered = await status()
        assert (recovered["status"], recovered["value"], recovered["n"]) == ("met", 100.0, 10)

        clock.advance(timedelta(days=8))
        await answers(2, 10)
        clock.advance(timedelta(hours=2))
        await evaluator.work_once()
        clock.advance(timedelta(hours=2))
        await evaluator.work_once()
        assert (await status())["status"] == "breached"

        mine = lambda v: v["workspaceid"] == workspace  # noqa: E731
        sent = await notes.wait_for(mine, count=3)
        events = await changes.wait_for(
            lambda v: mine(v) and v["type"] == "closeloop.TargetStatusChanged.v1", count=3
        )
        await notes.read_to_end()
        await changes.read_to_end()
        assert len([v for v in notes.values() if isinstance(v, dict) and mine(v)]) == 3
        assert [e["data"]["status"] for e in events] == ["breached", "met", "breached"]
        assert [e["data"]["previous_status"] for e in events] == ["too_few_answers", "breached", "met"]
        assert [s["data"]["to"] for s in sent] == ["lead@example.com"] * 3
        # notifications are keyed by their own id, so partitions may interleave them: compare as a set
        subjects = sorted(s["data"]["subject"].rsplit(" is ", 1)[1] for s in sent)
        assert subjects == ["breached", "breached", "met"]


async def _evaluated(client: httpx.AsyncClient, auth: dict[str, str], target: str) -> dict[str, Any] | None:
    body = (await client.get(f"/v1/targets/{target}", headers=auth)).json()
    return body if body["status"] is not None else None


async def test_low_scores_reach_the_team_channel_with_or_without_consent(
    client, producer, auth, workspace, broker
):
    survey = svy()
    rule = await client.post(
        "/v1/notification-rules",
        json={
            "name": "Zeroes to NL",
            "metric": "nps",
            "max_score": 2,
            "filters": ["country=NL"],
            "channel": "chat",
            "to": "#nl-support",
        },
        headers=auth,
    )
    assert rule.status_code == 201, rule.text
    async with TopicReader(broker.bootstrap_servers, NOTIFICATIONS) as notes:
        await publish(
            producer,
            response(
                workspace, survey, ("nps", "nps", 0), ("why", "open", "Awful"), hidden={"attr.country": "NL"}
            ),
        )
        await publish(producer, response(workspace, survey, ("nps", "nps", 0), hidden={"attr.country": "BE"}))
        await publish(producer, response(workspace, survey, ("nps", "nps", 5), hidden={"attr.country": "NL"}))
        await counted(client, auth, survey, 3)
        [note] = await notes.wait_for(lambda v: v["workspaceid"] == workspace)
        await notes.read_to_end()
        assert len([v for v in notes.values() if isinstance(v, dict) and v["workspaceid"] == workspace]) == 1
    assert (note["data"]["channel"], note["data"]["to"]) == ("chat", "#nl-support")
    assert "NPS 0" in note["data"]["subject"] and "did not agree to be contacted" in note["data"]["body"]
    assert "Awful" in note["data"]["body"]
    listed = (await client.get("/v1/notification-rules", headers=auth)).json()
    assert [r["name"] for r in listed] == ["Zeroes to NL"]
    assert (await client.delete(f"/v1/notification-rules/{listed[0]['id']}", headers=auth)).status_code == 204


async def test_surveys_are_learnt_from_their_lifecycle_events(client, producer, auth, workspace):
    survey = svy()
    await publish(
        producer,
        SurveyPublished(
            workspace_id=workspace,
            survey_id=survey,
            survey_version=2,
            name="Onboarding",
            open=True,
            questions=(SurveyQuestion(id="nps", type="nps"), SurveyQuestion(id="nls", type="nls")),
            published_at=utcnow(),
        ),
    )

    async def listed() -> dict[str, Any] | None:
        body = (await client.get("/v1/surveys", headers=auth)).json()
        return next((s for s in body["surveys"] if s["survey_id"] == survey), None)

    found = await wait_until(listed, message="survey known")
    assert (found["name"], found["version"], found["open"], found["published"], found["answered"]) == (
        "Onboarding",
        2,
        True,
        True,
        False,
    )
    nps = await client.get(f"/v1/surveys/{survey}/nps", headers=auth)
    assert nps.status_code == 200 and nps.json()["n"] == 0 and nps.json()["nps"] is None
    await publish(producer, SurveyClosed(workspace_id=workspace, survey_id=survey, closed_at=utcnow()))

    async def closed() -> bool:
        s = await listed()
        return s is not None and s["open"] is False

    await wait_until(closed, message="survey closed")


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/v1/metrics", {"filter": "country"}, "filter.0"),
        ("/v1/metrics", {"filter": ["plan=pro", "Bad=x"]}, "filter.1"),
        ("/v1/metrics", {"group_by": "Not-A-Name"}, "group_by"),
        ("/v1/metrics", {"compare": "true"}, "compare"),
        ("/v1/metrics", {"kind": "weekly"}, "kind.0"),
        ("/v1/metrics/trend", {"metric": "happiness"}, "metric"),
        ("/v1/metrics/matrix", {"interval": "hour"}, "interval"),
        ("/v1/themes/x/comments", {"limit": 0}, "limit"),
    ],
)
async def test_bad_report_input_names_the_parameter(client, auth, path, params, field):
    r = await client.get(path, params=params, headers=auth)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/v1/metrics?survey_id=nope", None),
        ("GET", "/v1/metrics/matrix?survey_id=nope", None),
        ("GET", "/v1/themes?survey_id=nope", None),
        ("GET", "/v1/surveys/nope/scoring", None),
        ("GET", "/v1/surveys/nope/nps", None),
        ("PUT", "/v1/surveys/nope/scoring", {"nps_scale": "european"}),
        ("POST", "/v1/targets", {"name": "x", "metric": "nps", "survey_id": "nope", "threshold": 10}),
    ],
)
async def test_unknown_surveys_are_404_naming_survey_id(client, auth, method, path, body):
    r = await client.request(method, path, json=body, headers=auth)
    assert r.status_code == 404, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["survey_id"]


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/v1/targets", {"name": "x", "metric": "nps", "threshold": 10, "filters": ["country"]}, "filters.0"),
        ("/v1/targets", {"name": "x", "metric": "happiness", "threshold": 10}, "metric"),
        ("/v1/targets", {"name": "x", "metric": "nps", "threshold": 101}, "threshold"),
        ("/v1/targets", {"name": "x", "metric": "nps", "threshold": 1, "window_days": 0}, "window_days"),
        ("/v1/notification-rules", {"name": "x", "metric": "nps", "channel": "fax", "to": "y"}, "channel"),
        (
            "/v1/notification-rules",
            {"name": "x", "metric": "nps", "channel": "chat", "to": "y", "filters": ["a!b"]},
            "filters.0",
        ),
    ],
)
async def test_bad_configuration_names_the_field(client, auth, path, body, field):
    r = await client.post(path, json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_settings_min_n_changes_what_is_hidden(client, producer, auth, workspace):
    survey = svy()
    for team in ("A", "A", "B"):
        await publish(producer, response(workspace, survey, ("nps", "nps", 10), hidden={"team": team}))
    await counted(client, auth, survey, 3)
    put = await client.put("/v1/settings", json={"min_n": 2, "negative": {"nps": 4}}, headers=auth)
    assert (
        put.status_code == 200 and put.json()["negative"]["nps"] == 4 and put.json()["negative"]["csat"] == 2
    )
    groups = (await metrics(client, auth, survey_id=survey, metric="nps", group_by="team"))["groups"]
    assert [(g["value"], g["metrics"][0]["too_few_answers"]) for g in groups] == [("A", False), ("B", True)]
    assert (await client.put("/v1/settings", json={"min_n": 0}, headers=auth)).status_code == 422


async def test_workspace_figures_classify_each_survey_on_its_own_scale(client, producer, auth, stack_env):
    from shared.security import issue_api_key

    workspace = "ws-scales-" + secrets.token_hex(4)
    headers = {"Authorization": "Bearer " + issue_api_key(stack_env["CLOSELOOP_SECRET_KEY"], workspace)}
    standard, european = svy(), svy()
    for survey in (standard, european):
        await publish(producer, response(workspace, survey, ("nps", "nps", 8), ("nls", "nls", 8)))
    await counted(client, headers, european, 1)
    await counted(client, headers, standard, 1)
    assert (
        await client.put(f"/v1/surveys/{european}/scoring", json={"nps_scale": "european"}, headers=headers)
    ).status_code == 200
    for params in ({}, {"group_by": "team"}, {"filter": "channel=email"}):
        nps = by_metric(await metrics(client, headers, metric="nps", **params))["nps"]
        # the 8 is a promoter on the European survey only: 1 promoter, 1 passive
        assert (nps["positive"], nps["neutral"], nps["score"]) == (1, 1, 50.0), params
    matrix = (await client.get("/v1/metrics/matrix", headers=headers)).json()
    assert (matrix["cells"]["pure"]["count"], matrix["cells"]["undecided"]["count"]) == (1, 1)
    segmented = (
        await client.get("/v1/metrics/matrix", params={"filter": "channel=email"}, headers=headers)
    ).json()
    assert segmented["cells"] == matrix["cells"]


async def test_the_newest_comments_with_sentiment_themes_and_a_phrase_search(
    client, producer, auth, workspace
):
    survey = svy()
    texts = [
        "The parcel arrived LATE again",
        "Friendly staff, thank you",
        "Late delivery and 100% wrong_item",
    ]
    ids = []
    for i, text_ in enumerate(texts):
        event = response(
            workspace, survey, ("nps", "nps", 2 + 3 * i), ("why", "open", text_), contact_id=f"c-{i}"
        )
        ids.append(event.response_id)
        await publish(producer, event)
    await counted(client, auth, survey, 3)
    body = (await client.get("/v1/comments", params={"survey_id": survey}, headers=auth)).json()
    assert {c["text"] for c in body["comments"]} == set(texts)
    late = (await client.get("/v1/comments", params={"survey_id": survey, "q": "late"}, headers=auth)).json()
    assert {c["response_id"] for c in late["comments"]} == {ids[0], ids[2]}
    assert all("delivery" in c["themes"] for c in late["comments"])
    literal = (
        await client.get("/v1/comments", params={"survey_id": survey, "q": "100%"}, headers=auth)
    ).json()
    assert [c["response_id"] for c in literal["comments"]] == [ids[2]]  # % is a character, not a wildcard
    one = (await client.get("/v1/comments", params={"response_id": ids[1]}, headers=auth)).json()["comments"]
    assert [(c["text"], c["nps"]) for c in one] == [(texts[1], 5)] and one[0]["label"] == "positive"
    other = {"Authorization": f"Bearer {issue_api_key(SECRET_KEY, workspace + '-x')}"}
    assert (await client.get("/v1/comments", params={"response_id": ids[1]}, headers=other)).json()[
        "comments"
    ] == []
    viewer = person_auth(workspace, "viewer")
    assert (await client.get("/v1/comments", headers=viewer)).status_code == 200
    assert (await client.get("/v1/comments", params={"limit": 500}, headers=auth)).status_code == 422


async def test_segmented_reports_from_the_answer_cache_count_a_redelivery_once(
    app, client, producer, auth, workspace
):
    """The API's columns of recent answers catch up with what the consumer commits, once each."""
    cache = app[0].state.runtime.deps.answers
    survey = svy()
    first = response(workspace, survey, ("q-nps", "nps", 9), locale="nl")
    envelope = await publish(producer, first)
    await counted(client, auth, survey, 1)
    segmented = {"metric": "nps", "group_by": "language", "filter": "channel!=sms"}
    segmented["from"] = (utcnow().date() - timedelta(days=7)).isoformat()
    await metrics(client, auth, **segmented)  # PostgreSQL answers; the columns start loading
    await cache.ready(workspace)
    await publish(producer, first, event_id=envelope)  # the broker redelivers
    await publish(producer, first)  # the same response under a new event id
    await publish(producer, response(workspace, survey, ("q-nps", "nps", 2), locale="en"))
    await counted(client, auth, survey, 2)
    served = cache.served
    body = await metrics(client, auth, **segmented)
    assert cache.served > served
    assert body["metrics"][0]["n"] == 2
    assert {g["value"]: g["metrics"][0]["n"] for g in body["groups"]} == {"en": 1, "nl": 1}
