from datetime import UTC, datetime, time, timedelta

import pytest

from services.trigger.domain.conditions import (
    MAX_CONDITION_DEPTH,
    MAX_CONDITION_LEAVES,
    ConditionError,
    Facts,
    evaluate,
    parse_condition,
    parse_duration,
)
from services.trigger.domain.decisions import decide, decide_all, decide_due, survey_context
from services.trigger.domain.model import (
    Cap,
    ContactView,
    Policy,
    QuietHours,
    RuleView,
    Sent,
    in_sample,
    matching_rules,
)
from services.trigger.domain.policy import quiet_until
from shared.ratelimit import TokenBuckets
from shared.timezones import zone

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULE = RuleView("r1", "ticket.solved", delay_seconds=3600)
ADA = ContactView("a@x.io", None, False, id="c1")


def facts(properties=None, contact=None, event_type="ticket.solved", source="zendesk", at=NOW) -> Facts:
    return Facts(event_type, source, at, properties or {}, contact or {})


# --- matching ---------------------------------------------------------------------------------


def test_only_enabled_rules_for_the_event_type_and_source_match():
    rules = [
        RULE,
        RuleView("r2", "deal.won"),
        RuleView("r3", "ticket.solved", enabled=False),
        RuleView("r4", "ticket.*", source="zendesk"),
        RuleView("r5", "ticket.solved", source="hubspot"),
        RuleView("r6", "*"),
    ]
    assert [r.id for r in matching_rules(rules, "ticket.solved", "zendesk")] == ["r1", "r4", "r6"]
    assert [r.id for r in matching_rules(rules, "ticket.created", "zendesk")] == ["r4", "r6"]


# --- conditions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition, properties, holds",
    [
        ({"field": "event.status", "op": "equals", "value": "solved"}, {"status": "SOLVED"}, True),
        (
            {"field": "event.status", "op": "equals", "value": "solved", "case_sensitive": True},
            {"status": "SOLVED"},
            False,
        ),
        ({"field": "event.status", "op": "not_equals", "value": "solved"}, {"status": "open"}, True),
        ({"field": "event.status", "op": "not_equals", "value": "solved"}, {}, True),
        ({"field": "event.amount", "op": "equals", "value": 10}, {"amount": "10.0"}, True),
        ({"field": "event.flag", "op": "equals", "value": True}, {"flag": "true"}, True),
        ({"field": "event.stage", "op": "in", "value": ["4", "5"]}, {"stage": 4}, True),
        ({"field": "event.stage", "op": "not_in", "value": ["4", "5"]}, {"stage": "3"}, True),
        ({"field": "event.tags", "op": "in", "value": ["vip"]}, {"tags": ["printer", "vip"]}, True),
        ({"field": "event.amount", "op": "gt", "value": 100}, {"amount": "150"}, True),
        ({"field": "event.amount", "op": "lte", "value": 100}, {"amount": 150}, False),
        ({"field": "event.amount", "op": "gt", "value": 100}, {"amount": "lots"}, False),
        ({"field": "event.amount", "op": "between", "value": [10, 20]}, {"amount": 20}, True),
        ({"field": "event.amount", "op": "between", "value": [10, 20]}, {"amount": 21}, False),
        ({"field": "event.agent", "op": "exists"}, {"agent": "Grace"}, True),
        ({"field": "event.agent", "op": "exists"}, {"agent": ""}, False),
        ({"field": "event.agent", "op": "not_exists"}, {}, True),
        (
            {"field": "event.subject", "op": "contains", "value": "REFUND"},
            {"subject": "Need a refund now"},
            True,
        ),
        ({"field": "event.tags", "op": "contains", "value": "vip"}, {"tags": ["vip"]}, True),
        ({"field": "event.subject", "op": "not_contains", "value": "test"}, {"subject": "real"}, True),
        ({"field": "event.email", "op": "starts_with", "value": "ada"}, {"email": "ada@x.io"}, True),
        (
            {"field": "event.detail.via.channel", "op": "equals", "value": "web"},
            {"detail": {"via": {"channel": "web"}}},
            True,
        ),
        ({"field": "event.items.0.sku", "op": "equals", "value": "A"}, {"items": [{"sku": "A"}]}, True),
        (
            {"field": "event.closed_at", "op": "before", "value": "2026-11-23"},
            {"closed_at": "2026-11-22T23:00:00Z"},
            True,
        ),
        (
            {"field": "event.closed_at", "op": "after", "value": "-1d"},
            {"closed_at": "2026-11-22T13:00:00Z"},
            True,
        ),
        (
            {"field": "event.closed_at", "op": "after", "value": "-1d"},
            {"closed_at": "2026-11-22T11:00:00Z"},
            False,
        ),
        (
            {"field": "event.closedate", "op": "within_last", "value": "7d"},
            {"closedate": 1795176000000},
            True,
        ),
        ({"field": "event.signup", "op": "older_than", "value": "30d"}, {"signup": "2026-01-01"}, True),
        ({"field": "event.signup", "op": "older_than", "value": "30d"}, {"signup": "2026-11-20"}, False),
        ({"field": "event.type", "op": "equals", "value": "ticket.solved"}, {}, True),
        ({"field": "event.source", "op": "equals", "value": "zendesk"}, {}, True),
    ],
)
def test_condition_operators(condition, properties, holds):
    assert evaluate(parse_condition(condition), facts(properties)) is holds


def test_contact_conditions_read_fields_then_custom_attributes():
    contact = {"plan": "pro", "country": "NL", "attributes": {"segment": "smb", "seats": 12}}
    f = facts(contact=contact)
    check = lambda c: evaluate(parse_condition(c), f)  # noqa: E731
    assert check({"field": "contact.plan", "op": "in", "value": ["pro", "enterprise"]})
    assert check({"field": "contact.segment", "op": "equals", "value": "smb"})
    assert check({"field": "contact.attributes.seats", "op": "gte", "value": 10})
    assert not check({"field": "contact.role", "op": "exists"})


def test_all_any_not_combine_and_the_trace_names_every_leaf():
    condition = parse_condition(
        {
            "all": [
                {"field": "event.status", "op": "equals", "value": "solved"},
                {
                    "any": [
                        {"field": "contact.plan", "op": "equals", "value": "pro"},
                        {"field": "event.vip", "op": "exists"},
                    ]
                },
                {"not": {"field": "event.channel", "op": "equals", "value": "api"}},
            ]
        }
    )
    trace: list = []
    assert evaluate(
        condition, facts({"status": "solved", "vip": 1, "channel": "web"}, {"plan": "free"}), trace
    )
    assert [(t["field"], t["holds"]) for t in trace] == [
        ("event.status", True),
        ("contact.plan", False),
        ("event.vip", True),
        ("event.channel", False),
    ]
    assert trace[1]["actual"] == "free"
    assert not evaluate(condition, facts({"status": "solved", "channel": "api", "vip": 1}))


@pytest.mark.parametrize(
    "raw, path",
    [
        ("status = solved", "conditions"),
        ({"field": "status", "op": "equals", "value": 1}, "conditions.field"),
        ({"field": "event.status", "op": "like", "value": 1}, "conditions.op"),
        ({"field": "event.status", "op": "equals"}, "conditions.value"),
        ({"field": "event.status", "op": "in", "value": "a"}, "conditions.value"),
        ({"field": "event.n", "op": "between", "value": [1]}, "conditions.value"),
        ({"field": "event.n", "op": "gt", "value": "big"}, "conditions.value"),
        ({"field": "event.d", "op": "before", "value": "someday"}, "conditions.value"),
        ({"field": "event.d", "op": "within_last", "value": "a week"}, "conditions.value"),
        ({"all": []}, "conditions.all"),
        ({"all": [{"field": "event.a", "op": "exists"}], "any": []}, "conditions"),
        ({"any": [{"field": "event.a", "op": "exists"}, {"fields": "x"}]}, "conditions.any.1"),
        ({"field": "event.a", "op": "exists", "extra": 1}, "conditions"),
    ],
)
def test_bad_conditions_name_the_part_at_fault(raw, path):
    with pytest.raises(ConditionError) as bad:
        parse_condition(raw)
    assert bad.value.path == path


def test_conditions_are_bounded():
    deep: dict = {"field": "event.a", "op": "exists"}
    for _ in range(MAX_CONDITION_DEPTH + 1):
        deep = {"not": deep}
    with pytest.raises(ConditionError, match="deeper"):
        parse_condition(deep)
    wide = {"all": [{"field": "event.a", "op": "exists"}] * (MAX_CONDITION_LEAVES + 1)}
    with pytest.raises(ConditionError, match="at most"):
        parse_condition(wide)


# --- decisions -----------------------------------------------------------------------------------


def test_delay_counts_from_when_the_event_happened():
    verdict = decide(RULE, ADA, occurred_at=NOW - timedelta(minutes=10), now=NOW)
    assert verdict.outcome == "delayed" and verdict.send_at == NOW + timedelta(minutes=50)
    assert "waits 1 hour after the event" in verdict.reason


def test_an_old_event_is_sent_now_and_a_future_dated_one_is_not_delayed_by_the_clock_skew():
    assert decide(RULE, ADA, occurred_at=NOW - timedelta(days=2), now=NOW).outcome == "sent"
    immediate = RuleView("r0", "ticket.solved")
    verdict = decide(immediate, ADA, occurred_at=NOW + timedelta(hours=5), now=NOW)
    assert verdict.outcome == "sent" and verdict.send_at == NOW


def test_opted_out_and_unreachable_contacts_are_not_asked():
    assert decide(RULE, ContactView("a@x.io", None, True), occurred_at=NOW, now=NOW).outcome == "opted_out"
    no_email = decide(RULE, ContactView(None, "+3161234", False), occurred_at=NOW, now=NOW)
    assert no_email.outcome == "no_channel" and "email: no email known" in no_email.reason
    sms = RuleView("r4", "ticket.solved", channel="sms")
    assert decide(sms, ADA, occurred_at=NOW, now=NOW).outcome == "no_channel"


def test_channel_fallbacks_in_order_skip_unreachable_and_opted_out_channels():
    rule = RuleView("r", "t", channel="whatsapp", fallback_channels=("sms", "email"))
    phone_and_email = ContactView("a@x.io", "+31612345678", False, id="c")
    assert decide(rule, phone_and_email, occurred_at=NOW, now=NOW).channel == "whatsapp"
    verdict = decide(rule, phone_and_email, occurred_at=NOW, now=NOW)
    assert verdict.fallback_channels == ("sms", "email")
    email_only = decide(rule, ADA, occurred_at=NOW, now=NOW)
    assert (
        email_only.outcome == "sent" and email_only.channel == "email" and email_only.fallback_channels == ()
    )
    no_whatsapp = ContactView(
        "a@x.io", "+31612345678", False, id="c", opted_out_channels=frozenset({"whatsapp"})
    )
    assert decide(rule, no_whatsapp, occurred_at=NOW, now=NOW).channel == "sms"
    all_out = ContactView(
        "a@x.io", "+31612345678", False, opted_out_channels=frozenset({"whatsapp", "sms", "email"})
    )
    assert decide(rule, all_out, occurred_at=NOW, now=NOW).outcome == "opted_out"


def test_conditions_are_checked_first_and_recorded_as_not_met():
    rule = RuleView("r", "ticket.solved", conditions=parse_condition({"field": "event.csat", "op": "exists"}))
    verdict = decide(rule, ContactView(None, None, True), occurred_at=NOW, now=NOW, facts=facts())
    assert verdict.outcome == "conditions_not_met"


def test_sampling_is_deterministic_per_contact_and_close_to_the_percentage():
    rule = RuleView("sampled", "t", sample_percent=25)
    outcomes = [
        decide(rule, ContactView("a@x.io", None, False, id=f"c{i}"), occurred_at=NOW, now=NOW).outcome
        for i in range(4000)
    ]
    share = outcomes.count("sent") / len(outcomes)
    assert 0.22 < share < 0.28 and set(outcomes) == {"sent", "not_sampled"}
    again = [
        decide(rule, ContactView("a@x.io", None, False, id=f"c{i}"), occurred_at=NOW, now=NOW).outcome
        for i in range(4000)
    ]
    assert again == outcomes
    assert in_sample("r", "c", 100) and not in_sample("r", "c", 0)


def test_workspace_cap_survey_cap_and_exemptions():
    policy = Policy(cap=Cap(1, 30))
    recent = [Sent("other-survey", NOW - timedelta(days=3))]
    capped = decide(RuleView("r", "t"), ADA, occurred_at=NOW, now=NOW, policy=policy, history=recent)
    assert capped.outcome == "suppressed_by_cap" and "1 survey(s) per 30 days" in capped.reason
    old = [Sent("other-survey", NOW - timedelta(days=31))]
    assert (
        decide(RuleView("r", "t"), ADA, occurred_at=NOW, now=NOW, policy=policy, history=old).outcome
        == "sent"
    )
    retention = RuleView("r", "t", kind="retention")
    assert decide(retention, ADA, occurred_at=NOW, now=NOW, policy=policy, history=recent).outcome == "sent"
    exempt = RuleView("r", "t", exempt_from_caps=True)
    assert decide(exempt, ADA, occurred_at=NOW, now=NOW, policy=policy, history=recent).outcome == "sent"
    exempt_with_own_cap = RuleView(
        "r", "t", survey_id="other-survey", exempt_from_caps=True, survey_cap=Cap(1, 7)
    )
    assert (
        decide(exempt_with_own_cap, ADA, occurred_at=NOW, now=NOW, policy=policy, history=recent).outcome
        == "suppressed_by_cap"
    )
    per_survey = RuleView("r", "t", survey_id="nps", survey_cap=Cap(1, 90))
    assert decide(per_survey, ADA, occurred_at=NOW, now=NOW, history=recent).outcome == "sent"
    same = [Sent("nps", NOW - timedelta(days=60))]
    assert decide(per_survey, ADA, occurred_at=NOW, now=NOW, history=same).outcome == "suppressed_by_cap"


def test_decide_all_lets_the_first_send_count_against_the_next_rule():
    rules = [
        RuleView("a", "t", survey_id="s1"),
        RuleView("b", "t", survey_id="s2"),
        RuleView("c", "t", kind="retention"),
    ]
    history: list[Sent] = []
    verdicts = decide_all(
        rules, ADA, facts=facts(event_type="t"), now=NOW, policy=Policy(cap=Cap(1, 30)), history=history
    )
    assert [v.outcome for _, v in verdicts] == ["sent", "suppressed_by_cap", "sent"]
    assert len(history) == 2


def test_recurring_rules_do_not_enrol_a_contact_twice():
    rule = RuleView("every90", "t", recurrence_days=90)
    assert decide(rule, ADA, occurred_at=NOW, now=NOW, enrolled=True).outcome == "already_enrolled"


def test_a_due_send_is_checked_again():
    rule = RuleView(
        "r", "t", conditions=parse_condition({"field": "contact.plan", "op": "equals", "value": "pro"})
    )
    still = decide_due(rule, ADA, now=NOW, facts=facts(contact={"plan": "pro"}))
    assert still.outcome == "sent"
    assert (
        decide_due(rule, ADA, now=NOW, facts=facts(contact={"plan": "free"})).outcome == "conditions_not_met"
    )
    assert decide_due(RuleView("r", "t", enabled=False), ADA, now=NOW).outcome == "cancelled"
    assert decide_due(rule, ContactView("a@x.io", None, True), now=NOW).outcome == "opted_out"
    capped = decide_due(
        RuleView("r", "t"), ADA, now=NOW, policy=Policy(cap=Cap(1, 7)), history=[Sent("s", NOW)]
    )
    assert capped.outcome == "suppressed_by_cap"


# --- quiet hours -----------------------------------------------------------------------------------

EVENINGS = QuietHours(time(21, 0), time(8, 0))


@pytest.mark.parametrize(
    "local, expected",
    [
        ("2026-11-23T22:30", "2026-11-24T08:00"),  # evening: the next morning
        ("2026-11-24T06:15", "2026-11-24T08:00"),  # early morning: the same morning
        ("2026-11-23T12:00", None),  # day time: not quiet
        ("2026-11-23T08:00", None),  # the end is not quiet any more
        ("2026-11-23T21:00", "2026-11-24T08:00"),  # the start is quiet
    ],
)
def test_quiet_hours_across_midnight_in_the_contacts_time_zone(local, expected):
    tz = zone("Europe/Amsterdam")
    moment = datetime.fromisoformat(local).replace(tzinfo=tz)
    until = quiet_until(moment, EVENINGS, tz)
    assert (until.astimezone(tz).isoformat()[:16] if until else None) == expected


def test_quiet_hours_delay_a_send_and_use_the_workspace_zone_for_contacts_without_one():
    policy = Policy(quiet_hours=EVENINGS, default_timezone="America/New_York")
    late = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 22:00 in New York
    verdict = decide(RuleView("r", "t"), ADA, occurred_at=late, now=late, policy=policy)
    assert verdict.outcome == "delayed" and "America/New_York" in verdict.reason
    assert verdict.send_at == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00 EST
    tokyo = ContactView("a@x.io", None, False, timezone="Asia/Tokyo")  # 12:00 in Tokyo
    assert decide(RuleView("r", "t"), tokyo, occurred_at=late, now=late, policy=policy).outcome == "sent"
    urgent = RuleView("r", "t", respect_quiet_hours=False)
    assert decide(urgent, ADA, occurred_at=late, now=late, policy=policy).outcome == "sent"


def test_quiet_hours_over_a_daylight_saving_change_end_at_local_eight():
    tz = zone("Europe/Amsterdam")
    # The night the clocks go back (25 October 2026): 23:00 CEST → 08:00 CET the next day.
    moment = datetime(2026, 10, 24, 23, 0, tzinfo=tz)
    until = quiet_until(moment, EVENINGS, tz)
    assert (
        until is not None
        and until.astimezone(tz).hour == 8
        and until - moment.astimezone(UTC) == timedelta(hours=10)
    )


def test_unknown_time_zones_fall_back():
    assert zone("Mars/Olympus", "Europe/Paris").key == "Europe/Paris"
    assert zone(None, "nope").key == "UTC"


# --- rate limits, durations, context -------------------------------------------------------------


def test_rate_limiter_allows_a_burst_then_the_rate_and_says_how_long_to_wait():
    limiter = TokenBuckets(rate=10, burst=20)
    assert all(limiter.acquire("i", 0.0) == 0 for _ in range(20))
    wait = limiter.acquire("i", 0.0)
    assert wait == pytest.approx(0.1)
    assert limiter.acquire("i", 0.1) == 0
    assert limiter.acquire("other", 0.0) == 0  # per key
    assert limiter.acquire("slow", 0.0, rate=1) == 0  # a per-integration rate scales the burst
    assert sum(limiter.acquire("slow", 0.0, rate=1) == 0 for _ in range(5)) == 1


@pytest.mark.parametrize(
    "text, seconds", [("30d", 2592000), ("-2h", -7200), ("+15m", 900), ("2w", 1209600), ("45s", 45)]
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


def test_survey_context_keeps_scalar_properties_as_text():
    context = survey_context(
        "ticket.solved", "zendesk", {"ticket_id": 42, "agent": "Grace", "detail": {"x": 1}, "vip": True}
    )
    assert context == {
        "event_type": "ticket.solved",
        "source": "zendesk",
        "ticket_id": "42",
        "agent": "Grace",
        "vip": "true",
    }
