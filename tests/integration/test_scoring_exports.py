"""Segments out and exports against real PostgreSQL and the real broker: each segment's contacts (by their
latest answer in the scope) page by page and as a download, the responses streamed as CSV and NDJSON with
their cases' outcomes, each compared with a reference the test computes from what it published; roles and
erasure."""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.scoring.app import create_app
from services.scoring.settings import ScoringSettings
from shared.access import Role
from shared.clock import Clock
from shared.events import (
    Answer,
    ContactErased,
    FollowUpOpened,
    FollowUpOutcomeRecorded,
    FollowUpResolved,
    FollowUpStatusChanged,
    ResponseCompleted,
    new_id,
    utcnow,
)
from tests.support.access import key_auth
from tests.support.stack import publish, running, settings_from, wait_until

pytestmark = pytest.mark.integration

BATCH = 3  # exports read 3 rows a batch here, so every export below spans several batches


@pytest.fixture(scope="module")
async def client(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_from(ScoringSettings, stack_env, target_interval_s=3600, export_batch_size=BATCH)
    async with running(create_app(settings, clock=Clock())) as c:
        yield c


@dataclass(frozen=True)
class Sent:
    contact: str
    nps: int
    nls: int | None
    country: str
    at: datetime
    comment: str | None = None
    response_id: str = ""

    def event(self, workspace: str, survey: str) -> ResponseCompleted:
        answers = [Answer(question_id="nps", type="nps", value=self.nps)]
        if self.nls is not None:
            answers.append(Answer(question_id="nls", type="nls", value=self.nls))
        if self.comment is not None:
            answers.append(Answer(question_id="why", type="open", value=self.comment))
        return ResponseCompleted(
            workspace_id=workspace,
            response_id=self.response_id,
            invitation_id=None,
            request_id=new_id(),
            contact_id=self.contact,
            survey_id=survey,
            survey_version=1,
            kind="transactional",
            channel="email",
            locale="en",
            hidden_fields={"attr.country": self.country, "team": "support", "attr.tier": "gold"},
            answers=tuple(answers),
            consent_to_contact=self.nps <= 6,
            completed_at=self.at,
        )


def klass(score: int, *, european: bool = False) -> str:
    """The NPS class, written out here rather than imported (the reference must not share the code)."""
    if score >= (8 if european else 9):
        return "promoter"
    return "detractor" if score <= 6 else "passive"


def cell(nps: int, nls: int) -> str:
    a, b = klass(nps), klass(nls)
    if "passive" in (a, b):
        return "undecided"
    return {
        ("promoter", "promoter"): "pure",
        ("promoter", "detractor"): "false",
        ("detractor", "promoter"): "trapped",
    }.get((a, b), "disloyal")


def reference(
    sent: list[Sent], segment: str, *, keep: Any = lambda s: True, **how: Any
) -> list[tuple[str, str]]:
    """(contact, response) of each contact whose latest kept answer is in ``segment``, by contact id."""
    cells = segment in ("pure", "false", "trapped", "disloyal", "undecided")
    latest: dict[str, Sent] = {}
    for s in sorted((s for s in sent if keep(s) and (s.nls is not None or not cells)), key=lambda s: s.at):
        latest[s.contact] = s
    out = []
    for contact, s in sorted(latest.items()):
        score = s.nls if how.get("metric") == "nls" else s.nps
        found = cell(s.nps, s.nls) if cells else klass(score, european=how.get("european", False))  # type: ignore[arg-type]
        if found == segment:
            out.append((contact, s.response_id))
    return out


async def walk(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})}, headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        assert (cursor is None) == ("link" not in r.headers)
        if cursor is None:
            return items


async def scored(client: httpx.AsyncClient, auth: dict[str, str], survey: str, n: int) -> None:
    async def check() -> bool:
        r = await client.get("/v1/metrics", params={"survey_id": survey, "metric": "nps"}, headers=auth)
        return r.status_code == 200 and r.json()["metrics"][0]["n"] >= n

    await wait_until(check, message=f"{n} answers scored on {survey}")


def survey_data(start: datetime) -> list[Sent]:
    rows = [
        ("c01", 10, 9, "NL"),
        ("c02", 9, 2, "NL"),
        ("c03", 3, 10, "BE"),
        ("c04", 1, 0, "NL"),
        ("c05", 8, 9, "NL"),  # passive; a promoter on the european scale
        ("c06", 7, None, "BE"),
        ("c07", 0, None, "NL"),
        ("c08", 10, None, "BE"),
        ("c09", 9, 10, "NL"),
        ("c10", 6, 8, "NL"),
    ]
    sent = [
        Sent(c, nps, nls, k, start + timedelta(hours=i), response_id=new_id())
        for i, (c, nps, nls, k) in enumerate(rows)
    ]
    # c01 was a promoter; a day later a detractor: the latest answer decides
    sent.append(Sent("c01", 2, None, "NL", start + timedelta(days=1), response_id=new_id()))
    # c09 answered NPS and NLS earlier and only NPS later: its cell is from the earlier one
    sent.append(Sent("c09", 4, None, "NL", start + timedelta(days=1, hours=1), response_id=new_id()))
    return sent


async def test_each_segment_lists_its_contacts_by_their_latest_answer_page_by_page_and_as_a_download(
    client, producer, auth, workspace
):
    survey = "svy-" + secrets.token_hex(4)
    start = (utcnow() - timedelta(days=3)).replace(hour=1, minute=0, second=0, microsecond=0)
    sent = survey_data(start)
    for s in sent:
        await publish(producer, s.event(workspace, survey))
    await scored(client, auth, survey, len(sent))

    for segment in ("promoter", "passive", "detractor", "pure", "false", "trapped", "disloyal", "undecided"):
        items = await walk(client, auth, f"/v1/segments/{segment}/contacts", survey_id=survey, limit=2)
        assert [(i["contact_id"], i["response_id"]) for i in items] == reference(sent, segment), segment
    assert {s for s, _ in reference(sent, "detractor")} >= {"c01", "c09"}, "the latest answer decides"

    first_day = start.date().isoformat()
    earlier = await walk(
        client, auth, "/v1/segments/promoter/contacts", survey_id=survey, limit=2, to=first_day
    )
    assert [(i["contact_id"], i["response_id"]) for i in earlier] == reference(
        sent, "promoter", keep=lambda s: s.at.date() <= start.date()
    )
    dutch = await walk(client, auth, "/v1/segments/detractor/contacts", survey_id=survey, filter="country=NL")
    assert [(i["contact_id"], i["response_id"]) for i in dutch] == reference(
        sent, "detractor", keep=lambda s: s.country == "NL"
    )
    european = await walk(client, auth, "/v1/segments/promoter/contacts", survey_id=survey, scale="european")
    assert [(i["contact_id"], i["response_id"]) for i in european] == reference(
        sent, "promoter", european=True
    )
    by_nls = await walk(client, auth, "/v1/segments/promoter/contacts", survey_id=survey, metric="nls")
    assert [(i["contact_id"], i["response_id"]) for i in by_nls] == reference(
        sent, "promoter", keep=lambda s: s.nls is not None, metric="nls"
    )
    [c03] = [i for i in await walk(client, auth, "/v1/segments/trapped/contacts", survey_id=survey)]
    assert (c03["score"], c03["nls"], c03["dimensions"]["country"], c03["question_id"]) == (
        3,
        10,
        "BE",
        "nps",
    )

    download = await client.get(
        "/v1/segments/detractor/contacts/export", params={"survey_id": survey}, headers=auth
    )
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert 'filename="detractor-contacts.csv"' in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text, newline="")))
    assert [(r["contact_id"], r["response_id"]) for r in rows] == reference(sent, "detractor")
    assert all(json.loads(r["dimensions"])["team"] == "support" for r in rows)
    lines = (
        await client.get(
            "/v1/segments/pure/contacts/export",
            params={"survey_id": survey, "format": "ndjson"},
            headers=auth,
        )
    ).text.splitlines()
    assert [(o["contact_id"], o["response_id"]) for o in map(json.loads, lines)] == reference(sent, "pure")

    await publish(producer, ContactErased(workspace_id=workspace, contact_id="c04", erased_at=utcnow()))

    async def gone() -> bool:
        found = await walk(client, auth, "/v1/segments/disloyal/contacts", survey_id=survey)
        return "c04" not in [i["contact_id"] for i in found]

    await wait_until(gone, message="the erased contact leaves its segment")
    after = (
        await client.get("/v1/segments/disloyal/contacts/export", params={"survey_id": survey}, headers=auth)
    ).text
    assert "c04" not in after


async def test_segments_respect_roles_and_refuse_what_they_cannot_read(client, workspace):
    path, export = "/v1/segments/promoter/contacts", "/v1/segments/promoter/contacts/export"
    for role, listed, exported in (
        (Role.VIEWER, 403, 403),
        (Role.AGENT, 403, 403),
        (Role.INTEGRATION, 200, 403),
        (Role.ANALYST, 200, 200),
    ):
        auth = key_auth(workspace, role)
        assert (await client.get(path, headers=auth)).status_code == listed, role
        assert (await client.get(export, headers=auth)).status_code == exported, role
        assert (await client.get("/v1/exports/responses", headers=auth)).status_code == exported, role
    admin = key_auth(workspace)
    for params, field in (
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "from"),
        ({"survey_id": "svy-nobody-knows"}, "survey_id"),
    ):
        refused = await client.get(path, params=params, headers=admin)
        assert refused.status_code in (404, 422) and refused.json()["errors"][0]["field"] == field, params
    assert (await client.get("/v1/segments/fans/contacts", headers=admin)).status_code == 422
    assert (await client.get(export, params={"format": "xlsx"}, headers=admin)).status_code == 422


def guarded(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def theme_of_responses(client: httpx.AsyncClient, auth: dict[str, str], survey: str) -> dict[str, Any]:
    """response id → (themes, the comment as the comments API reads it), through the themes API."""
    out: dict[str, Any] = {}
    for rule in (await client.get("/v1/themes/rules", headers=auth)).json():
        cursor = None
        while True:
            params = {"survey_id": survey, "limit": 2, **({"cursor": cursor} if cursor else {})}
            body = (
                await client.get(f"/v1/themes/{rule['theme']}/comments", params=params, headers=auth)
            ).json()
            for c in body["comments"]:
                themes, _ = out.get(c["response_id"], (set(), None))
                out[c["response_id"]] = (themes | {rule["theme"]}, c)
            if (cursor := body["next_cursor"]) is None:
                break
    return out


async def test_the_responses_export_streams_every_response_with_its_scores_comments_and_dimensions(
    client, producer, auth, workspace
):
    survey, other = "svy-" + secrets.token_hex(4), "svy-" + secrets.token_hex(4)
    start = (utcnow() - timedelta(days=4)).replace(hour=2, minute=0, second=0, microsecond=0)
    texts = [
        '=HYPERLINK("http://evil.test","click")',
        'The delivery was late, "very" late\nand the invoice was wrong',
        "-2 stars for the late parcel",
        "@support friendly staff and fast delivery",
        "Everything fine",
        None,
        "+31 called me back, great",
        "Invoice wrong again",
    ]
    sent = [
        Sent(
            f"k{i}",
            (i * 3) % 11,
            (i * 7) % 11 if i % 2 else None,
            "NL" if i % 3 else "BE",
            start + timedelta(days=i // 3, hours=i),
            comment=text,
            response_id=new_id(),
        )
        for i, text in enumerate(texts)
    ]
    for s in sent:
        await publish(producer, s.event(workspace, survey))
    await publish(
        producer, Sent("k-other", 10, None, "NL", start, response_id=new_id()).event(workspace, other)
    )
    await scored(client, auth, survey, len(sent))
    await scored(client, auth, other, 1)
    await publish(producer, ContactErased(workspace_id=workspace, contact_id="k1", erased_at=utcnow()))

    async def erased() -> bool:
        found = await walk(client, auth, "/v1/segments/detractor/contacts", survey_id=survey)
        return "k1" not in {i["contact_id"] for i in found}

    await wait_until(erased, message="k1 erased")
    won, working = new_id(), new_id()
    now = utcnow()
    common = {"workspace_id": workspace, "occurred_at": now}
    for event in (
        FollowUpOpened(
            task_id=won, contact_id="k0", response_id=sent[0].response_id, survey_id=survey, score=0, **common
        ),
        FollowUpResolved(
            task_id=won,
            contact_id="k0",
            note="Called",
            retention_request_id=None,
            root_cause_category="Delivery",
            root_cause="Late",
            **common,
        ),
        FollowUpOutcomeRecorded(task_id=won, contact_id="k0", won_back=True, retention_score=9, **common),
        FollowUpOpened(
            task_id=working,
            contact_id="k2",
            response_id=sent[2].response_id,
            survey_id=survey,
            score=6,
            **common,
        ),
        FollowUpStatusChanged(
            task_id=working, contact_id="k2", from_status="open", to_status="in_progress", **common
        ),
    ):
        await publish(producer, event)
    cases = {
        sent[0].response_id: (won, "resolved", "Delivery", "Late", True, 9),
        sent[2].response_id: (working, "in_progress", None, None, None, None),
    }

    async def cases_known() -> bool:
        r = await client.get(
            "/v1/exports/responses", params={"survey_id": survey, "format": "ndjson"}, headers=auth
        )
        rows = {o["response_id"]: o for o in map(json.loads, r.text.splitlines())}
        return (
            rows[sent[0].response_id]["won_back"] is True
            and rows[sent[2].response_id]["case_status"] == "in_progress"
        )

    await wait_until(cases_known, message="the cases' outcomes reach scoring")
    themes = await theme_of_responses(client, auth, survey)
    assert themes, "some comments have themes"

    def expected(s: Sent) -> dict[str, Any]:
        erased_ = s.contact == "k1"
        comment = None if erased_ else s.comment
        found, read = themes.get(s.response_id, (set(), None))
        return {
            "response_id": s.response_id,
            "survey_id": survey,
            "survey_version": 1,
            "kind": "transactional",
            "channel": "email",
            "locale": "en",
            "contact_id": None if erased_ else s.contact,
            "completed_at": s.at.isoformat(),
            "nps": s.nps,
            "nls": s.nls,
            "csat": None,
            "ces": None,
            "rating": None,
            "classification": klass(s.nps),
            "loyalty": cell(s.nps, s.nls) if s.nls is not None else None,
            "negative": s.nps <= 6 or (s.nls is not None and s.nls <= 6),
            "consent_to_contact": s.nps <= 6,
            "scores": {"nps": s.nps, **({"nls": s.nls} if s.nls is not None else {})},
            "comment": comment,
            "themes": sorted(found),
            "language": "en",
            "country": s.country,
            "team": "support",
            "agent": None,
            "product": None,
            "journey_stage": None,
            "plan": None,
            "role": None,
            "dimensions": {
                "channel": "email",
                "kind": "transactional",
                "language": "en",
                "country": s.country,
                "team": "support",
                "tier": "gold",
            },
            **({"sentiment": read["sentiment"], "sentiment_label": read["label"]} if read else {}),
            **dict(
                zip(
                    (
                        "case_id",
                        "case_status",
                        "case_root_cause_category",
                        "case_root_cause",
                        "won_back",
                        "retention_score",
                    ),
                    cases.get(s.response_id, (None,) * 6),
                    strict=True,
                )
            ),
        }

    def as_csv(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return guarded(json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True))
        return guarded(value) if isinstance(value, str) else str(value)

    async def export(fmt: str, **params: Any) -> list[dict[str, Any]]:
        r = await client.get(
            "/v1/exports/responses",
            params={k: v for k, v in {"survey_id": survey, "format": fmt, **params}.items() if v is not None},
            headers=auth,
        )
        assert r.status_code == 200, r.text
        if fmt == "csv":
            assert r.headers["content-type"].startswith("text/csv") and r.text.endswith("\r\n")
            return list(csv.DictReader(io.StringIO(r.text, newline="")))
        assert r.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in r.text.splitlines()]

    def compare(rows: list[dict[str, Any]], wanted: list[Sent], *, fmt: str) -> None:
        assert sorted(r["response_id"] for r in rows) == sorted(s.response_id for s in wanted), "each once"
        by_id = {r["response_id"]: r for r in rows}
        for s in wanted:
            row, want = by_id[s.response_id], expected(s)
            for column, value in want.items():
                got = row[column]
                assert got == (as_csv(value) if fmt == "csv" else value), (column, s.contact, got)

    for fmt in ("csv", "ndjson"):
        compare(await export(fmt), sent, fmt=fmt)
        compare(await export(fmt, filter="country=NL"), [s for s in sent if s.country == "NL"], fmt=fmt)
        day = start.date() + timedelta(days=1)
        compare(
            await export(fmt, **{"from": day.isoformat(), "to": day.isoformat()}),
            [s for s in sent if s.at.date() == day],
            fmt=fmt,
        )

    raw = (await client.get("/v1/exports/responses", params={"survey_id": survey}, headers=auth)).text
    assert "'=HYPERLINK(" in raw and "\n=HYPERLINK" not in raw and ",=HYPERLINK" not in raw
    everything = await export("ndjson", survey_id=None)
    assert {r["survey_id"] for r in everything} == {survey, other}
