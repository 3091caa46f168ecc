"""The web app's pure parts: the period picker, the SVG charts, the inbox's SLA countdowns and local time,
and the way a form goes back to its page with a message."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request

from services.console.api.forms import back_to, comma_separated
from services.console.domain import charts
from services.console.domain.cases import countdown, due_soon, local_time, sla_of
from services.console.domain.periods import period_of
from services.console.settings import ConsoleSettings
from services.console.views import flashed

TODAY = date(2026, 11, 30)


def test_the_period_picker_gives_both_days_included_and_never_the_future():
    assert (period_of("7d", today=TODAY).since, period_of("7d", today=TODAY).until) == (
        date(2026, 11, 24),
        TODAY,
    )
    assert period_of("quarter", today=TODAY).since == date(2026, 10, 1)
    assert period_of("year", today=TODAY).since == date(2026, 1, 1)
    assert period_of("nonsense", today=TODAY).key == "30d"
    custom = period_of("custom", today=TODAY, since="2026-12-20", until="2026-11-01")
    assert (custom.since, custom.until) == (date(2026, 11, 1), TODAY)  # reversed, and capped at today
    assert period_of("custom", today=TODAY, since="garbage", until=None).key == "30d"
    assert [period_of(k, today=TODAY).interval for k in ("7d", "90d", "year")] == ["day", "week", "month"]


def test_a_trend_draws_a_band_and_leaves_gaps_and_escapes_text():
    points = [
        charts.Point(date(2026, 11, 1), 10, 0, 20, 12),
        charts.Point(date(2026, 11, 2), 20, 5, 35, 14),
        charts.Point(date(2026, 11, 3), None, None, None, 0),
        charts.Point(date(2026, 11, 4), -5, -30, 20, 9),
    ]
    svg = str(charts.trend(points, title="NPS <per day>", lo=-100, hi=100))
    assert svg.count("<polygon") == 1  # one band for the run of two; a lone point after the gap has none
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3
    assert "NPS &lt;per day&gt;" in svg and "2026-11-04: -5 (n=9)" in svg
    assert "style=" not in svg  # the pages' policy refuses inline styles


def test_bars_say_why_a_group_has_no_value():
    svg = str(
        charts.bars(
            [charts.Bar("NL", 40, 20, 60), charts.Bar("BE", None, note="too few answers")],
            title="NPS by country",
            lo=-100,
            hi=100,
        )
    )
    assert "too few answers" in svg and "NL: 40" in svg and svg.count("<rect") == 1


def test_the_sla_countdown_runs_on_the_clock_that_applies():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    case = {
        "status": "open",
        "sla": {
            "first_contact_due_at": (now + timedelta(hours=3, minutes=20)).isoformat(),
            "resolution_due_at": None,
        },
    }
    sla = sla_of(case, now)
    assert sla is not None and (sla["clock"], sla["text"], sla["overdue"]) == (
        "first contact",
        "in 3 h 20 min",
        False,
    )
    assert due_soon(case, now)
    contacted = {
        "status": "in_progress",
        "sla": {"first_contacted_at": now.isoformat(), "resolution_due_at": "2026-11-28T12:00:00Z"},
    }
    late = sla_of(contacted, now)
    assert late is not None and (late["clock"], late["text"], late["overdue"]) == (
        "resolution",
        "2 d 0 h overdue",
        True,
    )
    assert sla_of({"status": "closed", "sla": {}}, now) is None
    assert countdown(now + timedelta(minutes=5), now) == "in 5 min"


def test_the_customers_local_time_names_their_zone_or_nothing():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert local_time("Europe/Amsterdam", now) == "13:00, Mon (Europe/Amsterdam)"
    assert local_time("Mars/Olympus", now) is None and local_time(None, now) is None


def test_a_form_goes_back_to_its_place_with_a_signed_message_before_the_fragment():
    settings = ConsoleSettings(database_url="postgresql://nobody@127.0.0.1:1/none")
    response = back_to(
        SimpleNamespace(settings=settings), "/cases#actions", keep={"view": "team"}, done="Moved."
    )
    assert response.status_code == 303
    url = urlsplit(response.headers["location"])
    assert (url.path, url.fragment) == ("/cases", "actions")
    assert [k for k, _ in parse_qsl(url.query)] == ["view", "done", "done_sig"]
    landed = Request({"type": "http", "query_string": url.query.encode(), "headers": []})
    assert flashed(landed, settings, "done") == "Moved."
    assert (
        urlsplit(
            back_to(SimpleNamespace(settings=settings), "/settings", done="x").headers["location"]
        ).fragment
        == ""
    )


def test_a_comma_separated_field_gives_its_items_trimmed_without_the_empty_ones():
    assert comma_separated(" NL, be ,,DE ,") == ["NL", "be", "DE"]
    assert comma_separated("country=NL") == ["country=NL"]
    assert comma_separated("") == [] and comma_separated(" , ") == []
