"""What a decision needs besides the rule and the contact, pure: the survey's state (open, closed,
unknown), quiet hours that name their channels, and the context a survey request carries (event
properties and the contact's attributes, within responses' limits)."""

from datetime import UTC, datetime, time, timedelta

import pytest

from services.trigger.domain.conditions import Facts, parse_condition
from services.trigger.domain.decisions import (
    CONTEXT_FIELDS,
    PROPERTY_FIELDS,
    contact_attributes,
    decide,
    decide_all,
    decide_due,
    survey_context,
)
from services.trigger.domain.model import ContactView, Policy, QuietHours, RuleView, survey_state

NOW = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 in Amsterdam
RULE = RuleView("r1", "ticket.solved", survey_id="nps")
ADA = ContactView("a@x.io", "+31612345678", False, id="c1", timezone="Europe/Amsterdam")


def test_a_survey_is_open_closed_or_unknown_to_the_workspace():
    surveys = {"nps": True, "csat": False}
    assert [survey_state(surveys, s) for s in ("nps", "csat", "ces")] == ["open", "closed", "unknown"]
    assert survey_state(None, "anything") == "open"


@pytest.mark.parametrize("state, outcome", [("closed", "survey_closed"), ("unknown", "survey_unknown")])
def test_a_survey_that_is_not_open_is_the_decision_at_once_and_when_due(state, outcome):
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    verdict = decide(RULE, ADA, occurred_at=now, now=now, survey=state)
    assert verdict.outcome == outcome and verdict.send_at is None and verdict.channel is None
    assert "survey nps" in verdict.reason
    assert decide_due(RULE, ADA, now=now, survey=state).outcome == outcome
    # Conditions come first: a rule that does not apply says so, whatever its survey.
    facts = Facts("ticket.solved", "api", now, {"status": "open"}, {})
    solved = parse_condition({"field": "event.status", "op": "equals", "value": "solved"})
    picky = RuleView("r2", "ticket.solved", conditions=solved, survey_id="nps")
    verdict = decide(picky, ADA, occurred_at=now, now=now, survey=state, facts=facts)
    assert verdict.outcome == "conditions_not_met"


def test_every_rule_is_decided_with_its_own_surveys_state():
    rules = [RULE, RuleView("r2", "ticket.solved", survey_id="csat"), RuleView("r3", "*", survey_id="x")]
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    verdicts = decide_all(
        rules,
        ADA,
        facts=Facts("ticket.solved", "api", now, {}, {}),
        now=now,
        policy=Policy(),
        history=[],
        surveys={"nps": True, "csat": False},
    )
    assert [v.outcome for _, v in verdicts] == ["sent", "survey_closed", "survey_unknown"]


def test_quiet_hours_hold_only_the_channels_they_name():
    evenings_sms = QuietHours(time(21, 0), time(8, 0), frozenset({"sms"}))
    policy = Policy(quiet_hours=evenings_sms)
    by_email = decide(RULE, ADA, occurred_at=NOW, now=NOW, policy=policy)
    assert by_email.outcome == "sent" and by_email.channel == "email"
    by_sms = decide(
        RuleView("r1", "ticket.solved", channel="sms"), ADA, occurred_at=NOW, now=NOW, policy=policy
    )
    assert by_sms.outcome == "delayed" and by_sms.send_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    due = decide_due(RuleView("r1", "ticket.solved", channel="sms"), ADA, now=NOW, policy=policy)
    assert due.outcome == "delayed"
    # Every channel that sends a message keeps them by default; a link is never sent, so never waits.
    every = Policy(quiet_hours=QuietHours(time(21, 0), time(8, 0)))
    assert decide(RULE, ADA, occurred_at=NOW, now=NOW, policy=every).outcome == "delayed"
    link = RuleView("r1", "ticket.solved", channel="link")
    assert decide(link, ADA, occurred_at=NOW, now=NOW, policy=every).outcome == "sent"


def test_the_context_carries_properties_then_attributes_within_responses_limits():
    properties = {f"p{i:02}": i for i in range(40)}
    attributes = {f"a{i:02}": f"v{i}" for i in range(40)}
    context = survey_context("ticket.solved", "api", properties, attributes)
    assert len(context) == CONTEXT_FIELDS
    assert sum(not k.startswith("attr.") for k in context) == PROPERTY_FIELDS
    assert [k for k in context if k.startswith("attr.")][:2] == ["attr.a00", "attr.a01"]
    assert all(isinstance(v, str) and len(v) <= 500 for v in context.values())
    # Few properties leave the room to attributes; text is cut at 500 characters.
    roomy = survey_context("t", "api", {"x": 1}, {"long": "y" * 600, "flag": False, "list": [1], "n": 2.0})
    assert roomy == {
        "event_type": "t",
        "source": "api",
        "x": "1",
        "attr.long": "y" * 500,
        "attr.flag": "false",
        "attr.n": "2",
    }


def test_an_event_property_cannot_pose_as_a_contact_attribute():
    context = survey_context("t", "api", {"attr.plan": "enterprise", "plan": "ok"}, {"plan": "free"})
    assert context["attr.plan"] == "free" and context["plan"] == "ok"
    assert "attr.plan" not in survey_context("t", "api", {"attr.plan": "enterprise"}, {})


def test_the_contacts_attributes_are_its_segment_fields_then_its_custom_ones_by_name():
    contact = {
        "email": "a@x.io",
        "name": "Ada",
        "company": "Acme",
        "plan": "pro",
        "role": None,
        "country": "NL",
        "attributes": {"zeta": 1, "plan": "shadowed", "alpha": "a"},
    }
    assert list(contact_attributes(contact).items()) == [
        ("plan", "pro"),
        ("country", "NL"),
        ("alpha", "a"),
        ("zeta", 1),
    ]
    assert contact_attributes({"attributes": None}) == {}


def test_a_day_time_send_over_a_quiet_channel_goes_at_once():
    day = NOW - timedelta(hours=10)
    policy = Policy(quiet_hours=QuietHours(time(21, 0), time(8, 0), frozenset({"email"})))
    assert decide(RULE, ADA, occurred_at=day, now=day, policy=policy).outcome == "sent"
