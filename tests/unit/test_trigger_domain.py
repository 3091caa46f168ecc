from datetime import UTC, datetime, timedelta

from services.trigger.domain import ContactView, RuleView, decide, matching_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULE = RuleView("r1", "ticket.solved", "email", 3600)


def test_only_enabled_rules_for_the_event_type_match():
    rules = [
        RULE,
        RuleView("r2", "deal.won", "email", 0),
        RuleView("r3", "ticket.solved", "email", 0, enabled=False),
    ]
    assert matching_rules(rules, "ticket.solved") == [RULE]


def test_delay_counts_from_when_the_event_happened():
    verdict = decide(
        RULE, ContactView("a@x.io", None, False), occurred_at=NOW - timedelta(minutes=10), now=NOW
    )
    assert verdict.outcome == "requested" and verdict.send_at == NOW + timedelta(minutes=50)


def test_an_old_event_is_sent_now_not_in_the_past():
    verdict = decide(RULE, ContactView("a@x.io", None, False), occurred_at=NOW - timedelta(days=2), now=NOW)
    assert verdict.send_at == NOW


def test_opted_out_and_unreachable_contacts_are_not_asked():
    assert decide(RULE, ContactView("a@x.io", None, True), occurred_at=NOW, now=NOW).outcome == "opted_out"
    no_email = decide(RULE, ContactView(None, "+3161234", False), occurred_at=NOW, now=NOW)
    assert no_email.outcome == "no_channel" and "email" in no_email.reason
    sms = RuleView("r4", "ticket.solved", "sms", 0)
    assert decide(sms, ContactView("a@x.io", None, False), occurred_at=NOW, now=NOW).outcome == "no_channel"
