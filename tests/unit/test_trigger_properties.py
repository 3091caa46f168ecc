"""Property-based tests of rule evaluation, sampling, caps, quiet hours and the rate limiter."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.trigger.domain.conditions import All, Any_, Facts, Leaf, Not, evaluate
from services.trigger.domain.decisions import decide
from services.trigger.domain.model import Cap, ContactView, Policy, QuietHours, RuleView, Sent, in_sample
from services.trigger.domain.policy import quiet_until
from shared.ratelimit import TokenBuckets
from shared.timezones import zone

START = datetime(2026, 1, 1, tzinfo=UTC)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.text(max_size=8),
    st.floats(-1e6, 1e6, allow_nan=False),
)
keys = st.sampled_from(["a", "b", "c"])
properties = st.dictionaries(keys, scalars, max_size=3)
leaves = st.builds(
    Leaf,
    field=keys.map(lambda k: f"event.{k}"),
    op=st.sampled_from(["equals", "not_equals", "exists", "not_exists", "gt", "lte", "contains", "in"]),
    value=scalars,
).map(lambda leaf: Leaf(leaf.field, leaf.op, [leaf.value] if leaf.op == "in" else leaf.value))
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: All(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: Any_(tuple(xs))),
        inner.map(Not),
    ),
    max_leaves=8,
)


def facts(props: dict) -> Facts:
    return Facts("t", "s", START, props, {})


@given(conditions, properties)
def test_not_all_any_are_boolean_algebra(condition, props):
    f = facts(props)
    value = evaluate(condition, f)
    assert evaluate(Not(condition), f) is (not value)
    assert evaluate(Not(Not(condition)), f) is value
    other = Leaf("event.a", "exists")
    assert evaluate(All((condition, other)), f) is (value and evaluate(other, f))
    assert evaluate(Any_((condition, other)), f) is (value or evaluate(other, f))
    # De Morgan
    assert evaluate(Not(All((condition, other))), f) is evaluate(Any_((Not(condition), Not(other))), f)


@given(conditions, properties)
def test_tracing_never_changes_the_result(condition, props):
    trace: list = []
    assert evaluate(condition, facts(props), trace) is evaluate(condition, facts(props))
    assert all(set(t) == {"field", "op", "value", "actual", "holds"} for t in trace)


@given(
    st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12), st.floats(0, 100), st.floats(0, 100)
)
def test_sampling_is_deterministic_and_grows_with_the_percentage(rule_id, contact_id, p, q):
    low, high = sorted((p, q))
    assert in_sample(rule_id, contact_id, low) == in_sample(rule_id, contact_id, low)
    if in_sample(rule_id, contact_id, low):
        assert in_sample(rule_id, contact_id, high)


attempts = st.lists(
    st.tuples(
        st.integers(0, 120 * 24),  # hours after START
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(["transactional", "relationship", "retention"]),
        st.booleans(),  # exempt
    ),
    max_size=40,
)


@settings(max_examples=300)
@given(
    attempts,
    st.integers(1, 3),
    st.integers(1, 60),
    st.one_of(st.none(), st.tuples(st.integers(1, 2), st.integers(1, 90))),
)
def test_caps_are_never_exceeded_by_a_rule_they_apply_to(sequence, max_surveys, days, survey_cap):
    """Deciding one attempt after another (as the per-contact lock makes them), a capped rule never
    sends when its window already holds the maximum: retention always goes, an exempt rule skips the
    workspace cap only, and anything under every cap goes."""
    policy = Policy(cap=Cap(max_surveys, days))
    history: list[Sent] = []
    contact = ContactView("a@x.io", None, False, id="c")
    for hours, survey, kind, exempt in sorted(sequence):
        now = START + timedelta(hours=hours)
        rule = RuleView(
            "r",
            "t",
            survey_id=survey,
            kind=kind,
            exempt_from_caps=exempt,
            survey_cap=Cap(*survey_cap) if survey_cap else None,
        )
        verdict = decide(rule, contact, occurred_at=now, now=now, policy=policy, history=history)
        window = [s for s in history if s.sent_at > now - timedelta(days=days)]
        same = [
            s
            for s in history
            if survey_cap and s.survey_id == survey and s.sent_at > now - timedelta(days=survey_cap[1])
        ]
        survey_full = bool(survey_cap) and len(same) >= survey_cap[0]  # type: ignore[index]
        if kind == "retention":
            assert verdict.outcome == "sent"
        elif (len(window) >= max_surveys and not exempt) or survey_full:
            assert verdict.outcome == "suppressed_by_cap"
        else:
            assert verdict.outcome == "sent"
        if verdict.outcome == "sent":
            history.append(Sent(survey, now))


hhmm = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
zones = st.sampled_from(
    ["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]
)


@settings(max_examples=400)
@given(hhmm, hhmm, zones, st.integers(0, 365 * 24 * 60))
def test_quiet_hours_end_outside_quiet_hours_within_a_day(start, end, zone_name, minutes):
    quiet = QuietHours(start, end)
    tz = zone(zone_name)
    moment = START + timedelta(minutes=minutes)
    until = quiet_until(moment, quiet, tz)
    local = moment.astimezone(tz).time().replace(tzinfo=None)
    inside = start != end and ((start <= local < end) if start < end else (local >= start or local < end))
    assert (until is not None) is inside
    if until is not None:
        assert moment <= until <= moment + timedelta(hours=25)
        assert quiet_until(until, quiet, tz) is None


@given(st.lists(st.floats(0, 10, allow_nan=False), max_size=200), st.floats(0.5, 50), st.floats(1, 50))
def test_the_rate_limiter_never_admits_more_than_burst_plus_rate_times_time(offsets, rate, burst):
    limiter = TokenBuckets(rate=rate, burst=burst)
    times = sorted(offsets)
    admitted = [t for t in times if limiter.acquire("k", t) == 0]
    if admitted:
        span = admitted[-1] - times[0]
        assert len(admitted) <= burst + rate * span + 1e-6
