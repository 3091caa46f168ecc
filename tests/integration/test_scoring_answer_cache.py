"""The API's in-memory columns of answers against real PostgreSQL: the same figures as the answers table
over random answers, filters and groups; a transaction that commits late is not missed; an update or a
delete of answers is seen on the next read; reading answers again adds nothing."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.scoring import domain
from services.scoring.handlers import surveys
from services.scoring.handlers.erasure import erase_contact
from services.scoring.queries import answer_cache, metrics, reports
from services.scoring.queries.answer_cache import AnswerCache
from services.scoring.queries.scope import Scope
from shared.db import Database
from shared.events import ContactErased, utcnow

pytestmark = pytest.mark.integration

TODAY = date(2026, 6, 30)
DAYS = 60
FIRST = TODAY - timedelta(days=DAYS - 1)
VALUES = {
    "country": ["NL", "BE", "DE"],
    "plan": ["free", "pro"],
    "team": ["a", "b", "c"],
    "kind": ["transactional"],
}
KINDS = ["transactional", "relationship", "retention"]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=4)
    yield database
    await database.dispose()


@pytest.fixture
async def cache(db: Database) -> AsyncIterator[AnswerCache]:
    the_cache = AnswerCache(db, days=DAYS, today=lambda: TODAY, settle_timeout_s=10)
    yield the_cache
    await the_cache.close()
    answer_cache.install(None)


async def new_workspace(db: Database, scales: list[str]) -> tuple[str, list[int]]:
    """Return a new workspace with a survey of each NPS scale given, and the surveys' keys."""
    ws = f"ws-{secrets.token_hex(5)}"
    keys = []
    async with db.unit_of_work() as session:
        for i, scale in enumerate(scales):
            key = await session.scalar(
                text(
                    "INSERT INTO scoring.surveys (workspace_id, survey_id, answered) "
                    "VALUES (:ws, :sid, true) RETURNING key"
                ),
                {"ws": ws, "sid": f"s{i}"},
            )
            await session.execute(
                text(
                    "INSERT INTO scoring.survey_scoring (workspace_id, survey_id, nps_scale) VALUES (:ws, :sid, :scale)"
                ),
                {"ws": ws, "sid": f"s{i}", "scale": scale},
            )
            keys.append(int(key))
    return ws, keys


ANSWER = text(
    "INSERT INTO scoring.answers (response_key, question_id, survey_key, metric, day, score, kind, country, plan, "
    "team) VALUES (nextval(pg_get_serial_sequence('scoring.scored_responses', 'key')), :question, :survey, "
    ":metric, :day, :score, :kind, :country, :plan, :team) RETURNING response_key"
)


def answer_rows(surveys: list[int]) -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries(
        {
            "survey": st.sampled_from(surveys),
            "metric": st.sampled_from(["nps", "csat"]),
            "day": st.integers(-5, DAYS + 3).map(lambda d: FIRST + timedelta(days=d)),
            "score": st.integers(0, 10),
            "kind": st.sampled_from(KINDS),
            "country": st.sampled_from([None, *VALUES["country"]]),
            "plan": st.sampled_from([None, *VALUES["plan"]]),
            "team": st.sampled_from([None, *VALUES["team"]]),
        }
    )
    return st.lists(row, min_size=0, max_size=60)


async def insert(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.unit_of_work() as session:
        for r in rows:
            question = "q-nps" if r["metric"] == "nps" else "q-csat"
            score = r["score"] if r["metric"] == "nps" else 1 + r["score"] % 5
            await session.execute(ANSWER, {**r, "question": question, "score": score})


conditions = st.lists(
    st.sampled_from(sorted(VALUES) + ["channel"]).flatmap(
        lambda d: st.tuples(
            st.just(d),
            st.lists(st.sampled_from(VALUES.get(d, ["email"])), max_size=2, unique=True),
            st.lists(st.sampled_from(VALUES.get(d, ["email"])), max_size=2, unique=True),
        )
    ),
    max_size=3,
)
report_requests = st.fixed_dictionaries(
    {
        "since": st.integers(0, DAYS).map(lambda d: FIRST + timedelta(days=d)),
        "length": st.integers(0, 40),
        "conditions": conditions,
        "group_by": st.sampled_from([None, "country", "plan", "team", "kind", "survey", "channel"]),
        "interval": st.sampled_from([None, "day", "week", "month"]),
        "kinds": st.sampled_from([None, ("transactional",), ("relationship", "retention")]),
        "question": st.sampled_from([None, "q-nps"]),
        "scale": st.sampled_from([None, "european"]),
    }
)


def segment_of(r: dict[str, Any]) -> domain.Segment:
    return domain.Segment(tuple(domain.Condition(d, tuple(i), tuple(e)) for d, i, e in r["conditions"]))


async def known_surveys(session: Any, ws: str) -> dict[int, Any]:
    return await surveys.surveys(session, workspace_id=ws, default_scale="standard", survey_id=None)


async def loaded_workspace(db: Database, cache: AnswerCache, data: st.DataObject) -> str:
    """Return a workspace with random answers, loaded in ``cache``."""
    ws, keys = await new_workspace(db, ["standard", "european"])
    await insert(db, data.draw(answer_rows(keys)))
    await cache.ready(ws)
    await insert(db, data.draw(answer_rows(keys)))  # after the load: caught up before answering
    return ws


def scope_of(ws: str, surveys: dict[int, Any], r: dict[str, Any]) -> Scope:
    return Scope(
        surveys,
        r["kinds"],
        r["since"],
        r["since"] + timedelta(days=r["length"]),
        segment_of(r),
        r["group_by"],
        r["interval"],
        r["scale"],
        ws,
    )


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_the_columns_give_the_figures_of_the_answers_table(
    db: Database, cache: AnswerCache, data: st.DataObject
) -> None:
    """The histograms, and the reports built on them: groups hidden below the workspace's minimum and
    the change against the previous period too."""
    ws = await loaded_workspace(db, cache, data)
    async with db.unit_of_work() as session:
        known = await known_surveys(session, ws)
        for r in data.draw(st.lists(report_requests, min_size=1, max_size=6)):
            scope = scope_of(ws, known, r)
            for metric in ("nps", "csat"):
                from_cache = await cache.histograms(
                    scope, workspace_id=ws, metric=metric, question_id=r["question"]
                )
                expected = await metrics._from_answers(
                    session, scope, metric=metric, question_id=r["question"]
                )
                assert from_cache == expected, r
    for r in data.draw(st.lists(report_requests, min_size=1, max_size=3)):
        request = reports.Request(
            workspace_id=ws,
            kinds=r["kinds"],
            since=r["since"],
            until=r["since"] + timedelta(days=r["length"]),
            segment=segment_of(r),
            group_by=r["group_by"] or "country",
            compare=True,
            scale=r["scale"],
        )
        answered, served = [], cache.served
        for installed in (None, cache):
            answer_cache.install(installed)
            async with db.unit_of_work() as session:
                report = await reports.metrics_report(
                    session, request, metrics_wanted=["nps", "csat"], default_scale="standard", today=TODAY
                )
            answered.append(report.model_dump())
        assert answered[0] == answered[1]
        if r["conditions"] or request.group_by not in ("kind", "survey"):  # else the rollups answer
            assert cache.served > served


async def figures(db: Database, cache: AnswerCache | None, ws: str, keys: list[int]) -> Any:
    """Return the NPS histograms by country over the days (from the columns, or PostgreSQL's)."""
    async with db.unit_of_work() as session:
        known = await known_surveys(session, ws)
        scope = scope_of(
            ws,
            known,
            {
                "kinds": None,
                "since": FIRST,
                "length": DAYS,
                "conditions": [("plan", [], ["enterprise"])],
                "group_by": "country",
                "interval": None,
                "scale": None,
            },
        )
        if cache is None:
            return await metrics._from_answers(session, scope, metric="nps", question_id=None)
        return await cache.histograms(scope, workspace_id=ws, metric="nps", question_id=None)


def row(survey: int, score: int, country: str = "NL") -> dict[str, Any]:
    return {
        "survey": survey,
        "metric": "nps",
        "day": TODAY,
        "score": score,
        "kind": "transactional",
        "country": country,
        "plan": "free",
        "team": "a",
    }


async def test_an_answer_committed_after_a_later_key_is_not_missed(db: Database, cache: AnswerCache) -> None:
    ws, [survey] = await new_workspace(db, ["standard"])
    await insert(db, [row(survey, 9)])
    await cache.ready(ws)
    async with db.engine.connect() as late:
        # The late transaction takes its key first, then another commits a higher key.
        late_key = (await late.execute(ANSWER, {**row(survey, 0, "BE"), "question": "q-nps"})).scalar_one()
        await insert(db, [row(survey, 10)])
        early = await figures(db, cache, ws, [survey])
        assert early == await figures(db, None, ws, [survey])
        assert early == {("NL", None): {"standard": {9: 1, 10: 1}}}
        await late.commit()
    after = await figures(db, cache, ws, [survey])
    assert after == await figures(db, None, ws, [survey])
    assert after[("BE", None)] == {"standard": {0: 1}}
    assert cache.workspaces[ws].settled >= late_key


async def test_reading_answers_again_adds_nothing(db: Database, cache: AnswerCache) -> None:
    """While a transaction runs the checkpoint cannot settle: every read reads the same answers again."""
    ws, [survey] = await new_workspace(db, ["standard"])
    await cache.ready(ws)
    async with db.engine.connect() as running:
        await running.execute(ANSWER, {**row(survey, 3), "question": "q-nps"})  # holds an xid, uncommitted
        await insert(db, [row(survey, 9), row(survey, 9, "DE")])
        for _ in range(3):
            assert await figures(db, cache, ws, [survey]) == {
                ("NL", None): {"standard": {9: 1}},
                ("DE", None): {"standard": {9: 1}},
            }
        assert cache.workspaces[ws].pending
        await running.rollback()
    assert cache.workspaces[ws].columns.size == 2


async def test_an_update_or_delete_of_answers_is_seen_on_the_next_read(
    db: Database, cache: AnswerCache
) -> None:
    ws, [survey] = await new_workspace(db, ["standard"])
    await insert(db, [row(survey, 9), row(survey, 2, "BE")])
    await cache.ready(ws)
    assert await figures(db, cache, ws, [survey]) == await figures(db, None, ws, [survey])
    async with db.unit_of_work() as session:  # re-scored
        await session.execute(
            text("UPDATE scoring.answers SET score = 5 WHERE survey_key = :s AND country = 'BE'"),
            {"s": survey},
        )
    assert await figures(db, cache, ws, [survey]) is None  # PostgreSQL answers while the columns reload
    await cache.ready(ws)
    assert await figures(db, cache, ws, [survey]) == {
        ("NL", None): {"standard": {9: 1}},
        ("BE", None): {"standard": {5: 1}},
    }
    async with db.unit_of_work() as session:
        await session.execute(
            text("DELETE FROM scoring.answers WHERE survey_key = :s AND score = 9"), {"s": survey}
        )
    assert await figures(db, cache, ws, [survey]) is None
    await cache.ready(ws)
    assert await figures(db, cache, ws, [survey]) == {("BE", None): {"standard": {5: 1}}}


async def test_an_erasure_is_reflected_on_the_next_read(db: Database, cache: AnswerCache) -> None:
    """Erasure keeps the scores, anonymous: the figures stay those of the answers table."""
    ws, [survey] = await new_workspace(db, ["standard"])
    await insert(db, [row(survey, 9), row(survey, 2, "BE")])
    await cache.ready(ws)
    async with db.unit_of_work() as session:
        await erase_contact(
            session, event=ContactErased(workspace_id=ws, contact_id="c-1", erased_at=utcnow())
        )
    assert await figures(db, cache, ws, [survey]) == await figures(db, None, ws, [survey])


async def test_days_before_the_columns_and_ad_hoc_dimensions_are_left_to_postgresql(
    db: Database, cache: AnswerCache
) -> None:
    ws, [survey] = await new_workspace(db, ["standard"])
    await insert(db, [row(survey, 9)])
    await cache.ready(ws)
    async with db.unit_of_work() as session:
        known = await known_surveys(session, ws)
    base = {
        "kinds": None,
        "length": 10,
        "conditions": [],
        "interval": None,
        "scale": None,
        "group_by": "team",
    }
    earlier = scope_of(ws, known, {**base, "since": FIRST - timedelta(days=1)})
    ad_hoc = scope_of(ws, known, {**base, "since": FIRST, "group_by": "tier"})
    inside = scope_of(ws, known, {**base, "since": TODAY - timedelta(days=3)})
    for scope, answered in ((earlier, False), (ad_hoc, False), (inside, True)):
        found = await cache.histograms(scope, workspace_id=ws, metric="nps", question_id=None)
        assert (found is not None) == answered


async def test_the_columns_hold_at_most_max_answers(db: Database) -> None:
    ws, [survey] = await new_workspace(db, ["standard"])
    await insert(db, [row(survey, 9), row(survey, 8)])
    small = AnswerCache(db, days=DAYS, max_answers=1, today=lambda: TODAY)
    small.load_soon(ws)
    await small.loading[ws]
    assert ws not in small.workspaces and ws in small.too_large
    small.load_soon(ws)  # not again for an hour
    assert ws not in small.loading
    assert small.stats()["answers"] == 0


async def test_replicas_catch_up_with_concurrent_commits_on_their_own(db: Database) -> None:
    """Two API processes' columns, transactions committing in another order than their keys."""
    ws, [survey] = await new_workspace(db, ["standard"])
    replicas = [AnswerCache(db, days=DAYS, today=lambda: TODAY) for _ in range(2)]
    for replica in replicas:
        await replica.ready(ws)
    async with db.engine.connect() as first, db.engine.connect() as second:
        for i in range(3):
            await first.execute(ANSWER, {**row(survey, i, "BE"), "question": "q-nps"})
            await second.execute(ANSWER, {**row(survey, 10 - i, "DE"), "question": "q-nps"})
            assert await figures(db, replicas[i % 2], ws, [survey]) == {}
        await second.commit()
        assert await figures(db, replicas[0], ws, [survey]) == {
            ("DE", None): {"standard": {10: 1, 9: 1, 8: 1}}
        }
        await first.commit()
    expected = await figures(db, None, ws, [survey])
    assert expected[("BE", None)] == {"standard": {0: 1, 1: 1, 2: 1}}
    for replica in replicas:
        assert await figures(db, replica, ws, [survey]) == expected
        await replica.close()
