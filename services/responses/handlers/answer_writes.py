"""Answers saved in one statement, on the read path's pool: the answers API's and the form's hot paths.

The visit comes from ``reads.read_visit`` (no lock); the answer is checked against the survey version
the response answers, then one statement writes it, atomically (one statement is one transaction):

- the first answer inserts the response (``ON CONFLICT DO NOTHING`` on the unique link key: one
  response per invitation), its answer and ``ResponseStarted`` into the outbox, the last two only
  when the response row was inserted;
- a later answer updates the response — which locks its row, and PostgreSQL re-checks the condition
  on the newest row version, so a submission that completed it meanwhile wins — merging the passed
  questions in SQL, and upserts (or, for a null, deletes) the answer only when that update applied.

A form post through a link without a response yet (``submit_first``: the whole survey on one page,
or its first page) is one statement too: the response (completed when the post completes it), its
answers, ``ResponseStarted`` and ``ResponseCompleted``, all only when the response row was inserted.

When the statement applied nothing (another first answer won the race, the response was completed
meanwhile, or it answers another version), it returns False and the caller takes the locked path
(``visits.open_link(lock=True)`` in a unit of work), which decides as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.responses.domain.answers import clean_context, completed_answers, consent_given
from services.responses.handlers.reads import PAGE_SQL, DefinitionCache, Reader, visit_of
from services.responses.handlers.responses import checked_answer, completed_event, started_event
from services.responses.handlers.steps import CheckedForm, FormResult, check_form
from services.responses.handlers.visits import Visit
from services.responses.models import SCHEMA, Response, ResponseAnswer, Survey, outbox
from shared import tracing
from shared.erasure import contact_hash
from shared.errors import CloseloopError
from shared.events import CloudEvent, EventData, new_id, utcnow
from shared.outbox import Outbox
from shared.survey_links import SurveyLink

_RESPONSES = f"{SCHEMA}.{Response.__tablename__}"
_ANSWERS = f"{SCHEMA}.{ResponseAnswer.__tablename__}"

FIRST_ANSWER_SQL = f"""
WITH r AS (
    INSERT INTO {_RESPONSES}
        (id, workspace_id, survey_id, survey_version, link_key, invitation_id, request_id, contact_id,
         kind, channel, locale, hidden_fields, passed, consent_to_contact, started_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12, false, $13, $13)
    ON CONFLICT DO NOTHING
    RETURNING id
), o AS (
    INSERT INTO {outbox.fullname} (event_id, topic, key, payload) SELECT $14, $15, $16, $17 FROM r
), a AS (
    INSERT INTO {_ANSWERS} (response_id, question_id, workspace_id, position, type, value, answered_at)
    SELECT r.id, $18, $2, $19, $20, $21, $13 FROM r
)
SELECT count(*) FROM r
"""


def _after_read(first: str, *, contact_hash_at: int) -> str:
    """Return the statement ``first`` (a first write: $2 workspace, $3 survey, $4 version, $5 link key)
    after the page's read (``reads.PAGE_SQL``; its contact hash as ``$contact_hash_at``) in one statement.

    The response is inserted only when the read finds what the write assumed: the survey open at
    version $4, the contact not erased, no response yet. The statement returns the read's row and
    ``applied`` (1 when the response was inserted)."""
    params = {"1": "$2", "2": "$3", "3": "$5", "4": f"${contact_hash_at}"}
    read = re.sub(r"[$]([1-4])\b", lambda m: params[m[1]], PAGE_SQL)
    gate = "WHERE NOT v.erased AND v.s_version = $4 AND v.s_closed_at IS NULL AND v.r_id IS NULL"
    steps = [
        ("WITH r AS (", f"WITH v AS ({read}), r AS ("),
        ("    VALUES (", "    SELECT "),
        (")\n    ON CONFLICT DO NOTHING", f" FROM v {gate}\n    ON CONFLICT DO NOTHING"),
        ("SELECT count(*) FROM r", "SELECT v.*, (SELECT count(*) FROM r) AS applied FROM v"),
    ]
    for old, new in steps:
        assert first.count(old) == 1, old
        first = first.replace(old, new)
    return first


READ_AND_FIRST_ANSWER_SQL = _after_read(FIRST_ANSWER_SQL, contact_hash_at=22)

LATER_ANSWER_SQL = f"""
WITH r AS (
    UPDATE {_RESPONSES} AS t SET updated_at = $3, passed = (
        SELECT coalesce(jsonb_agg(p.q ORDER BY coalesce(array_position($8::varchar[], p.q) - 1, 0)), '[]')
        FROM (SELECT jsonb_array_elements_text(t.passed) AS q UNION SELECT $4) AS p
    )
    WHERE t.id = $1 AND t.survey_version = $2 AND t.completed_at IS NULL
    RETURNING t.id, t.workspace_id
), a AS (
    INSERT INTO {_ANSWERS} (response_id, question_id, workspace_id, position, type, value, answered_at)
    SELECT r.id, $4, r.workspace_id, $5, $6, $7, $3 FROM r WHERE $7::jsonb IS NOT NULL
    ON CONFLICT (response_id, question_id) DO UPDATE
        SET value = excluded.value, answered_at = excluded.answered_at
), d AS (
    DELETE FROM {_ANSWERS} AS x USING r
    WHERE $7::jsonb IS NULL AND x.response_id = r.id AND x.question_id = $4
)
SELECT count(*) FROM r
"""


async def save_one(pool: Reader, outbox_: Outbox, *, visit: Visit, question_id: str, value: Any) -> bool:
    """Return whether ``value`` (checked; None clears) was saved for ``question_id`` in one statement.

    On True the visit holds the answer as saved; on False nothing was written (see the module)."""
    now = utcnow()
    if visit.response is None:
        assert value is not None, "clearing an answer before any was given stores nothing"
        response_id, args = _first_answer_args(visit, outbox_, question_id=question_id, value=value, now=now)
        applied = await pool.fetchval(FIRST_ANSWER_SQL, *args)
    else:
        position = next(i for i, q in enumerate(visit.questions) if q.id == question_id)
        applied = await pool.fetchval(
            LATER_ANSWER_SQL,
            visit.response.id,
            visit.definition.version,
            now,
            question_id,
            position,
            visit.questions[position].type,
            value,
            [q.id for q in visit.questions],
        )
    if not applied:
        return False
    _note_saved(visit, response_id if visit.response is None else visit.response.id, question_id, value)
    return True


async def read_and_save_first(
    connection: Reader,
    definitions: DefinitionCache,
    outbox_: Outbox,
    *,
    link: SurveyLink,
    question_id: str,
    value: Any,
    max_chars: int,
) -> tuple[Visit, bool]:
    """Return the visit behind ``link`` (not a kiosk's) and whether ``value`` was saved for ``question_id``
    with it: a link's first answer to a survey whose version this process knows is read and written
    in one statement (``READ_AND_FIRST_ANSWER_SQL``); otherwise (or when the read finds a response, another
    version, a closed survey …) only read, as ``reads.read_visit`` does, for the caller to go on from.

    Raises as ``reads.read_visit`` does."""
    guess = _known_visit(definitions, link)
    if guess is not None:
        try:
            typed = checked_answer(guess, question_id=question_id, value=value, max_chars=max_chars)
        except CloseloopError:  # the read decides what to say first (a closed survey, an erased contact)
            typed = None
    if guess is None or typed is None:
        return await _read(connection, definitions, link), False
    now = utcnow()
    response_id, args = _first_answer_args(guess, outbox_, question_id=question_id, value=typed, now=now)
    row = await connection.fetchrow(READ_AND_FIRST_ANSWER_SQL, *args, contact_hash(link.contact_id))
    assert row is not None
    visit = await visit_of(connection, definitions, link, row)
    if not row["applied"]:
        return visit, False
    _note_saved(visit, response_id, question_id, typed)
    return visit, True


def _first_answer_args(
    visit: Visit, outbox_: Outbox, *, question_id: str, value: Any, now: datetime
) -> tuple[str, list[Any]]:
    """Return a new response's id and ``FIRST_ANSWER_SQL``'s arguments for the visit's first answer."""
    link = visit.link
    position = next(i for i, q in enumerate(visit.questions) if q.id == question_id)
    response_id = new_id()
    with tracing.span("response started", parent=link.traceparent):
        data = started_event(visit, response_id=response_id, now=now)
        envelope = CloudEvent.wrap(data, source=outbox_.source)
    return response_id, [
        *_response_args(visit, response_id),
        [question_id],
        now,
        envelope.id,
        data.topic,
        data.partition_key(),
        envelope.model_dump(mode="json"),
        question_id,
        position,
        visit.questions[position].type,
        value,
    ]


def _response_args(visit: Visit, response_id: str) -> list[Any]:
    """Return the first statements' $1 … $11: the new response's id, where it comes from, its locale
    and hidden fields."""
    link = visit.link
    return [
        response_id,
        link.workspace_id,
        visit.survey.id,
        visit.definition.version,
        link.invitation_id,
        link.request_id,
        link.contact_id,
        link.kind,
        link.channel,
        visit.locale,
        visit.fields,
    ]


async def _read(connection: Reader, definitions: DefinitionCache, link: SurveyLink) -> Visit:
    row = await connection.fetchrow(PAGE_SQL, *_read_args(link))
    assert row is not None
    return await visit_of(connection, definitions, link, row)


def _read_args(link: SurveyLink) -> tuple[str, str, str, str]:
    return link.workspace_id, link.survey_id, link.invitation_id, contact_hash(link.contact_id)


def _note_saved(visit: Visit, response_id: str, question_id: str, value: Any) -> None:
    """Hold in ``visit`` what saving ``value`` for ``question_id`` stored."""
    link = visit.link
    if visit.response is None:
        visit.response = Response(
            id=response_id,
            workspace_id=link.workspace_id,
            survey_id=visit.survey.id,
            survey_version=visit.definition.version,
            link_key=link.invitation_id,
            passed=[question_id],
            completed_at=None,
        )
    else:
        positions = {q.id: i for i, q in enumerate(visit.questions)}
        merged = set(visit.response.passed) | {question_id}
        visit.response.passed = sorted(merged, key=lambda q: positions.get(q, 0))
    if value is None:
        visit.answers.pop(question_id, None)
    else:
        visit.answers[question_id] = value


FIRST_FORM_SQL = f"""
WITH r AS (
    INSERT INTO {_RESPONSES}
        (id, workspace_id, survey_id, survey_version, link_key, invitation_id, request_id, contact_id,
         kind, channel, locale, hidden_fields, passed, consent_to_contact, started_at, updated_at,
         completed_at)
    VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15)
    ON CONFLICT DO NOTHING
    RETURNING id
), o AS (
    INSERT INTO {outbox.fullname} (event_id, topic, key, payload)
    SELECT e.value->>'id', e.value->>'topic', e.value->>'key', e.value->'payload'
    FROM r, jsonb_array_elements($16::jsonb) WITH ORDINALITY AS e(value, n) ORDER BY e.n
), a AS (
    INSERT INTO {_ANSWERS} (response_id, question_id, workspace_id, position, type, value, answered_at)
    SELECT r.id, x.value->>'q', $2, (x.value->>'position')::int, x.value->>'type', x.value->'value', $14
    FROM r, jsonb_array_elements($17::jsonb) AS x(value)
)
SELECT count(*) FROM r
"""
READ_AND_FIRST_FORM_SQL = _after_read(FIRST_FORM_SQL, contact_hash_at=18)


def _outbox_row(outbox_: Outbox, data: EventData, *, span: str, traceparent: str | None) -> dict[str, Any]:
    with tracing.span(span, parent=traceparent):
        envelope = CloudEvent.wrap(data, source=outbox_.source)
    return {
        "id": envelope.id,
        "topic": data.topic,
        "key": data.partition_key(),
        "payload": envelope.model_dump(mode="json"),
    }


async def submit_first(
    pool: Reader, outbox_: Outbox, *, visit: Visit, checked: CheckedForm
) -> FormResult | None:
    """Return what storing a checked form post did for a link without a response yet, in one statement;
    None when another submission started the response first (nothing written)."""
    result, args = _first_form_args(visit, outbox_, checked)
    return result if await pool.fetchval(FIRST_FORM_SQL, *args) else None


async def read_and_submit_first(
    connection: Reader,
    definitions: DefinitionCache,
    outbox_: Outbox,
    *,
    link: SurveyLink,
    form: Mapping[str, list[str]],
    max_chars: int,
) -> tuple[Visit, FormResult | None]:
    """Return the visit behind ``link`` (not a kiosk's) and what storing its form post did, as
    ``submit_first`` does, read and written in one statement (``READ_AND_FIRST_FORM_SQL``) when the
    survey's version is known, the form passes its checks and the survey gives no reward codes; otherwise
    (or when the read finds a response, another version, a closed survey …) only read, result None.

    Raises as ``reads.read_visit`` does."""
    guess = _known_visit(definitions, link)
    checked = None
    if guess is not None and not guess.definition.raw.get("reward_pool_id"):
        checked = check_form(guess, form=form, max_chars=max_chars)
    if guess is None or checked is None or checked.refused:
        return await _read(connection, definitions, link), None
    result, args = _first_form_args(guess, outbox_, checked)
    row = await connection.fetchrow(READ_AND_FIRST_FORM_SQL, *args, contact_hash(link.contact_id))
    assert row is not None
    visit = await visit_of(connection, definitions, link, row)
    if not row["applied"]:
        return visit, None
    visit.response, visit.answers = guess.response, guess.answers
    return visit, result


def _known_visit(definitions: DefinitionCache, link: SurveyLink) -> Visit | None:
    """Return the visit ``link`` would have at the version this process last read its survey at (to be
    checked by the statement that writes with it); None when that version is not known."""
    definition = definitions.cached(link.survey_id)
    if definition is None:
        return None
    survey = Survey(id=link.survey_id, workspace_id=link.workspace_id, version=definition.version)
    return Visit(link, survey, definition, clean_context(link.context))


def _first_form_args(visit: Visit, outbox_: Outbox, checked: CheckedForm) -> tuple[FormResult, list[Any]]:
    """Return what the form post does and ``FIRST_FORM_SQL``'s arguments; the visit then holds the response
    and answers as written."""
    assert visit.response is None and checked.refused is None
    link = visit.link
    now = utcnow()
    positions = {q.id: i for i, q in enumerate(visit.questions)}
    types = {q.id: q.type for q in visit.questions}
    # The response as ``save_answers`` leaves it, then ``complete`` when the post completes it.
    response = Response(
        id=new_id(),
        workspace_id=link.workspace_id,
        survey_id=visit.survey.id,
        survey_version=visit.definition.version,
        link_key=link.invitation_id,
        invitation_id=link.invitation_id,
        request_id=link.request_id,
        contact_id=link.contact_id,
        kind=link.kind,
        channel=link.channel,
        locale=visit.locale,
        hidden_fields=visit.fields,
        passed=sorted({q.id for q in checked.step}, key=lambda q: positions.get(q, 0)),
        consent_to_contact=False,
        completed_at=None,
        reward_code=None,
    )
    visit.response = response
    visit.answers = {q: v for q, v in checked.answers.items() if v is not None}
    events = [
        _outbox_row(
            outbox_,
            started_event(visit, response_id=response.id, now=now),
            span="response started",
            traceparent=link.traceparent,
        )
    ]
    stored = dict(visit.answers)
    result = FormResult()
    if checked.whole or not visit.next_step():
        kept, missing = completed_answers(visit.questions, visit.answers, visit.fields)
        if missing:
            result = FormResult(unanswered=next(iter(missing)))
        else:
            # Nobody can act on a "yes" from someone they cannot reach (a link without an address).
            response.consent_to_contact = consent_given(kept) and visit.reachable
            response.completed_at = now
            stored = {a.question_id: a.value for a in kept}
            completed = completed_event(visit, response, kept, consent=response.consent_to_contact, now=now)
            events.append(
                _outbox_row(outbox_, completed, span="response completed", traceparent=link.traceparent)
            )
            result = FormResult(completed=True)
    answers = [{"q": q, "position": positions[q], "type": types[q], "value": v} for q, v in stored.items()]
    return result, [
        *_response_args(visit, response.id),
        response.passed,
        response.consent_to_contact,
        now,
        response.completed_at,
        events,
        answers,
    ]
