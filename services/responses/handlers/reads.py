"""The survey page's read path: a link opened to be shown, nothing written.

One prepared statement on the service's own asyncpg pool (no ORM, no transaction: a single statement
reads one snapshot) returns the survey, the response started through the link with its answers, the
workspace's branding and whether the contact was erased. A survey version never changes once
stored, so its parsed definition is kept per process (``DefinitionCache``); the statement returns
the version to answer, and only a version not seen before costs a second statement.

Kiosk links, and everything that writes (a score in the link, a form post, an answer), open the
visit through ``visits.open_link`` in a unit of work instead.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, TypeAlias

import asyncpg

from services.responses.domain.answers import clean_context
from services.responses.domain.definition import Definition
from services.responses.handlers.errors import SurveyClosed
from services.responses.handlers.visits import Visit, is_kiosk, read_link
from services.responses.models import (
    SCHEMA,
    Response,
    ResponseAnswer,
    Survey,
    SurveyVersion,
    WorkspaceSettings,
)
from services.responses.models import erased_contacts as _erased
from shared.erasure import contact_hash
from shared.errors import NotFound
from shared.survey_links import SurveyLink

_RESPONSE = ("id", "survey_version", "passed", "completed_at", "reward_code", "locale", "hidden_fields")
PAGE_SQL = f"""
SELECT EXISTS (SELECT 1 FROM {_erased.fullname} e WHERE e.workspace_id = $1 AND e.contact_hash = $4) AS erased,
       s.id AS s_id, s.name AS s_name, s.version AS s_version, s.closed_at AS s_closed_at,
       w.branding AS branding,
       {", ".join(f"r.{c} AS r_{c}" for c in _RESPONSE)},
       (SELECT jsonb_object_agg(a.question_id, a.value) FROM {SCHEMA}.{ResponseAnswer.__tablename__} a
        WHERE a.response_id = r.id) AS answers
FROM (SELECT 1) AS one
LEFT JOIN {SCHEMA}.{Survey.__tablename__} s ON s.workspace_id = $1 AND s.id = $2
LEFT JOIN {SCHEMA}.{Response.__tablename__} r ON s.id IS NOT NULL AND r.workspace_id = $1 AND r.link_key = $3
LEFT JOIN {SCHEMA}.{WorkspaceSettings.__tablename__} w ON s.id IS NOT NULL AND w.workspace_id = $1
"""
DEFINITION_SQL = (
    f"SELECT definition FROM {SCHEMA}.{SurveyVersion.__tablename__} WHERE survey_id = $1 AND version = $2"
)


Reader: TypeAlias = asyncpg.Pool | asyncpg.Connection
"""Where the read runs: the pool, or a connection taken from it for a read and the write after it."""


async def _jsonb(connection: asyncpg.Connection) -> None:
    """Read JSONB as Python values (asyncpg hands it over as text by default)."""
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_read_pool(dsn: str, *, max_size: int) -> asyncpg.Pool:
    """Return the pool the read path runs on; its statements leave no session state to reset."""
    return await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, init=_jsonb, reset=_no_reset)


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Single read statements leave no locks, LISTENs or SETs behind: skip the pool's reset."""


class DefinitionCache:
    """Parsed survey versions by (survey id, version), the ``size`` used most recently.

    Versions are immutable once stored (a changed survey is a new version), so an entry never goes stale.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], Definition] = OrderedDict()
        self.current: dict[str, int] = {}
        """The version each survey answered last had (a first answer's guess, checked in its statement)."""

    async def get(self, pool: Reader, survey_id: str, version: int) -> Definition | None:
        key = (survey_id, version)
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            return found
        raw = await pool.fetchval(DEFINITION_SQL, survey_id, version)
        if raw is None:  # pragma: no cover - versions are never deleted
            return None
        definition = Definition.of(version, raw)
        self._items[key] = definition
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return definition

    def seen(self, survey_id: str, version: int) -> None:
        """Note the version survey ``survey_id`` has now (as a read found it)."""
        if len(self.current) >= self.size and survey_id not in self.current:
            self.current.clear()  # bounded; a survey read again is noted again
        self.current[survey_id] = version

    def cached(self, survey_id: str) -> Definition | None:
        """Return the parsed version survey ``survey_id`` had when last read, if it is still kept."""
        version = self.current.get(survey_id)
        return None if version is None else self._items.get((survey_id, version))


async def read_visit(
    pool: Reader, definitions: DefinitionCache, *, secret: str, token: str, previous: str | None
) -> Visit | None:
    """Return the visit behind ``token`` to be shown; None for a kiosk link (``open_link`` opens those).

    Raises as ``open_link`` does: ``NotFound`` (forged, erased, no such survey), ``Gone``, ``SurveyClosed``.
    """
    link = read_link(secret=secret, token=token, previous=previous)
    if is_kiosk(link):
        return None
    row = await pool.fetchrow(
        PAGE_SQL, link.workspace_id, link.survey_id, link.invitation_id, contact_hash(link.contact_id)
    )
    assert row is not None
    return await visit_of(pool, definitions, link, row)


async def visit_of(
    pool: Reader, definitions: DefinitionCache, link: SurveyLink, row: asyncpg.Record
) -> Visit:
    """Return the visit ``PAGE_SQL``'s ``row`` read for ``link``; raise as ``read_visit``."""
    if row["s_id"] is None or row["erased"]:
        raise NotFound("This survey is no longer available.", field="token" if row["erased"] else "survey_id")
    definitions.seen(row["s_id"], row["s_version"])
    survey = Survey(
        id=row["s_id"],
        workspace_id=link.workspace_id,
        name=row["s_name"],
        version=row["s_version"],
        closed_at=row["s_closed_at"],
    )
    response = None
    if row["r_id"] is not None:
        response = Response(
            workspace_id=link.workspace_id,
            survey_id=survey.id,
            link_key=link.invitation_id,
            **{c: row[f"r_{c}"] for c in _RESPONSE},
        )
    definition = await definitions.get(
        pool, survey.id, response.survey_version if response else survey.version
    )
    if definition is None:  # pragma: no cover - versions are never deleted
        raise NotFound("This survey is no longer available.", field="survey_id")
    visit = Visit(link, survey, definition, clean_context(link.context))
    visit.workspace_branding = dict(row["branding"] or {})
    if response is not None:
        visit.response = response
        answers: dict[str, Any] = row["answers"] or {}
        visit.answers = {k: v for k, v in answers.items() if v is not None}
    if survey.closed_at is not None and not visit.completed:
        raise SurveyClosed("This survey is closed and no longer takes responses.", field="survey_id")
    return visit
