"""A workspace's policy applied, pure: frequency caps (per workspace and per survey) and quiet hours
in the contact's time zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.trigger.domain.model import Policy, QuietHours, RuleView, Sent


def cap_block(rule: RuleView, policy: Policy, history: Sequence[Sent], now: datetime) -> str | None:
    """Return why a frequency cap blocks this send, or None.

    Retention surveys are never blocked. An exempt rule skips the workspace cap but keeps its own
    per-survey cap, if it has one.
    """
    if rule.kind == "retention":
        return None
    if policy.cap is not None and not rule.exempt_from_caps:
        since = now - timedelta(days=policy.cap.days)
        recent = [s for s in history if s.sent_at > since]
        if len(recent) >= policy.cap.max_surveys:
            last = max(s.sent_at for s in recent)
            return (
                f"workspace cap: at most {policy.cap.max_surveys} survey(s) per {policy.cap.days} days "
                f"per contact; last one {last.isoformat()}"
            )
    if rule.survey_cap is not None:
        since = now - timedelta(days=rule.survey_cap.days)
        same = [s for s in history if s.survey_id == rule.survey_id and s.sent_at > since]
        if len(same) >= rule.survey_cap.max_surveys:
            return (
                f"survey cap: at most {rule.survey_cap.max_surveys} of survey {rule.survey_id} per "
                f"{rule.survey_cap.days} days per contact"
            )
    return None


def quiet_until(moment: datetime, quiet: QuietHours | None, tz: ZoneInfo) -> datetime | None:
    """Return when the quiet hours around ``moment`` end (UTC), or None if ``moment`` is not quiet."""
    if quiet is None or quiet.start == quiet.end:
        return None
    local = moment.astimezone(tz)
    now_t = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:  # e.g. 12:00–14:00 the same day
        if not quiet.start <= now_t < quiet.end:
            return None
        end_day = local.date()
    else:  # e.g. 21:00–08:00 across midnight
        if quiet.end <= now_t < quiet.start:
            return None
        end_day = local.date() + timedelta(days=1) if now_t >= quiet.start else local.date()
    end = datetime.combine(end_day, quiet.end, tzinfo=tz)
    # A DST gap can put the wall-clock end before the start; never return a time in the past.
    return max(end.astimezone(UTC), moment.astimezone(UTC))
