"""Rules of the follow-up service: when a task opens, how it moves, what counts as won back."""

from __future__ import annotations

import pytest

from services.followup import domain


def test_negative_feedback_with_consent_opens_a_task():
    assert domain.decide_on_negative_feedback(consent_to_contact=True, kind="transactional").open_task
    assert domain.decide_on_negative_feedback(consent_to_contact=True, kind="relationship").open_task


def test_without_consent_no_task_is_opened_and_the_reason_says_so():
    decision = domain.decide_on_negative_feedback(consent_to_contact=False, kind="transactional")
    assert not decision.open_task
    assert "agree" in decision.reason


def test_a_negative_retention_answer_never_opens_a_new_task():
    assert not domain.decide_on_negative_feedback(consent_to_contact=True, kind="retention").open_task


def test_only_open_tasks_can_be_assigned_or_resolved():
    domain.check_assignable("open")
    domain.check_resolvable("open")
    for status in ("resolved", "closed"):
        with pytest.raises(domain.TransitionRefused):
            domain.check_assignable(status)
        with pytest.raises(domain.TransitionRefused, match="resolved once"):
            domain.check_resolvable(status)


def test_only_a_resolved_task_awaits_the_retention_outcome():
    assert domain.accepts_outcome("resolved")
    assert not domain.accepts_outcome("open")
    assert not domain.accepts_outcome("closed")


def test_won_back_means_the_retention_answer_was_not_negative():
    assert domain.won_back(negative=False)
    assert not domain.won_back(negative=True)


def test_the_retention_request_names_the_task():
    assert domain.retention_reason("t-1") == "followup:t-1"
    assert "PUT /v1/settings" in domain.NO_RETENTION_SURVEY
