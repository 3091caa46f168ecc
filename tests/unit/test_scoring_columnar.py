"""The columns of the answer cache on their own: codes wider than 16 bits, answers that arrive after the
sorted part, and the periods of a trend (against the PostgreSQL path: tests/integration/
test_scoring_answer_cache.py)."""

from __future__ import annotations

from datetime import date, timedelta

from services.scoring import domain
from services.scoring.handlers.surveys import SurveyInfo
from services.scoring.queries.columnar import Columns
from services.scoring.queries.scope import Scope

FIRST = date(2026, 3, 1)
SURVEYS = {7: SurveyInfo(7, "s7", "standard")}


def answer(key: int, day: int, score: int, agent: str, plan: str | None = "pro") -> tuple[object, ...]:
    dims = {"channel": "email", "kind": "transactional", "agent": agent, "plan": plan}
    return (key, "q-nps", 7, "nps", day, score, *(dims.get(d) for d in domain.DECLARED))


def scope(**fields: object) -> Scope:
    return Scope(SURVEYS, since=FIRST, workspace_id="ws", **fields)  # type: ignore[arg-type]


def test_more_agents_than_16_bits_of_codes_are_counted_apart() -> None:
    columns = Columns(FIRST)
    columns.append([answer(k, k % 30, k % 11, f"agent-{k}") for k in range(70_000)])
    columns.order()
    found = columns.histograms(scope(group_by="agent"), metric="nps", question_id=None)
    assert len(found) == 70_000
    assert found[("agent-69999", None)] == {"standard": {69_999 % 11: 1}}


def test_answers_after_the_sorted_part_are_counted_and_filtered_too() -> None:
    columns = Columns(FIRST)
    columns.append([answer(1, 10, 9, "a"), answer(2, 40, 3, "a")])
    columns.order()
    columns.append([answer(3, 10, 10, "a"), answer(4, 12, 0, "a", plan="free"), answer(5, 50, 1, "a")])
    segment = domain.parse_filters(["plan!=free"])
    until = FIRST + timedelta(days=20)
    found = columns.histograms(scope(until=until, segment=segment), metric="nps", question_id=None)
    assert found == {(None, None): {"standard": {9: 1, 10: 1}}}
    assert columns.ordered == 2 and columns.size == 5


def test_weeks_start_on_monday_and_months_on_their_first_day() -> None:
    columns = Columns(FIRST)  # a Sunday
    columns.append([answer(1, 0, 9, "a"), answer(2, 1, 9, "a"), answer(3, 31, 9, "a")])
    columns.order()
    weeks = columns.histograms(scope(interval="week"), metric="nps", question_id=None)
    assert sorted(start for _, start in weeks) == [date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 30)]
    months = columns.histograms(scope(interval="month"), metric="nps", question_id=None)
    assert sorted(start for _, start in months) == [date(2026, 3, 1), date(2026, 4, 1)]
