"""Rules against real PostgreSQL and the broker: conditions, channel fallbacks, sampling, frequency
caps under concurrency, delays, quiet hours, journeys and recurring surveys (with a clock the test
moves), decisions per contact and event, dry runs and the audit log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.trigger.app import create_app
from shared.events import SURVEY_REQUESTS
from tests.support import trigger as fx
from tests.support.access import key_id_of, person_auth
from tests.support.stack import TopicReader, running
from tests.support.trigger import ours

pytestmark = pytest.mark.integration


svc, _real_time = fx.driven_trigger_fixtures()


async def rule(svc, auth, **body: Any) -> dict[str, Any]:
    return await fx.created_rule(
        svc, auth, **{"name": "rule", "survey_id": "svy", "event_type": "ticket.solved", **body}
    )


async def event(
    svc, auth, external_id: str, event_type: str = "ticket.solved", *, eid: str | None = None, **data: Any
) -> dict[str, Any]:
    contact = {"external_id": external_id, **data.pop("contact", {})}
    body = {
        "id": eid or f"e-{external_id}-{datetime.now(UTC).timestamp()}",
        "type": event_type,
        "data": {"contact": contact, **data},
    }
    response = await svc.client.post("/v1/events", json=body, headers=auth)
    assert response.status_code == 202, response.text
    return response.json()


async def outcomes(svc, auth, external_id: str) -> list[str]:
    response = await svc.client.get(f"/v1/contacts/{external_id}/decisions", headers=auth)
    assert response.status_code == 200, response.text
    return [d["outcome"] for d in response.json()]


async def test_conditions_on_event_properties_and_contact_attributes(svc, auth):
    await rule(
        svc,
        auth,
        conditions={
            "all": [
                {"field": "event.priority", "op": "in", "value": ["high", "urgent"]},
                {
                    "any": [
                        {"field": "contact.plan", "op": "equals", "value": "enterprise"},
                        {"field": "contact.seats", "op": "gte", "value": 50},
                    ]
                },
            ]
        },
    )
    await svc.client.put(
        "/v1/contacts/big", json={"email": "big@example.com", "attributes": {"seats": 80}}, headers=auth
    )
    await svc.client.put(
        "/v1/contacts/ent", json={"email": "ent@example.com", "plan": "Enterprise"}, headers=auth
    )
    await svc.client.put(
        "/v1/contacts/small", json={"email": "small@example.com", "plan": "starter"}, headers=auth
    )
    assert (await event(svc, auth, "big", priority="urgent"))["surveys_requested"] == 1
    assert (await event(svc, auth, "ent", priority="high"))["surveys_requested"] == 1
    assert (await event(svc, auth, "small", priority="high"))["surveys_requested"] == 0
    assert (await event(svc, auth, "ent", eid="low-prio", priority="low"))["surveys_requested"] == 0
    assert await outcomes(svc, auth, "small") == ["conditions_not_met"]


async def test_whatsapp_else_sms_else_email(svc, auth, broker, workspace):
    await rule(svc, auth, channel="whatsapp", fallback_channels=["sms", "email"], locale="nl")
    async with TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        await event(svc, auth, "phone", contact={"phone": "+31612345678", "email": "p@example.com"})
        await event(svc, auth, "mail", contact={"email": "m@example.com"})
        await event(svc, auth, "nothing")
        requests = await reader.wait_for(lambda v: ours(v, workspace), count=2)
    by_email = {r["data"]["recipient"]["email"]: r["data"] for r in requests}
    assert by_email["p@example.com"]["channel"] == "whatsapp"
    assert by_email["p@example.com"]["fallback_channels"] == ["sms", "email"]
    assert (
        by_email["m@example.com"]["channel"] == "email"
        and by_email["m@example.com"]["fallback_channels"] == []
    )
    assert by_email["m@example.com"]["locale"] == "nl"
    decisions = (await svc.client.get("/v1/contacts/nothing/decisions", headers=auth)).json()
    assert decisions[0]["outcome"] == "no_channel" and "whatsapp: no phone known" in decisions[0]["reason"]


async def test_sampling_is_a_stable_share_of_contacts(svc, auth):
    await rule(svc, auth, sample_percent=50)
    first = [
        (await event(svc, auth, f"s{i}", contact={"email": f"s{i}@example.com"}))["surveys_requested"]
        for i in range(40)
    ]
    assert 8 < sum(first) < 32
    again = [(await event(svc, auth, f"s{i}", eid=f"again-{i}"))["surveys_requested"] for i in range(40)]
    # The same contacts are in the sample the second time (the rest are "not_sampled" again).
    assert [a for a, b in zip(first, again, strict=True) if b] == [1] * sum(again)
    assert sum(again) == sum(first)
    assert (await outcomes(svc, auth, f"s{first.index(0)}")) == ["not_sampled", "not_sampled"]


async def test_workspace_cap_per_survey_cap_and_retention_exemption(svc, auth):
    assert (
        await svc.client.put(
            "/v1/settings", json={"frequency_cap": {"max_surveys": 1, "days": 30}}, headers=auth
        )
    ).status_code == 200
    await rule(svc, auth, name="nps", survey_id="nps")
    await rule(svc, auth, name="retention", survey_id="ret", event_type="followup.resolved", kind="retention")
    await rule(
        svc,
        auth,
        name="csat",
        survey_id="csat",
        event_type="order.delivered",
        survey_cap={"max_surveys": 1, "days": 90},
        exempt_from_caps=True,
    )
    contact = {"email": "capped@example.com"}
    assert (await event(svc, auth, "capped", contact=contact))["surveys_requested"] == 1
    assert (await event(svc, auth, "capped", eid="second"))["surveys_requested"] == 0
    assert (await event(svc, auth, "capped", "followup.resolved"))["surveys_requested"] == 1
    assert (await event(svc, auth, "capped", "order.delivered"))[
        "surveys_requested"
    ] == 1  # exempt from the workspace cap
    assert (await event(svc, auth, "capped", "order.delivered", eid="again"))[
        "surveys_requested"
    ] == 0  # … not its own
    assert await outcomes(svc, auth, "capped") == [
        "sent",
        "suppressed_by_cap",
        "sent",
        "sent",
        "suppressed_by_cap",
    ]
    # 31 days later the workspace cap has room again.
    svc.clock.advance(timedelta(days=31))
    assert (await event(svc, auth, "capped", eid="a-month-later"))["surveys_requested"] == 1


async def test_two_events_for_one_contact_at_the_same_moment_never_both_send(svc, auth, workspace):
    await svc.client.put("/v1/settings", json={"frequency_cap": {"max_surveys": 1, "days": 30}}, headers=auth)
    await rule(svc, auth)
    await svc.client.put("/v1/contacts/racer", json={"email": "racer@example.com"}, headers=auth)
    bodies = [
        {"id": f"race-{i}", "type": "ticket.solved", "data": {"contact": {"external_id": "racer"}}}
        for i in range(12)
    ]
    # Half of them in one batch, half as single requests, all at once.
    responses = await asyncio.gather(
        svc.client.post("/v1/events", json=bodies[:6], headers=auth),
        *(svc.client.post("/v1/events", json=b, headers=auth) for b in bodies[6:]),
    )
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
    assert sum(r.json()["surveys_requested"] for r in responses) == 1
    decided = await outcomes(svc, auth, "racer")
    assert sorted(decided) == ["sent"] + ["suppressed_by_cap"] * 11


async def test_concurrent_batches_sharing_contacts_do_not_deadlock_or_double_send(svc, auth):
    await svc.client.put("/v1/settings", json={"frequency_cap": {"max_surveys": 1, "days": 30}}, headers=auth)
    await rule(svc, auth)
    names = [f"shared-{i}" for i in range(20)]
    for name in names:
        await svc.client.put(f"/v1/contacts/{name}", json={"email": f"{name}@example.com"}, headers=auth)

    def batch(tag: str, order: list[str]) -> list[dict[str, Any]]:
        return [
            {"id": f"{tag}-{n}", "type": "ticket.solved", "data": {"contact": {"external_id": n}}}
            for n in order
        ]

    responses = await asyncio.gather(
        *(
            svc.client.post("/v1/events", json=batch(f"b{k}", names if k % 2 else names[::-1]), headers=auth)
            for k in range(6)
        )
    )
    assert all(r.status_code == 202 for r in responses)
    assert sum(r.json()["surveys_requested"] for r in responses) == 20


DELAYED_TRACE = "2b7e1d2c3b4a5f60718293a4b5c6d7e8"


async def test_a_delay_is_kept_by_the_scheduler_which_checks_the_contact_again(svc, auth, broker, workspace):
    await rule(svc, auth, name="24h after solved", delay_seconds=86400)
    async with TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        contact = {"external_id": "later", "email": "later@example.com"}
        traced = {"id": f"e-later-{workspace}", "type": "ticket.solved", "data": {"contact": contact}}
        headers = {**auth, "traceparent": f"00-{DELAYED_TRACE}-00f067aa0ba902b7-01"}
        assert (await svc.client.post("/v1/events", json=traced, headers=headers)).status_code == 202
        await event(svc, auth, "changed-mind", contact={"email": "changed@example.com"})
        assert await outcomes(svc, auth, "later") == ["delayed"]
        await svc.client.post("/v1/contacts/changed-mind/opt-out", headers=auth)
        await svc.scheduler.run_due(now=svc.clock.now() + timedelta(hours=23))
        assert await outcomes(svc, auth, "later") == ["delayed"]  # not due yet
        await svc.scheduler.run_due(now=svc.clock.now() + timedelta(hours=24, minutes=1))
        [request] = await reader.wait_for(lambda v: ours(v, workspace))
    assert request["data"]["recipient"]["email"] == "later@example.com"
    # A day later, in another process: the survey request is still in the trace of the request that
    # brought the event.
    assert request["traceparent"].split("-")[1] == DELAYED_TRACE
    assert await outcomes(svc, auth, "later") == ["delayed", "sent"]
    assert await outcomes(svc, auth, "changed-mind") == ["delayed", "opted_out"]


async def test_quiet_hours_in_the_contacts_time_zone(svc, auth):
    await svc.client.put(
        "/v1/settings",
        json={"quiet_hours": {"start": "21:00", "end": "08:00"}, "default_timezone": "Europe/Amsterdam"},
        headers=auth,
    )
    await rule(svc, auth)
    # 23:30 in Amsterdam (22:30 UTC in November), a real date in the future of the test run.
    today = datetime.now(UTC).date() + timedelta(days=1)
    late = datetime(today.year, today.month, today.day, 22, 30, tzinfo=UTC)
    svc.clock.set(late)
    await event(svc, auth, "night-owl", contact={"email": "owl@example.com"})
    await event(svc, auth, "new-york", contact={"email": "ny@example.com", "timezone": "America/New_York"})
    decisions = (await svc.client.get("/v1/contacts/night-owl/decisions", headers=auth)).json()
    assert decisions[0]["outcome"] == "delayed" and "quiet hours" in decisions[0]["reason"]
    send_at = datetime.fromisoformat(decisions[0]["send_at"])
    assert send_at.astimezone(UTC).hour == 7  # 08:00 in Amsterdam
    assert await outcomes(svc, auth, "new-york") == ["sent"]  # 17:30 there: not quiet
    await svc.scheduler.run_due(now=send_at)
    assert await outcomes(svc, auth, "night-owl") == ["delayed", "sent"]


async def test_journey_30_days_after_becoming_a_customer(svc, auth, workspace):
    integration = (
        await svc.client.post(
            "/v1/integrations",
            json={"name": "HubSpot", "kind": "hubspot", "secret": "hs-" + workspace},
            headers=auth,
        )
    ).json()
    journey = await rule(
        svc,
        auth,
        name="30 days a customer",
        source="hubspot",
        event_type="contact.propertyChange",
        conditions={"field": "event.lifecyclestage", "op": "equals", "value": "customer"},
        delay_seconds=30 * 86400,
        kind="relationship",
    )
    await svc.client.put("/v1/contacts/501", json={"email": "j501@example.com", "plan": "pro"}, headers=auth)
    body = fx.dumps([fx.lifecycle_customer(501)])
    path = integration["webhook_url"].split("/v1/", 1)[1]
    response = await svc.client.post(
        f"/v1/{path}",
        content=body,
        headers=fx.hubspot_v3_headers("hs-" + workspace, integration["webhook_url"], body),
    )
    assert response.status_code == 202, response.text
    await fx.settled(svc.client, auth, response)
    [delayed] = (await svc.client.get("/v1/contacts/501/decisions", headers=auth)).json()
    assert delayed["outcome"] == "delayed" and delayed["rule_id"] == journey["id"]
    await svc.scheduler.run_due(now=svc.clock.now() + timedelta(days=29))
    assert await outcomes(svc, auth, "501") == ["delayed"]
    await svc.scheduler.run_due(now=svc.clock.now() + timedelta(days=30, minutes=1))
    assert await outcomes(svc, auth, "501") == ["delayed", "sent"]


async def test_recurring_relationship_survey_every_90_days(svc, auth):
    every = await rule(
        svc,
        auth,
        name="relationship NPS",
        event_type="contact.enrolled",
        recurrence_days=90,
        kind="relationship",
    )
    await event(svc, auth, "loyal", "contact.enrolled", contact={"email": "loyal@example.com"})
    await event(svc, auth, "loyal", "contact.enrolled", eid="enrolled-again")
    assert await outcomes(svc, auth, "loyal") == ["sent", "already_enrolled"]
    start = svc.clock.now()
    await svc.scheduler.run_due(now=start + timedelta(days=89))
    assert await outcomes(svc, auth, "loyal") == ["sent", "already_enrolled"]
    await svc.scheduler.run_due(now=start + timedelta(days=90, minutes=1))
    await svc.scheduler.run_due(now=start + timedelta(days=180, minutes=2))
    assert await outcomes(svc, auth, "loyal") == ["sent", "already_enrolled", "sent", "sent"]
    # Disabling the rule ends the enrolment at the next due date.
    await svc.client.patch(f"/v1/rules/{every['id']}", json={"enabled": False}, headers=auth)
    await svc.scheduler.run_due(now=start + timedelta(days=270, minutes=3))
    assert (await outcomes(svc, auth, "loyal"))[-1] == "cancelled"


async def test_decisions_per_event_and_per_outcome(svc, auth):
    first = await rule(svc, auth, name="first")
    second = await rule(svc, auth, name="second", channel="sms")
    accepted = await event(svc, auth, "multi", contact={"email": "multi@example.com"})
    per_event = (await svc.client.get(f"/v1/events/{accepted['event_id']}/decisions", headers=auth)).json()
    assert [(d["rule_id"], d["outcome"]) for d in per_event] == [
        (first["id"], "sent"),
        (second["id"], "no_channel"),
    ]
    assert all(d["rule_version"] == 1 and d["event_id"] == accepted["event_id"] for d in per_event)
    no_channel = (
        await svc.client.get("/v1/decisions", params={"outcome": "no_channel"}, headers=auth)
    ).json()
    assert [d["rule_id"] for d in no_channel] == [second["id"]]
    assert (
        await svc.client.get("/v1/decisions", params={"outcome": "maybe"}, headers=auth)
    ).status_code == 422
    assert (await svc.client.get("/v1/events/not-an-id", headers=auth)).status_code == 404


async def test_dry_run_explains_every_rule_and_writes_nothing(svc, auth):
    await svc.client.put("/v1/settings", json={"frequency_cap": {"max_surveys": 1, "days": 30}}, headers=auth)
    matching = await rule(
        svc, auth, name="solved VIPs", conditions={"field": "contact.plan", "op": "equals", "value": "vip"}
    )
    await rule(svc, auth, name="deals", event_type="deal.won")
    await svc.client.put("/v1/contacts/dry", json={"email": "dry@example.com", "plan": "vip"}, headers=auth)
    body = {
        "event_type": "ticket.solved",
        "properties": {"ticket_id": "T-9"},
        "contact": {"external_id": "dry"},
    }
    result = (await svc.client.post("/v1/rules/dry-run", json=body, headers=auth)).json()
    assert result["contact_known"] is True
    [vip, deals] = result["rules"]
    assert vip["rule_id"] == matching["id"] and vip["matched"] and vip["outcome"] == "sent"
    assert vip["conditions"] == [
        {"field": "contact.plan", "op": "equals", "value": "vip", "actual": "vip", "holds": True}
    ]
    assert not deals["matched"] and "deal.won" in deals["reason"]
    assert await outcomes(svc, auth, "dry") == []  # nothing written
    # Overriding an attribute, and a draft rule that is not saved.
    await fx.known_survey(svc.client, auth, svc.producer, "x")
    what_if = {
        **body,
        "contact": {"external_id": "dry", "plan": "free"},
        "rules": [{"name": "draft", "event_type": "ticket.*", "survey_id": "x", "sample_percent": 0}],
    }
    result = (await svc.client.post("/v1/rules/dry-run", json=what_if, headers=auth)).json()
    assert [(r["rule_id"], r["outcome"]) for r in result["rules"]] == [(None, "not_sampled")]
    await event(svc, auth, "dry")
    capped = (await svc.client.post("/v1/rules/dry-run", json=body, headers=auth)).json()
    assert capped["rules"][0]["outcome"] == "suppressed_by_cap" and capped["history"] == 1
    bad = await svc.client.post(
        "/v1/rules/dry-run",
        json={
            **body,
            "rules": [{"name": "d", "event_type": "t", "survey_id": "x", "conditions": {"field": "x"}}],
        },
        headers=auth,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rules.0.conditions.field"


async def test_rule_changes_are_versioned_and_audited(svc, auth, workspace):
    created = await rule(svc, auth, name="audited")
    # A person through the console: the audit names them from the token (an X-Actor header is not believed).
    who = {**person_auth(workspace, "admin", user_id="u-grace", name="Grace Hopper"), "X-Actor": "mallory"}
    patched = await svc.client.patch(f"/v1/rules/{created['id']}", json={"delay_seconds": 3600}, headers=who)
    assert (
        patched.status_code == 200
        and patched.json()["version"] == 2
        and patched.json()["delay_seconds"] == 3600
    )
    disabled = await svc.client.patch(f"/v1/rules/{created['id']}", json={"enabled": False}, headers=who)
    assert disabled.json()["version"] == 3
    unchanged = await svc.client.patch(f"/v1/rules/{created['id']}", json={"enabled": False}, headers=who)
    assert unchanged.json()["version"] == 3
    replaced = await svc.client.put(
        f"/v1/rules/{created['id']}",
        json={"name": "audited", "event_type": "ticket.closed", "survey_id": "svy"},
        headers=auth,
    )
    assert replaced.json()["version"] == 4 and replaced.json()["enabled"] is True
    assert (await svc.client.delete(f"/v1/rules/{created['id']}", headers=who)).status_code == 204
    assert (await svc.client.get(f"/v1/rules/{created['id']}", headers=auth)).status_code == 404
    history = (await svc.client.get(f"/v1/rules/{created['id']}/history", headers=auth)).json()
    assert [h["action"] for h in history] == ["created", "updated", "disabled", "updated", "deleted"]
    assert history[1]["actor"] == "Grace Hopper (user:u-grace)"
    assert history[3]["actor"] == f"key:{key_id_of(auth)}"
    assert history[1]["before"]["delay_seconds"] == 0 and history[1]["after"]["delay_seconds"] == 3600
    assert history[-1]["after"] is None and all(h["at"] for h in history)
    settings_change = await svc.client.put(
        "/v1/settings", json={"frequency_cap": {"max_surveys": 2, "days": 7}}, headers=who
    )
    assert settings_change.status_code == 200
    audit = (await svc.client.get("/v1/audit", params={"entity": "settings"}, headers=auth)).json()
    assert audit[0]["after"]["frequency_cap"] == {"max_surveys": 2, "days": 7}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"conditions": {"field": "event.x", "op": "resembles", "value": 1}}, "conditions.op"),
        ({"conditions": {"all": [{"field": "event.x", "op": "in", "value": "a"}]}}, "conditions.all.0.value"),
        ({"channel": "email", "fallback_channels": ["email"]}, "fallback_channels"),
        ({"channel": "pigeon"}, "channel"),
        ({"sample_percent": 101}, "sample_percent"),
        ({"survey_cap": {"max_surveys": 0, "days": 30}}, "survey_cap.max_surveys"),
        ({"recurrence_days": 0}, "recurrence_days"),
        ({"source": "Zen Desk"}, "source"),
        ({"locale": "english please"}, "locale"),
        # Strict types: never "yes" for true, "3600" or 3600.0 for an integer, 1 for true.
        ({"enabled": "yes"}, "enabled"),
        ({"respect_quiet_hours": "false"}, "respect_quiet_hours"),
        ({"exempt_from_caps": 1}, "exempt_from_caps"),
        ({"delay_seconds": "3600"}, "delay_seconds"),
        ({"delay_seconds": 3600.0}, "delay_seconds"),
        ({"recurrence_days": True}, "recurrence_days"),
        ({"sample_percent": "50"}, "sample_percent"),
    ],
)
async def test_bad_rules_are_refused_naming_the_field(svc, auth, body, field):
    response = await svc.client.post(
        "/v1/rules", json={"name": "r", "event_type": "t", "survey_id": "s", **body}, headers=auth
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_bad_settings_and_patches_are_refused(svc, auth):
    bad_zone = await svc.client.put("/v1/settings", json={"default_timezone": "Mars/Olympus"}, headers=auth)
    assert bad_zone.status_code == 422 and bad_zone.json()["errors"][0]["field"] == "default_timezone"
    bad_hours = await svc.client.put(
        "/v1/settings", json={"quiet_hours": {"start": "25:00", "end": "08:00"}}, headers=auth
    )
    assert bad_hours.status_code == 422 and bad_hours.json()["errors"][0]["field"] == "quiet_hours.start"
    created = await rule(svc, auth)
    null_name = await svc.client.patch(f"/v1/rules/{created['id']}", json={"name": None}, headers=auth)
    assert null_name.status_code == 422 and null_name.json()["errors"][0]["field"] == "name"
    clash = await svc.client.patch(
        f"/v1/rules/{created['id']}", json={"fallback_channels": ["email"]}, headers=auth
    )
    assert clash.status_code == 422 and clash.json()["errors"][0]["field"] == "fallback_channels"
    assert (await svc.client.get(f"/v1/rules/{created['id']}", headers=auth)).json()["version"] == 1
    assert (
        await svc.client.patch("/v1/rules/nope", json={"enabled": False}, headers=auth)
    ).status_code == 404


async def test_the_background_scheduler_sends_what_is_due(stack_env, auth, broker, workspace):
    """The worker itself (role ``scheduler``): a 1-second delay goes out without anyone calling it."""
    app = create_app(fx.trigger_settings(stack_env, role="api,relay,scheduler", scheduler_interval_ms=100))
    async with running(app) as client, TopicReader(broker.bootstrap_servers, SURVEY_REQUESTS) as reader:
        await fx.recorded_survey(app.state.runtime, workspace, "s")
        await client.post(
            "/v1/rules",
            json={"name": "soon", "event_type": "ping", "survey_id": "s", "delay_seconds": 1},
            headers=auth,
        )
        accepted = await client.post(
            "/v1/events",
            json={
                "id": "p1",
                "type": "ping",
                "data": {"contact": {"external_id": "bg", "email": "bg@example.com"}},
            },
            headers=auth,
        )
        assert accepted.json()["surveys_requested"] == 0
        [request] = await reader.wait_for(lambda v: ours(v, workspace), timeout_s=15)
        assert request["data"]["recipient"]["email"] == "bg@example.com"
