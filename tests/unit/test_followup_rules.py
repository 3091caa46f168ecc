"""The case's life, routing, SLA clocks, the escalation ladder and the metrics maths, as pure rules."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain import cases, escalation, metrics, routing, sla, taxonomy

AMS = ZoneInfo("Europe/Amsterdam")
WORKFLOW = cases.Workflow(
    custom=(cases.CustomStatus("waiting_on_customer", True), cases.CustomStatus("refund_pending"))
)


# --- transitions ---------------------------------------------------------------------------------

ORDER = WORKFLOW.order


@pytest.mark.parametrize(("current", "target"), list(itertools.permutations(ORDER, 2)))
def test_every_transition_is_allowed_or_refused_by_the_rules(current, target):
    allowed = (
        target not in (cases.RESOLVED,)
        and current not in (cases.RESOLVED, cases.CLOSED)
        and target != cases.CLOSED
        and ORDER.index(target) > ORDER.index(current)
    ) or (current == cases.RESOLVED and target == cases.CLOSED)
    if allowed:
        cases.check_status_change(WORKFLOW, current=current, target=target, note=None)
    else:
        with pytest.raises(cases.TransitionRefused):
            cases.check_status_change(WORKFLOW, current=current, target=target, note=None)


def test_going_back_needs_the_workspace_to_allow_it_and_resolved_is_never_a_plain_move():
    backward = cases.Workflow(custom=WORKFLOW.custom, allow_backward=True)
    cases.check_status_change(backward, current="refund_pending", target=cases.OPEN, note=None)
    with pytest.raises(cases.TransitionRefused, match="forward only"):
        cases.check_status_change(WORKFLOW, current="refund_pending", target=cases.OPEN, note=None)
    with pytest.raises(cases.TransitionRefused, match="resolve"):
        cases.check_status_change(backward, current=cases.OPEN, target=cases.RESOLVED, note=None)
    with pytest.raises(cases.TransitionRefused, match="already"):
        cases.check_status_change(WORKFLOW, current=cases.OPEN, target=cases.OPEN, note=None)


def test_unknown_statuses_and_missing_notes_are_refused():
    with pytest.raises(cases.UnknownStatus):
        cases.check_status_change(WORKFLOW, current=cases.OPEN, target="done", note=None)
    strict = cases.Workflow(note_on_status_change=True)
    with pytest.raises(cases.NoteRequired):
        cases.check_status_change(strict, current=cases.OPEN, target=cases.IN_PROGRESS, note=None)
    cases.check_status_change(strict, current=cases.OPEN, target=cases.IN_PROGRESS, note="Called.")


def test_reopening_is_for_resolved_and_closed_cases_and_resumes_where_the_contact_was():
    for status in (cases.RESOLVED, cases.CLOSED):
        cases.check_reopenable(status)
    for status in (cases.OPEN, cases.IN_PROGRESS, "refund_pending"):
        with pytest.raises(cases.TransitionRefused):
            cases.check_reopenable(status)
    assert cases.reopened_status(contacted=True) == cases.IN_PROGRESS
    assert cases.reopened_status(contacted=False) == cases.OPEN


def test_custom_status_names_are_checked():
    cases.check_custom_statuses(["waiting_on_customer"])
    for bad in (["Open"], ["resolved"], ["a", "a"], ["x"], ["ok", "ok"]):
        with pytest.raises(ValueError):
            cases.check_custom_statuses(bad)


# --- opening: consent, kiosks, rules -------------------------------------------------------------

KNOWN = cases.Respondent(known=True, reachable=True)


def test_an_anonymous_kiosk_respondent_or_one_without_consent_gets_no_case_and_a_reason():
    kiosk = cases.decide_opening(
        kind="transactional",
        consent_to_contact=True,
        respondent=cases.Respondent(True, False),
        because="negative",
    )
    assert (kiosk.open_task, kiosk.code) == (False, "unreachable") and "no way to reach" in kiosk.reason
    no_consent = cases.decide_opening(
        kind="transactional", consent_to_contact=False, respondent=KNOWN, because="negative"
    )
    assert (no_consent.open_task, no_consent.code) == (
        False,
        "no_consent",
    ) and "no consent" in no_consent.reason
    unknown = cases.decide_opening(
        kind="transactional",
        consent_to_contact=True,
        respondent=cases.Respondent(False, False),
        because="negative",
    )
    assert unknown.open_task and "unknown" in unknown.reason


def test_workspace_rules_open_cases_on_at_risk_loyalty_or_low_scores():
    opening = cases.OpeningRules(frozenset({"false", "trapped"}), {"csat": 3})
    assert cases.why_open(negative=True, loyalty=None, scores=[], rules=opening) == "negative"
    assert cases.why_open(negative=False, loyalty="trapped", scores=[], rules=opening) == "loyalty"
    assert cases.why_open(negative=False, loyalty="pure", scores=[("csat", 2)], rules=opening) == "threshold"
    assert (
        cases.why_open(negative=False, loyalty="pure", scores=[("csat", 3), ("nps", 1)], rules=opening)
        is None
    )
    assert cases.why_open(negative=False, loyalty="false", scores=[], rules=cases.OpeningRules()) is None


def test_the_retention_survey_goes_over_the_answered_channel_else_any_the_customer_has():
    route = cases.retention_route(
        answered_on="sms", default_channel="email", contact_known=True, email="a@x", phone="+31"
    )
    assert (route.channel, route.fallbacks) == ("sms", ("email", "whatsapp"))
    kiosk_with_email = cases.retention_route(
        answered_on="link", default_channel="sms", contact_known=True, email="a@x", phone=None
    )
    assert (kiosk_with_email.channel, kiosk_with_email.fallbacks) == ("email", ())
    nothing = cases.retention_route(
        answered_on="email", default_channel="email", contact_known=True, email=None, phone=None
    )
    assert not nothing.possible
    unknown = cases.retention_route(
        answered_on=None, default_channel="sms", contact_known=False, email=None, phone=None
    )
    assert (unknown.possible, unknown.channel) == (True, "sms")


# --- routing -------------------------------------------------------------------------------------


def rule(rule_id: str, **condition) -> routing.Rule:
    return routing.Rule(rule_id, rule_id, routing.Condition(**condition), team_id=f"team-{rule_id}")


def test_routing_rules_are_evaluated_in_order_and_the_first_match_wins():
    rules = [
        rule("low", metric="nps", score_max=2),
        rule("benelux", dimensions={"country": ("NL", "BE")}),
        rule("pro-delivery", dimensions={"product": ("pro",)}, themes=("delivery",)),
        rule("survey", survey_ids=("s-9",)),
    ]
    facts = routing.Facts(
        "s-1", {"country": "nl", "product": "Pro", "theme": "Delivery, price"}, [("nps", 5)]
    )
    assert routing.route(rules, facts, default_team_id=None).rule_id == "benelux"
    assert (
        routing.route(
            rules, routing.Facts("s-1", {"country": "NL"}, [("nps", 1)]), default_team_id=None
        ).rule_id
        == "low"
    )
    pro = routing.Facts("s-1", {"country": "DE", "product": "pro", "themes": "delivery"}, [("nps", 5)])
    assert routing.route(rules, pro, default_team_id=None).rule_id == "pro-delivery"
    assert routing.route(rules, routing.Facts("s-9", {}, []), default_team_id=None).rule_id == "survey"
    unmatched = routing.route(
        rules, routing.Facts("s-1", {"country": "DE"}, [("nps", 5)]), default_team_id="t-default"
    )
    assert (unmatched.rule_id, unmatched.team_id) == (
        None,
        "t-default",
    ) and "no rule matched" in unmatched.reason
    assert routing.route(rules, routing.Facts("s-1", {}, []), default_team_id=None).team_id is None


def test_round_robin_is_fair_and_least_open_balances_the_load():
    members = {a: routing.Member(a, 0, None) for a in ("ann", "bob", "cem")}
    start = datetime(2026, 11, 30, tzinfo=UTC)
    given = Counter()
    for i in range(300):
        chosen = routing.pick_member(list(members.values()), "round_robin")
        assert chosen is not None
        given[chosen.agent_id] += 1
        members[chosen.agent_id] = routing.Member(chosen.agent_id, 0, start + timedelta(seconds=i))
    assert set(given.values()) == {100}
    loads = [
        routing.Member("ann", 5, None),
        routing.Member("bob", 2, start),
        routing.Member("cem", 2, start - timedelta(1)),
    ]
    assert routing.pick_member(loads, "least_open").agent_id == "cem"
    assert routing.pick_member([], "round_robin") is None


# --- SLA clocks ----------------------------------------------------------------------------------

NL = sla.BusinessCalendar(timezone="Europe/Amsterdam", holiday_country="NL")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)


def test_business_time_skips_the_weekend():
    friday_4pm = local(2026, 11, 27, 16)
    assert sla.add_business_minutes(friday_4pm, 8 * 60, NL) == local(2026, 11, 30, 16)
    # The calendar clock runs through the weekend: 24 hours are Saturday 16:00.
    due = sla.due_times(friday_4pm, sla.Targets(24 * 60, None, 8 * 60, None), NL)
    assert (due.first_contact, due.first_contact_business) == (
        local(2026, 11, 28, 16),
        local(2026, 11, 30, 16),
    )
    saturday = local(2026, 11, 28, 11)
    assert sla.add_business_minutes(saturday, 60, NL) == local(2026, 11, 30, 10)
    assert sla.business_minutes_between(friday_4pm, local(2026, 11, 30, 16), NL) == 8 * 60


def test_business_time_skips_public_holidays_and_the_teams_own_days_off():
    christmas_eve = local(2026, 12, 24, 16)  # Thursday; 25 and 26 December are holidays in NL
    assert sla.add_business_minutes(christmas_eve, 2 * 60, NL) == local(2026, 12, 28, 10)
    with_day_off = sla.BusinessCalendar(
        timezone="Europe/Amsterdam", holiday_country="NL", days_off=frozenset({date(2026, 12, 28)})
    )
    assert sla.add_business_minutes(christmas_eve, 2 * 60, with_day_off) == local(2026, 12, 29, 10)
    kings_day_eve = local(2026, 4, 24, 17)  # Friday evening; Monday 27 April is King's Day
    assert sla.add_business_minutes(kings_day_eve, 30, NL) == local(2026, 4, 28, 9, 30)


def test_business_hours_stay_local_across_a_dst_change():
    # Clocks go back on Sunday 25 October 2026 in Amsterdam: 09:00 local is 07:00 UTC before, 08:00 after.
    friday = local(2026, 10, 23, 16)
    due = sla.add_business_minutes(friday, 2 * 60, NL)
    assert due == local(2026, 10, 26, 10) and due.astimezone(UTC) == datetime(2026, 10, 26, 9, tzinfo=UTC)
    assert friday.astimezone(UTC).hour == 14
    # Forward in spring (29 March 2026): still 09:00-17:00 local on the Monday.
    assert sla.add_business_minutes(local(2026, 3, 27, 17), 8 * 60, NL) == local(2026, 3, 30, 17)
    # A calendar target counts real hours: 48 h across the autumn change is 47 wall-clock hours later.
    calendar_due = sla.due_times(
        local(2026, 10, 24, 12), sla.Targets(48 * 60, None, None, None), NL
    ).first_contact
    assert calendar_due == local(2026, 10, 26, 11) and calendar_due - local(2026, 10, 24, 12) == timedelta(
        hours=48
    )


def test_a_pause_moves_the_due_times_by_the_time_spent_waiting():
    calendar = sla.BusinessCalendar(timezone="Europe/Amsterdam")
    opened = local(2026, 11, 30, 9)
    due = sla.due_times(opened, sla.Targets(24 * 60, None, 4 * 60, None), calendar)
    resumed = sla.resume(
        due, paused_at=local(2026, 11, 30, 10), now=local(2026, 12, 1, 10), calendar=calendar
    )
    assert resumed.first_contact == due.first_contact + timedelta(days=1)
    assert resumed.first_contact_business == local(2026, 12, 1, 13)  # 3 business hours were left


def test_the_most_specific_policy_wins():
    policies = [
        sla.Policy("any", None, None),
        sla.Policy("urgent", None, "urgent"),
        sla.Policy("team", "t1", None),
        sla.Policy("team-urgent", "t1", "urgent"),
    ]
    assert sla.pick_policy(policies, team_id="t1", priority="urgent").id == "team-urgent"
    assert sla.pick_policy(policies, team_id="t1", priority="normal").id == "team"
    assert sla.pick_policy(policies, team_id="t2", priority="urgent").id == "urgent"
    assert sla.pick_policy(policies, team_id=None, priority="low").id == "any"
    assert sla.pick_policy([], team_id=None, priority="low") is None


def test_a_calendar_without_working_time_is_refused():
    with pytest.raises(ValueError):
        sla.BusinessCalendar(weekdays=frozenset())
    with pytest.raises(ValueError):
        sla.BusinessCalendar(start=time(17), end=time(9))
    with pytest.raises(ValueError):
        sla.check_holiday_country("XX", None)


# --- the escalation ladder -------------------------------------------------------------------------

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)
LADDER = [
    escalation.Step("s1", 1, "remind", "age", 24 * 60, "notify_assignee", T0 - timedelta(days=1), "calendar"),
    escalation.Step(
        "s2", 2, "lead", "first_contact_breach", 0, "notify_lead", T0 - timedelta(days=1), "calendar"
    ),
    escalation.Step("s3", 3, "move", "resolution_breach", 60, "reassign", T0 - timedelta(days=1), "business"),
]


def clock(**overrides) -> escalation.CaseClock:
    base = {
        "opened_at": T0,
        "active": True,
        "team_id": "t1",
        "contacted": False,
        "paused": False,
        "first_contact_due": T0 + timedelta(hours=48),
        "first_contact_due_business": T0 + timedelta(hours=8),
        "resolution_due": T0 + timedelta(days=7),
        "resolution_due_business": T0 + timedelta(days=5),
    }
    return escalation.CaseClock(**{**base, **overrides})


def test_the_ladder_fires_each_step_when_its_moment_comes_in_order():
    case = clock()
    assert escalation.due_steps(LADDER, case, done=(), now=T0 + timedelta(hours=23)) == []
    assert escalation.next_due(LADDER, case, done=()) == T0 + timedelta(hours=24)
    assert [s.id for s in escalation.due_steps(LADDER, case, done=(), now=T0 + timedelta(hours=48))] == [
        "s1",
        "s2",
    ]
    assert [s.id for s in escalation.due_steps(LADDER, case, done={"s1"}, now=T0 + timedelta(hours=48))] == [
        "s2"
    ]
    assert escalation.next_due(LADDER, case, done={"s1", "s2"}) == T0 + timedelta(days=5, hours=1)
    assert escalation.next_due(LADDER, case, done={"s1", "s2", "s3"}) is None


def test_the_ladder_leaves_closed_contacted_paused_and_older_cases_alone():
    late = T0 + timedelta(days=30)
    assert escalation.due_steps(LADDER, clock(active=False), done=(), now=late) == []
    assert [s.id for s in escalation.due_steps(LADDER, clock(contacted=True), done=(), now=late)] == [
        "s1",
        "s3",
    ]
    assert [s.id for s in escalation.due_steps(LADDER, clock(paused=True), done=(), now=late)] == ["s1"]
    older = clock(opened_at=T0 - timedelta(days=2))  # opened before the steps were added: never retroactive
    assert escalation.due_steps(LADDER, older, done=(), now=late) == []
    scoped = escalation.Step(
        "s4", 4, "t2 only", "age", 0, "notify_lead", T0 - timedelta(days=1), team_id="t2"
    )
    assert escalation.due_steps([scoped], clock(), done=(), now=late) == []


# --- taxonomy and metrics ------------------------------------------------------------------------


def test_the_default_taxonomy_lets_a_new_workspace_resolve():
    taxonomy.check_taxonomy(taxonomy.DEFAULT_TAXONOMY)
    taxonomy.check_root_cause(taxonomy.DEFAULT_TAXONOMY, "Delivery", "Late")
    with pytest.raises(ValueError, match="not a cause"):
        taxonomy.check_root_cause(taxonomy.DEFAULT_TAXONOMY, "Delivery", "Rude")
    with pytest.raises(ValueError, match="category"):
        taxonomy.check_root_cause(taxonomy.DEFAULT_TAXONOMY, "Weather", "Rain")
    for bad in ({}, {"A": []}, {"A": ["x", "x"]}, {" ": ["x"]}):
        with pytest.raises(ValueError):
            taxonomy.check_taxonomy(bad)


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """The Wilson interval as textbooks write it: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    z = 1.959963984540054
    p = k / n
    centre = p + z**2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return ((centre - spread) / (1 + z**2 / n), (centre + spread) / (1 + z**2 / n))


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (7, 10), (40, 100), (999, 1000), (3, 7)])
def test_the_won_back_interval_is_wilsons(k, n):
    low, high = metrics.wilson(k, n)
    expected = wilson_by_hand(k, n)
    assert low == pytest.approx(max(0.0, expected[0])) and high == pytest.approx(min(1.0, expected[1]))
    assert low <= k / n <= high
    assert metrics.wilson(0, 0) is None


def test_known_wilson_values():
    # 7 of 10: 0.3968 to 0.8922 (Newcombe 1998, table I).
    low, high = metrics.wilson(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)


def test_the_funnel_shows_the_drop_at_each_step():
    steps = metrics.funnel([100, 60, 55, 50, 40, 20, 15])
    assert [s.step for s in steps] == list(metrics.FUNNEL_STEPS)
    assert [s.dropped for s in steps] == [0, 40, 5, 5, 10, 20, 5]
    assert steps[1].share_of_previous == 0.6 and steps[0].share_of_previous is None


def test_a_case_closed_by_hand_still_takes_the_retention_answer_it_awaits():
    assert cases.accepts_outcome(cases.CLOSED, awaiting=True)
    assert not cases.accepts_outcome(cases.CLOSED)
    assert not cases.accepts_outcome(cases.OPEN, awaiting=True)
