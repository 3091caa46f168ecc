"""What the responses service's routes depend on, typed: its runtime and ``ResponsesDeps``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from services.responses.handlers import reads
from services.responses.handlers.reads import DefinitionCache
from services.responses.handlers.visits import Visit, is_kiosk, open_link, read_link
from services.responses.settings import ResponsesSettings
from shared.ratelimit import TokenBuckets
from shared.service import Runtime, get_runtime
from shared.survey_links import SurveyLink


@dataclass
class ResponsesDeps:
    """What ``app.py`` builds once per process."""

    kiosk_buckets: TokenBuckets
    """New kiosk respondents per kiosk and client address (``kiosk_rate_per_minute``, ``kiosk_burst``)."""
    pool: asyncpg.Pool
    """The survey page's read path (``handlers.reads``): one statement, no ORM, no transaction."""
    definitions: DefinitionCache
    """Parsed survey versions (immutable once stored)."""


ResponsesRuntime = Runtime[ResponsesSettings, ResponsesDeps]
RuntimeDep = Annotated[ResponsesRuntime, Depends(get_runtime)]


async def read_visit(runtime: ResponsesRuntime, token: str) -> Visit | None:
    """The visit behind ``token`` in one statement on the read pool (``handlers.reads``); None for a
    link that takes the locked unit of work (a kiosk link)."""
    return await reads.read_visit(
        runtime.deps.pool,
        runtime.deps.definitions,
        secret=runtime.settings.secret_key,
        previous=runtime.settings.secret_key_previous,
        token=token,
    )


async def open_visit(
    session: AsyncSession, runtime: ResponsesRuntime, token: str, *, lock: bool = False
) -> Visit:
    """The visit behind ``token`` in the unit of work ``session`` (``visits.open_link``), signed with the
    current secret or the one before a rotation."""
    return await open_link(
        session,
        secret=runtime.settings.secret_key,
        previous=runtime.settings.secret_key_previous,
        token=token,
        lock=lock,
    )


def opened_link(runtime: ResponsesRuntime, token: str) -> SurveyLink | None:
    """The link in ``token`` (raises as ``visits.read_link``); None for a kiosk link (the locked unit of
    work opens those)."""
    link = read_link(
        secret=runtime.settings.secret_key, token=token, previous=runtime.settings.secret_key_previous
    )
    return None if is_kiosk(link) else link
